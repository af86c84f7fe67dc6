#!/bin/bash
# The scheduler, on a test clock 30 times faster than real time (a
# scheduled minute passes in 2 s): a job scheduled every minute runs on
# time, once per minute; a job "after" it runs when it succeeds;
# retention keeps 2 points per disk; failed tasks are retried as the job
# says and then fail the session; a disabled job stops running.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/server.sh"

srv_setup
start_server --time-scale 30
ferry init --repo "$T/repo" >/dev/null 2>&1 || die "init"
make_disk "$T/d.img" 2 1
ferry proxy add p1 --max-tasks 4 2>/dev/null || die "proxy add"
ferry repo add local --url "$T/repo" --path "$T/repo" 2>/dev/null || die "repo add"
ferry job create every --repo local --source "$T/d.img" --schedule '* * * * *' --keep-last 2 \
	2>/dev/null || die "job create"
ferry job create follow --repo local --disk f=$T/d.img --schedule 'after every' 2>/dev/null ||
	die "job create after"
ferry job create flaky --repo local --source "$T/missing.img" --retries 2 --retry-wait 60 2>/dev/null ||
	die "job create flaky"
next=$(ferry job show every --json | jq .next_run)
[ $((next % 60)) = 0 ] || die "next run $next is not on a minute"
start_agent p1
fid=$(ferry job run flaky) || die "run flaky"

wait_for 40 "4 scheduled sessions" bash -c \
	"[ \$(ferry session list --job every --json | jq '[.sessions[] | select(.trigger == \"schedule\")] | length') -ge 4 ]"
ferry job disable every 2>/dev/null || die "disable"
ferry session list --job every --json >"$T/s.json"
jq -r '.sessions[] | select(.trigger == "schedule") | "\(.scheduled) \(.created) \(.state)"' "$T/s.json" |
	sort -n >"$T/runs"
prev=0
while read -r sch created state; do
	[ $((sch % 60)) = 0 ] || die "scheduled time $sch is not on a minute"
	if [ "$prev" != 0 ] && [ $((sch - prev)) != 60 ]; then
		# A minute whose run found the previous session still running
		# (a loaded machine) is skipped, and the log says so.
		[ $(((sch - prev) % 60)) = 0 ] && grep -q 'scheduled run of job every skipped: .* has a session running' "$T/server.log" ||
			die "runs $prev and $sch are not whole minutes apart or a skip is not logged: $(cat "$T/runs")"
	fi
	late=$((created - sch))
	[ $late -ge 0 ] && [ $late -le 20 ] || die "run for $sch started $late s (test clock) late"
	prev=$sch
done <"$T/runs"
ok "job 'every' ran once per minute on time: $(wc -l <"$T/runs") runs, each within 20 s (test clock) of its minute"

wait_for 20 "the last 'every' session ends" bash -c \
	"ferry session list --job every --json | jq -e '[.sessions[] | select(.state == \"running\")] | length == 0'"
[ "$(jq '[.sessions[] | select(.state == "success")] | length' "$T/s.json")" -ge 3 ] || die "sessions failed: $(cat "$T/s.json")"
ferry session list --job follow --json | jq -e '[.sessions[] | select(.trigger == "after every")] | length >= 3' \
	>/dev/null || die "job 'follow' did not run after 'every'"
ok "job 'follow' ran after each successful session of 'every'"

n=$(ferry points --repo "$T/repo" --name d.img --json | jq length)
[ "$n" = 2 ] || die "retention kept $n points of d.img, expected 2"
[ "$(ferry catalog --name d.img --json | jq '.points | length')" = 2 ] || die "catalog still lists removed points"
[ "$(ferry catalog --name d.img --all --json | jq '[.points[] | select(.removed)] | length')" -ge 2 ] ||
	die "catalog does not keep the removed points marked"
ok "retention kept the 2 newest points of d.img; the catalog marks the others removed"

sleep 4
count=$(ferry session list --job every --json | jq '.sessions | length')
sleep 4
[ "$(ferry session list --job every --json | jq '.sessions | length')" = "$count" ] || die "a disabled job still runs"
ok "a disabled job does not run"

wait_for 30 "flaky's session ends" session_done "$fid"
ferry session show "$fid" --json >"$T/f.json"
[ "$(jq -r .state "$T/f.json")" = failed ] || die "flaky did not fail"
[ "$(jq '.tasks[0].attempts' "$T/f.json")" = 3 ] || die "flaky: $(jq '.tasks[0].attempts' "$T/f.json") attempts, expected 3"
jq -e '.tasks[0].message | test("missing.img")' "$T/f.json" >/dev/null || die "no reason: $(jq .tasks "$T/f.json")"
ferry session log "$fid" | grep -q 'retry 2 of 2 in 60 s' || die "retries not logged"
ok "a failing task was tried 3 times (2 retries, 60 s apart) and the session failed naming the cause"
srv_stop_pid "$agent_p1" TERM
stop_server
