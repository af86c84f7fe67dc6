#!/bin/bash
# --immutable-days is refused, with a message saying why and nothing
# created, where the immutable attribute cannot be set: a file system
# without it (ramfs), a process without CAP_LINUX_IMMUTABLE, a remote
# URL, a bad day count.  A backup into a hardened repository by a process
# that cannot set the attribute fails and leaves no restore point (it
# never pretends to be protected).
. "$(dirname "$0")/functions.sh"
requires_root
requires setpriv chattr

mkdir "$T/ram"
mount -t ramfs -o size=4m ramfs "$T/ram" || skip "cannot mount ramfs here"
cleanup_fn "umount '$T/ram'"
expect_fail 2 ferry init --repo "$T/ram/repo" --immutable-days 3
one_error_line "does not support the immutable attribute"
[ ! -e "$T/ram/repo" ] || die "a refused init left $T/ram/repo behind"
[ -z "$(ls -A "$T/ram")" ] || die "the probe left files in $T/ram: $(ls -A "$T/ram")"
ok "ramfs: $(cut -c1-150 "$T/err")"
ferry init --repo "$T/ram/plain" >/dev/null || die "a plain repository on ramfs"
ok "the same file system takes a plain repository"

# tmpfs: the attribute works on this kernel (6.0 and later); say which.
if [ -d /dev/shm ] && d=$(mktemp -d /dev/shm/ferry-test.XXXXXX); then
	cleanup_fn "chattr -R -i '$d'; rm -rf '$d'"
	if ferry init --repo "$d/repo" --immutable-days 1 >/dev/null 2>"$T/shm.err"; then
		ok "tmpfs (/dev/shm) supports the attribute on this kernel: init accepted"
	else
		grep -q "does not support the immutable attribute" "$T/shm.err" || { cat "$T/shm.err"; die "tmpfs refusal unclear"; }
		ok "tmpfs (/dev/shm) lacks the attribute here: init refused clearly"
	fi
fi

nocap() { setpriv --inh-caps=-linux_immutable --bounding-set=-linux_immutable "$@"; }
expect_fail 2 nocap "$FERRY" init --repo "$T/nocap" --immutable-days 3
one_error_line "needs root or CAP_LINUX_IMMUTABLE"
[ ! -e "$T/nocap" ] || die "a refused init left $T/nocap behind"
ok "without CAP_LINUX_IMMUTABLE: $(cut -c1-140 "$T/err")"

expect_fail 2 ferry init --repo "$T/zero" --immutable-days 0
expect_fail 2 ferry init --repo "$T/big" --immutable-days 99999
expect_fail 2 ferry init --repo "$T/word" --immutable-days soon
[ ! -e "$T/zero" ] && [ ! -e "$T/big" ] && [ ! -e "$T/word" ] || die "a refused init left a directory"
ok "--immutable-days 0, 99999 and 'soon' are refused"
expect_fail 2 ferry init --repo ferry://127.0.0.1:1/repo --immutable-days 3
ok "a ferry:// URL is refused (create it on the mover's host)"

# A hardened repository written without the capability: the backup fails,
# no point appears, and the repository stays usable.
cleanup_fn "chattr -R -i '$T/repo'"
ferry init --repo "$T/repo" --block-size 64K --immutable-days 3 >/dev/null || die "init"
truncate -s 512K "$T/d.img"
rand_fill "$T/d.img" 0 0 x
dd if=/dev/urandom of="$T/d.img" bs=64K count=8 conv=notrunc status=none
expect_fail 1 nocap "$FERRY" backup --repo "$T/repo" "$T/d.img"
grep -q "immutable.*written as root" "$T/err" || { cat "$T/err"; die "the failure does not say why"; }
[ -z "$(point_ids "$T/repo")" ] || die "a backup that could not protect its point committed it"
ok "backup without the capability fails ($(tail -1 "$T/err" | cut -c1-110)...) and commits nothing"
id=$(ferry backup --repo "$T/repo" --quiet "$T/d.img") || die "backup as root afterwards"
restores_to "$T/repo" "$id" "$(md5 "$T/d.img")" "then a backup as root works and restores byte-identical"
