#!/bin/bash
# ferry-test: long
# The server is SIGKILLed mid-session with one task running on each of two
# proxies and a third task queued; while it is down, proxy p2 dies too
# (agent SIGKILLed, its backup process dies with it).  After the restart
# the session is resumed: p1's task is re-adopted, the queued task is
# given out, p2's task is requeued once p2 stays silent for proxy-timeout
# and runs on another proxy (p1 or a new p3), and the session succeeds with every point restoring
# byte-identical; the repository verifies.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/server.sh"

SRV_PROXY_TIMEOUT=2 srv_setup
start_server
start_target_mover
# Random data: ~12 s per task at 512 KB/s.
for x in a b c; do head -c 6M /dev/urandom >"$T/$x.img"; done
ferry proxy add p1 --max-tasks 1 2>/dev/null || die "proxy add p1"
ferry proxy add p2 --max-tasks 1 2>/dev/null || die "proxy add p2"
ferry repo add main --url "ferry://127.0.0.1:$MOVER_PORT/main" 2>/dev/null || die "repo add"
ferry job create three --repo main --source "$T/a.img" --source "$T/b.img" --source "$T/c.img" \
	--limit-rate 512K 2>/dev/null || die "job create"
start_agent p1
start_agent p2
sid=$(ferry job run three) || die "job run"
# The snapshot that passes the check is the one used, and the server is
# killed right after it, while both tasks are still running.
wait_for 30 "one task runs on each proxy, one is queued" bash -c \
	"ferry session show $sid --json >$T/before.json && jq -e '([.tasks[] | select(.state == \"running\" and .bytes_done > 0)] | length == 2) and ([.tasks[] | select(.state == \"queued\")] | length == 1)' $T/before.json"
t1=$(jq -r '.tasks[] | select(.proxy == "p1" and .state == "running") | .id' "$T/before.json")
t2=$(jq -r '.tasks[] | select(.proxy == "p2" and .state == "running") | .id' "$T/before.json")
[ -n "$t1" ] && [ -n "$t2" ] || die "expected a running task on each proxy: $(cat "$T/before.json")"
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null
kill -9 "$agent_p2"
wait "$agent_p2" 2>/dev/null
ok "server killed (task $t1 running on p1, $t2 on p2, one queued), then proxy p2 killed"
sleep 1
start_server
# A third proxy shares the rest of the work (the queued task, p2's once
# it is requeued).
ferry proxy add p3 --max-tasks 1 2>/dev/null || die "proxy add p3"
start_agent p3
ferry session log "$sid" | grep -q 'resumed at server start' || die "log does not say resumed"
[ "$(session_state "$sid")" = running ] || die "session $sid is $(session_state "$sid") after the restart"
wait_for 90 "session $sid ends" session_done "$sid"
ferry session show "$sid" --json >"$T/s.json"
[ "$(jq -r .state "$T/s.json")" = success ] || { ferry session log "$sid"; die "session $sid: $(jq -r .state "$T/s.json")"; }
jq -e --argjson t "$t1" '.tasks[] | select(.id == $t) | .attempts == 1 and .proxy_losses == 0 and .proxy == "p1"' \
	"$T/s.json" >/dev/null || { cat "$T/s.json"; die "p1's task was not re-adopted"; }
jq -e --argjson t "$t2" '.tasks[] | select(.id == $t) | .proxy_losses == 1 and .proxy != "p2"' \
	"$T/s.json" >/dev/null || { cat "$T/s.json"; die "p2's task was not requeued onto another proxy"; }
ferry session log "$sid" | grep -q "task $t2 requeued for another proxy: proxy p2 stopped heartbeating" ||
	die "the log does not say why task $t2 moved: $(ferry session log "$sid")"
ok "session $sid resumed: task $t1 re-adopted on p1, the queued task run, task $t2 requeued from silent p2 onto $(jq -r --argjson t "$t2" '.tasks[] | select(.id == $t) | .proxy' "$T/s.json")"

for x in a b c; do
	id=$(jq -r --arg n "$x.img" '.tasks[] | select(.name == $n) | .point' "$T/s.json")
	ferry restore --repo "$T/repo" "$id" --to "$T/r-$x.img" 2>/dev/null || die "restore $id"
	cmp -s "$T/$x.img" "$T/r-$x.img" || die "point $id differs from $x.img"
done
ferry verify --repo "$T/repo" >/dev/null 2>&1 || die "repository does not verify"
# p2's backup process is stopped with its agent; if it was already
# committing (a slow machine), its point is in the repository too, nobody
# reported it, and it must be as good as the others.
n=$(point_ids "$T/repo" | wc -l)
[ "$n" = 3 ] || [ "$n" = 4 ] || die "repository holds $n points"
for id in $(point_ids "$T/repo"); do
	nm=$(ferry points --repo "$T/repo" --json | jq -r --arg i "$id" '.[] | select(.id == $i) | .name')
	ferry restore --repo "$T/repo" "$id" --to "$T/r.img" 2>/dev/null || die "restore $id"
	cmp -s "$T/$nm" "$T/r.img" || die "point $id ($nm) differs"
	rm -f "$T/r.img"
done
ferry catalog --json | jq -e '[.points[] | select(.session == '"$sid"')] | length == 3' >/dev/null ||
	die "catalog: $(ferry catalog --json)"
ok "3 points restore byte-identical; repository verifies ($n points, each restores); catalog lists the session's 3"
srv_stop_pid "$agent_p1" TERM
srv_stop_pid "$agent_p3" TERM
stop_server
