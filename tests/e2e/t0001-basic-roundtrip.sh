#!/bin/bash
# Back up a disk image, change it, back up again, restore both points:
# each restores byte-identical, the second stores only the changed blocks.
. "$(dirname "$0")/functions.sh"

make_disk "$T/disk.img" 64
cp "$T/disk.img" "$T/v1.img"
ferry init --repo "$T/repo" >/dev/null || die "init"
id1=$(ferry backup --repo "$T/repo" "$T/disk.img") || die "backup 1"
# change 3 blocks of 1 MiB
for off in 3 17 40; do
	head -c 4096 /dev/urandom | dd of="$T/disk.img" bs=4096 seek=$((off * 256 + 7)) conv=notrunc status=none
done
json=$(ferry backup --repo "$T/repo" --json "$T/disk.img") || die "backup 2"
id2=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
new=$(echo "$json" | grep -o '"bytes_new":[0-9]*' | cut -d: -f2)
# (sub-block deltas, feature "delta": block 3 had data, only its changed
# 4 KiB page is new; blocks 17 and 40 were zero, so no base: whole blocks)
[ "$new" -eq $((2 * 1024 * 1024 + 4096)) ] || die "incremental stored $new new bytes, expected 2 MiB + 4 KiB"
ok "incremental backup wrote only the changed page of block 3 and the 2 formerly zero blocks"

ferry restore --repo "$T/repo" "$id1" --to "$T/r1.img" 2>/dev/null || die "restore 1"
same "$T/v1.img" "$T/r1.img" "first point restores byte-identical"
ferry restore --repo "$T/repo" disk.img --to "$T/r2.img" 2>/dev/null || die "restore by name"
same "$T/disk.img" "$T/r2.img" "NAME restores its latest point"
ferry restore --repo "$T/repo" "${id2:0:6}" --to "$T/r3.img" 2>/dev/null || die "restore by prefix"
same "$T/disk.img" "$T/r3.img" "an id prefix restores"
alloc=$(du -k "$T/r1.img" | cut -f1)
[ "$alloc" -lt $((64 * 1024 * 3 / 4)) ] || die "restored file is not sparse ($alloc KiB allocated)"
ok "restored file is sparse ($alloc KiB allocated of 65536)"
ferry verify --repo "$T/repo" 2>/dev/null || die "verify"
ok "verify passes"
FERRY_REPO=$T/repo ferry points | grep -q "$id2" || die "FERRY_REPO not honoured"
ok "FERRY_REPO stands for --repo"
