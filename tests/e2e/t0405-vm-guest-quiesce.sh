#!/bin/bash
# Guest interaction against a real qemu-guest-agent on a unix socket, with
# every freeze and thaw command blocked (the host's own file systems are
# never frozen): sync, guest-ping and guest-info work; the refused freeze
# fails the backup, is followed by a thaw request, and the post-script
# still runs.  An agent that stops answering times out.  Pre-, snapshot-
# and post-scripts run in order with their environment; a failing or
# hanging pre-script stops the backup, the post-script always runs.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/vm-functions.sh"
requires qemu-ga

make_disk "$T/disk.img" 8
ferry init --repo "$T/repo" >/dev/null || die "init"
log=$T/scripts.log
post="echo post \$FERRY_PHASE \$FERRY_RESULT \$FERRY_POINT_ID >>$log"
npoints() { point_ids "$T/repo" | wc -l; }

# scripts, in order, with their environment
json=$(ferry backup --repo "$T/repo" --json --pre-script "echo pre \$FERRY_PHASE \$FERRY_SOURCE >>$log" \
	--snapshot-script "echo snapshot \$FERRY_PHASE >>$log; echo to-stdout" \
	--post-script "$post" "$T/disk.img" 2>"$T/err") || { cat "$T/err"; die "backup with scripts"; }
id=$(json_id "$json")
[ -n "$id" ] || die "a script's output reached stdout: $json"
printf 'pre pre %s\nsnapshot snapshot\npost post success %s\n' "$T/disk.img" "$id" | cmp -s - "$log" ||
	{ cat "$log"; die "scripts did not run in order with their environment"; }
grep -q to-stdout "$T/err" || die "a script's stdout was lost"
ok "pre, snapshot and post scripts ran in order; post got the point id"

# a failing pre-script stops the backup; the post-script runs
: >"$log"
n0=$(npoints)
expect_fail 1 ferry backup --repo "$T/repo" --pre-script "exit 3" --post-script "$post" "$T/disk.img"
grep -q "pre-script failed (exit 3)" "$T/err" || { cat "$T/err"; die "pre-script failure not reported"; }
grep -qx "post post failure" "$log" || die "post-script did not run after the pre-script failed"
[ "$(npoints)" = "$n0" ] || die "a point was made although the pre-script failed"
ok "a failing pre-script stops the backup, the post-script still runs"

# a hanging pre-script is killed at the timeout
: >"$log"
start=$SECONDS
expect_fail 1 ferry backup --repo "$T/repo" --script-timeout 1 --pre-script "sleep 30" --post-script "$post" "$T/disk.img"
[ $((SECONDS - start)) -lt 10 ] || die "the script timeout did not hold"
grep -q "pre-script timed out" "$T/err" || die "timeout not reported"
grep -q "^post post failure" "$log" || die "post-script did not run after the timeout"
ok "a hanging pre-script is killed at --script-timeout"

# a failing post-script after a good backup: a warning, the point stays
json=$(ferry backup --repo "$T/repo" --json --post-script "exit 4" "$T/disk.img" 2>"$T/err") || die "post-script failure failed the backup"
grep -q "post-script failed (exit 4).*committed" "$T/err" || { cat "$T/err"; die "post-script failure not warned"; }
ok "a failing post-script is a warning once the point is committed"

# qemu-guest-agent on a unix socket, freeze and thaw blocked
sock=$T/qga.sock
mkdir -p "$T/qga-state"
qemu-ga -m unix-listen -p "$sock" -t "$T/qga-state" -f "$T/qga.pid" -l "$T/qga.log" -v \
	-b guest-fsfreeze-freeze,guest-fsfreeze-freeze-list,guest-fsfreeze-thaw,guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid &
qga=$!
cleanup_fn "kill -CONT $qga; kill $qga"
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || die "qemu-ga did not start"

: >"$log"
n0=$(npoints)
expect_fail 1 ferry backup --repo "$T/repo" --quiesce "qga:$sock" --post-script "$post" "$T/disk.img"
grep -q "could not freeze the guest: CommandNotFound" "$T/err" || { cat "$T/err"; die "freeze refusal not reported"; }
ver=$(qemu-ga -V | grep -o '[0-9][0-9.]*' | head -1)
grep -q "qemu-guest-agent $ver" "$T/err" || die "agent version (guest-info) not in the message"
for c in guest-sync-delimited guest-ping guest-info guest-fsfreeze-freeze guest-fsfreeze-thaw; do
	grep -aq "\"execute\":\"$c\"" "$T/qga.log" || die "the agent never got $c"
done
grep -a '"execute"' "$T/qga.log" | tail -1 | grep -q guest-fsfreeze-thaw || die "thaw was not the last request"
grep -q "^post post failure" "$log" || die "post-script did not run after the freeze failed"
[ "$(npoints)" = "$n0" ] || die "a point was made although the freeze failed"
ok "qemu-ga $ver: sync, ping, info; the refused freeze is thawed, post-script ran, no point"

# an agent that stops answering: the timeout holds, thaw is still tried
kill -STOP $qga
start=$SECONDS
expect_fail 1 ferry backup --repo "$T/repo" --quiesce "qga:$sock" --quiesce-timeout 1 "$T/disk.img"
kill -CONT $qga
[ $((SECONDS - start)) -lt 10 ] || die "the agent timeout did not hold"
grep -q "did not answer within 1 s" "$T/err" || { cat "$T/err"; die "agent timeout not reported"; }
ok "an agent that does not answer times out after --quiesce-timeout"
expect_fail 2 ferry backup --repo "$T/repo" --quiesce "vsock:3" "$T/disk.img"
ok "--quiesce takes only qga:SOCKET"
kill $qga
