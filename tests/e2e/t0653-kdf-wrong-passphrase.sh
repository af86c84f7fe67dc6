#!/bin/bash
# A wrong passphrase on an Argon2id and on a scrypt repository: backup,
# restore, verify, points and key passwd exit 5 with one line saying
# "wrong passphrase", the restore target is not created, and nothing in
# the repository changes (every file's name and content).
. "$(dirname "$0")/functions.sh"

export FERRY_KDF_LOG_N=11 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024
make_disk "$T/d.img" 2
printf 'also-wrong\n' >"$T/badpw"
for kdf in argon2id scrypt; do
	repo=$T/repo-$kdf
	FERRY_PASSWORD=right ferry init --repo "$repo" --encrypt --kdf $kdf --block-size 64K >/dev/null || die "init $kdf"
	id=$(FERRY_PASSWORD=right ferry backup --repo "$repo" --quiet "$T/d.img") || die "backup $kdf"
	before=$(repo_fingerprint "$repo")
	for cmd in "backup --quiet $T/d.img" "restore $id --to $T/x.img" "verify" "points" \
		"key passwd --new-password-file $T/badpw --kdf scrypt"; do
		FERRY_PASSWORD=wrong expect_fail 5 ferry $cmd --repo "$repo"
		one_error_line "wrong passphrase"
	done
	# The passphrase with one character more or less, and empty.
	FERRY_PASSWORD=righ expect_fail 5 ferry points --repo "$repo"
	FERRY_PASSWORD=right. expect_fail 5 ferry points --repo "$repo"
	expect_fail 5 ferry points --repo "$repo" --password-file "$T/badpw"
	one_error_line "wrong passphrase"
	[ ! -e "$T/x.img" ] || die "$kdf: restore created its target with a wrong passphrase"
	[ "$(repo_fingerprint "$repo")" = "$before" ] || die "$kdf: the repository changed"
	FERRY_PASSWORD=right restores_to "$repo" "$id" "$(md5 "$T/d.img")" \
		"$kdf: wrong passphrases refused (exit 5, one line), nothing written; the right one restores"
done
