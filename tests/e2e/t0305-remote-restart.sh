#!/bin/bash
# The target mover dies mid-backup: kill -9, restarted on the same port,
# then a clean SIGTERM (which parks the session and exits at once),
# restarted again.  The source keeps reconnecting, resumes the session
# where the mover's disk says it stopped, and finishes; the new point and
# every earlier one restore byte-identical and verify.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
P=$T/pki
margs=(--repo "$T/repo" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt")
ferry init --repo "$T/repo" >/dev/null || die "init"
start_mover m -- "${margs[@]}"
port=$m_port
url=ferry://127.0.0.1:$port/repo
make_disk "$T/disk.img" 16
id0=$(ferry backup --repo "$url" $(src_tls) "$T/disk.img" 2>/dev/null) || die "first backup"
cp "$T/disk.img" "$T/v0.img"
openssl enc -aes-128-ctr -pass pass:restart -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c $((48 << 20)) >"$T/disk.img"
ok "earlier point $id0; now a 48 MiB backup at 8 MiB/s"

"$FERRY" backup --repo "$url" $(src_tls) --limit-rate 8M --retry 60 --json "$T/disk.img" \
	>"$T/bk.json" 2>"$T/bk.err" &
bk=$!
cleanup_fn "kill -9 $bk"

blocks() { # entries the mover's session file holds
	local f
	f=$(ls "$T/repo/sessions/" 2>/dev/null | head -1)
	[ -n "$f" ] || { echo 0; return; }
	echo $(( ($(stat -c %s "$T/repo/sessions/$f") - 200) / 33 ))
}
wait_blocks() { # N: until the session holds at least N blocks
	local i
	for i in $(seq 300); do
		[ "$(blocks)" -ge "$1" ] && return 0
		kill -0 $bk 2>/dev/null || die "the backup ended early: $(cat "$T/bk.err")"
		sleep 0.05
	done
	die "the session did not reach block $1"
}

wait_blocks 8
kill -9 "$m_pid"
held=$(blocks)
ok "killed the mover (-9) with about $held blocks in the session file"
sleep 1
start_mover m "$port" -- "${margs[@]}"
wait_blocks $((held + 8))
grep -q "resumed at block [1-9]" "$T/m.log" || { cat "$T/m.log"; die "no resume after the restart"; }
ok "restarted: $(grep "resumed at block" "$T/m.log" | tail -1 | sed 's/.*session=[0-9a-f]* repo=repo //')"

t0=$(date +%s%N)
stop_pid "$m_pid" TERM || die "the mover did not stop on SIGTERM"
wait "$m_pid"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc -eq 0 ] || { cat "$T/m.log"; die "the mover exited $rc on SIGTERM"; }
grep -q "parked at block" "$T/m.log" || die "SIGTERM did not park the session"
grep -q "stopped" "$T/m.log" || die "the mover did not log its stop"
ok "SIGTERM: session $(grep "parked at block" "$T/m.log" | tail -1 | sed 's/.*repo=repo //'), exit 0 in $ms ms"
sleep 0.5
start_mover m "$port" -- "${margs[@]}"

wait $bk || { cat "$T/bk.err"; die "the backup failed"; }
json=$(cat "$T/bk.json")
id=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
resumes=$(json_num "$json" resumes)
[ "$resumes" -ge 2 ] || die "only $resumes resumes"
[ "$(grep -c " begin point $id" "$T/m.log")" -eq 1 ] || die "the session was begun again"
ok "the backup finished after $resumes resumes of one session"
ferry restore --repo "$url" $(src_tls) "$id" --to "$T/r.img" 2>/dev/null || die "restore"
same "$T/disk.img" "$T/r.img" "the resumed point restores byte-identical"
ferry restore --repo "$T/repo" "$id0" --to "$T/r0.img" 2>/dev/null || die "restore earlier point"
same "$T/v0.img" "$T/r0.img" "the earlier point is intact"
ferry verify --repo "$T/repo" 2>/dev/null || die "verify"
ok "the repository verifies"
[ -z "$(ls "$T/repo/sessions")" ] || die "a session file is left"
finish_movers
