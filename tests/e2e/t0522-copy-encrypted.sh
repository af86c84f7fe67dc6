#!/bin/bash
# ferry copy between repositories with different keys: plain ->
# encrypted, encrypted -> encrypted (another passphrase and master key),
# encrypted -> plain.  Every copied point restores byte-identical from the
# target with the target's passphrase; an encrypted target's chunk files
# hold no plaintext of a marker the source's chunk files show; a second
# copy sends nothing; an incremental point reads only its changed blocks;
# a wrong or missing source passphrase is refused with nothing written to
# the target; a copy killed with -9 resumes.
. "$(dirname "$0")/functions.sh"
export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024 # small key-derivation cost
json_num() { echo "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
. "$(dirname "$0")/copy.sh"

export FERRY_KDF_LOG_N=12
unset FERRY_PASSWORD FERRY_FROM_PASSWORD
echo first-pass >"$T/p1"
echo second-pass >"$T/p2"
marker=FERRY-COPY-MARKER-c0ffee
# Chunks stored uncompressed, so the marker is visible in the plain
# source's chunk files (the control) and must not be in a sealed copy.
ferry init --repo "$T/a" --compression none >/dev/null || die "init a"
make_disk "$T/disk.img" 12
yes "$marker" | head -c $((512 << 10)) | dd of="$T/disk.img" bs=256K seek=5 conv=notrunc status=none
cp "$T/disk.img" "$T/v1.img"
id1=$(ferry backup --repo "$T/a" -q "$T/disk.img") || die "backup 1"
head -c $((512 << 10)) /dev/urandom | dd of="$T/disk.img" bs=256K seek=20 conv=notrunc status=none
id2=$(ferry backup --repo "$T/a" -q "$T/disk.img") || die "backup 2"
cp "$T/disk.img" "$T/v2.img"
grep -rlq "$marker" "$T/a/chunks" || die "control: the marker is not in the plain source's chunks"
ok "control: the plain source's chunk files show the marker"

# copy_both FROM TO WHAT [OPTS]: 2 points copied, both restore, a second
# copy sends nothing.  OPTS are the target's; $from_opts go to copy only.
from_opts=
copy_both() {
	local from=$1 to=$2 what=$3 json; shift 3
	json=$(ferry copy --from "$from" $from_opts --to "$to" "$@" --json) || die "copy $what"
	[ "$(json_num "$json" points_copied)" -eq 2 ] || die "copy $what: $json"
	ok "$what: copied 2 points, $(json_num "$json" chunks_sent) chunks re-encoded and sent"
	ferry restore --repo "$to" "$@" "$id1" --to "$T/r1.img" 2>/dev/null || die "$what: restore 1"
	same "$T/v1.img" "$T/r1.img" "$what: the first point restores byte-identical from the target"
	ferry restore --repo "$to" "$@" "$id2" --to "$T/r2.img" 2>/dev/null || die "$what: restore 2"
	same "$T/v2.img" "$T/r2.img" "$what: the second point restores byte-identical from the target"
	ferry verify --repo "$to" "$@" >/dev/null 2>&1 || die "$what: verify the target"
	json=$(ferry copy --from "$from" $from_opts --to "$to" "$@" --json) || die "$what: second copy"
	[ "$(json_num "$json" points_copied)" -eq 0 ] && [ "$(json_num "$json" points_present)" -eq 2 ] &&
		[ "$(json_num "$json" chunks_sent)" -eq 0 ] && [ "$(json_num "$json" chunks_read)" -eq 0 ] ||
		die "$what: second copy did something: $json"
	ok "$what: the target verifies; a second copy reads and sends nothing"
	rm -f "$T/r1.img" "$T/r2.img"
}

# plain -> encrypted
ferry init --repo "$T/e1" --encrypt --password-file "$T/p1" --compression none >/dev/null || die "init e1"
copy_both "$T/a" "$T/e1" "plain -> encrypted" --password-file "$T/p1"
grep -rlq "$marker" "$T/e1" && die "the encrypted copy holds the marker in plaintext"
ok "plain -> encrypted: no file of the target holds the marker"
expect_fail 5 ferry restore --repo "$T/e1" --password-file "$T/p2" "$id1" --to "$T/x.img"
ok "the target opens only with its own passphrase"

# encrypted -> encrypted, another passphrase and master key
ferry init --repo "$T/e2" --encrypt --password-file "$T/p2" >/dev/null || die "init e2"
from_opts="--from-password-file $T/p1"
copy_both "$T/e1" "$T/e2" "encrypted -> encrypted" --password-file "$T/p2"
from_opts=
grep -rlq "$marker" "$T/e2" && die "the second encrypted copy holds the marker in plaintext"
c1=$(find "$T/e1/chunks" -type f | sed 's,.*/,,' | sort)
c2=$(find "$T/e2/chunks" -type f | sed 's,.*/,,' | sort)
[ -n "$(comm -12 <(echo "$c1") <(echo "$c2"))" ] && die "the two encrypted repositories share chunk names"
ok "encrypted -> encrypted: no marker, and no chunk name in common with the source (keyed ids)"

# encrypted -> plain, the source's passphrase from FERRY_FROM_PASSWORD
ferry init --repo "$T/b" >/dev/null || die "init b"
export FERRY_FROM_PASSWORD=second-pass
copy_both "$T/e2" "$T/b" "encrypted -> plain"
unset FERRY_FROM_PASSWORD

# An incremental point: only its changed blocks are read and sent.
head -c $((256 << 10)) /dev/urandom | dd of="$T/disk.img" bs=256K seek=30 conv=notrunc status=none
id3=$(ferry backup --repo "$T/a" -q "$T/disk.img") || die "backup 3"
json=$(ferry copy --from "$T/a" --to "$T/e1" --password-file "$T/p1" --json) || die "copy 3"
json2=$(ferry copy --from "$T/e1" --from-password-file "$T/p1" --to "$T/e2" --password-file "$T/p2" --json) || die "copy 3 enc"
for j in "$json" "$json2"; do
	[ "$(json_num "$j" points_copied)" -eq 1 ] && [ "$(json_num "$j" chunks_read)" -le 1 ] &&
		[ "$(json_num "$j" chunks_sent)" -eq 1 ] || die "incremental copy: $j"
done
ferry restore --repo "$T/e2" --password-file "$T/p2" "$id3" --to "$T/r3.img" 2>/dev/null || die "restore 3"
same "$T/disk.img" "$T/r3.img" "incremental point copied twice (plain -> e1 -> e2) restores byte-identical"
ok "an incremental copy reads and sends 1 chunk (12 blocks)"

# Wrong or missing source passphrase: refused, the target untouched.
ferry init --repo "$T/f" --encrypt --password-file "$T/p2" >/dev/null || die "init f"
before=$(repo_fingerprint "$T/f")
expect_fail 5 ferry copy --from "$T/e1" --from-password-file "$T/p2" --to "$T/f" --password-file "$T/p2"
one_error_line "source repository: wrong passphrase for $T/e1"
expect_fail 5 env FERRY_FROM_PASSWORD=nope "$FERRY" copy --from "$T/e1" --to "$T/b"
one_error_line "wrong passphrase"
expect_fail 5 ferry copy --from "$T/a" --to "$T/f" --password-file "$T/p1"
one_error_line "target repository: wrong passphrase"
expect_fail 5 setsid -w "$FERRY" copy --from "$T/e1" --to "$T/f" --password-file "$T/p2" </dev/null
one_error_line "FERRY_FROM_PASSWORD"
expect_fail 2 ferry copy --from "$T/e1" --from-password-file "$T/nonexistent" --to "$T/f" --password-file "$T/p2"
one_error_line "from-password-file"
[ "$(repo_fingerprint "$T/f")" = "$before" ] || die "a refused copy changed the target"
ok "wrong, missing or unreadable passphrases are refused (exit 5 / 2), the target unchanged"

# Killed with -9 and run again: plain -> encrypted (copy.sh), then
# encrypted -> encrypted with new data (the source's key from
# FERRY_FROM_PASSWORD, the backup to it with FERRY_PASSWORD).
chunks_e1() { find "$T/e1/chunks" -type f -name '[0-9a-f]*' | wc -l; }
copy_kill_rerun "$T/a" "$T/e1" chunks_e1 --password-file "$T/p1"
export FERRY_PASSWORD=first-pass FERRY_FROM_PASSWORD=first-pass
ferry copy --from "$T/e1" --to "$T/e2" --password-file "$T/p2" -q || die "bring e2 up to date"
chunks_e2() { find "$T/e2/chunks" -type f -name '[0-9a-f]*' | wc -l; }
copy_killed "$T/e1" "$T/e2" chunks_e2 64 copykill2 --password-file "$T/p2"
idk=$idb
point_ids "$T/e2" 2>/dev/null | grep -q "$idk" && die "a killed copy committed $idk"
unset FERRY_PASSWORD
json=$(ferry copy --from "$T/e1" --to "$T/e2" --password-file "$T/p2" --json) || die "rerun enc"
[ "$(json_num "$json" points_copied)" -eq 1 ] && [ "$(json_num "$json" chunks_present)" -ge 8 ] &&
	[ "$(json_num "$json" chunks_sent)" -le 56 ] || die "encrypted rerun: $json"
ok "encrypted -> encrypted killed with -9 after 8+ chunks; the rerun sends $(json_num "$json" chunks_sent), $(json_num "$json" chunks_present) were there"
ferry restore --repo "$T/e2" --password-file "$T/p2" "$idk" --to "$T/rk.img" 2>/dev/null || die "restore big2"
same "$T/big-copykill2.img" "$T/rk.img" "the encrypted point copied after the kill restores byte-identical"
unset FERRY_FROM_PASSWORD
ferry verify --repo "$T/e2" --password-file "$T/p2" >/dev/null 2>&1 || die "verify e2 after the kills"
ok "the target verifies after the kill and the rerun"
