#!/bin/bash
# An encrypted repository through a mover (ferry:// on loopback, TLS): the
# mover runs without the passphrase; the source seals chunks and the
# manifest; a full and an incremental backup round-trip (remote and local
# restore byte-identical), points, info and verify work over ferry://;
# the mover's files (chunks, points, sessions) hold no marker, name or
# source path; a wrong passphrase fails at the source with exit 5;
# --verify-chunks is refused for an encrypted repository (no key); a
# link cut every 3 MB (fault proxy, RST) resumes the encrypted session
# (the sealed manifest is sent again after a cut) and restores.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024
make_pki "$T/pki"
FERRY_PASSWORD=remote-pw ferry init --repo "$T/repo" --encrypt --block-size 256K >/dev/null || die "init"
marker=MOVER-MARKER-51c3-SECRET
# The mover never sees the passphrase.
(unset FERRY_PASSWORD; "$FERRY" mover --listen 127.0.0.1:0 --repo "$T/repo" --verify-chunks \
	--cert "$T/pki/mover.crt" --key "$T/pki/mover.key" --ca "$T/pki/ca.crt" >"$T/vc.log" 2>&1) &&
	die "the mover served an encrypted repository with --verify-chunks"
grep -q "verify-chunks needs the key" "$T/vc.log" || { cat "$T/vc.log"; die "no reason for the refusal"; }
ok "mover --verify-chunks on an encrypted repository: refused (the mover has no key)"
unset FERRY_PASSWORD
start_mover m -- --repo "$T/repo" --cert "$T/pki/mover.crt" --key "$T/pki/mover.key" \
	--ca "$T/pki/ca.crt"
url=ferry://127.0.0.1:$m_port/repo
export FERRY_PASSWORD=remote-pw
make_disk "$T/disk.img" 16
yes "$marker" | head -c $((2 * 1024 * 1024)) | dd of="$T/disk.img" bs=1M seek=2 conv=notrunc status=none
cp "$T/disk.img" "$T/v1.img"
id1=$(ferry backup --repo "$url" $(src_tls) --quiet --name "vm-$marker" "$T/disk.img") ||
	{ cat "$T/m.log"; die "remote backup"; }
rand_fill "$T/disk.img" 9 1 inc
cp "$T/disk.img" "$T/v2.img"
json=$(ferry backup --repo "$url" $(src_tls) --streams 2 --json --name "vm-$marker" "$T/disk.img") ||
	die "remote incremental backup"
id2=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
new=$(json_num "$json" bytes_new)
[ "$new" -le $((1024 * 1024)) ] || die "incremental stored $new bytes for a 1 MiB change"
ok "full and incremental backups through the mover (incremental: $new new bytes)"

ferry restore --repo "$url" $(src_tls) "$id1" --to "$T/r1.img" 2>/dev/null || die "remote restore 1"
same "$T/v1.img" "$T/r1.img" "point 1 restores byte-identical over ferry://"
ferry restore --repo "$url" $(src_tls) "vm-$marker" --to "$T/r2.img" 2>/dev/null || die "remote restore 2"
same "$T/v2.img" "$T/r2.img" "point 2 (by name) restores byte-identical over ferry://"
ferry restore --repo "$T/repo" "$id2" --to "$T/r2l.img" 2>/dev/null || die "local restore"
same "$T/v2.img" "$T/r2l.img" "and from the repository directly"
[ "$(ferry points --repo "$url" $(src_tls) --json | grep -o '"id"' | wc -l)" = 2 ] || die "points over ferry://"
ferry points --repo "$url" $(src_tls) | grep -q "vm-$marker" || die "points does not show the name"
ferry info --repo "$url" $(src_tls) --json | grep -q '"points":2' || die "info over ferry://"
ferry verify --repo "$url" $(src_tls) >/dev/null 2>&1 || die "verify over ferry://"
ok "points (names opened at the source), info and verify over ferry://"

grep -rl "$marker" "$T/repo" && die "the marker or name is in the mover's files"
grep -rl -F "$T/disk.img" "$T/repo" && die "the source path is in the mover's files"
for f in "$T"/repo/points/*; do [ "$(head -c 4 "$f")" = FMAE ] || die "$f is not sealed"; done
for f in $(find "$T/repo/chunks" -type f | head -50); do [ "$(head -c 4 "$f")" = FCE1 ] || die "$f is not sealed"; done
ok "the mover's repository holds only sealed chunks and manifests, no marker, name or path"

# A link that breaks every 3 MB: resumes, the sealed manifest goes again.
[ -x "$PROXY" ] || die "build/tools/faultproxy is needed (make build/tools/faultproxy)"
openssl enc -aes-128-ctr -pass pass:cutenc -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c $((24 << 20)) >"$T/cut.img"
start_proxy xc "$m_port" --cut-every 3000000 --mode rst
json=$(ferry backup --repo "ferry://127.0.0.1:$xc_port/repo" $(src_tls) --retry 60 --json \
	--name cut "$T/cut.img" 2>"$T/cut.err") || { cat "$T/cut.err" "$T/m.log"; die "backup through cuts"; }
cuts=$(proxy_stat xc cuts)
[ "$cuts" -ge 3 ] || die "only $cuts cuts"
[ "$(json_num "$json" resumes)" -ge 1 ] || die "no resume counted: $json"
stop_pid "$xc_pid"
ferry restore --repo "$url" $(src_tls) cut --to "$T/cut-r.img" 2>/dev/null || die "restore after cuts"
same "$T/cut.img" "$T/cut-r.img" "encrypted backup through $cuts link cuts resumes and restores byte-identical"

FERRY_PASSWORD=wrong expect_fail 5 ferry backup --repo "$url" $(src_tls) --quiet "$T/disk.img"
one_error_line "wrong passphrase"
[ "$(ls "$T/repo/points" | wc -l)" = 3 ] || die "a wrong passphrase made a point"
ok "a wrong passphrase at the source: exit 5, nothing sent"
finish_movers
