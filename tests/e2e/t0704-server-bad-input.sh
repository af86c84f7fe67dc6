#!/bin/bash
# Bad requests get a 4xx with a message naming the cause, and the server
# keeps serving: missing and wrong tokens, malformed JSON, unknown
# fields, wrong types, an invalid cron expression, a job on an unknown
# repository, duplicates, oversized bodies, unknown endpoints.  SIGHUP
# reloads the configuration; a broken one is refused and the old kept.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/server.sh"

srv_setup "max-body = 4096"
start_server
ferry repo add main --url "ferry://127.0.0.1:1/main" 2>/dev/null || die "repo add"

# status_is WANT MESSAGE-REGEX METHOD PATH [BODY]
status_is() {
	local want=$1 re=$2 out code
	shift 2
	out=$(api "$@") || die "curl failed for $*"
	code=$(tail -1 <<<"$out")
	[ "$code" = "$want" ] || die "$* -> $code, expected $want: $out"
	head -n -1 <<<"$out" | jq -e --arg re "$re" '.error | test($re; "i")' >/dev/null ||
		die "$* -> message does not match '$re': $out"
	echo "ok: $1 $2 -> $code $(head -n -1 <<<"$out" | jq -r .error)"
}

# Tokens.
code=$(curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/pki/ca.crt" "$FERRY_SERVER/api/v1/jobs")
[ "$code" = 401 ] && grep -q 'missing API token' "$T/out" || die "no token -> $code $(cat "$T/out")"
code=$(curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/pki/ca.crt" -H 'Authorization: Bearer fy_nope' "$FERRY_SERVER/api/v1/jobs")
[ "$code" = 401 ] && grep -q 'invalid API token' "$T/out" || die "wrong token -> $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/pki/ca.crt" -H "Authorization: Bearer ${TOKEN}x" "$FERRY_SERVER/metrics")
[ "$code" = 401 ] || die "/metrics without a valid token -> $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/pki/ca.crt" -X POST -d '{}' "$FERRY_SERVER/api/v1/agent/poll")
[ "$code" = 401 ] || die "agent poll without a token -> $code"
FERRY_TOKEN=wrong expect_fail 1 ferry job list
grep -q 'invalid API token' "$T/err" || die "CLI with a wrong token: $(cat "$T/err")"
ok "missing or wrong token: 401 on every endpoint, the CLI says why"
curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$SRV_PORT/api/v1/jobs"
kill -0 "$server_pid" || die "plain HTTP to the TLS port killed the server"

# Bodies.
status_is 400 'malformed JSON' POST /api/v1/jobs '{"name": "x", '
status_is 400 'malformed JSON' POST /api/v1/jobs '{"name": "x"} trailing'
status_is 400 'empty' POST /api/v1/jobs ''
status_is 400 'expected a JSON object' POST /api/v1/jobs '[1,2]'
status_is 400 "unknown field 'colour'" POST /api/v1/jobs '{"name":"a","repo":"main","sources":["/x"],"colour":"red"}'
status_is 400 "unknown field 'keep_forever'" POST /api/v1/jobs '{"name":"a","repo":"main","sources":["/x"],"retention":{"keep_forever":1}}'
status_is 400 "'retries' must be a whole number" POST /api/v1/jobs '{"name":"a","repo":"main","sources":["/x"],"retries":"3"}'
status_is 400 "'retries' must be 0 to 100" POST /api/v1/jobs '{"name":"a","repo":"main","sources":["/x"],"retries":1000}'
status_is 400 "'sources' is required" POST /api/v1/jobs '{"name":"a","repo":"main"}'
status_is 400 "job name" POST /api/v1/jobs '{"name":"../a","repo":"main","sources":["/x"]}'
status_is 400 "invalid schedule: minute field '61'" POST /api/v1/jobs '{"name":"a","repo":"main","sources":["/x"],"schedule":"61 * * * *"}'
status_is 400 "invalid schedule: a cron expression has 5 fields" POST /api/v1/jobs '{"name":"a","repo":"main","sources":["/x"],"schedule":"* * *"}'
status_is 400 "invalid schedule: day of week" POST /api/v1/jobs '{"name":"a","repo":"main","sources":["/x"],"schedule":"0 0 * * funday"}'
status_is 400 "repository 'nowhere' is not registered" POST /api/v1/jobs '{"name":"a","repo":"nowhere","sources":["/x"]}'
status_is 400 "'after ghost' names no job" POST /api/v1/jobs '{"name":"a","repo":"main","sources":["/x"],"schedule":"after ghost"}'
status_is 400 "used twice" POST /api/v1/jobs '{"name":"a","repo":"main","sources":["/x/d","/y/d"]}'
status_is 400 "block_size" POST /api/v1/jobs '{"name":"a","repo":"main","sources":["/x"],"block_size":"3000"}'
status_is 400 "compression" POST /api/v1/jobs '{"name":"a","repo":"main","sources":["/x"],"compression":"brotli"}'
status_is 413 'larger than 4096 bytes' POST /api/v1/jobs "{\"name\":\"$(head -c 6000 /dev/zero | tr '\0' a)\"}"
status_is 400 "unknown field 'x'" POST /api/v1/proxies '{"name":"p","x":1}'
status_is 400 "'max_tasks' must be 1 to 1024" POST /api/v1/proxies '{"name":"p","max_tasks":0}'
status_is 400 "repository url" POST /api/v1/repos '{"name":"r2","url":"http://example"}'
status_is 409 "already registered" POST /api/v1/repos '{"name":"main","url":"/srv/repo"}'
status_is 404 "no job named 'ghost'" POST /api/v1/jobs/ghost/run
status_is 404 "no session 999" GET /api/v1/sessions/999
status_is 400 "not a number" GET /api/v1/sessions/abc
status_is 404 "no such endpoint" GET /api/v2/anything
status_is 405 "proxies" PUT /api/v1/proxies
status_is 404 "not registered" POST /api/v1/agent/poll '{"proxy":"ghost"}'
status_is 400 "'running' must hold task ids" POST /api/v1/agent/poll '{"proxy":"ghost","running":["x"]}'
status_is 404 "no task 5" POST /api/v1/agent/tasks/5/result '{"proxy":"p","ok":true}'
ok "every bad request: 4xx naming the cause"

