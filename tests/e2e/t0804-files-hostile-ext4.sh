#!/bin/bash
# A hostile ext4 image (made with mkfs + debugfs + byte patches): entries
# named "..", "../x" and "a/b", a symlink to a directory outside --to
# followed by a directory entry of the same name, and an absolute symlink.
# `ferry files get` writes nothing outside --to and says what it skipped.
. "$(dirname "$0")/functions.sh"
requires mkfs.ext4 debugfs

out=$T/victim      # outside --to: must stay empty
mkdir -p "$out" "$T/to" "$T/tree/a" "$T/tree/realdir" "$T/tree/esX" "$T/tree/uX"
echo pwn1 >"$T/tree/a/QQ"
echo pwn2 >"$T/tree/a/WWWW"
echo pwn3 >"$T/tree/a/ZZZ"
echo pwn4 >"$T/tree/realdir/pwn"
echo pwn5 >"$T/tree/esX/pwn5"   # the directory renamed "esc" below
echo pwn6 >"$T/tree/uX/pwn6"    # the directory renamed "up" below
ln -s "$out" "$T/tree/esc"
ln -s ../../../../../../.. "$T/tree/up"
fs=$T/fs.img
truncate -s 16M "$fs"
# No metadata_csum: the patched directory block must still be read.
mkfs.ext4 -q -F -O ^metadata_csum,^dir_index -d "$T/tree" "$fs" || die "mkfs"
# Rename entries in place: name_len, file_type, then the name bytes.
perl -e 'local $/; open(my $f, "+<", $ARGV[0]) or die; binmode $f; my $d = <$f>;
	for ([qq(\x02\x01QQ), qq(\x02\x01..)], [qq(\x04\x01WWWW), qq(\x04\x01../x)],
	     [qq(\x03\x01ZZZ), qq(\x03\x01a/b)], [qq(\x03\x02esX), qq(\x03\x02esc)],
	     [qq(\x02\x02uX), qq(\x02\x02up)]) {
		my $i = index($d, $_->[0]); die "no $_->[0]" if $i < 0;
		substr($d, $i, length $_->[1]) = $_->[1];
	}
	seek($f, 0, 0); print $f $d; close $f or die' "$fs" || die "patch"
debugfs -R "ls -l /a" "$fs" 2>/dev/null | grep -q '\.\./x' || die "the patched name is not in the image"
ok "hostile image: names '..', '../x', 'a/b', symlink+directory named 'esc' and 'up'"

ferry init --repo "$T/repo" >/dev/null || die "init"
id=$(ferry backup --repo "$T/repo" "$fs" 2>/dev/null) || die "backup"
ferry files ls --repo "$T/repo" "$id" /a >"$T/ls" || die "ls"
grep -q '\.\./x' "$T/ls" || { cat "$T/ls"; die "ls does not show the stored name"; }
ok "files ls shows the stored names as they are"

touch "$T/stamp"
ferry files get --repo "$T/repo" "$id" / --to "$T/to" >"$T/get.out" 2>"$T/get.err"
rc=$?
cat "$T/get.err"
[ $rc -eq 1 ] || die "files get exited $rc, expected 1 (items skipped)"
[ -z "$(ls -A "$out")" ] || { ls -la "$out"; die "something was written through the symlink"; }
ok "nothing written through the symlink to a directory outside --to"
[ ! -e "$T/x" ] && [ ! -e "$T/to/../x" ] && [ ! -e "$T/a/b" ] || die "a traversal name escaped"
find "$T" -newer "$T/stamp" ! -path "$T/to*" ! -path "$T/repo*" ! -name 'get.*' ! -path "$T" | grep . && die "files appeared outside --to"
ok "no file appeared outside --to"
grep -q "unsafe name ('../x')" "$T/get.err" && grep -q "unsafe name ('a/b')" "$T/get.err" || die "unsafe names not reported"
# Whichever of the pair comes first in the directory wins; the other is
# refused (a directory is never entered through a symlink).
grep -qE "esc: not (a directory here|created)" "$T/get.err" && grep -qE "up: not (a directory here|created)" "$T/get.err" ||
	die "the symlink/directory clash is not reported"
[ ! -e "$T/to/pwn5" ] && [ ! -e /pwn6 ] && [ ! -e "$out/pwn5" ] || die "a file went through a symlink"
ok "unsafe names and the symlink trick are reported and skipped"
[ "$(cat "$T/to/realdir/pwn")" = pwn4 ] || die "the safe entries were not restored"
[ -L "$T/to/esc" ] || [ "$(cat "$T/to/esc/pwn5")" = pwn5 ] || die "esc is neither the symlink nor the directory inside --to"
ok "the safe entries are restored (symlinks stored as they are, never followed)"
