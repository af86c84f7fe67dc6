#!/bin/bash
# --smb-credentials FILE (a real smbd): with no FERRY_SMB_CREDENTIALS in
# the environment, init, backup, restore byte-identical, verify, points,
# info and a re-encoding copy (plain local -> encrypted share) work with
# the file; the option wins over the environment; a missing file, a
# directory and a file with a wrong password are each refused with a clear
# error naming the file or the cause, and nothing is written.
. "$(dirname "$0")/functions.sh"
export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024 # small key-derivation cost
json_num() { echo "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
. "$(dirname "$0")/copy.sh"
. "$(dirname "$0")/smb.sh"

export FERRY_KDF_LOG_N=12
start_smbd
creds=$T/smb/creds
unset FERRY_SMB_CREDENTIALS FERRY_SMB_USER FERRY_SMB_PASSWORD FERRY_PASSWORD FERRY_FROM_PASSWORD
url=$(smb_url plain)

expect_fail 1 ferry init --repo "$url"
grep -q "no SMB user" "$T/err" && grep -q -- "--smb-credentials" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "without credentials: $(cat "$T/err")"

ferry init --repo "$url" --smb-credentials "$creds" >/dev/null || die "init with --smb-credentials"
make_disk "$T/d.img" 8
id=$(ferry backup --repo "$url" --smb-credentials "$creds" -q "$T/d.img") || die "backup"
ferry restore --repo "$url" --smb-credentials "$creds" "$id" --to "$T/r.img" 2>/dev/null || die "restore"
same "$T/d.img" "$T/r.img" "init, backup and restore with --smb-credentials: byte-identical"
ferry verify --repo "$url" --smb-credentials "$creds" >/dev/null 2>&1 || die "verify"
ferry points --repo "$url" --smb-credentials "$creds" | grep -q "$id" || die "points"
ferry info --repo "$url" --smb-credentials "$creds" >/dev/null || die "info"
ok "verify, points and info with --smb-credentials"

printf 'username=%s\npassword=wrong\n' "$SMB_USER" >"$T/bad.creds"
FERRY_SMB_CREDENTIALS=$T/bad.creds ferry points --repo "$url" --smb-credentials "$creds" >/dev/null 2>&1 ||
	die "--smb-credentials does not win over FERRY_SMB_CREDENTIALS"
ok "--smb-credentials wins over FERRY_SMB_CREDENTIALS"

before=$(find "$T/smb/share" -type f | wc -l)
expect_fail 2 ferry backup --repo "$url" --smb-credentials "$T/nonexistent" -q "$T/d.img"
one_error_line "smb-credentials $T/nonexistent: No such file"
expect_fail 2 ferry points --repo "$url" --smb-credentials "$T"
one_error_line "not a regular file"
expect_fail 1 ferry backup --repo "$url" --smb-credentials "$T/bad.creds" -q "$T/d.img"
grep -qi "refused\|denied" "$T/err" && grep -qi "password" "$T/err" || die "unclear error: $(cat "$T/err")"
[ "$(find "$T/smb/share" -type f | wc -l)" -eq "$before" ] || die "a refused command wrote to the share"
ok "missing file, a directory, a wrong password: refused clearly, nothing written ($(cut -c1-80 "$T/err"))"

# A re-encoding copy onto the share: plain local -> encrypted smb://.
echo share-pass >"$T/pw"
enc=$(smb_url enc)
ferry init --repo "$enc" --smb-credentials "$creds" --encrypt --password-file "$T/pw" >/dev/null || die "init enc"
copy_source "$T/a"
copy_check "$T/a" "$enc" --smb-credentials "$creds" --password-file "$T/pw"
ferry verify --repo "$enc" --smb-credentials "$creds" --password-file "$T/pw" >/dev/null 2>&1 || die "verify enc copy"
ok "the encrypted copy on the share verifies"

# Two shares' credentials in one copy: --from-smb-credentials for the
# source, --smb-credentials for the target; each is used for its side.
url2=$(smb_url plain2)
ferry init --repo "$url2" --smb-credentials "$creds" >/dev/null || die "init plain2"
expect_fail 1 ferry copy --from "$url" --from-smb-credentials "$creds" --to "$url2" --smb-credentials "$T/bad.creds"
grep -q "target repository" "$T/err" && grep -qi "refused\|denied" "$T/err" || die "unclear error: $(cat "$T/err")"
expect_fail 1 ferry copy --from "$url" --from-smb-credentials "$T/bad.creds" --to "$url2" --smb-credentials "$creds"
grep -q "source repository" "$T/err" && grep -qi "refused\|denied" "$T/err" || die "unclear error: $(cat "$T/err")"
expect_fail 2 ferry copy --from "$url" --from-smb-credentials "$T/nonexistent" --to "$url2" --smb-credentials "$creds"
one_error_line "from-smb-credentials $T/nonexistent: No such file"
json=$(ferry copy --from "$url" --from-smb-credentials "$creds" --to "$url2" --smb-credentials "$creds" --json) || die "copy smb -> smb"
echo "$json" | grep -q '"points_copied":1' || die "copy smb -> smb: $json"
ferry restore --repo "$url2" --smb-credentials "$creds" "$id" --to "$T/r2.img" 2>/dev/null || die "restore plain2"
same "$T/d.img" "$T/r2.img" "--from-smb-credentials and --smb-credentials each apply to their side; the copy restores"