# The CLI passes the server's message on, with exit 2 for bad input.
expect_fail 2 ferry job create a --repo main --source /x --schedule '*/0 * * * *'
grep -q 'step is 1 to 59' "$T/err" || die "CLI cron error: $(cat "$T/err")"
expect_fail 2 ferry job create a --repo nowhere --source /x
grep -q "repository 'nowhere' is not registered" "$T/err" || die "CLI repo error"
expect_fail 4 ferry job show ghost
ok "the CLI prints the server's reason and exits 2 (bad input) or 4 (not found)"

# Still serving, and a good job goes in.
ferry job create good --repo main --source /x/disk.img --schedule '30 2 * * mon-fri' 2>/dev/null ||
	die "server no longer accepts a good job"
[ "$(ferry job show good --json | jq -r .spec.schedule)" = '30 2 * * mon-fri' ] || die "job show"
kill -0 "$server_pid" || die "server died"
ok "server still serving after the bad input"
ferry proxy add p9 --max-tasks 3 2>/dev/null || die "proxy add"
expect_fail 1 ferry proxy add p9
grep -q "already registered" "$T/err" || die "duplicate proxy: $(cat "$T/err")"
ferry proxy remove p9 2>/dev/null || die "proxy remove"
expect_fail 4 ferry proxy remove p9
ferry job disable good 2>/dev/null && [ "$(ferry job show good --json | jq .enabled)" = false ] || die "disable"
ferry job enable good 2>/dev/null && [ "$(ferry job show good --json | jq .next_run)" != null ] || die "enable"
ferry job delete good 2>/dev/null || die "job delete"
expect_fail 4 ferry job delete good
ok "proxy add/remove, job enable/disable/delete; duplicates and unknown names refused"

# SIGHUP: a broken configuration is refused, a good one applied.
cp "$T/server.conf" "$T/server.conf.good"
echo "no-such-setting = 1" >>"$T/server.conf"
kill -HUP "$server_pid"
wait_for 10 "the refused reload is logged" grep -q "reload refused.*unknown setting 'no-such-setting'" "$T/server.log"
ferry job list >/dev/null 2>&1 || die "not serving after a refused reload"
sed 's/^proxy-timeout = .*/proxy-timeout = 7/' "$T/server.conf.good" >"$T/server.conf"
kill -HUP "$server_pid"
wait_for 10 "the reload is logged" grep -q "configuration reloaded.*proxy-timeout 7 s" "$T/server.log"
ferry job list >/dev/null 2>&1 || die "not serving after a reload"
ok "SIGHUP: a broken configuration is refused, a good one applied; still serving"

ferry token list --config "$T/server.conf" | grep -q ' test ' || die "token list"
if [ "${FERRY_TEST_DB:-sqlite}" = sqlite ]; then
	hash=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
	grep -aqs "$TOKEN" "$T"/state/catalog.db* && die "the token is stored in clear"
	grep -aqs "$hash" "$T"/state/catalog.db* || die "the token's SHA-256 is not in the catalog"
fi
ok "tokens listed by name; only their hash is stored"
stop_server
