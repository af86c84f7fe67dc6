#!/bin/bash
# `ferry mount`: a restore point of a GPT disk (swap + ext4) appears as
# read-only image files, one for the disk and one per partition.  The disk
# file equals a full restore byte for byte, a partition file equals its
# slice and e2fsck / debugfs read it; nothing can be written; a flipped bit
# in one chunk is EIO for that block's range only (and logged), the ranges
# around it read right; fusermount3 -u and SIGTERM both unmount and leave
# no process behind.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/vm-functions.sh"
requires_root
requires fusermount3 sfdisk mkfs.ext4 debugfs e2fsck
[ -c /dev/fuse ] || skip "/dev/fuse is missing"
# The background process has no stderr: sanitizer reports go to files.
asan_tier && export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/asan

disk=$T/vm1.img
truncate -s 48M "$disk"
fill_random "$disk" 48
sfdisk -q "$disk" <<'P' || die "sfdisk"
label: gpt
start=2048, size=8192, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name=swap
start=10240, size=77824, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
P
mkswap_at "$disk" $((1 << 20)) 4
tree=$T/tree
make_guest_tree "$tree"
mkext4_at "$disk" $((5 << 20)) 38 "$tree"
ferry init --repo "$T/repo" >/dev/null || die "init"
id=$(ferry backup --repo "$T/repo" "$disk" 2>/dev/null) || die "backup"
ferry restore --repo "$T/repo" "$id" --to "$T/full.img" 2>/dev/null || die "restore"

mnt=$T/mnt
mkdir "$mnt"
# gone PID: the process has ended (a zombie waiting for its reaper counts).
gone() {
	local s
	for _ in $(seq 50); do
		s=$(ps -o stat= -p "$1" 2>/dev/null | tr -d ' ')
		case "$s" in ''|Z*) return 0 ;; esac
		sleep 0.1
	done
	return 1
}
unmounted() { ! grep -q " $mnt fuse" /proc/mounts; }
cleanup_fn "fusermount3 -u -z '$mnt'"

ferry mount --repo "$T/repo" "$id" "$mnt" --json --log "$T/mount.log" >"$T/mount.json" 2>"$T/mount.err" ||
	{ cat "$T/mount.err"; die "ferry mount"; }
pid=$(grep -o '"pid":[0-9]*' "$T/mount.json" | cut -d: -f2)
[ -n "$pid" ] || { cat "$T/mount.json"; die "no pid in the JSON"; }
cleanup_fn "kill $pid"
grep -q '"table":"GPT"' "$T/mount.json" || die "the GPT table is not reported"
grep -q " $mnt fuse.ferry ro," /proc/mounts || { grep " $mnt " /proc/mounts; die "not mounted read-only"; }
ok "mounted read-only in the background (pid $pid)"
[ "$(ls "$mnt" | tr '\n' ' ')" = "vm1-part1.img vm1-part2.img vm1.img " ] || { ls -l "$mnt"; die "unexpected files"; }
ok "files: vm1.img, vm1-part1.img, vm1-part2.img"

same "$T/full.img" "$mnt/vm1.img" "the disk file equals a full restore"
cmp -s "$mnt/vm1-part2.img" <(dd if="$T/full.img" bs=1M skip=5 count=38 status=none) ||
	die "partition 2 is not its slice of the restore"
[ "$(stat -c %s "$mnt/vm1-part1.img")" = $((4 << 20)) ] || die "partition 1 size"
cmp -s "$mnt/vm1-part1.img" <(dd if="$T/full.img" bs=1M skip=1 count=4 status=none) ||
	die "partition 1 is not its slice of the restore"
ok "each partition file equals its slice of the restore"
e2fsck -fn "$mnt/vm1-part2.img" >"$T/fsck" 2>&1 || { cat "$T/fsck"; die "e2fsck finds errors"; }
ok "e2fsck -fn reads the ext4 partition file clean"
debugfs -R "ls -l /home/user" "$mnt/vm1-part2.img" 2>/dev/null | grep -q 'data.bin' || die "debugfs ls"
debugfs -R "dump /home/user/data.bin $T/data.bin" "$mnt/vm1-part2.img" >/dev/null 2>&1 || die "debugfs dump"
same "$tree/home/user/data.bin" "$T/data.bin" "debugfs reads a file through the partition file"

