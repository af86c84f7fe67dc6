#!/bin/bash
# Credentials files (SMB mount.cifs style, S3 shared credentials): a value
# longer than ferry holds was cut short silently (a login then refused for
# no visible reason), and a line longer than the reader's buffer was read as
# two, its tail as a line of its own ("...username=evil" became the user).
# Both are refused with file:line and the key, before any connection (the
# ports given are closed).  Found with fuzz/fuzz_conf_files.c.
. "$(dirname "$0")/functions.sh"
smb_binary # (an smb:// URL: libsmbclient may be loaded)

long() { head -c "$1" /dev/zero | tr '\0' "$2"; }
smb=smb://127.0.0.1:1/share/path

{ printf 'username=u\npassword='; long 300 p; printf '\n'; } >"$T/smb1"
expect_fail 1 ferry info --repo $smb --smb-credentials "$T/smb1"
grep -q "SMB credentials file $T/smb1:2: password longer than 255 bytes" "$T/err" || { cat "$T/err"; die "smb: long password"; }
ok "smb: a 300-byte password is refused, naming file:line"

{ printf 'password='; long 1100 p; printf 'username=evil\n'; } >"$T/smb2"
expect_fail 1 ferry info --repo $smb --smb-credentials "$T/smb2"
grep -q "SMB credentials file $T/smb2:1: line longer than 1022 bytes" "$T/err" || { cat "$T/err"; die "smb: long line"; }
ok "smb: a line longer than 1022 bytes is refused, its tail not read as a line"

{ printf 'username=u\npassword=p\n'; } >"$T/smb3"
"$FERRY" info --repo $smb --smb-credentials "$T/smb3" >/dev/null 2>"$T/err"
grep -q "credentials file" "$T/err" && die "smb: a good file refused"
ok "smb: a good file passes (then the closed port fails: $(head -c 80 "$T/err"))"

s3() { AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= AWS_SHARED_CREDENTIALS_FILE=$1 AWS_PROFILE=t \
	"$FERRY" info --repo s3://ferry-t0539/x --s3-endpoint http://127.0.0.1:1 >"$T/out" 2>"$T/err"; }
{ printf '[t]\naws_access_key_id = a\naws_secret_access_key = '; long 200 s; printf '\n'; } >"$T/s3a"
s3 "$T/s3a" && die "s3: long secret accepted"
grep -q "credentials file $T/s3a:3: aws_secret_access_key longer than 127 bytes" "$T/err" || { cat "$T/err"; die "s3: long secret"; }
ok "s3: a 200-byte secret key is refused, naming file:line"
{ printf '[t]\naws_access_key_id = a\naws_secret_access_key = '; long 2400 s; printf '\n'; } >"$T/s3b"
s3 "$T/s3b" && die "s3: long line accepted"
grep -q "credentials file $T/s3b:3: line longer than 2302 bytes" "$T/err" || { cat "$T/err"; die "s3: long line"; }
ok "s3: a line longer than 2302 bytes is refused"

# --config (the source side's settings file): the same rule.
{ printf 'cert = '; long 5000 c; printf '\n'; } >"$T/cfg"
"$FERRY" points --config "$T/cfg" --repo ferry://127.0.0.1:1/x >/dev/null 2>"$T/err" && die "config: long line accepted"
grep -q "$T/cfg:1: line longer than 4094 bytes" "$T/err" || { cat "$T/err"; die "config: long line"; }
ok "--config: a line longer than 4094 bytes is refused, naming file:line"
