# remote.sh - sourced (after functions.sh) by the tests of the network
# mover (t03NN): certificates, a mover daemon and the fault proxy on
# loopback, each started with a free port and stopped by pid at exit.
PROXY=${PROXY:-$top/build/tools/faultproxy}
[ -x "$PROXY" ] || skip "build/tools/faultproxy not built (make check-fast builds it)"
requires openssl

# make_pki DIR: a CA, a mover certificate for 127.0.0.1 and localhost,
# and a source certificate named src1.
make_pki() {
	local d=$1
	mkdir -p "$d"
	ferry cert ca --cert "$d/ca.crt" --key "$d/ca.key" 2>/dev/null || die "cert ca"
	ferry cert issue --ca "$d/ca.crt" --ca-key "$d/ca.key" --name mover,127.0.0.1,localhost \
		--cert "$d/mover.crt" --key "$d/mover.key" 2>/dev/null || die "cert issue mover"
	ferry cert issue --ca "$d/ca.crt" --ca-key "$d/ca.key" --name src1 \
		--cert "$d/src1.crt" --key "$d/src1.key" 2>/dev/null || die "cert issue src1"
}

# Options a source uses with the certificates of make_pki in $T/pki.
src_tls() { echo "--cert $T/pki/src1.crt --key $T/pki/src1.key --ca $T/pki/ca.crt"; }

# start_mover NAME [PORT] -- MOVER-ARGS...: run `ferry mover` on 127.0.0.1
# (PORT 0 or absent: a free one), log in $T/NAME.log; sets
# ${NAME}_pid and ${NAME}_port.
start_mover() {
	local name=$1 port=0 pid i
	shift
	if [ "$1" != -- ]; then port=$1; shift; fi
	shift
	rm -f "$T/$name.port"
	"$FERRY" mover --listen "${MOVER_HOST:-127.0.0.1}:$port" --port-file "$T/$name.port" "$@" \
		>>"$T/$name.log" 2>&1 &
	pid=$!
	cleanup_fn "kill -9 $pid"
	for i in $(seq 200); do
		[ -s "$T/$name.port" ] && break
		kill -0 $pid 2>/dev/null || { cat "$T/$name.log" >&2; die "mover $name did not start"; }
		sleep 0.05
	done
	[ -s "$T/$name.port" ] || die "mover $name did not report its port"
	eval "${name}_pid=$pid"
	eval "${name}_port=$(sed 's/.*://' "$T/$name.port")"
	_movers+=("$name:$pid")
}
_movers=()

# finish_movers: stop every mover still running with SIGTERM; each must
# exit 0 (under ASan: no leak, no error report) within 20 s.
finish_movers() {
	local m name pid rc
	for m in "${_movers[@]}"; do
		name=${m%%:*} pid=${m##*:}
		kill -0 "$pid" 2>/dev/null || continue
		stop_pid "$pid" TERM || die "mover $name did not stop on SIGTERM"
		wait "$pid"; rc=$?
		[ $rc -eq 0 ] || { tail -30 "$T/$name.log"; die "mover $name exited $rc"; }
		if grep -q "Sanitizer" "$T/$name.log"; then cat "$T/$name.log"; die "mover $name: sanitizer report"; fi
	done
	ok "every mover stopped cleanly on SIGTERM"
}

# start_proxy NAME TO_PORT PROXY-ARGS...: the fault proxy in front of
# 127.0.0.1:TO_PORT; sets ${NAME}_pid and ${NAME}_port; counts in
# $T/NAME.stats.
start_proxy() {
	local name=$1 to=$2 pid i
	shift 2
	rm -f "$T/$name.port"
	"$PROXY" --listen 127.0.0.1:0 --to "127.0.0.1:$to" --port-file "$T/$name.port" \
		--stats "$T/$name.stats" "$@" 2>>"$T/$name.log" &
	pid=$!
	cleanup_fn "kill -9 $pid"
	for i in $(seq 100); do [ -s "$T/$name.port" ] && break; sleep 0.05; done
	[ -s "$T/$name.port" ] || die "proxy $name did not start"
	eval "${name}_pid=$pid"
	eval "${name}_port=$(cat "$T/$name.port")"
}

# proxy_stat NAME FIELD: a counter of the proxy (c2s, s2c, conns, cuts).
proxy_stat() { awk -v f="$2" '{ for (i = 1; i < NF; i += 2) if ($i == f) print $(i + 1) }' "$T/$1.stats"; }

# stop_pid PID [SIGNAL]: signal and wait for it (up to 20 s).
stop_pid() {
	local i
	kill -"${2:-TERM}" "$1" 2>/dev/null
	for i in $(seq 400); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
	return 1
}

# json_num JSON KEY: a number field of a JSON object.
json_num() { echo "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