( echo x >>"$mnt/vm1.img" ) 2>/dev/null && die "a write was accepted"
touch "$mnt/new" 2>/dev/null && die "a file was created"
ok "nothing can be written"

fusermount3 -u "$mnt" || die "fusermount3 -u"
gone "$pid" || die "the mount process $pid is still running after fusermount3 -u"
unmounted || die "still mounted"
ok "fusermount3 -u unmounts and the process ends"

# Foreground, stopped by SIGTERM.
"$FERRY" mount -f --repo "$T/repo" "$id" "$mnt" >"$T/fg.out" 2>"$T/fg.err" &
fpid=$!
for _ in $(seq 100); do grep -q '^mounted ' "$T/fg.out" && break; sleep 0.05; done
grep -q '^mounted ' "$T/fg.out" || { cat "$T/fg.err"; die "foreground mount did not start"; }
cmp -s "$mnt/vm1-part1.img" <(dd if="$T/full.img" bs=1M skip=1 count=4 status=none) || die "foreground read"
kill -TERM "$fpid"
wait "$fpid"; rc=$?
[ $rc = 0 ] || { cat "$T/fg.err"; die "ferry mount -f exited $rc on SIGTERM"; }
unmounted || die "still mounted after SIGTERM"
ok "SIGTERM unmounts a foreground mount; ferry exits 0"

# A flipped bit in the chunk of one data block of the ext4 partition.
bs=1048576 bad=
for i in $(seq 8 40); do
	h=$(block_hash "$T/full.img" "$i" $bs)
	[ -f "$(chunk_file "$T/repo" "$h")" ] && { bad=$i; break; }
done
[ -n "$bad" ] || die "no data block to damage"
f=$(chunk_file "$T/repo" "$(block_hash "$T/full.img" "$bad" $bs)")
flip_bit "$f" 200 5
ferry mount --repo "$T/repo" "$id" "$mnt" --json --log "$T/bad.log" >"$T/mount.json" 2>"$T/mount.err" ||
	{ cat "$T/mount.err"; die "ferry mount (damaged)"; }
pid=$(grep -o '"pid":[0-9]*' "$T/mount.json" | cut -d: -f2)
cleanup_fn "kill $pid"
dd if="$mnt/vm1.img" of=/dev/null bs=64k skip=$((bad * 16)) count=16 2>"$T/dd.err" && die "reading the damaged block succeeded"
grep -qi "input/output error" "$T/dd.err" || { cat "$T/dd.err"; die "no EIO"; }
ok "reading damaged block $bad is EIO"
dd if="$mnt/vm1.img" of="$T/before" bs=1M count=$bad status=none || die "the blocks before the damage fail"
cmp -s "$T/before" <(head -c $((bad << 20)) "$T/full.img") || die "the blocks before the damage read wrong"
dd if="$mnt/vm1.img" of="$T/after" bs=1M skip=$((bad + 1)) status=none || die "the blocks after the damage fail"
cmp -s "$T/after" <(dd if="$T/full.img" bs=1M skip=$((bad + 1)) status=none) || die "the blocks after the damage read wrong"
ok "every other block reads right"
grep -q "bad block $bad (offset $((bad << 20))) of restore point $id" "$T/bad.log" || { cat "$T/bad.log"; die "the bad block is not logged"; }
ok "the bad block is logged"
kill -INT "$pid"
gone "$pid" || die "the mount process ignores SIGINT"
unmounted || die "still mounted after SIGINT"
ok "SIGINT unmounts a background mount and the process ends"
if asan_tier && ls "$T"/asan.* >/dev/null 2>&1; then cat "$T"/asan.*; die "sanitizer reports"; fi
