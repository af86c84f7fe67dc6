#!/bin/bash
# Argon2id is the KDF of a new encrypted repository: the config records
# kdf = argon2id with its cost (passes, memory) and a 16-byte salt, info
# and init --json name it; a full and an incremental backup restore
# byte-identical and verify passes.  Without the test's small cost in the
# environment the default (3 passes, 64 MiB) is recorded; --kdf is checked.
. "$(dirname "$0")/functions.sh"

export FERRY_KDF_OPSLIMIT=2 FERRY_KDF_MEMLIMIT_KIB=2048 FERRY_PASSWORD='argon-pass'
repo=$T/repo
json=$(ferry init --repo "$repo" --encrypt --block-size 64K --json) || die "init --encrypt"
echo "$json" | grep -q '"kdf":"argon2id"' || die "init --json does not name the KDF: $json"
grep -q '^kdf = argon2id$' "$repo/config" || die "the config's kdf is not argon2id"
grep -q '^kdf_opslimit = 2$' "$repo/config" && grep -q '^kdf_memlimit = 2097152$' "$repo/config" ||
	die "the config does not record the Argon2id cost"
grep -q '^kdf_salt = [0-9a-f]\{32\}$' "$repo/config" || die "the config has no 16-byte salt"
grep -q '^kdf_log_n' "$repo/config" && die "scrypt cost lines in an argon2id config"
grep -q 'argon-pass' "$repo/config" && die "the passphrase is in the config"
ok "init --encrypt: kdf = argon2id, kdf_opslimit = 2, kdf_memlimit = 2097152, 16-byte salt"
ferry info --repo "$repo" | grep -q 'argon2id (2 passes, 2 MiB)' || die "info does not show the KDF"
ferry info --repo "$repo" --json | grep -q '"kdf":"argon2id"' || die "info --json does not name the KDF"
ok "info names the KDF and its cost"

make_disk "$T/disk.img" 8
cp "$T/disk.img" "$T/v1.img"
id1=$(ferry backup --repo "$repo" --quiet "$T/disk.img") || die "backup 1"
rand_fill "$T/disk.img" 1 1 change1
id2=$(ferry backup --repo "$repo" --quiet "$T/disk.img") || die "backup 2"
restores_to "$repo" "$id1" "$(md5 "$T/v1.img")" "argon2id repository: the full backup restores byte-identical"
restores_to "$repo" "$id2" "$(md5 "$T/disk.img")" "argon2id repository: the incremental backup restores byte-identical"
ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify"
ok "verify passes"

# Rollback with --changed-only compares the target's blocks by their keyed
# id (the prepared HMAC-SHA-256 pads): one changed 64 KiB block, one write.
cp "$T/disk.img" "$T/target.img"
head -c 65536 /dev/urandom | dd of="$T/target.img" bs=64K seek=3 conv=notrunc status=none
json=$(ferry restore --repo "$repo" "$id2" --to "$T/target.img" --changed-only --json 2>"$T/err") ||
	{ cat "$T/err"; die "restore --changed-only"; }
w=$(echo "$json" | grep -o '"bytes_written":[0-9]*' | cut -d: -f2)
[ "$w" = 65536 ] || die "--changed-only wrote $w bytes for one changed 64 KiB block: $json"
same "$T/disk.img" "$T/target.img" "restore --changed-only on the encrypted repository rewrites only the changed block (keyed ids match)"

# The default cost when nothing overrides it.
env -u FERRY_KDF_OPSLIMIT -u FERRY_KDF_MEMLIMIT_KIB "$FERRY" init --repo "$T/default" --encrypt >/dev/null ||
	die "init with the default cost"
grep -q '^kdf_opslimit = 3$' "$T/default/config" && grep -q '^kdf_memlimit = 67108864$' "$T/default/config" ||
	die "the default Argon2id cost is not 3 passes over 64 MiB"
env -u FERRY_KDF_OPSLIMIT -u FERRY_KDF_MEMLIMIT_KIB "$FERRY" points --repo "$T/default" >/dev/null 2>&1 ||
	die "the default-cost repository does not open"
ok "default cost: 3 passes over 64 MiB, and it opens"

expect_fail 2 ferry init --repo "$T/bad" --encrypt --kdf bcrypt
one_error_line "kdf bcrypt: use argon2id or scrypt"
expect_fail 2 ferry init --repo "$T/bad" --kdf scrypt
one_error_line "needs --encrypt"
FERRY_KDF_MEMLIMIT_KIB=4 expect_fail 2 ferry init --repo "$T/bad" --encrypt
one_error_line "FERRY_KDF_MEMLIMIT_KIB=4"
[ ! -e "$T/bad" ] || die "a refused init created the repository"
ok "--kdf bcrypt, --kdf without --encrypt and an out-of-range FERRY_KDF_MEMLIMIT_KIB: exit 2, nothing created"
