#!/bin/bash
# Refusals name their cause in one line and are not retried: a wrong
# secret key (SignatureDoesNotMatch), an unknown access key
# (InvalidAccessKeyId), no credentials at all, a bucket that does not
# exist, a prefix that holds no repository, a bad URL or endpoint.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

s3_start
repo=s3://ferry-t0503/r
ferry init --repo "$repo" >/dev/null || die "init"
make_disk "$T/disk.img" 4
ferry backup --repo "$repo" "$T/disk.img" >/dev/null 2>&1 || die "backup"

start=$(date +%s)
AWS_SECRET_ACCESS_KEY=not-the-secret expect_fail 1 ferry backup --repo "$repo" "$T/disk.img"
one_error_line "wrong secret key for access key $AWS_ACCESS_KEY_ID.*SignatureDoesNotMatch"
ok "wrong secret: $(cat "$T/err")"
AWS_ACCESS_KEY_ID=NOSUCHKEY000 expect_fail 1 ferry points --repo "$repo"
one_error_line "unknown access key NOSUCHKEY000.*InvalidAccessKeyId"
ok "unknown key: $(cat "$T/err")"
AWS_SECRET_ACCESS_KEY=wrong expect_fail 1 ferry init --repo s3://ferry-t0503-other/x
one_error_line "wrong secret key"
ok "init with a wrong secret is refused the same way"
[ $(($(date +%s) - start)) -lt 10 ] || die "refusals took $(($(date +%s) - start)) s: were they retried?"
ok "refusals are not retried"

(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; export AWS_SHARED_CREDENTIALS_FILE=$T/none
	expect_fail 1 ferry points --repo "$repo") || exit 1
one_error_line "cannot read the credentials file $T/none"
ok "missing credentials file: $(cat "$T/err")"
printf '[other]\naws_access_key_id = a\naws_secret_access_key = b\n' >"$T/creds"
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; export AWS_SHARED_CREDENTIALS_FILE=$T/creds
	expect_fail 1 ferry points --repo "$repo") || exit 1
one_error_line "no credentials.*\[default\]"
ok "no profile in the file: $(cat "$T/err")"

expect_fail 4 ferry points --repo s3://ferry-t0503-none/r
one_error_line "no such bucket"
ok "missing bucket: $(cat "$T/err")"
expect_fail 4 ferry points --repo s3://ferry-t0503/elsewhere
one_error_line "not a ferry repository"
ok "empty prefix: $(cat "$T/err")"
expect_fail 2 ferry points --repo s3://AB/r
one_error_line "bucket name"
ok "bad bucket name: $(cat "$T/err")"
expect_fail 2 ferry points --repo "$repo" --s3-endpoint ftp://127.0.0.1:1
one_error_line "s3-endpoint"
ok "bad endpoint: $(cat "$T/err")"
