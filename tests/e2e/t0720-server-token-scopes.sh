#!/bin/bash
# API token scopes and the listing cache.  A read token may GET everything
# but gets 403 on every POST and DELETE (with the scope it needs named);
# an operate token runs jobs and is enough for a proxy agent, but cannot
# create jobs; tokens made before scopes (migration 3) are admin.  The
# full points listing is served from the cache while the catalog does not
# change (identical bytes, /metrics counts the hits) and is read again
# after a new point and after retention marks one removed.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/server.sh"

srv_setup
start_server
start_target_mover
make_disk "$T/a.img" 4 1

RD=$(ferry token create --config "$T/server.conf" --name viewer --scope read 2>/dev/null) ||
	die "token create --scope read"
OP=$(ferry token create --config "$T/server.conf" --name ops --scope operate 2>/dev/null) ||
	die "token create --scope operate"
ferry token create --config "$T/server.conf" --scope root >/dev/null 2>"$T/err" &&
	die "an unknown scope was accepted"
grep -q "unknown scope 'root'" "$T/err" || die "unclear message: $(cat "$T/err")"
ferry token list --config "$T/server.conf" --json >"$T/tokens.json" || die "token list"
[ "$(jq -r '[.tokens[] | .name + "=" + .scope] | join(" ")' "$T/tokens.json")" = \
	"test=admin viewer=read ops=operate" ] || die "token list: $(cat "$T/tokens.json")"
ok "tokens with scopes read and operate made; an unknown scope refused; list shows scopes"

ferry proxy add p1 --max-tasks 1 2>/dev/null || die "proxy add"
ferry repo add main --url "ferry://127.0.0.1:$MOVER_PORT/main" --path "$T/repo" \
	2>/dev/null || die "repo add"
ferry job create j --repo main --source "$T/a.img" --keep-last 1 2>/dev/null || die "job create"

# call TOKEN METHOD PATH [BODY]: prints "STATUS BODY".
call() {
	curl -sS --cacert "$T/pki/ca.crt" -X "$2" -H "Authorization: Bearer $1" \
		${4+-d "$4"} -o "$T/body" -w '%{http_code}' "$FERRY_SERVER$3"
	echo " $(cat "$T/body")"
}
for p in /api/v1/jobs /api/v1/jobs/j /api/v1/proxies /api/v1/repos /api/v1/sessions \
	/api/v1/points /metrics; do
	r=$(call "$RD" GET "$p")
	[ "${r%% *}" = 200 ] || die "read token: GET $p: $r"
done
ok "read token: every GET answers 200"
forbidden() { # TOKEN SCOPE-NEEDED METHOD PATH [BODY]
	local r
	r=$(call "$1" "$3" "$4" ${5+"$5"})
	[ "${r%% *}" = 403 ] || die "$3 $4 with a smaller token: $r"
	echo "$r" | grep -q "needs a token with scope $2" || die "403 without the scope needed: $r"
}
forbidden "$RD" admin POST /api/v1/jobs '{"name":"x","repo":"main","sources":["/dev/null"]}'
forbidden "$RD" operate POST /api/v1/jobs/j/run
forbidden "$RD" operate POST /api/v1/jobs/j/disable
forbidden "$RD" admin DELETE /api/v1/jobs/j
forbidden "$RD" admin POST /api/v1/proxies '{"name":"p9"}'
forbidden "$RD" admin DELETE /api/v1/proxies/p1
forbidden "$RD" admin POST /api/v1/repos '{"name":"r9","url":"ferry://127.0.0.1:1/x"}'
forbidden "$RD" operate POST /api/v1/agent/poll '{"proxy":"p1"}'
forbidden "$RD" admin POST /api/v1/no/such/endpoint
FERRY_TOKEN=$RD ferry job run j >/dev/null 2>"$T/err" && die "ferry job run with a read token succeeded"
grep -q "scope read" "$T/err" || die "CLI error does not name the scope: $(cat "$T/err")"
r=$(call "fy_000000000000000000000000000000000000000000000000" GET /api/v1/jobs)
[ "${r%% *}" = 401 ] || die "unknown token: $r"
ok "read token: 403 naming the scope needed on POST and DELETE (jobs, run, proxies, repos, agent), CLI too; unknown token 401"

forbidden "$OP" admin POST /api/v1/jobs '{"name":"x","repo":"main","sources":["/dev/null"]}'
forbidden "$OP" admin DELETE /api/v1/jobs/j
r=$(call "$OP" POST /api/v1/jobs/j/disable); [ "${r%% *}" = 200 ] || die "operate: disable: $r"
r=$(call "$OP" POST /api/v1/jobs/j/enable); [ "${r%% *}" = 200 ] || die "operate: enable: $r"
ok "operate token: enables and disables jobs, 403 on creating or deleting one"

# The agent with an operate token, jobs run with it.
FERRY_TOKEN=$OP start_agent p1
sid=$(FERRY_TOKEN=$OP ferry job run j) || die "job run with an operate token"
wait_for 60 "session $sid ends" session_done "$sid"
[ "$(session_state "$sid")" = success ] || { ferry session log "$sid"; die "session $sid failed"; }
ok "operate token: runs a job; the agent works with an operate token (session $sid)"

# The listing cache: hits while nothing changes, misses after each write.
metric() { api GET /metrics | grep "^$1 " | cut -d' ' -f2; }
FERRY_TOKEN=$RD ferry catalog --json >"$T/c1.json" || die "catalog"
h0=$(metric ferry_catalog_cache_hits_total)
for i in 1 2 3; do
	FERRY_TOKEN=$RD ferry catalog --json >"$T/c2.json" || die "catalog"
	cmp -s "$T/c1.json" "$T/c2.json" || die "a cached listing differs from the first"
done
h1=$(metric ferry_catalog_cache_hits_total)
[ $((h1 - h0)) -ge 3 ] || die "cache hits went from $h0 to $h1 over 3 listings"
[ "$(jq '.points | length' "$T/c1.json")" = 1 ] || die "expected 1 point: $(cat "$T/c1.json")"
ok "an unchanged catalog lists from the cache ($((h1 - h0)) hits, byte-identical)"
sid2=$(ferry job run j) || die "second run"
wait_for 60 "session $sid2 ends" session_done "$sid2"
[ "$(session_state "$sid2")" = success ] || { ferry session log "$sid2"; die "session $sid2 failed"; }
# keep-last 1: the first point is marked removed, the new one listed.
ferry catalog --json >"$T/c3.json" || die "catalog"
first=$(jq -r '.points[0].id' "$T/c1.json")
[ "$(jq '.points | length' "$T/c3.json")" = 1 ] || die "after retention: $(cat "$T/c3.json")"
[ "$(jq -r '.points[0].id' "$T/c3.json")" != "$first" ] || die "the listing still shows the removed point"
ferry catalog --all --json | jq -e --arg f "$first" \
	'[.points[] | select(.id == $f and .removed)] | length == 1' >/dev/null ||
	die "--all does not show the removed point"
point_ids "$T/repo" | grep -qx "$(jq -r '.points[0].id' "$T/c3.json")" ||
	die "the listed point is not in the repository"
ok "after a new point and retention the listing is read again (new point listed, old one removed)"

srv_stop_pid "$agent_p1" TERM
stop_server
