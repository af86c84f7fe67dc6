#!/bin/bash
# What cannot be proven unused is read: a corrupt GPT header or entry
# array, a corrupt ext4 superblock or block bitmap, a file system that
# needs journal recovery, a swap partition holding a hibernation image:
# each is warned about and read whole, and the point restores those
# regions byte-identical.  An MBR disk with swap in a logical partition
# and a file system on a whole disk are understood.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/vm-functions.sh"
requires sfdisk mkfs.ext4 mkswap debugfs dumpe2fs e2fsck

MiB=1048576
ferry init --repo "$T/repo" >/dev/null || die "init"
make_guest_tree "$T/tree"

gpt_disk() { # FILE: 40 MiB, GPT: 1 ext4 (24 MiB at 1 MiB), 2 swap (8 MiB at 25 MiB)
	rm -f "$1"
	truncate -s 40M "$1"
	fill_random "$1" 40
	sfdisk -q "$1" <<-'P' || die "sfdisk"
	label: gpt
	start=2048, size=49152, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
	start=51200, size=16384, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F
	P
	mkext4_at "$1" $MiB 24 "$T/tree"
	mkswap_at "$1" $((25 * MiB)) 8
}
flip() { # FILE OFFSET: invert one byte
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# run WHAT DISK PATTERN [START LEN]: back up, expect a warning matching
# PATTERN, and a restore byte-identical in [START, START+LEN) (MiB; by
# default the whole disk when nothing was skipped, else the ext4 partition)
run() {
	local start=${4:-} len=${5:-}
	json=$(ferry backup --repo "$T/repo" --json --name "$1" "$2" 2>"$T/warn") || { cat "$T/warn"; die "$1: backup"; }
	grep -q "$3" "$T/warn" || { cat "$T/warn"; die "$1: no warning matching '$3'"; }
	ferry restore --repo "$T/repo" "$(json_id "$json")" --to "$T/r.img" 2>/dev/null || die "$1: restore"
	swap=$(json_num "$json" bytes_skipped_swap)
	if [ -z "$start" ]; then
		start=0 len=40
		[ "$swap" -eq 0 ] || len=25
	fi
	cmp -s <(dd if="$2" bs=1M skip="$start" count="$len" status=none) \
		<(dd if="$T/r.img" bs=1M skip="$start" count="$len" status=none) ||
		die "$1: the restore differs in MiB $start-$((start + len))"
	ok "$1: $(grep -o "$3.*" "$T/warn" | head -1 | cut -c1-70); read $(json_num "$json" bytes_read), skipped free $(json_num "$json" bytes_skipped_free) swap $swap"
}

gpt_disk "$T/d.img"
flip "$T/d.img" $((512 + 40))
run "GPT header" "$T/d.img" "GPT: header checksum mismatch"
# nothing skipped as unused (a block the file system reports as a hole
# right after mke2fs is a zero block, not a read one, with the mapped read)
[ "$(json_num "$json" bytes_skipped_free)" -eq 0 ] && [ "$(json_num "$json" bytes_skipped_swap)" -eq 0 ] &&
	[ $(( $(json_num "$json" bytes_read) + $(json_num "$json" bytes_zero) )) -ge $((40 * MiB)) ] || die "corrupt GPT: not everything read"

gpt_disk "$T/d.img"
flip "$T/d.img" $((1024 + 128 + 33))
run "GPT entries" "$T/d.img" "GPT: entry array checksum mismatch"
# nothing skipped as unused (a block the file system reports as a hole
# right after mke2fs is a zero block, not a read one, with the mapped read)
[ "$(json_num "$json" bytes_skipped_free)" -eq 0 ] && [ "$(json_num "$json" bytes_skipped_swap)" -eq 0 ] &&
	[ $(( $(json_num "$json" bytes_read) + $(json_num "$json" bytes_zero) )) -ge $((40 * MiB)) ] || die "corrupt GPT entries: not everything read"

gpt_disk "$T/d.img"
flip "$T/d.img" $((MiB + 1024 + 8))
run "ext4 superblock" "$T/d.img" "partition 1: cannot open the ext file system"
[ "$(json_num "$json" bytes_skipped_free)" -eq 0 ] || die "corrupt superblock: free blocks skipped"
[ "$(json_num "$json" bytes_skipped_swap)" -gt 0 ] || die "the other partition's swap was not skipped"

gpt_disk "$T/d.img"
dd if="$T/d.img" of="$T/p1.img" bs=1M skip=1 count=24 status=none
bb=$(dumpe2fs "$T/p1.img" 2>/dev/null | grep -m1 -o 'Block bitmap at [0-9]*' | grep -o '[0-9]*$')
flip "$T/d.img" $((MiB + bb * 4096 + 100))
run "ext4 block bitmap" "$T/d.img" "cannot read the ext block bitmaps"
[ "$(json_num "$json" bytes_skipped_free)" -eq 0 ] || die "corrupt bitmap: free blocks skipped"

gpt_disk "$T/d.img"
dd if="$T/d.img" of="$T/p1.img" bs=1M skip=1 count=24 status=none
debugfs -w -R "feature needs_recovery" "$T/p1.img" >/dev/null 2>&1
dd if="$T/p1.img" of="$T/d.img" bs=1M seek=1 conv=notrunc status=none
run "journal recovery" "$T/d.img" "needs journal recovery"
[ "$(json_num "$json" bytes_skipped_free)" -eq 0 ] || die "needs_recovery: free blocks skipped"

gpt_disk "$T/d.img"
printf 'S1SUSPEND' | dd of="$T/d.img" bs=1 seek=$((25 * MiB + 4086)) conv=notrunc status=none
run "hibernation image" "$T/d.img" "swap partition without a swap signature" 25 8
[ "$(json_num "$json" bytes_skipped_swap)" -eq 0 ] || die "hibernation image skipped"
[ "$(json_num "$json" bytes_skipped_free)" -gt 0 ] || die "free blocks of the sound ext4 not skipped"

# MBR: 1 ext4, 2 extended holding 5 (a logical swap partition)
rm -f "$T/m.img"
truncate -s 40M "$T/m.img"
fill_random "$T/m.img" 40
sfdisk -q "$T/m.img" <<'P' || die "sfdisk mbr"
label: dos
start=2048, size=49152, type=83
start=51200, size=20480, type=5
start=53248, size=16384, type=82
P
mkext4_at "$T/m.img" $MiB 24 "$T/tree"
mkswap_at "$T/m.img" $((26 * MiB)) 8
json=$(ferry backup --repo "$T/repo" --json --name mbr "$T/m.img" 2>"$T/warn") || die "mbr backup"
[ ! -s "$T/warn" ] || { cat "$T/warn"; die "mbr: warnings"; }
[ "$(json_num "$json" bytes_skipped_swap)" -eq $((8 * MiB - 4096)) ] || die "mbr: logical swap not skipped"
[ "$(json_num "$json" bytes_skipped_free)" -gt 0 ] || die "mbr: free blocks not skipped"
ferry restore --repo "$T/repo" mbr --to "$T/r.img" 2>/dev/null || die "mbr restore"
part_extract "$T/r.img" 1 24 "$T/r1.img"
e2fsck -fn "$T/r1.img" >/dev/null 2>&1 || die "mbr: restored ext4 fails e2fsck"
check_tree "$T/r1.img" "$T/tree"
ok "MBR with a logical swap partition: swap and free blocks skipped, ext4 restores clean"

# ext4 on the whole disk, no partition table
rm -f "$T/w.img"
truncate -s 24M "$T/w.img"
fill_random "$T/w.img" 24
mkfs.ext4 -q -F -b 4096 -E nodiscard -d "$T/tree" "$T/w.img" || die "mkfs whole"
json=$(ferry backup --repo "$T/repo" --json --name whole --exclude /cache "$T/w.img" 2>"$T/warn") || die "whole backup"
[ ! -s "$T/warn" ] || { cat "$T/warn"; die "whole: warnings"; }
[ "$(json_num "$json" bytes_skipped_free)" -gt 0 ] || die "whole disk: free blocks not skipped"
[ "$(json_num "$json" bytes_skipped_excluded)" -gt 0 ] || die "whole disk: /cache not excluded"
ferry restore --repo "$T/repo" whole --to "$T/r.img" 2>/dev/null || die "whole restore"
e2fsck -fn "$T/r.img" >/dev/null 2>&1 || die "whole: restored ext4 fails e2fsck"
check_tree "$T/r.img" "$T/tree" /cache
ok "ext4 on a whole disk: free blocks and /cache skipped, restores clean"

json=$(ferry backup --repo "$T/repo" --json --name whole --exclude /no/such/dir "$T/w.img" 2>"$T/warn") || die "whole backup 2"
grep -q "exclude /no/such/dir: not found" "$T/warn" || die "a missing exclude path is not warned about"
ok "an exclude path found nowhere is warned about"
