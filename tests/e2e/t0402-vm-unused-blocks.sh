#!/bin/bash
# A raw disk with GPT, ext4 with files and a swap partition: the backup
# skips swap (but its header page) and free blocks, excluded guest files
# read as zeros, the restored ext4 passes e2fsck -fn with every other file
# equal, and the restored swap partition still has its signature.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/vm-functions.sh"
requires sfdisk mkfs.ext4 mkswap debugfs e2fsck blkid

disk=$T/disk.img
truncate -s 112M "$disk"
fill_random "$disk" 112
sfdisk -q "$disk" <<'P' || die "sfdisk"
label: gpt
start=2048, size=131072, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
start=133120, size=65536, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name=swap
P
make_guest_tree "$T/tree"
mkext4_at "$disk" $((1 << 20)) 64 "$T/tree"
mkswap_at "$disk" $((65 << 20)) 32
cp "$disk" "$T/orig.img"

ferry init --repo "$T/repo" >/dev/null || die "init"
json=$(ferry backup --repo "$T/repo" --json --exclude /cache --exclude /tmp/big.bin "$disk" 2>"$T/warn") ||
	{ cat "$T/warn"; die "backup"; }
cat "$T/warn"
[ ! -s "$T/warn" ] || die "unexpected warnings"
read_b=$(json_num "$json" bytes_read)
swap=$(json_num "$json" bytes_skipped_swap)
free=$(json_num "$json" bytes_skipped_free)
excl=$(json_num "$json" bytes_skipped_excluded)
echo "read $read_b, skipped swap $swap free $free excluded $excl"
[ "$swap" -eq $(((32 << 20) - 4096)) ] || die "swap skipped $swap bytes, expected 32 MiB less its header page"
ok "swap partition skipped but its 4 KiB header page"
[ "$free" -gt $((30 << 20)) ] || die "only $free free bytes skipped"
ok "free ext4 blocks skipped ($free bytes)"
# 2 MiB + 300001 B (74 blocks) + 1500000 B (367 blocks), 4 KiB blocks
want=$(( (512 + 74 + 367) * 4096 ))
[ "$excl" -eq "$want" ] || die "excluded $excl bytes, expected $want"
ok "excluded files' blocks skipped ($excl bytes)"
[ "$read_b" -lt $((64 << 20)) ] || die "read $read_b bytes of 112 MiB"
ok "read $read_b of $((112 << 20)) bytes"

ferry restore --repo "$T/repo" disk.img --to "$T/r.img" 2>/dev/null || die "restore"
sfdisk -d "$T/r.img" >/dev/null 2>&1 || die "restored partition table unreadable"
part_extract "$T/r.img" 1 64 "$T/r1.img"
e2fsck -fn "$T/r1.img" >"$T/fsck" 2>&1 || { cat "$T/fsck"; die "e2fsck -fn fails on the restored ext4"; }
ok "restored ext4 passes e2fsck -fn"
check_tree "$T/r1.img" "$T/tree" /cache /tmp/big.bin
ok "every file equal, excluded files read as zeros"
part_extract "$T/r.img" 65 32 "$T/r2.img"
[ "$(blkid -p -o value -s TYPE "$T/r2.img")" = swap ] || die "restored swap partition has no swap signature"
ok "restored swap partition keeps its signature"
# Everything outside swap, free and excluded blocks is byte-identical.
cmp -s <(head -c $((1 << 20)) "$T/orig.img") <(head -c $((1 << 20)) "$T/r.img") || die "GPT area differs"
cmp -s <(tail -c $((15 << 20)) "$T/orig.img") <(tail -c $((15 << 20)) "$T/r.img") || die "unpartitioned tail differs"
ok "unpartitioned space (never proven unused) kept byte-identical"

# Turning the filters off reads everything.
json=$(ferry backup --repo "$T/repo" --json --no-exclude-swap --no-exclude-free "$disk" 2>/dev/null) || die "backup 2"
[ "$(json_num "$json" bytes_read)" -eq $((112 << 20)) ] || die "--no-exclude-* still skipped"
[ "$(json_num "$json" bytes_skipped_swap)" -eq 0 ] || die "swap skipped"
ferry restore --repo "$T/repo" "$(json_id "$json")" --to "$T/r3.img" 2>/dev/null || die "restore 2"
same "$T/orig.img" "$T/r3.img" "with the filters off the disk restores byte-identical"
