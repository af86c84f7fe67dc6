#!/bin/bash
# ext file systems that made ferry run for hours (found while writing
# fuzz/fuzz_ext.c): a file of 6 bytes whose size says 1 TiB (a sparse file,
# or a hostile inode) made `ferry files get` walk 2^30 block numbers, deaf
# to SIGTERM; a directory linked twice under itself (hostile, or damaged)
# made `files get` and `backup --exclude` recurse 2^depth times; a triple
# indirect block whose entries all name the same blocks made `backup
# --exclude` walk 2^24 (1 KiB blocks; 2^30 with 4 KiB) block numbers.  Now
# the copy visits only mapped blocks (extents and indirect blocks), no
# block map is walked past the file system's block count, and a directory
# is entered once, with a warning naming it.
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

# A triple indirect block (i_block[14]) whose 256 entries name the same
# double indirect block, whose entries name the same indirect block, whose
# entries name the file's one data block: 2^24 block numbers.
img=$T/amp.img
truncate -s 4M "$img"
mkfs.ext2 -q -F -b 1024 -d "$T/tree" "$img" || die "mkfs"
debugfs -R "ffb 3 3000" "$img" 2>/dev/null | grep -q "found: 3000 3001 3002" || die "blocks 3000-3002 are not free"
data=$(debugfs -R "bmap /a 0" "$img" 2>/dev/null) || die "bmap"
perl -e 'open(my $f, "+<", $ARGV[0]) or die; binmode $f;
	for ([3000, 3001], [3001, 3002], [3002, $ARGV[1]]) {
		seek($f, $_->[0] * 1024, 0); print $f pack("V", $_->[1]) x 256;
	}
	close $f or die' "$img" "$data" || die "perl"
debugfs -w -R "sif /a block[TIND] 3000" "$img" 2>/dev/null && debugfs -w -R "sif /a size 0x40000000" "$img" 2>/dev/null ||
	die "debugfs sif"
start=$(date +%s)
timeout -s KILL 60 "$FERRY" backup --repo "$T/repo" --quiet --name amp --exclude /a "$img" >/dev/null 2>"$T/err" ||
	{ cat "$T/err"; die "backup --exclude failed or hung"; }
secs=$(($(date +%s) - start))
[ $secs -le 4 ] || die "backup --exclude /a took $secs s"
grep -q "exclude /a: the block map of inode [0-9]* is damaged" "$T/err" || { cat "$T/err"; die "no warning"; }
ok "backup --exclude of a file whose block map repeats itself 2^24 times: ${secs} s, warned"
id=$(ferry backup --repo "$T/repo" --quiet --no-exclude-free --name amp "$img") || die "backup"
mkdir -p "$T/to-amp"
timeout -s KILL 60 "$FERRY" files get --repo "$T/repo" "$id" /a --to "$T/to-amp" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 3 ] || { cat "$T/err"; die "files get exited $rc, expected 3 (damaged)"; }
grep -q "^ferry: warning: a: the block map names more blocks than the file system has (the partial file was removed)$" "$T/err" ||
	{ cat "$T/err"; die "files get: no cause, or not named once"; }
[ ! -e "$T/to-amp/a" ] || die "the partial file was kept"
ok "files get of that file: refused as damaged, nothing partial left"
