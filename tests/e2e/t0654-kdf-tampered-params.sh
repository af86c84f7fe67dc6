#!/bin/bash
# Tampered key-derivation lines in the config: an absurd Argon2id memory
# or pass count (or scrypt N), a malformed number, a missing line or an
# unknown KDF is refused with one clear line naming the field, at once
# and without allocating it (the command runs under a 512 MiB address-space
# limit where a 1 TiB or 4 GiB derivation could not), and nothing is
# written; a change within range does not open the key (the cost is
# bound to the wrapped key) and is reported as a wrong passphrase.  The
# untouched config still opens afterwards.
. "$(dirname "$0")/functions.sh"

export FERRY_KDF_LOG_N=11 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024 FERRY_PASSWORD=pw
repo=$T/repo
ferry init --repo "$repo" --encrypt --block-size 64K >/dev/null || die "init"
make_disk "$T/d.img" 2
id=$(ferry backup --repo "$repo" --quiet "$T/d.img") || die "backup"
cp "$repo/config" "$T/config.good"
before=$(repo_fingerprint "$repo")

# The address-space limit proves nothing is allocated from the bad value
# (ASan reserves terabytes of shadow: no limit there).
limited() { if asan_tier; then "$@"; else (ulimit -v 524288 && "$@"); fi; }

# tamper SED EXIT REGEX [all]: edit the config, expect EXIT and REGEX
# from points (with "all": from restore and backup too), put it back.
tamper() {
	local sedexp=$1 want=$2 re=$3 t0 t1 cmds=("points")
	[ "${4:-}" = all ] && cmds+=("restore $id --to $T/x.img" "backup --quiet $T/d.img")
	sed -e "$sedexp" "$T/config.good" >"$repo/config"
	cmp -s "$repo/config" "$T/config.good" && die "the edit '$sedexp' changed nothing"
	t0=$(date +%s)
	for cmd in "${cmds[@]}"; do
		limited expect_fail "$want" ferry $cmd --repo "$repo"
		one_error_line "$re"
	done
	t1=$(date +%s)
	[ $((t1 - t0)) -le 20 ] || die "'$sedexp' took $((t1 - t0)) s to refuse"
	[ ! -e "$T/x.img" ] || die "'$sedexp': restore created its target"
	cp "$T/config.good" "$repo/config"
	[ "$(repo_fingerprint "$repo")" = "$before" ] || die "'$sedexp': the repository changed"
}
tamper 's/^kdf_memlimit = .*/kdf_memlimit = 1099511627776/' 3 "kdf_memlimit = 1099511627776 is out of range" all
tamper 's/^kdf_memlimit = .*/kdf_memlimit = 4294967296/' 3 "kdf_memlimit = 4294967296 is out of range"
tamper 's/^kdf_memlimit = .*/kdf_memlimit = 18446744073709551617/' 3 "kdf_memlimit .* is not a number"
tamper 's/^kdf_memlimit = .*/kdf_memlimit = 1048577/' 3 "kdf_memlimit = 1048577 is not whole KiB"
tamper 's/^kdf_memlimit = .*/kdf_memlimit = -1/' 3 "kdf_memlimit = -1 is not a number"
tamper 's/^kdf_opslimit = .*/kdf_opslimit = 4294967297/' 3 "kdf_opslimit = 4294967297 is out of range" all
tamper 's/^kdf_opslimit = .*/kdf_opslimit = 0/' 3 "kdf_opslimit = 0 is out of range"
tamper 's/^kdf_opslimit = .*/kdf_opslimit = 0x10/' 3 "kdf_opslimit = 0x10 is not a number"
tamper '/^kdf_memlimit = /d' 3 "no valid 'kdf_memlimit' line"
tamper 's/^kdf_salt = \(.*\)/kdf_salt = \1\1/' 3 "'kdf_salt' is missing or not 16 hex bytes"
tamper 's/^kdf = argon2id/kdf = argon2i/' 4 "key derivation 'argon2i' is not supported"
ok "absurd, malformed or missing Argon2id lines: exit 3 or 4 naming the field, at once, under a 512 MiB limit, nothing written"

# Within range: the derivation runs, the key does not open.
tamper 's/^kdf_opslimit = 1/kdf_opslimit = 2/' 5 "wrong passphrase" all
tamper 's/^kdf_memlimit = 1048576/kdf_memlimit = 2097152/' 5 "wrong passphrase"
ok "an in-range change of the cost does not open the key: exit 5, nothing written"

# scrypt: the same for N.
ferry init --repo "$T/s" --encrypt --kdf scrypt >/dev/null || die "init scrypt"
sed -i 's/^kdf_log_n = .*/kdf_log_n = 40/' "$T/s/config"
limited expect_fail 3 ferry points --repo "$T/s"
one_error_line "kdf_log_n = 40 is not a small number|scrypt parameters out of range"
ok "scrypt with N = 2^40: exit 3, refused before deriving"

ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify with the untouched config"
restores_to "$repo" "$id" "$(md5 "$T/d.img")" "the untouched config still opens and restores"
