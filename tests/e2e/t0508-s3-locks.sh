#!/bin/bash
# ferry-test: long
# Locks without a lock server (docs/backends.md): gc waits while a backup
# holds its lock object and removes nothing that backup needs; a backup
# waits while gc holds the exclusive lock; a lock whose heartbeat stopped
# (its process died) goes stale and stops blocking, and gc sweeps it.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

s3_start
B=ferry-t0508
repo=s3://$B/r
ferry init --repo "$repo" --block-size 64K >/dev/null || die "init"
make_disk "$T/a.img" 4
ferry backup --repo "$repo" --name a "$T/a.img" >/dev/null 2>&1 || die "backup a"
ferry backup --repo "$repo" --name old "$T/a.img" >/dev/null 2>&1 || die "backup old"
lock=$(printf 's-%032d' 7)

# a live shared lock (a backup in another process) holds gc off
export FERRY_S3_LOCK_STALE=30
s3_curl PUT "/$B/r/locks/$lock" --data-binary 'kind=shared' | tail -1 | grep -qx 200 || die "put lock"
ferry gc --repo "$repo" --json >"$T/gc1.json" 2>"$T/gc1.err" &
gpid=$!
sleep 3
kill -0 $gpid 2>/dev/null || die "gc did not wait for the shared lock: $(cat "$T/gc1.json" "$T/gc1.err")"
ok "gc waits while a shared lock object is live"
s3_curl DELETE "/$B/r/locks/$lock" >/dev/null
wait $gpid || die "gc failed: $(cat "$T/gc1.err")"
# (it waited the 3 s less its own start: a second or more, even under
# ASan on a loaded machine)
w=$(grep -o '"wait_seconds":[0-9.]*' "$T/gc1.json" | cut -d: -f2)
awk -v w="${w:-0}" 'BEGIN { exit !(w >= 1.0) }' || die "gc wait: $(cat "$T/gc1.json")"
ok "gc went on once the lock was released: $(grep -o '"wait_seconds":[0-9.]*' "$T/gc1.json")"

# gc's exclusive lock holds a backup off
xl=$(printf 'x-%032d' 9)
s3_curl PUT "/$B/r/locks/$xl" --data-binary 'kind=exclusive' >/dev/null
ferry backup --repo "$repo" --name b "$T/a.img" >"$T/b.out" 2>&1 &
bpid=$!
sleep 3
kill -0 $bpid 2>/dev/null || die "backup did not wait for gc's lock: $(cat "$T/b.out")"
point_ids "$repo" | grep -q . || die "points"
ok "a backup waits while an exclusive lock object is live"
s3_curl DELETE "/$B/r/locks/$xl" >/dev/null
wait $bpid || die "backup failed: $(cat "$T/b.out")"
ok "the backup went on once gc's lock was gone"

# a real backup running beside gc: gc waits for it and removes nothing it needs
head -c $((12 << 20)) /dev/urandom >"$T/big.img"
FERRY_S3_UPLOADS=1 ferry backup --repo "$repo" --name big "$T/big.img" >"$T/big.out" 2>&1 &
bpid=$!
for i in $(seq 100); do
	s3_curl GET "/$B?list-type=2&prefix=r%2Flocks%2F" | grep -q "<Key>r/locks/s-" && break
	sleep 0.05
done
ferry gc --repo "$repo" --json >"$T/gc2.json" 2>"$T/gc2.err" || die "gc beside a backup: $(cat "$T/gc2.err")"
kill -0 $bpid 2>/dev/null && die "gc finished while the backup still ran"
wait $bpid || die "backup beside gc failed: $(cat "$T/big.out")"
ok "gc beside a running backup waited for it: $(grep -o '"wait_seconds":[0-9.]*' "$T/gc2.json")"
ferry restore --repo "$repo" big --to "$T/rbig.img" 2>/dev/null || die "restore big"
same "$T/big.img" "$T/rbig.img" "the backup that ran beside gc restores byte-identical"
ferry verify --repo "$repo" 2>&1 | grep -q "no damage" || die "verify"
ok "verify after gc: no damage"

# a lock whose heartbeat stopped goes stale
export FERRY_S3_LOCK_STALE=3
s3_curl PUT "/$B/r/locks/$lock" --data-binary 'kind=shared' >/dev/null
sleep 4
ferry gc --repo "$repo" --json >"$T/gc3.json" 2>"$T/gc3.err" || die "gc 3: $(cat "$T/gc3.err")"
grep -q '"stale_files":[1-9]' "$T/gc3.json" || die "stale lock not swept: $(cat "$T/gc3.json")"
s3_curl GET "/$B?list-type=2&prefix=r%2Flocks%2F" | grep -q "$lock" && die "stale lock object still there"
ok "a stale lock (no heartbeat for 3 s) does not block gc and is swept"
s3_curl GET "/$B?list-type=2&prefix=r%2Flocks%2F" | grep -q "<Key>" && die "lock objects left behind"
ok "no lock objects left behind by finished processes"

# gc --lock-timeout gives up, removing nothing, while a lock stays live
export FERRY_S3_LOCK_STALE=30
s3_curl PUT "/$B/r/locks/$lock" --data-binary 'kind=shared' >/dev/null
expect_fail 1 ferry gc --repo "$repo" --lock-timeout 2
grep -q "gave up, nothing removed" "$T/err" || die "gc --lock-timeout: $(cat "$T/err")"
ok "gc --lock-timeout 2 gives up while a backup's lock is live: $(cat "$T/err")"
s3_curl DELETE "/$B/r/locks/$lock" >/dev/null
