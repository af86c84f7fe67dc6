#!/bin/bash
# Hostile or broken peers end their own connection with one log line and
# a clear error, never a crash, while a backup on another connection goes
# on: garbage after connect, a frame claiming 4 GiB (plain and inside
# TLS), an unknown frame type, a frame not allowed in its state, and a
# half-open connection that never speaks (timed out).  Nothing is
# allocated for the 4 GiB claim.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
P=$T/pki
ferry init --repo "$T/repo" >/dev/null || die "init"
start_mover m -- --repo "$T/repo" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt" \
	--handshake-timeout 1
start_mover p -- --repo "$T/repo" --insecure --handshake-timeout 1
make_disk "$T/disk.img" 32

# A backup that takes a few seconds, on the TLS mover, meanwhile.
"$FERRY" backup --repo "ferry://127.0.0.1:$m_port/repo" $(src_tls) --limit-rate 6M \
	"$T/disk.img" >"$T/bk.out" 2>"$T/bk.err" &
bk=$!
cleanup_fn "kill -9 $bk"

# HELLO for repository "repo", as bytes.
hello='\x14\x00\x00\x00\x01\x00\x00\x00FERRYMV1\x01\x00\x01\x00\x04\x00repo\x00\x00'
raw() { # SECONDS BYTES: send to the plain mover, keep the socket open a while
	exec 3<>/dev/tcp/127.0.0.1/$p_port || die "connect"
	printf "$2" >&3
	sleep "$1"
	exec 3>&-
}
logged() { # PATTERN WHAT: exactly one new line in the plain mover's log
	local n
	sleep 0.3
	n=$(grep -c -- "$1" "$T/p.log")
	[ "$n" -eq 1 ] || { cat "$T/p.log"; die "$2: $n log lines match '$1'"; }
	ok "$2: $(grep -- "$1" "$T/p.log" | sed 's/.*conn=[0-9]* //' | cut -c1-120)"
}
raw 0.3 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
logged "reserved bits\|unknown frame type" "garbage after connect"
raw 0.3 '\xff\xff\xff\xff\x01\x00\x00\x00'
logged "HELLO frame of 4294967295 bytes" "a HELLO claiming 4 GiB"
raw 0.3 "$hello"'\xff\xff\xff\xff\x16\x00\x00\x00'
logged "PUT frame of 4294967295 bytes" "a PUT claiming 4 GiB after HELLO"
raw 0.3 "$hello"'\x00\x00\x00\x00\x63\x00\x00\x00'
logged "unknown frame type 99" "an unknown frame type"
raw 0.3 "$hello"'\x00\x00\x00\x00\x16\x00\x00\x00'
logged "PUT frame of 0 bytes\|malformed PUT\|not allowed outside" "a PUT outside a session"
raw 0.3 '\x10\x00\x00\x00\x01\x00\x00\x00NOTFERRY\x01\x00\x01\x00\x00\x00\x00\x00'
logged "does not start with FERRYMV1" "a HELLO with the wrong magic"
raw 1.5 ''
logged "timed out" "a half-open connection that never speaks"

# The same 4 GiB claim inside TLS, from an authenticated client.
( printf "$hello"'\xff\xff\xff\xff\x16\x00\x00\x00'; sleep 1 ) |
	timeout 10 openssl s_client -quiet -connect 127.0.0.1:$m_port -cert "$P/src1.crt" \
	-key "$P/src1.key" -CAfile "$P/ca.crt" >"$T/sc.out" 2>&1
sleep 0.3
[ "$(grep -c "PUT frame of 4294967295 bytes" "$T/m.log")" -eq 1 ] || { cat "$T/m.log"; die "TLS 4 GiB frame not logged once"; }
grep -q "exceeds its limit" "$T/sc.out" || die "the client was not told why"
ok "a 4 GiB frame inside TLS: refused, and the client hears why"
# A silent TLS client: the handshake deadline applies.
( sleep 2 ) | timeout 10 openssl s_client -quiet -connect 127.0.0.1:$m_port -cert "$P/src1.crt" \
	-key "$P/src1.key" -CAfile "$P/ca.crt" >/dev/null 2>&1
grep -q "timed out" "$T/m.log" || { cat "$T/m.log"; die "silent TLS client not timed out"; }
ok "an authenticated client that never sends HELLO is timed out"

wait $bk || { cat "$T/bk.err"; die "the concurrent backup failed"; }
id=$(cat "$T/bk.out")
ferry restore --repo "$T/repo" "$id" --to "$T/r.img" 2>/dev/null || die "restore"
same "$T/disk.img" "$T/r.img" "the backup running beside all this finished and restores byte-identical"
for m in m p; do
	pid=$(eval echo \$${m}_pid)
	kill -0 "$pid" || die "mover $m died"
	hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
	[ "$hwm" -lt $((200 * 1024)) ] || die "mover $m peaked at $hwm KiB"
done
ok "both movers still run (peak RSS $(awk '/VmHWM/ {print $2}' /proc/$m_pid/status) KiB)"
ferry points --repo "ferry://127.0.0.1:$p_port/repo" --insecure >/dev/null || die "plain mover stopped serving"
ok "the movers keep serving"
finish_movers
