# vm-functions.sh - helpers for the VM-source tests (t04NN): guest disks
# with real partition tables (sfdisk), ext4 (mke2fs -d) and swap (mkswap),
# read back with debugfs, never mounted.

# json_num JSON KEY: the integer value of KEY.
json_num() { echo "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
json_id() { echo "$1" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4; }

# make_guest_tree DIR: files a guest might hold (random, text, nested),
# including /cache and /tmp/big.bin for the exclusion tests.
make_guest_tree() {
	local d=$1
	mkdir -p "$d/etc" "$d/cache/sub" "$d/tmp" "$d/home/user"
	openssl enc -aes-128-ctr -pass pass:a -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 3000000 >"$d/home/user/data.bin"
	openssl enc -aes-128-ctr -pass pass:b -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 2097152 >"$d/cache/blob"
	openssl enc -aes-128-ctr -pass pass:c -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 300001 >"$d/cache/sub/pkg.deb"
	openssl enc -aes-128-ctr -pass pass:d -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 1500000 >"$d/tmp/big.bin"
	seq 1 20000 >"$d/etc/numbers.txt"
	echo "hello" >"$d/etc/hostname"
	ln -s /etc/hostname "$d/etc/link"
}

# fill_random FILE MIB: random bytes over the whole file (so that free
# blocks and swap hold garbage, as on a used disk).
fill_random() {
	openssl enc -aes-128-ctr -pass pass:"fill$1" -nosalt -pbkdf2 </dev/zero 2>/dev/null |
		head -c $(($2 * 1024 * 1024)) | dd of="$1" conv=notrunc status=none
}

# mkext4_at DISK OFFSET_BYTES SIZE_MIB TREE: ext4 (4 KiB blocks) written
# into DISK at OFFSET, populated from TREE, free blocks left as they were.
mkext4_at() {
	mkfs.ext4 -q -F -b 4096 -E nodiscard,offset="$2" -d "$4" "$1" "$3"M ||
		die "mkfs.ext4 failed"
}

# mkswap_at DISK OFFSET_BYTES SIZE_MIB: a swap signature at OFFSET; only
# the header page is written, the rest keeps its garbage.
mkswap_at() {
	local f=$T/swap.$$.img
	truncate -s "$3"M "$f"
	mkswap -q "$f" >/dev/null || die "mkswap failed"
	dd if="$f" of="$1" bs=4096 count=1 seek=$(($2 / 4096)) conv=notrunc status=none
	rm -f "$f"
}

# part_extract IMG START_MIB SIZE_MIB OUT
part_extract() { dd if="$1" of="$4" bs=1M skip="$2" count="$3" status=none; }

# check_tree FSIMG TREE [EXCLUDED...]: every file of TREE reads back equal
# from the ext file system image (debugfs, no mount); files under an
# EXCLUDED path read as zeros of the same size.
check_tree() {
	local img=$1 tree=$2 f rel ex z
	shift 2
	while IFS= read -r f; do
		rel=${f#"$tree"}
		debugfs -R "dump $rel $T/dumped" "$img" >/dev/null 2>&1 || die "debugfs cannot dump $rel"
		z=0
		for ex in "$@"; do case "$rel" in "$ex"|"$ex"/*) z=1 ;; esac; done
		if [ $z = 1 ]; then
			[ "$(stat -c %s "$T/dumped")" = "$(stat -c %s "$f")" ] || die "$rel: size changed"
			cmp -s "$T/dumped" <(head -c "$(stat -c %s "$f")" /dev/zero) || die "excluded $rel does not read as zeros"
		else
			cmp -s "$T/dumped" "$f" || die "$rel differs after restore"
		fi
	done < <(find "$tree" -type f)
}

# dirty_block_bytes IMG BITMAP [BS]: bytes of the blocks (BS, 1 MiB) that
# overlap a dirty extent of BITMAP, as qemu-nbd exports it.
dirty_block_bytes() {
	nbdinfo --map="qemu:dirty-bitmap:$2" -- [ qemu-nbd -r -f qcow2 -B "$2" "$1" ] |
		awk -v bs="${3:-1048576}" '$3 == 1 { s = int($1 / bs); e = int(($1 + $2 - 1) / bs);
			for (i = s; i <= e; i++) b[i] = 1 }
			END { n = 0; for (i in b) n++; print n * bs }'
}

# no_qemu_nbd_for IMG: no qemu-nbd process serves IMG any more.
no_qemu_nbd_for() {
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		pgrep -f "qemu-nbd.*$1" >/dev/null || return 0
		sleep 0.1
	done
	die "a qemu-nbd for $1 is still running"
}
