#!/bin/bash
# SMB credentials and URLs: a wrong password, an unknown user, no
# credentials at all, a password in the URL, a missing share and a
# stopped server are each refused with a clear error naming the cause;
# FERRY_SMB_USER / FERRY_SMB_PASSWORD work without a file.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/smb.sh"

start_smbd
url=$(smb_url repo)
ferry init --repo "$url" >/dev/null || die "init"

printf 'username=%s\npassword=wrong\n' "$SMB_USER" >"$T/bad.creds"
FERRY_SMB_CREDENTIALS=$T/bad.creds expect_fail 1 ferry points --repo "$url"
grep -qi "refused\|denied" "$T/err" && grep -qi "password" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "wrong password: $(cat "$T/err")"
printf 'username=nosuchuser\npassword=x\n' >"$T/bad2.creds"
FERRY_SMB_CREDENTIALS=$T/bad2.creds expect_fail 1 ferry backup --repo "$url" "$T/bad.creds"
grep -qi "refused\|denied" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "unknown user refused"
FERRY_SMB_CREDENTIALS=$T/none expect_fail 1 ferry points --repo "$url"
grep -q "$T/none" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "missing credentials file named"
env -u FERRY_SMB_CREDENTIALS "$FERRY" points --repo "$url" >"$T/out" 2>"$T/err" && die "no credentials accepted"
grep -q "no SMB user" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "no credentials: $(cat "$T/err")"
expect_fail 2 ferry points --repo "smb://$SMB_USER:secret@127.0.0.1:$smb_port/backup/repo" ||
	expect_fail 1 ferry points --repo "smb://$SMB_USER:secret@127.0.0.1:$smb_port/backup/repo"
grep -q "password in the URL is refused" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "a password in the URL is refused"
env -u FERRY_SMB_CREDENTIALS FERRY_SMB_USER="$SMB_USER" FERRY_SMB_PASSWORD="$SMB_PASS" \
	"$FERRY" points --repo "$url" >/dev/null 2>"$T/err" || die "env credentials: $(cat "$T/err")"
ok "FERRY_SMB_USER and FERRY_SMB_PASSWORD work"
expect_fail 4 ferry points --repo "smb://127.0.0.1:$smb_port/backup/nothere"
grep -q "not a ferry repository" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "a folder without a repository: $(cat "$T/err")"
expect_fail 1 ferry init --repo "smb://127.0.0.1:$smb_port/noshare/x"
grep -q "no share 'noshare'" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "a missing share: $(cat "$T/err")"
stop_smbd
expect_fail 1 ferry points --repo "$url"
grep -qi "unreachable\|refused" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "a stopped server: $(cat "$T/err")"
