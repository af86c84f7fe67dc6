#!/bin/bash
# A backup server, two proxy agents and a TLS target mover on loopback: a
# job with 4 disks runs as 4 tasks spread over both proxies within their
# limits; every restore point restores byte-identical and the catalog
# lists exactly the points the repository holds; /metrics counts them.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/server.sh"

srv_setup
start_server
start_target_mover
for i in 1 2 3 4; do make_disk "$T/disk$i.img" 4 $i; done

ferry proxy add p1 --max-tasks 2 --address 127.0.0.1 2>/dev/null || die "proxy add p1"
ferry proxy add p2 --max-tasks 1 2>/dev/null || die "proxy add p2"
ferry repo add main --url "ferry://127.0.0.1:$MOVER_PORT/main" --path "$T/repo" --capacity 1G \
	2>/dev/null || die "repo add"
ferry job create nightly --repo main --source "$T/disk1.img" --source "$T/disk2.img" \
	--source "$T/disk3.img" --disk data=$T/disk4.img --limit-rate 3M --keep-last 3 \
	2>/dev/null || die "job create"
ferry job list | grep -q '^nightly ' || die "job list does not show the job"
ok "proxies, repository and job registered through the CLI"

start_agent p1
start_agent p2
sid=$(ferry job run nightly) || die "job run"
# Progress is visible while it runs.
wait_for 30 "a task reports progress" \
	bash -c "ferry session show $sid --json | jq -e '[.tasks[] | select(.bytes_done > 0 and .state == \"running\")] | length > 0'"
ok "a running task reports bytes done, total and rate"
wait_for 60 "session $sid ends" session_done "$sid"
ferry session show "$sid" --json >"$T/s.json"
[ "$(jq -r .state "$T/s.json")" = success ] || { ferry session log "$sid"; die "session $sid: $(jq -r .state "$T/s.json")"; }
[ "$(jq '.tasks | length' "$T/s.json")" = 4 ] || die "expected 4 tasks"
[ "$(jq '[.tasks[] | select(.state == "success" and .point != null)] | length' "$T/s.json")" = 4 ] ||
	die "not every task made a restore point"
ok "session $sid: 4 tasks succeeded, one restore point each"

# Spread and limits.
p1n=$(jq '[.tasks[] | select(.proxy == "p1")] | length' "$T/s.json")
p2n=$(jq '[.tasks[] | select(.proxy == "p2")] | length' "$T/s.json")
[ "$p1n" -ge 1 ] && [ "$p2n" -ge 1 ] || die "tasks not spread over both proxies (p1 $p1n, p2 $p2n)"
ferry session log "$sid" >"$T/log.txt"
grep -o 'assigned to proxy [a-z0-9]* ([0-9]* of [0-9]*' "$T/log.txt" |
	awk '{ gsub(/\(/, "", $5); if ($5 + 0 > $7 + 0) bad = 1 } END { exit bad }' ||
	die "a proxy ran more tasks than its limit: $(grep assigned "$T/log.txt")"
ferry proxy list --json >"$T/p.json"
jq -e '.proxies[] | select(.peak_tasks > .max_tasks)' "$T/p.json" >/dev/null &&
	die "peak tasks above the limit: $(cat "$T/p.json")"
[ "$(jq '.proxies[] | select(.name == "p1") | .peak_tasks' "$T/p.json")" = 2 ] ||
	die "p1 never ran 2 tasks at once: $(cat "$T/p.json")"
ok "tasks spread: p1 ran $p1n (at most 2 at once), p2 ran $p2n (at most 1 at once)"

# Every point restores byte-identical, through the mover.
for i in 1 2 3 4; do
	name=disk$i.img; [ $i = 4 ] && name=data
	id=$(jq -r --arg n "$name" '.tasks[] | select(.name == $n) | .point' "$T/s.json")
	ferry restore --repo "ferry://127.0.0.1:$MOVER_PORT/main" --cert "$T/pki/proxy.crt" \
		--key "$T/pki/proxy.key" --ca "$T/pki/ca.crt" "$id" --to "$T/r$i.img" 2>/dev/null ||
		die "restore $id"
	cmp -s "$T/disk$i.img" "$T/r$i.img" || die "point $id of $name differs from the source"
