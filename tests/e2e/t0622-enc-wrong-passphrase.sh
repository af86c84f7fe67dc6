#!/bin/bash
# Wrong or missing passphrase on an encrypted repository: every command
# that reads or writes data fails with exit 5 and one clear line, and the
# repository is unchanged (every file's name and content); with no
# terminal and no FERRY_PASSWORD or --password-file, it says how to give
# one.  An unencrypted repository ignores FERRY_PASSWORD.
. "$(dirname "$0")/functions.sh"

export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024
repo=$T/repo
FERRY_PASSWORD=right ferry init --repo "$repo" --encrypt --block-size 64K >/dev/null || die "init"
make_disk "$T/d.img" 4
id=$(FERRY_PASSWORD=right ferry backup --repo "$repo" --quiet "$T/d.img") || die "backup"
before=$(repo_fingerprint "$repo")
ls -laR "$repo" >"$T/ls-before"

export FERRY_PASSWORD=wrong
printf 'also wrong\n' >"$T/badpw"
for cmd in "backup --quiet $T/d.img" "restore $id --to $T/x.img" "verify" "points" "info" \
	"gc" "forget --keep-last 1" "files ls $id /" "key passwd --new-password-file $T/badpw"; do
	expect_fail 5 ferry $cmd --repo "$repo"
	one_error_line "wrong passphrase"
done
expect_fail 5 ferry verify --repo "$repo" --password-file "$T/badpw"
one_error_line "wrong passphrase"
[ ! -e "$T/x.img" ] || die "restore created its target with a wrong passphrase"
ok "backup, restore, verify, points, info, gc, forget, files, key passwd: exit 5, 'wrong passphrase'"

unset FERRY_PASSWORD
expect_fail 5 setsid -w "$FERRY" points --repo "$repo" </dev/null
one_error_line "FERRY_PASSWORD"
ok "no passphrase and no terminal: exit 5, the error says how to give one"
expect_fail 2 ferry points --repo "$repo" --password-file "$T/nonexistent"
ok "an unreadable --password-file is a usage error"

[ "$(repo_fingerprint "$repo")" = "$before" ] || die "the repository changed"
ls -laR "$repo" >"$T/ls-after"
diff "$T/ls-before" "$T/ls-after" >/dev/null || die "the repository listing changed"
ok "the repository is unchanged (every file's name and content, and the listing)"

FERRY_PASSWORD=right ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify with the right passphrase"
ok "the right passphrase still works"

ferry init --repo "$T/plain" >/dev/null || die "init plain"
FERRY_PASSWORD=whatever ferry backup --repo "$T/plain" --quiet "$T/d.img" >/dev/null || die "plain backup"
ok "an unencrypted repository ignores FERRY_PASSWORD"
