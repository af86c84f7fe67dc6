#!/bin/bash
# ext file systems that made ferry run for hours (found while writing
# fuzz/fuzz_ext.c): a file of 6 bytes whose size says 1 TiB (a sparse file,
# or a hostile inode) made `ferry files get` walk 2^30 block numbers, deaf
# to SIGTERM; a directory linked twice under itself (hostile, or damaged)
# made `files get` and `backup --exclude` recurse 2^depth times.  Now the
# copy visits only mapped blocks (extents and indirect blocks) and a
# directory is entered once, with a warning naming it.
. "$(dirname "$0")/functions.sh"
requires mkfs.ext4 mkfs.ext2 debugfs

mkdir -p "$T/tree/d/e"
printf 'hello\n' >"$T/tree/a"
head -c 3000 /dev/urandom >"$T/tree/d/f"
ferry init --repo "$T/repo" >/dev/null || die "init"

for fs in ext4 ext2; do
	img=$T/$fs.img
	truncate -s 4M "$img"
	mkfs.$fs -q -F -O ^metadata_csum -d "$T/tree" "$img" 2>/dev/null ||
		mkfs.$fs -q -F -d "$T/tree" "$img" || die "mkfs.$fs"
	debugfs -w -R "sif /a size 0x10000000000" "$img" 2>/dev/null || die "debugfs sif"
	id=$(ferry backup --repo "$T/repo" --quiet --name $fs "$img") || die "backup $fs"
	mkdir -p "$T/to-$fs"
	start=$(date +%s)
	timeout -s KILL 60 "$FERRY" files get --repo "$T/repo" "$id" / --to "$T/to-$fs" \
		>"$T/out" 2>"$T/err" || { cat "$T/err"; die "$fs: files get failed or hung"; }
	secs=$(($(date +%s) - start))
	[ "$(stat -c %s "$T/to-$fs/a")" = 1099511627776 ] || die "$fs: a is not 1 TiB long"
	[ "$(head -c 6 "$T/to-$fs/a")" = hello ] || die "$fs: a does not start with its data"
	[ "$(du -k "$T/to-$fs/a" | cut -f1)" -lt 1024 ] || die "$fs: a is not sparse"
	same "$T/tree/d/f" "$T/to-$fs/d/f" "$fs: a 1 TiB sparse file restored sparse in ${secs} s, the rest intact"
done

# A directory linked under itself twice.
img=$T/loop.img
truncate -s 4M "$img"
mkfs.ext4 -q -F -O ^metadata_csum -d "$T/tree" "$img" || die "mkfs"
debugfs -w -R "link /d /d/loop" "$img" 2>/dev/null && debugfs -w -R "link /d /d/loop2" "$img" 2>/dev/null ||
	die "debugfs link"
debugfs -R "ls /d" "$img" 2>/dev/null | grep -q loop2 || die "the loop is not in the image"
id=$(timeout -s KILL 60 "$FERRY" backup --repo "$T/repo" --quiet --name loop --exclude /d "$img" 2>"$T/err") ||
	{ cat "$T/err"; die "backup --exclude /d failed or hung"; }
grep -q "exclude /d: directory inode [0-9]* is linked more than once" "$T/err" ||
	{ cat "$T/err"; die "backup does not warn about the loop"; }
ok "backup --exclude of a directory that contains itself ends and warns"
id=$(ferry backup --repo "$T/repo" --quiet --name loop "$img") || die "backup"
mkdir -p "$T/to-loop"
timeout -s KILL 60 "$FERRY" files get --repo "$T/repo" "$id" / --to "$T/to-loop" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] || { cat "$T/err"; die "files get exited $rc, expected 1 (items skipped)"; }
grep -q "loop: directory inode [0-9]* is linked more than once" "$T/err" &&
	grep -q "loop2: directory inode [0-9]* is linked more than once" "$T/err" ||
	{ cat "$T/err"; die "files get does not name the loop"; }
[ ! -e "$T/to-loop/d/loop" ] || die "the loop was entered"
same "$T/tree/d/f" "$T/to-loop/d/f" "files get of a directory that contains itself ends, names both links, restores the rest"