done
ok "all 4 restore points restore byte-identical over the mover"

# The catalog lists exactly the repository's points.
ferry catalog --job nightly --json | jq -r '.points[].id' | sort >"$T/cat.ids"
point_ids "$T/repo" | sort >"$T/repo.ids"
[ "$(wc -l <"$T/cat.ids")" = 4 ] || die "catalog lists $(wc -l <"$T/cat.ids") points"
cmp -s "$T/cat.ids" "$T/repo.ids" || die "catalog and repository disagree"
ferry catalog | grep -q nightly || die "catalog table"
ok "the catalog lists the 4 points the repository holds"

# An agent that lost the server's answer reports the same result again:
# accepted, the point still listed once, no catalog error logged.
tid=$(jq -r '.tasks[0].id' "$T/s.json")
pid1=$(jq -r '.tasks[0].point' "$T/s.json")
tproxy=$(jq -r '.tasks[0].proxy' "$T/s.json")
again=$(api POST "/api/v1/agent/tasks/$tid/result" "{\"proxy\":\"$tproxy\",\"ok\":true,\"point\":{\"id\":\"$pid1\",\"name\":\"x\",\"created\":1,\"disk_size\":1,\"bytes_read\":1,\"bytes_stored\":1,\"bytes_sent\":0,\"seconds\":1}}")
[ "$(echo "$again" | tail -1)" = 200 ] || die "a repeated result: $again"
[ "$(ferry catalog --job nightly --json | jq "[.points[] | select(.id == \"$pid1\")] | length")" = 1 ] ||
	die "point $pid1 listed more than once after a repeated result"
grep -q "catalog: point" "$T/server.log" && die "a repeated result logged: $(grep 'catalog: point' "$T/server.log")"
ok "a repeated result is accepted once: point $pid1 listed once, nothing logged"

api GET /metrics >"$T/metrics"
grep -q '^ferry_sessions{state="success"} 1$' "$T/metrics" || die "metrics: $(cat "$T/metrics")"
grep -q '^ferry_repository_points{repo="main"} 4$' "$T/metrics" || die "metrics repo points"
grep -q '^ferry_task_duration_seconds_count 4$' "$T/metrics" || die "metrics durations"
ok "/metrics: sessions by state, repository points, task durations"
hits() { sed -n 's/^ferry_catalog_cache_hits_total //p' "$1"; }
api GET /metrics >"$T/metrics2"
[ "$(hits "$T/metrics2")" -gt "$(hits "$T/metrics")" ] || die "a second scrape of an unchanged catalog missed the cache"
cmp -s <(grep -v '^ferry_\(http\|catalog_cache\)' "$T/metrics") <(grep -v '^ferry_\(http\|catalog_cache\)' "$T/metrics2") ||
	die "the cached scrape differs: $(diff "$T/metrics" "$T/metrics2")"
ok "/metrics: a second scrape of an unchanged catalog comes from the cache, the same"

# A second run: retention keeps 3 per disk (the points are kept, both runs).
sid2=$(ferry job run nightly --wait 2>/dev/null) || die "second run failed"
ferry catalog --job nightly --json | jq -e '.points | length == 8' >/dev/null || die "8 points expected"
api GET /metrics >"$T/metrics3"
grep -q '^ferry_sessions{state="success"} 2$' "$T/metrics3" || die "metrics after the second run: $(grep sessions "$T/metrics3")"
grep -q '^ferry_repository_points{repo="main"} 8$' "$T/metrics3" || die "metrics repo points after the second run"
ok "second session succeeded; retention ran ($(ferry session log "${sid2%%$'\n'*}" | grep -c retention) disks)"

srv_stop_pid "$agent_p1" TERM; srv_stop_pid "$agent_p2" TERM
stop_server
ok "server stopped cleanly"
