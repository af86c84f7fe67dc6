#!/bin/bash
# File-level restore: `ferry files ls/get` read the ext4 file system of a
# GPT disk inside a restore point (no mount, no loop device).  Restored
# files equal the source tree byte for byte with modes, owners, mtimes,
# symlinks and holes; a damaged block fails only the file that uses it.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/vm-functions.sh"
requires sfdisk mkfs.ext4 debugfs

disk=$T/disk.img
truncate -s 80M "$disk"
fill_random "$disk" 80
sfdisk -q "$disk" <<'P' || die "sfdisk"
label: gpt
start=2048, size=8192, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name=swap
start=10240, size=131072, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
P
tree=$T/tree
make_guest_tree "$tree"
truncate -s 5M "$tree/home/user/sparse"
echo tail | dd of="$tree/home/user/sparse" bs=1 seek=3000000 conv=notrunc status=none
mkdir -p "$tree/srv/deep/er"; echo x >"$tree/srv/deep/er/f"
chown -R 1234:5678 "$tree/home/user"
chmod 0640 "$tree/etc/hostname"; chmod 4755 "$tree/etc/numbers.txt"
touch -h -d '2020-01-02 03:04:05' "$tree/etc/link" "$tree/etc/numbers.txt"
ln -s ../../etc/hostname "$tree/srv/rel"
mkext4_at "$disk" $((5 << 20)) 64 "$tree"
ferry init --repo "$T/repo" >/dev/null || die "init"
id=$(ferry backup --repo "$T/repo" "$disk" 2>/dev/null) || die "backup"

ferry files ls --repo "$T/repo" "$id" /etc >"$T/ls" || die "files ls"
grep -q ' link -> /etc/hostname$' "$T/ls" && grep -q '^-rw-r----- .* hostname$' "$T/ls" || { cat "$T/ls"; die "ls output"; }
ok "files ls lists /etc of the first ext partition (partition 2, after swap)"
ferry files ls --repo "$T/repo" "$id" 2:/home/user --json >"$T/lsj" || die "files ls 2:"
grep -q '"name":"data.bin","mode":33188,"uid":1234,"gid":5678,"size":3000000' "$T/lsj" || { cat "$T/lsj"; die "ls --json"; }
ok "files ls PART:PATH --json gives modes, owners and sizes"
expect_fail 4 ferry files ls --repo "$T/repo" "$id" 1:/etc
ok "a partition without ext is refused ($(cat "$T/err"))"
expect_fail 4 ferry files ls --repo "$T/repo" "$id" /nonexistent
ok "a missing path is refused"

# meta DIR: one line per entry: path, type, mode, owner, size, mtime, link
# (whole seconds: mke2fs -d does not copy nanoseconds).
meta() {
	(cd "$1" && find . -mindepth 1 ! -path './lost+found*' -printf '%p %y %m %U:%G %s %T@ %l\n' |
		sed -E 's/ ([0-9]+)\.[0-9]+ / \1 /' | sort)
}
mkdir "$T/got"
ferry files get --repo "$T/repo" "$id" / --to "$T/got" 2>"$T/get.err" || { cat "$T/get.err"; die "files get /"; }
cat "$T/get.err"
diff <(meta "$tree") <(meta "$T/got") || die "metadata differs"
ok "modes, owners, sizes, mtimes and symlinks equal the source tree"
diff -r --no-dereference "$tree" "$T/got" -x lost+found || die "contents differ"
ok "every file equals the source byte for byte"
alloc=$(du -k "$T/got/home/user/sparse" | cut -f1)
[ "$alloc" -lt 64 ] || die "the sparse file takes $alloc KiB"
ok "holes stay holes ($alloc KiB allocated of 5 MiB)"

mkdir "$T/got2"
ferry files get --repo "$T/repo" "$id" /etc/hostname /srv --to "$T/got2" 2>/dev/null || die "files get several"
cmp -s "$T/got2/hostname" "$tree/etc/hostname" && cmp -s "$T/got2/srv/deep/er/f" "$tree/srv/deep/er/f" ||
	die "files get of a file and a directory"
[ "$(readlink "$T/got2/srv/rel")" = ../../etc/hostname ] || die "relative symlink changed"
ok "files get copies single files and whole directories under their base names"
expect_fail 1 ferry files get --repo "$T/repo" "$id" /etc/hostname --to "$T/got2"
grep -q "hostname: not created: File exists" "$T/err" || { cat "$T/err"; die "existing file"; }
ok "an existing file in --to is never replaced"
