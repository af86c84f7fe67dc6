# server.sh - sourced (after functions.sh) by the backup server's tests
# (t07NN): certificates, a catalog database (SQLite, or a throwaway
# PostgreSQL with FERRY_TEST_DB=pg), `ferry server`, proxy agents and a
# target mover on loopback, each on a free port and stopped by pid.
requires jq openssl curl
# wait_for runs its checks in `bash -c`: they see ferry too.
export FERRY
export -f ferry

srv_stop_pid() {
	local i
	kill -"${2:-TERM}" "$1" 2>/dev/null
	for i in $(seq 400); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
	return 1
}

# wait_for SECONDS WHAT CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
	local secs=$1 end=$((SECONDS + $1)) what=$2
	shift 2
	while [ $SECONDS -lt $end ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	[ -f "$T/server.log" ] && tail -15 "$T/server.log" >&2
	die "timed out after $secs s waiting for: $what"
}

# free_port: a loopback TCP port nobody listens on right now.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		ss -ltnH "sport = :$p" 2>/dev/null | grep -q . || { echo $p; return; }
	done
}

# srv_pki: CA, the server's and the mover's certificates (127.0.0.1) and
# a client certificate for the proxies, in $T/pki.
srv_pki() {
	local d=$T/pki
	mkdir -p "$d"
	ferry cert ca --cert "$d/ca.crt" --key "$d/ca.key" 2>/dev/null || die "cert ca"
	ferry cert issue --ca "$d/ca.crt" --ca-key "$d/ca.key" --name 127.0.0.1,localhost \
		--cert "$d/server.crt" --key "$d/server.key" 2>/dev/null || die "cert issue server"
	ferry cert issue --ca "$d/ca.crt" --ca-key "$d/ca.key" --name mover,127.0.0.1 \
		--cert "$d/mover.crt" --key "$d/mover.key" 2>/dev/null || die "cert issue mover"
	ferry cert issue --ca "$d/ca.crt" --ca-key "$d/ca.key" --name proxy \
		--cert "$d/proxy.crt" --key "$d/proxy.key" 2>/dev/null || die "cert issue proxy"
}

# srv_database: the catalog URL for the configuration; with
# FERRY_TEST_DB=pg a PostgreSQL cluster in $T/pg on a free port.
srv_database() {
	if [ "${FERRY_TEST_DB:-sqlite}" != pg ]; then
		echo "sqlite:$T/state/catalog.db"
		return
	fi
	local bin pgport i
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	[ -x "$bin/pg_ctl" ] || skip "PostgreSQL server binaries not installed"
	mkdir -p "$T/pg" && chown postgres "$T/pg" && chmod 700 "$T/pg"
	chmod 755 "$T"
	runuser -u postgres -- "$bin/initdb" -A trust -U postgres -D "$T/pg/data" >"$T/pg/initdb.log" 2>&1 ||
		{ cat "$T/pg/initdb.log" >&2; die "initdb failed"; }
	for i in 1 2 3; do
		pgport=$(free_port)
		if runuser -u postgres -- "$bin/pg_ctl" -D "$T/pg/data" -l "$T/pg/log" -w -t 30 \
			-o "-p $pgport -k $T/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>&1; then
			cleanup_fn "runuser -u postgres -- $bin/pg_ctl -D $T/pg/data -m immediate stop"
			PG_PORT=$pgport
			echo "postgresql://postgres@127.0.0.1:$pgport/postgres"
			return
		fi
	done
	cat "$T/pg/log" >&2
	die "PostgreSQL did not start"
}

