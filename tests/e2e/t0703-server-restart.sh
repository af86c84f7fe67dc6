#!/bin/bash
# The server is SIGKILLed mid-session and started again: the session is
# marked failed (never left "running"), the restore point the proxy
# committed meanwhile still reaches the catalog, the repository verifies
# and restores, and the job runs again to success.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/server.sh"

srv_setup
start_server
start_target_mover
head -c 5M /dev/urandom >"$T/a.img"
make_disk "$T/b.img" 4 2
ferry proxy add p1 --max-tasks 2 2>/dev/null || die "proxy add"
ferry repo add main --url "ferry://127.0.0.1:$MOVER_PORT/main" 2>/dev/null || die "repo add"
ferry job create j --repo main --source "$T/a.img" --source "$T/b.img" --limit-rate 1M \
	2>/dev/null || die "job create"
start_agent p1
sid=$(ferry job run j) || die "job run"
wait_for 30 "both tasks run" bash -c \
	"ferry session show $sid --json | jq -e '[.tasks[] | select(.state == \"running\" and .bytes_done > 0)] | length == 2'"
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null
ok "server killed with 2 tasks running"
# The proxy keeps working without the server and finishes its backups.
wait_for 30 "the proxy's backups finish" bash -c "[ \$(\"$FERRY\" points --repo $T/repo --json | jq length) -ge 2 ]"
start_server
[ "$(session_state "$sid")" = failed ] || die "session $sid is $(session_state "$sid") after the restart"
ferry session show "$sid" --json | jq -e '.message | test("server stopped")' >/dev/null || die "no reason given"
ferry session log "$sid" | grep -q 'marked failed at server start' || die "log"
ok "session $sid marked failed at restart, with the reason"
# The agent reconnects and reports what it finished; the points reach
# the catalog although their tasks had failed.
wait_for 30 "the late results reach the catalog" bash -c \
	"ferry catalog --json | jq -e '.points | length == 2'"
ok "the restore points committed while the server was down are in the catalog"
ferry verify --repo "$T/repo" >/dev/null 2>&1 || die "repository does not verify"
for id in $(point_ids "$T/repo"); do
	ferry restore --repo "$T/repo" "$id" --to "$T/r.img" 2>/dev/null || die "restore $id"
	n=$(ferry points --repo "$T/repo" --json | jq -r --arg i "$id" '.[] | select(.id == $i) | .name')
	cmp -s "$T/$n" "$T/r.img" || die "point $id ($n) differs"
	rm -f "$T/r.img"
done
ok "repository intact: verifies, every point restores byte-identical"
sid2=$(ferry job run j) || die "job run after the restart"
wait_for 60 "session $sid2 ends" session_done "$sid2"
[ "$(session_state "$sid2")" = success ] || { ferry session log "$sid2"; die "the job fails after the restart"; }
ok "the job runs again to success (session $sid2)"
srv_stop_pid "$agent_p1" TERM
stop_server
