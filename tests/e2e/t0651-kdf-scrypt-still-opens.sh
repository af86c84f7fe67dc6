#!/bin/bash
# scrypt repositories keep working: --kdf scrypt writes exactly the key
# lines of the scrypt-only releases (no Argon2id line), the repository
# backs up, restores and verifies, info names scrypt, and a key passwd
# without --kdf keeps scrypt and its cost.  (The independent golden config
# tests/golden/key-lines.conf is opened by the unit test test_seal.)
. "$(dirname "$0")/functions.sh"

export FERRY_KDF_LOG_N=11 FERRY_PASSWORD=scrypt-pass
repo=$T/repo
ferry init --repo "$repo" --encrypt --kdf scrypt --block-size 64K >/dev/null || die "init --kdf scrypt"
grep -E '^(encryption|kdf[a-z_]*|key) =' "$repo/config" | cut -d' ' -f1 | tr '\n' ' ' >"$T/keys"
[ "$(cat "$T/keys")" = "encryption kdf kdf_log_n kdf_r kdf_p kdf_salt key " ] ||
	die "scrypt key lines are not the scrypt-only set: $(cat "$T/keys")"
grep -q '^kdf = scrypt$' "$repo/config" && grep -q '^kdf_log_n = 11$' "$repo/config" &&
	grep -q '^kdf_salt = [0-9a-f]\{64\}$' "$repo/config" || die "scrypt lines malformed"
ok "--kdf scrypt: the key lines are the scrypt-only set (log_n 11, 32-byte salt)"

make_disk "$T/d.img" 4
id=$(ferry backup --repo "$repo" --quiet "$T/d.img") || die "backup"
restores_to "$repo" "$id" "$(md5 "$T/d.img")" "scrypt repository restores byte-identical"
ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify"
ferry info --repo "$repo" | grep -q 'scrypt (N=2^11, r=8, p=1)' || die "info does not name scrypt"
ok "verify passes; info names scrypt (N=2^11, r=8, p=1)"

printf 'scrypt-pass-2\n' >"$T/new"
FERRY_KDF_LOG_N=13 ferry key passwd --repo "$repo" --new-password-file "$T/new" --json >"$T/out" ||
	die "key passwd"
grep -q '"kdf":"scrypt"' "$T/out" || die "key passwd --json: $(cat "$T/out")"
grep -q '^kdf = scrypt$' "$repo/config" && grep -q '^kdf_log_n = 11$' "$repo/config" ||
	die "key passwd without --kdf changed the KDF or its cost"
grep -q '^kdf_opslimit' "$repo/config" && die "Argon2id lines after a scrypt passwd"
FERRY_PASSWORD=scrypt-pass-2 restores_to "$repo" "$id" "$(md5 "$T/d.img")" \
	"key passwd without --kdf keeps scrypt and its cost; the new passphrase restores"