# srv_setup [CONF-LINES]: PKI, catalog and configuration in $T/server.conf,
# an API token in $TOKEN; exports FERRY_SERVER_CA and FERRY_TOKEN.
srv_setup() {
	srv_pki
	mkdir -p "$T/state"
	SRV_DB=$(srv_database) || exit 1
	{
		echo "listen = 127.0.0.1:0"
		echo "tls-cert = $T/pki/server.crt"
		echo "tls-key = $T/pki/server.key"
		echo "database = $SRV_DB"
		echo "state-dir = $T/state"
		echo "proxy-timeout = ${SRV_PROXY_TIMEOUT:-3}"
		[ $# -gt 0 ] && printf '%s\n' "$@"
	} >"$T/server.conf"
	TOKEN=$(ferry token create --config "$T/server.conf" --name test 2>/dev/null) || die "token create"
	export FERRY_TOKEN=$TOKEN FERRY_SERVER_CA=$T/pki/ca.crt
	echo "catalog: ${SRV_DB%%:*}"
}

# start_server [ARGS...]: run ferry server on a free port; sets
# server_pid, SRV_PORT and FERRY_SERVER.
start_server() {
	local i
	rm -f "$T/server.port"
	"$FERRY" server --config "$T/server.conf" --port-file "$T/server.port" "$@" \
		>>"$T/server.log" 2>&1 &
	server_pid=$!
	cleanup_fn "kill -9 $server_pid"
	for i in $(seq 200); do
		[ -s "$T/server.port" ] && break
		kill -0 $server_pid 2>/dev/null || { cat "$T/server.log" >&2; die "server did not start"; }
		sleep 0.05
	done
	[ -s "$T/server.port" ] || die "server did not report its port"
	SRV_PORT=$(cat "$T/server.port")
	# A restart listens where the agents and clients expect it.
	sed -i "s/^listen = .*/listen = 127.0.0.1:$SRV_PORT/" "$T/server.conf"
	export FERRY_SERVER=https://127.0.0.1:$SRV_PORT
}

# stop_server: SIGTERM; it must exit 0 without a sanitizer report.
stop_server() {
	srv_stop_pid "$server_pid" TERM || die "server did not stop on SIGTERM"
	wait "$server_pid"; local rc=$?
	[ $rc -eq 0 ] || { tail -30 "$T/server.log"; die "server exited $rc"; }
	! grep -q Sanitizer "$T/server.log" || { cat "$T/server.log"; die "server: sanitizer report"; }
	! grep -l Sanitizer "$T"/agent-*.log 2>/dev/null || die "a proxy agent printed a sanitizer report"
}

# start_target_mover: a TLS target mover serving $T/repo as "main";
# sets mover_pid and MOVER_PORT.
start_target_mover() {
	local i
	[ -d "$T/repo" ] || ferry init --repo "$T/repo" >/dev/null 2>&1 || die "init repo"
	rm -f "$T/mover.port"
	"$FERRY" mover --listen 127.0.0.1:0 --port-file "$T/mover.port" --repo "main=$T/repo" \
		--cert "$T/pki/mover.crt" --key "$T/pki/mover.key" --ca "$T/pki/ca.crt" \
		>>"$T/mover.log" 2>&1 &
	mover_pid=$!
	cleanup_fn "kill -9 $mover_pid"
	for i in $(seq 200); do
		[ -s "$T/mover.port" ] && break
		kill -0 $mover_pid 2>/dev/null || { cat "$T/mover.log" >&2; die "mover did not start"; }
		sleep 0.05
	done
	MOVER_PORT=$(sed 's/.*://' "$T/mover.port")
}

# start_agent NAME [ARGS...]: the proxy agent of NAME; sets agent_NAME.
start_agent() {
	local name=$1 pid
	shift
	"$FERRY" proxy run --name "$name" --poll-interval 200 --cert "$T/pki/proxy.crt" \
		--key "$T/pki/proxy.key" --ca "$T/pki/ca.crt" "$@" >>"$T/agent-$name.log" 2>&1 &
	pid=$!
	cleanup_fn "kill -9 $pid"
	eval "agent_$name=$pid"
}

# api METHOD PATH [BODY]: curl the API with the token; prints the body,
# then the HTTP status on the last line.
api() {
	curl -sS --cacert "$T/pki/ca.crt" -X "$1" -H "Authorization: Bearer $TOKEN" \
		${3+-d "$3"} -w '\n%{http_code}' "$FERRY_SERVER$2"
}

# session_state ID
session_state() { ferry session show "$1" --json | jq -r .state; }
session_done() { [ "$(session_state "$1")" != running ]; }
