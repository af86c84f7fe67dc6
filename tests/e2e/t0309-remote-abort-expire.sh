#!/bin/bash
# A source that stops: interrupted (SIGINT), it aborts its session and the
# mover removes it; killed (-9), its session stays parked on the mover
# until --session-ttl, then is removed.  No restore point appears either
# way, and the repository stays intact.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
P=$T/pki
margs=(--repo "$T/repo" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt")
ferry init --repo "$T/repo" >/dev/null || die "init"
start_mover m -- "${margs[@]}"
url=ferry://127.0.0.1:$m_port/repo
openssl enc -aes-128-ctr -pass pass:abort -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c $((32 << 20)) >"$T/disk.img"

started() { # until the mover holds a session file with some entries
	local i f
	for i in $(seq 200); do
		f=$(ls "$T/repo/sessions" 2>/dev/null | head -1)
		[ -n "$f" ] && [ "$(stat -c %s "$T/repo/sessions/$f")" -gt 400 ] && return 0
		sleep 0.05
	done
	die "no session started"
}

"$FERRY" backup --repo "$url" $(src_tls) --limit-rate 4M "$T/disk.img" >/dev/null 2>"$T/int.err" &
bk=$!
started
kill -INT $bk
wait $bk; rc=$?
[ $rc -eq 130 ] || { cat "$T/int.err"; die "interrupted backup exited $rc"; }
sleep 0.5
grep -q "aborted by the source" "$T/m.log" || { cat "$T/m.log"; die "no abort logged"; }
[ -z "$(ls "$T/repo/sessions")" ] || die "the aborted session's file remains"
ok "an interrupted source aborts its session (exit 130), the mover removes it"

"$FERRY" backup --repo "$url" $(src_tls) --limit-rate 4M "$T/disk.img" >/dev/null 2>&1 &
bk=$!
started
kill -9 $bk
wait $bk 2>/dev/null
sleep 0.5
[ -n "$(ls "$T/repo/sessions")" ] || die "the killed source's session was not kept"
grep -q "parked at block" "$T/m.log" || die "the session was not parked"
ok "a killed source's session is parked: $(grep "parked at block" "$T/m.log" | tail -1 | sed 's/.*repo=repo //')"
stop_pid "$m_pid" TERM || die "mover did not stop"
sleep 2.2
start_mover m -- "${margs[@]}" --session-ttl 1
grep -q "expired: parked longer than 1 s" "$T/m.log" || { cat "$T/m.log"; die "no expiry logged"; }
[ -z "$(ls "$T/repo/sessions")" ] || die "the expired session's file remains"
ok "after --session-ttl the parked session is removed"
[ -z "$(ls "$T/repo/points")" ] || die "a restore point appeared"
ferry verify --repo "$T/repo" 2>/dev/null || die "verify"
ok "no restore point appeared; the repository verifies"
finish_movers
