#!/bin/bash
# The server is SIGKILLed mid-session and started again: the session is
# resumed, never left "running" forever.  The proxy kept backing up while
# the server was down; it reports again, its tasks are re-adopted (not
# run a second time) and the session succeeds.  The repository verifies
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
ferry session log "$sid" | grep -q 'resumed at server start' || die "log does not say resumed"
grep -q 'proxy p1 ran 2 task(s) when the server stopped' "$T/server.log" || die "server log"
# The agent reconnects and reports what it finished: the tasks complete.
wait_for 30 "session $sid ends" session_done "$sid"
ferry session show "$sid" --json >"$T/s.json"
[ "$(jq -r .state "$T/s.json")" = success ] || { ferry session log "$sid"; die "session $sid: $(jq -r .state "$T/s.json")"; }
jq -e '[.tasks[] | select(.state == "success" and .attempts == 1 and .proxy_losses == 0)] | length == 2' \
	"$T/s.json" >/dev/null || { cat "$T/s.json"; die "tasks were run again instead of re-adopted"; }
ferry session log "$sid" | grep -q 'requeued for another proxy' && die "a task was requeued: $(ferry session log "$sid")"
ok "session $sid resumed at restart: both tasks re-adopted from p1, session succeeded"
ferry catalog --json | jq -e '.points | length == 2' >/dev/null || die "catalog"
[ "$(point_ids "$T/repo" | wc -l)" = 2 ] || die "repository holds $(point_ids "$T/repo" | wc -l) points"
ok "the restore points committed while the server was down are in the catalog, none twice"
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
