#!/bin/bash
# `ferry mount` beyond the GPT case: an MBR disk with an extended
# partition shows its primary and logical partitions (as Linux numbers
# them); a disk without a table shows only the disk file; a damaged GPT
# is logged and only the disk file shown; a missing point, repository or
# directory is one clear error and mounts nothing; SIGTERM while a reader
# holds a file open still ends the process and removes the mount.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/vm-functions.sh"
requires_root
requires fusermount3 sfdisk mkfs.ext4 e2fsck
[ -c /dev/fuse ] || skip "/dev/fuse is missing"

MiB=1048576
mnt=$T/mnt
mkdir "$mnt"
cleanup_fn "fusermount3 -u -z '$mnt'"
unmounted() { ! grep -q " $mnt fuse" /proc/mounts; }
gone() {
	local s
	for _ in $(seq 50); do
		s=$(ps -o stat= -p "$1" 2>/dev/null | tr -d ' ')
		case "$s" in ''|Z*) return 0 ;; esac
		sleep 0.1
	done
	return 1
}
# mnt_point ID [LOG]: mount, set $pid, leave the JSON in $T/m.json
mnt_point() {
	ferry mount --repo "$T/repo" "$1" "$mnt" --json --log "$T/${2:-m}.log" >"$T/m.json" 2>"$T/m.err" ||
		{ cat "$T/m.err"; die "ferry mount $1"; }
	pid=$(grep -o '"pid":[0-9]*' "$T/m.json" | cut -d: -f2)
	cleanup_fn "kill $pid"
}
umnt() { fusermount3 -u "$mnt" || die "fusermount3 -u"; gone "$pid" || die "process $pid left"; }

ferry init --repo "$T/repo" >/dev/null || die "init"
make_guest_tree "$T/tree"

# MBR: 1 ext4, 2 extended holding 5 (swap) and 6 (ext4)
truncate -s 48M "$T/mbr.img"
fill_random "$T/mbr.img" 48
sfdisk -q "$T/mbr.img" <<'P' || die "sfdisk mbr"
label: dos
start=2048, size=30720, type=83
start=34816, size=61440, type=5
start=36864, size=8192, type=82
start=47104, size=47104, type=83
P
mkext4_at "$T/mbr.img" $MiB 15 "$T/tree"
mkswap_at "$T/mbr.img" $((18 * MiB)) 4
mkext4_at "$T/mbr.img" $((23 * MiB)) 23 "$T/tree"
id=$(ferry backup --repo "$T/repo" --name mbr "$T/mbr.img" 2>/dev/null) || die "backup mbr"
ferry restore --repo "$T/repo" "$id" --to "$T/full.img" 2>/dev/null || die "restore"
mnt_point "$id"
grep -q '"table":"MBR"' "$T/m.json" || die "MBR not reported"
[ "$(ls "$mnt" | tr '\n' ' ')" = "mbr-part1.img mbr-part5.img mbr-part6.img mbr.img " ] ||
	{ ls "$mnt"; die "MBR files"; }
for p in 1:1:15 5:18:4 6:23:23; do
	IFS=: read -r n s l <<<"$p"
	cmp -s "$mnt/mbr-part$n.img" <(dd if="$T/full.img" bs=1M skip="$s" count="$l" status=none) ||
		die "partition $n is not its slice"
done
e2fsck -fn "$mnt/mbr-part6.img" >/dev/null 2>&1 || die "e2fsck of the logical ext4"
ok "MBR: primary 1, logical 5 and 6 (not the extended container 2); slices equal the restore; e2fsck reads logical 6"

# SIGTERM while a reader holds a file open.
exec 3<"$mnt/mbr-part6.img"
head -c 4096 <&3 >/dev/null || die "read through the open file"
kill -TERM "$pid"
gone "$pid" || die "the process ignores SIGTERM while a file is open"
unmounted || die "still mounted after SIGTERM with a file open"
exec 3<&-
ok "SIGTERM with a file held open: the process ends and the mount is gone"

# Whole-disk ext4, no table.
truncate -s 24M "$T/fs.img"
mkfs.ext4 -q -F -d "$T/tree" "$T/fs.img" || die "mkfs"
id2=$(ferry backup --repo "$T/repo" --name root.raw "$T/fs.img" 2>/dev/null) || die "backup fs"
mnt_point "$id2"
grep -q '"table":"none"' "$T/m.json" || die "no table not reported"
[ "$(ls "$mnt")" = "root.img" ] || { ls "$mnt"; die "files of a disk without table"; }
e2fsck -fn "$mnt/root.img" >/dev/null 2>&1 || die "e2fsck whole disk"
umnt
ok "a disk without a partition table: only root.img (the name without .raw), e2fsck reads it"

# A damaged GPT: only the disk file, and a log line.
truncate -s 16M "$T/g.img"
sfdisk -q "$T/g.img" <<'P' || die "sfdisk gpt"
label: gpt
start=2048, size=20480, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4
P
flip_bit "$T/g.img" $((512 + 90)) 0 # header CRC
flip_bit "$T/g.img" $((16 * MiB - 512 + 90)) 0
id3=$(ferry backup --repo "$T/repo" --name g "$T/g.img" 2>/dev/null) || die "backup g"
mnt_point "$id3" g
grep -q '"table":"damaged"' "$T/m.json" || { cat "$T/m.json"; die "damaged table not reported"; }
[ "$(ls "$mnt")" = "g.img" ] || { ls "$mnt"; die "files of a damaged table"; }
grep -q "partition table not used: .*; only the whole disk is shown" "$T/g.log" || { cat "$T/g.log"; die "not logged"; }
same "$T/g.img" "$mnt/g.img" "a damaged GPT: logged, the disk file alone, byte-identical"
umnt

expect_fail 4 ferry mount --repo "$T/repo" ffffffffffffffff "$mnt"
one_error_line "no restore point"
unmounted || die "mounted anyway"
ok "a missing point: exit 4, one error line, nothing mounted"
expect_fail 4 ferry mount --repo "$T/repo" "$id" "$T/nodir"
one_error_line "nodir"
ok "a missing directory: exit 4, one error line"
expect_fail 4 ferry mount --repo "$T/norepo" "$id" "$mnt"
unmounted || die "mounted anyway"
ok "a missing repository: exit 4"
ferry mount --repo "$T/repo" "$id" >/dev/null 2>&1; rc=$?
[ $rc = 2 ] || die "a missing DIR argument exited $rc"
ok "a missing DIR argument: usage error"
