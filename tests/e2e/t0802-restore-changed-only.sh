#!/bin/bash
# Quick rollback: `ferry restore --changed-only` onto a disk that changed
# by about 1 % writes about 1 % of the disk, and the result equals the
# restore point; blocks that became non-zero where the point has zeros are
# cleared; a target that already equals the point gets no write at all.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/vm-functions.sh"

mib=100
make_disk "$T/disk.img" $mib
ferry init --repo "$T/repo" >/dev/null || die "init"
id=$(ferry backup --repo "$T/repo" "$T/disk.img") || die "backup"
cp "$T/disk.img" "$T/orig.img"
# A 1 % change: 1 MiB of new data at block 20 (its 1 MiB block).
head -c $((1 << 20)) /dev/urandom | dd of="$T/disk.img" bs=1M seek=20 conv=notrunc status=none
json=$(ferry restore --repo "$T/repo" "$id" --to "$T/disk.img" --changed-only --json 2>"$T/err") || { cat "$T/err"; die "rollback"; }
echo "$json"
w=$(json_num "$json" bytes_written)
[ "$w" -eq $((1 << 20)) ] || die "wrote $w bytes after a 1 % change, expected 1 MiB (1 %)"
ok "a 1 % change is rolled back writing 1 % of the disk ($w bytes)"
same "$T/orig.img" "$T/disk.img" "the rolled-back disk equals the restore point"

# Scattered 4 KiB writes, one into a block the point holds as zeros.
for blk in 3 70 71; do
	head -c 4096 /dev/urandom | dd of="$T/disk.img" bs=4096 seek=$((blk * 256 + 5)) conv=notrunc status=none
done
json=$(ferry restore --repo "$T/repo" "$id" --to "$T/disk.img" --changed-only --json 2>"$T/err") || { cat "$T/err"; die "rollback 2"; }
[ "$(json_num "$json" blocks_written)" -eq 3 ] || die "expected 3 blocks written: $json"
same "$T/orig.img" "$T/disk.img" "scattered writes, one over a zero block, roll back exactly"

json=$(ferry restore --repo "$T/repo" "$id" --to "$T/disk.img" --changed-only --json 2>/dev/null) || die "second rollback"
[ "$(json_num "$json" bytes_written)" -eq 0 ] || die "an unchanged target was written"
[ "$(json_num "$json" bytes_unchanged)" -eq $((mib << 20)) ] || die "not every byte compared equal"
ok "an unchanged target gets no write"

expect_fail 1 ferry restore --repo "$T/repo" "$id" --to "$T/none.img" --changed-only
grep -q "existing" "$T/err" || die "no hint for a missing target"
ok "--changed-only refuses a target that does not exist"
ferry restore --repo "$T/repo" "$id" --to "$T/disk.img" --changed-only 2>"$T/err" || die "human output"
grep -q "rolled .* back to $id: .* written in 0 block" "$T/err" || { cat "$T/err"; die "human summary"; }
ok "the human summary says what was written"
