#!/bin/bash
# The repository lock on an SMB share (lock files in locks/): gc waits for
# a running backup and then removes nothing it uses; a backup killed with
# -9 leaves a lock that is recognised as stale (its process is gone) and
# removed; another host's fresh lock holds gc off (--lock-timeout gives
# up), its 11-minute-old one is stale.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/smb.sh"
requires bc

start_smbd
url=$(smb_url repo)
L=$T/smb/share/repo/locks
ferry init --repo "$url" >/dev/null || die "init"
make_disk "$T/small.img" 8
id0=$(ferry backup --repo "$url" "$T/small.img" 2>/dev/null) || die "first backup"
openssl enc -aes-128-ctr -pass pass:smblock -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c $((128 << 20)) >"$T/disk.img"

"$FERRY" backup --repo "$url" --threads 1 "$T/disk.img" >"$T/bk.out" 2>"$T/bk.err" &
bk=$!
cleanup_fn "kill -9 $bk"
for i in $(seq 200); do ls "$L" | grep -q '^s-' && break; sleep 0.05; done
ls "$L" | grep -q '^s-' || die "the backup holds no shared lock file"
# The backup is stopped (SIGSTOP) while gc starts: a stopped process still
# holds its lock, and under ASan on a loaded machine gc's own start took
# longer than the rest of the backup (it waited 0.010 s).
kill -STOP $bk
"$FERRY" gc --repo "$url" --json >"$T/gc.out" 2>"$T/gc.err" &
gc=$!
cleanup_fn "kill -9 $gc"
sleep 2
kill -0 $gc 2>/dev/null || die "gc did not wait for the stopped backup's lock: $(cat "$T/gc.err")"
kill -CONT $bk
while kill -0 $bk 2>/dev/null; do
	kill -0 $gc 2>/dev/null || die "gc finished while the backup was running: $(cat "$T/gc.err")"
	sleep 0.05
done
wait $bk || die "backup beside gc: $(cat "$T/bk.err")"
wait $gc || die "gc: $(cat "$T/gc.err")"
w=$(grep -o '"wait_seconds":[0-9.]*' "$T/gc.out" | cut -d: -f2)
[ "$(echo "$w > 0.5" | bc)" = 1 ] || die "gc waited $w s"
ok "gc waited $w s for the running backup's lock, then ran"
ferry verify --repo "$url" 2>"$T/v.err" || { cat "$T/v.err"; die "verify after gc"; }
ok "both points verify after gc"
[ -z "$(ls "$L")" ] || die "locks left: $(ls "$L")"

"$FERRY" backup --repo "$url" --threads 1 --name killed "$T/small.img" >/dev/null 2>&1 &
bk=$!
for i in $(seq 200); do ls "$L" | grep -q '^s-' && break; sleep 0.01; done
kill -9 $bk; wait $bk 2>/dev/null
if ls "$L" | grep -q '^s-'; then
	timeout 20 "$FERRY" gc --repo "$url" >/dev/null 2>"$T/gc.err" || die "gc with a dead process's lock: $(cat "$T/gc.err")"
	[ -z "$(ls "$L")" ] || die "the stale lock stayed: $(ls "$L")"
	ok "a killed backup's lock is stale (process gone): gc removed it and ran"
else
	ok "the killed backup had released its lock already"
fi

touch "$L/s-otherhost-4242-0"
expect_fail 124 timeout 3 "$FERRY" gc --repo "$url"
ok "another host's fresh lock holds gc off"
expect_fail 1 ferry gc --repo "$url" --lock-timeout 1
grep -q "gave up, nothing removed" "$T/err" || die "unclear error: $(cat "$T/err")"
[ ! -e "$L/x" ] || die "gc left its exclusive lock file behind"
ok "gc --lock-timeout gives up: $(cat "$T/err")"
touch -d '11 minutes ago' "$L/s-otherhost-4242-0"
timeout 20 "$FERRY" gc --repo "$url" >/dev/null 2>"$T/gc.err" || die "gc with an expired lock: $(cat "$T/gc.err")"
[ ! -e "$L/s-otherhost-4242-0" ] || die "the expired lock stayed"
ok "a lock not refreshed for 11 minutes is stale and removed"
ferry restore --repo "$url" "$id0" --to "$T/r0.img" 2>/dev/null || die "restore"
same "$T/small.img" "$T/r0.img" "the first point restores after all of it"
