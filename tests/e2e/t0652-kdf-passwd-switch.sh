#!/bin/bash
# ferry key passwd --kdf switches the key derivation: argon2id -> scrypt
# -> argon2id, each time only the config changes (chunks and manifests
# untouched), the old passphrase stops working and the new one restores;
# without --kdf the repository keeps its KDF and the cost it had.
. "$(dirname "$0")/functions.sh"

export FERRY_KDF_LOG_N=11 FERRY_KDF_OPSLIMIT=2 FERRY_KDF_MEMLIMIT_KIB=1024
repo=$T/repo
FERRY_PASSWORD=p1 ferry init --repo "$repo" --encrypt --block-size 64K >/dev/null || die "init"
grep -q '^kdf = argon2id$' "$repo/config" || die "not argon2id"
make_disk "$T/d.img" 4
id=$(FERRY_PASSWORD=p1 ferry backup --repo "$repo" --quiet "$T/d.img") || die "backup"
sum=$(md5 "$T/d.img")
data_fp() { (cd "$repo" && find chunks points -type f -print0 | sort -z | xargs -0 md5sum) | md5sum; }
before=$(data_fp)

# step OLD NEW KDF-ARG WANT: change the passphrase, check the config's KDF.
step() {
	local old=$1 new=$2 kdfarg=$3 want=$4
	printf '%s\n' "$new" >"$T/new"
	FERRY_PASSWORD=$old ferry key passwd --repo "$repo" --new-password-file "$T/new" $kdfarg --json >"$T/out" ||
		die "key passwd $kdfarg"
	grep -q "\"kdf\":\"$want\"" "$T/out" || die "key passwd $kdfarg --json: $(cat "$T/out")"
	grep -q "^kdf = $want\$" "$repo/config" || die "after key passwd $kdfarg the kdf is not $want"
	[ "$(data_fp)" = "$before" ] || die "key passwd $kdfarg touched chunks or manifests"
	FERRY_PASSWORD=$old expect_fail 5 ferry points --repo "$repo"
	one_error_line "wrong passphrase"
	FERRY_PASSWORD=$new restores_to "$repo" "$id" "$sum" "key passwd $kdfarg: kdf = $want, old passphrase refused, new one restores"
}
step p1 p2 "--kdf scrypt" scrypt
grep -q '^kdf_log_n = 11$' "$repo/config" && ! grep -q '^kdf_opslimit' "$repo/config" ||
	die "scrypt lines after the switch are wrong"
step p2 p3 "" scrypt
step p3 p4 "--kdf argon2id" argon2id
grep -q '^kdf_opslimit = 2$' "$repo/config" && grep -q '^kdf_memlimit = 1048576$' "$repo/config" &&
	! grep -q '^kdf_log_n' "$repo/config" || die "argon2id lines after the switch are wrong"
# Without --kdf the cost stays, whatever the environment says now.
FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=512 step p4 p5 "" argon2id
grep -q '^kdf_opslimit = 2$' "$repo/config" && grep -q '^kdf_memlimit = 1048576$' "$repo/config" ||
	die "key passwd without --kdf changed the Argon2id cost"
ok "without --kdf the Argon2id cost stays (2 passes, 1 MiB)"
FERRY_PASSWORD=p5 expect_fail 2 ferry key passwd --repo "$repo" --new-password-file "$T/new" --kdf pbkdf2
one_error_line "kdf pbkdf2: use argon2id or scrypt"
FERRY_PASSWORD=p5 ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify after the switches"
ok "an unknown --kdf is a usage error; verify passes after three switches"
