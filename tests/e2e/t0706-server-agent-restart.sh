#!/bin/bash
# A proxy's agent is SIGKILLed mid-task and started again at once, well
# inside the heartbeat timeout: its first poll lists no task, so the
# server requeues the task it had on that proxy (instead of waiting for
# the timeout or leaving it "running"), the new agent runs it, and the
# point restores byte-identical.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/server.sh"

SRV_PROXY_TIMEOUT=60 srv_setup
start_server
start_target_mover
head -c 5M /dev/urandom >"$T/a.img"
ferry proxy add p1 --max-tasks 1 2>/dev/null || die "proxy add"
ferry repo add main --url "ferry://127.0.0.1:$MOVER_PORT/main" 2>/dev/null || die "repo add"
ferry job create one --repo main --source "$T/a.img" --limit-rate 1M 2>/dev/null || die "job create"
start_agent p1
sid=$(ferry job run one) || die "job run"
wait_for 30 "the task sends data" bash -c \
	"ferry session show $sid --json | jq -e '.tasks[0].state == \"running\" and .tasks[0].bytes_done > 0'"
kill -9 "$agent_p1"
start_agent p1
start=$SECONDS
wait_for 40 "session $sid ends" session_done "$sid"
[ $((SECONDS - start)) -lt 50 ] || die "the task waited for the 60 s heartbeat timeout"
ferry session show "$sid" --json >"$T/s.json"
[ "$(jq -r .state "$T/s.json")" = success ] || { ferry session log "$sid"; die "session failed"; }
[ "$(jq '.tasks[0].proxy_losses' "$T/s.json")" = 1 ] || die "task not requeued once: $(jq .tasks "$T/s.json")"
ferry session log "$sid" | grep -q 'requeued for another proxy: the proxy no longer runs it' ||
	die "the log does not say why"
ok "the restarted agent's first poll requeued the lost task at once; the session succeeded"
id=$(jq -r '.tasks[0].point' "$T/s.json")
ferry restore --repo "$T/repo" "$id" --to "$T/r.img" 2>/dev/null || die "restore"
cmp -s "$T/a.img" "$T/r.img" || die "point differs"
ok "its restore point restores byte-identical"
srv_stop_pid "$agent_p1" TERM
stop_server
