#!/bin/bash
# A guest disk whose ext superblock names a first data block other than
# the one mke2fs writes (found by fuzz/fuzz_ext.c): reading its bitmaps
# made Debian's libext2fs 1.47.0 write past a heap buffer inside
# `ferry backup` (ASan: heap-buffer-overflow; plain build: silent heap
# damage).  Now backup warns, reads every block (nothing lost, restores
# byte for byte), and `files ls` refuses with the cause.  Run it in the
# asan tier to see the overflow gone.
. "$(dirname "$0")/functions.sh"
requires mkfs.ext2 debugfs

mkdir -p "$T/tree"
printf 'hello\n' >"$T/tree/a"
img=$T/disk.img
truncate -s 1M "$img"
mkfs.ext2 -q -F -b 1024 -d "$T/tree" "$img" || die "mkfs"
debugfs -w -R "ssv first_data_block 63" "$img" 2>/dev/null || die "debugfs ssv"
ferry init --repo "$T/repo" >/dev/null || die "init"
id=$(ferry backup --repo "$T/repo" --quiet --name g "$img" 2>"$T/err") || { cat "$T/err"; die "backup failed"; }
grep -q "superblock is damaged (first data block 63, not 1); reading all of its blocks" "$T/err" ||
	{ cat "$T/err"; die "backup does not name the damage"; }
grep -q "AddressSanitizer" "$T/err" && die "ASan report"
ferry restore --repo "$T/repo" "$id" --to "$T/out.img" >/dev/null || die "restore"
same "$img" "$T/out.img" "backup warns, reads every block, restores byte for byte"
expect_fail 3 ferry files ls --repo "$T/repo" "$id" /
grep -q "first data block 63, not 1" "$T/err" || { cat "$T/err"; die "files ls does not name the damage"; }
ok "files ls refuses: $(cat "$T/err")"
