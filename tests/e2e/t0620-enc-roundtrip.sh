#!/bin/bash
# Encrypted repository round trip: init --encrypt with a password file,
# a full and an incremental backup, both restore byte-identical, verify
# passes; points, info, forget and gc work with the key (they read
# manifests), and the kept point still restores after gc.
. "$(dirname "$0")/functions.sh"

export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024
printf 'tr0ub4dor&3\n' >"$T/pw"
repo=$T/repo
json=$(ferry init --repo "$repo" --encrypt --password-file "$T/pw" --json) || die "init --encrypt"
echo "$json" | grep -q '"encrypted":true' || die "init --json does not say encrypted: $json"
grep -q '^features = encryption$' "$repo/config" || die "config does not announce the feature"
grep -q '^kdf = argon2id$' "$repo/config" && grep -q '^kdf_memlimit = 1048576$' "$repo/config" && grep -q '^key = [0-9a-f]\{184\}$' "$repo/config" ||
	die "config lacks the wrapped key"
grep -q 'tr0ub4dor' "$repo/config" && die "the passphrase is in the config"
ok "init --encrypt: config announces 'encryption' and holds only the wrapped key"

export FERRY_PASSWORD='tr0ub4dor&3'
make_disk "$T/disk.img" 24
cp "$T/disk.img" "$T/v1.img"
id1=$(ferry backup --repo "$repo" --quiet "$T/disk.img") || die "backup 1"
rand_fill "$T/disk.img" 3 1 change1
rand_fill "$T/disk.img" 17 2 change2
cp "$T/disk.img" "$T/v2.img"
json=$(ferry backup --repo "$repo" --json "$T/disk.img" 2>/dev/null) || die "backup 2"
id2=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
new=$(echo "$json" | grep -o '"bytes_new":[0-9]*' | cut -d: -f2)
[ "$new" -le $((3 * 1024 * 1024)) ] && [ "$new" -gt 0 ] || die "incremental stored $new new bytes for a 3 MiB change"
ok "incremental backup on the encrypted repository stores only the changed blocks ($new bytes)"

ferry restore --repo "$repo" "$id1" --to "$T/r1.img" 2>/dev/null || die "restore 1"
same "$T/v1.img" "$T/r1.img" "the full point restores byte-identical"
unset FERRY_PASSWORD
ferry restore --repo "$repo" --password-file "$T/pw" "$id2" --to "$T/r2.img" 2>/dev/null || die "restore 2"
same "$T/v2.img" "$T/r2.img" "the incremental point restores byte-identical (--password-file)"
export FERRY_PASSWORD='tr0ub4dor&3'
ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify"
ok "verify reads and checks every sealed chunk and manifest"
[ "$(point_ids "$repo" | wc -l)" = 2 ] || die "points does not list two points"
ferry info --repo "$repo" --json | grep -q "\"encrypted\":true" || die "info does not say encrypted"
ok "points and info open the sealed manifests"

ferry forget --repo "$repo" --keep-last 1 >/dev/null || die "forget"
[ "$(point_ids "$repo")" = "$id2" ] || die "forget kept the wrong point"
json=$(ferry gc --repo "$repo" --json) || die "gc"
ok "forget and gc on the encrypted repository: $json"
restores_to "$repo" "$id2" "$(md5 "$T/v2.img")" "the kept point restores after gc"
ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify after gc"
ok "verify passes after gc"
