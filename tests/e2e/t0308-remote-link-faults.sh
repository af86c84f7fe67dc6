#!/bin/bash
# Other ways a link fails: it stalls (open, silent: the source notices
# within --timeout and reconnects; the mover drops the stale connection
# when the session resumes elsewhere), and it corrupts a byte (inside TLS
# the record fails its check; on plain TCP the chunk fails its checksum):
# each backup completes and restores byte-identical.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
P=$T/pki
openssl enc -aes-128-ctr -pass pass:faults -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c $((24 << 20)) >"$T/disk.img"

check() { # NAME JSON-FILE: restore and compare
	local id
	id=$(grep -o '"id":"[0-9a-f]*"' "$2" | cut -d'"' -f4)
	ferry restore --repo "$T/$1" "$id" --to "$T/$1.img" 2>/dev/null || die "$1: restore"
	cmp -s "$T/disk.img" "$T/$1.img" || die "$1: restore differs"
	rm -f "$T/$1.img"
}

# A stall after 8 MB: the source gives up on the silent link after 3 s.
ferry init --repo "$T/stall" >/dev/null
start_mover ms -- --repo "$T/stall" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt"
start_proxy xs "$ms_port" --stall-after 8000000
t0=$(date +%s)
ferry backup --repo "ferry://127.0.0.1:$xs_port/stall" $(src_tls) --timeout 3 --json \
	"$T/disk.img" >"$T/stall.json" 2>"$T/stall.err" || { cat "$T/stall.err"; die "stall: backup"; }
took=$(( $(date +%s) - t0 ))
check stall "$T/stall.json"
[ "$(proxy_stat xs stalls)" -eq 1 ] || die "the proxy did not stall"
[ "$(json_num "$(cat "$T/stall.json")" resumes)" -ge 1 ] || die "stall: no resume"
grep -q "replaced by a newer connection\|timed out" "$T/ms.log" || die "stall: stale connection not dropped"
ok "stalled link: noticed, resumed, restores byte-identical ($took s in all)"

# A corrupted byte inside TLS.
ferry init --repo "$T/tls" >/dev/null
start_mover mt -- --repo "$T/tls" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt"
start_proxy xt "$mt_port" --corrupt-at 5000000
ferry backup --repo "ferry://127.0.0.1:$xt_port/tls" $(src_tls) --json "$T/disk.img" \
	>"$T/tls.json" 2>"$T/tls.err" || { cat "$T/tls.err"; die "tls corrupt: backup"; }
check tls "$T/tls.json"
grep -q "bad record mac\|decrypt" "$T/mt.log" || { cat "$T/mt.log"; die "TLS did not catch the byte"; }
ok "a corrupted byte in TLS: the record check caught it, the session resumed"

# A corrupted byte on plain TCP (loopback, --insecure), inside chunk data.
# (Regression: the mover once checked payloads with zlib's CRC-32 after
# chunks moved to CRC-32C, refused every chunk, and the session looped.)
ferry init --repo "$T/plain" >/dev/null
start_mover mp -- --repo "$T/plain" --insecure
start_proxy xp "$mp_port" --corrupt-at 5000000
ferry backup --repo "ferry://127.0.0.1:$xp_port/plain" --insecure --json "$T/disk.img" \
	>"$T/plain.json" 2>"$T/plain.err" || { cat "$T/plain.err"; die "plain corrupt: backup"; }
check plain "$T/plain.json"
grep -q "arrived damaged" "$T/mp.log" || { cat "$T/mp.log"; die "the chunk checksum did not catch the byte"; }
ferry verify --repo "$T/plain" 2>/dev/null || die "verify"
ok "a corrupted byte on plain TCP: the chunk checksum caught it, resent, verifies"
[ "$(grep -c "arrived damaged" "$T/mp.log")" -eq 1 ] || die "more than one chunk was refused"
ok "exactly one chunk was refused: the one the proxy damaged"
finish_movers
