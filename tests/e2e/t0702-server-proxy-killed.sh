#!/bin/bash
# A proxy dies mid-task (its agent is SIGKILLed; the backup process dies
# with it): the server notices the missing heartbeat, requeues the task
# on the other proxy, and the job succeeds; the restore points restore
# byte-identical and the repository verifies.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/server.sh"

SRV_PROXY_TIMEOUT=2 srv_setup
start_server
start_target_mover
# Random data: compression cannot shrink it, so each task takes ~6 s at 1 MB/s.
head -c 6M /dev/urandom >"$T/a.img"
head -c 6M /dev/urandom >"$T/b.img"
ferry proxy add p1 --max-tasks 2 2>/dev/null || die "proxy add"
ferry proxy add p2 --max-tasks 2 2>/dev/null || die "proxy add"
ferry repo add main --url "ferry://127.0.0.1:$MOVER_PORT/main" 2>/dev/null || die "repo add"
ferry job create two --repo main --source "$T/a.img" --source "$T/b.img" --limit-rate 1M \
	2>/dev/null || die "job create"

# Only p1 runs at first: it takes both tasks.
start_agent p1
sid=$(ferry job run two) || die "job run"
wait_for 30 "p1 has sent data for both tasks" bash -c \
	"ferry session show $sid --json | jq -e '[.tasks[] | select(.proxy == \"p1\" and .state == \"running\" and .bytes_done > 0)] | length == 2'"
start_agent p2
kill -9 "$agent_p1"
ok "proxy p1 killed while both tasks ran on it"
wait_for 60 "session $sid ends" session_done "$sid"
ferry session show "$sid" --json >"$T/s.json"
[ "$(jq -r .state "$T/s.json")" = success ] || { ferry session log "$sid"; die "session $sid did not succeed"; }
jq -e '[.tasks[] | select(.proxy == "p2" and .proxy_losses >= 1 and .state == "success")] | length == 2' \
	"$T/s.json" >/dev/null || { cat "$T/s.json"; die "tasks were not retried on p2"; }
ferry session log "$sid" | grep -q 'requeued for another proxy: proxy p1 stopped heartbeating' ||
	die "the log does not say why the tasks moved"
ok "both tasks requeued after p1's heartbeat stopped and succeeded on p2"
ferry proxy list --json | jq -e '.proxies[] | select(.name == "p1") | .online == false' >/dev/null ||
	die "p1 still shown online"
ok "p1 shown offline"

for x in a b; do
	id=$(jq -r --arg n "$x.img" '.tasks[] | select(.name == $n) | .point' "$T/s.json")
	ferry restore --repo "$T/repo" "$id" --to "$T/r-$x.img" 2>/dev/null || die "restore $id"
	cmp -s "$T/$x.img" "$T/r-$x.img" || die "point $id differs from $x.img"
done
ok "both restore points restore byte-identical"
ferry verify --repo "$T/repo" >/dev/null 2>&1 || die "repository does not verify"
[ "$(point_ids "$T/repo" | wc -l)" = 2 ] || die "the killed backups left points: $(point_ids "$T/repo")"
ok "repository verifies after the killed backups and holds just the 2 points"
srv_stop_pid "$agent_p2" TERM
stop_server
