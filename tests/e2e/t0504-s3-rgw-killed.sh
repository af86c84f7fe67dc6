#!/bin/bash
# ferry-test: long
# radosgw killed (SIGKILL) in the middle of a backup: with a short retry
# budget the backup fails cleanly (one error line, no restore point),
# earlier points stay intact; the restarted server takes the next backup,
# which reuses the chunks uploaded before the kill.  With a longer budget
# a backup rides out a restart of the server by retrying.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

s3_start
repo=s3://ferry-t0504/r
ferry init --repo "$repo" --block-size 64K >/dev/null || die "init"
make_disk "$T/base.img" 4
ferry backup --repo "$repo" --name vm "$T/base.img" >/dev/null 2>&1 || die "first backup"
id0=$(point_ids "$repo")
head -c $((32 << 20)) /dev/urandom >"$T/disk.img"
export FERRY_S3_UPLOADS=2

# chunks_in: chunk objects in the bucket now
chunks_in() {
	s3_curl GET "/ferry-t0504?list-type=2&prefix=r%2Fchunks%2F" | grep -o '<Key>' | wc -l
}
before=$(chunks_in)

FERRY_S3_RETRY_TIME=2 ferry backup --repo "$repo" --name vm "$T/disk.img" >"$T/b1.out" 2>"$T/b1.err" &
bpid=$!
for i in $(seq 400); do
	[ "$(chunks_in)" -gt $((before + 20)) ] && break
	kill -0 $bpid 2>/dev/null || break
	sleep 0.05
done
kill -0 $bpid 2>/dev/null || die "backup ended before the kill: $(cat "$T/b1.err")"
n=$(chunks_in)
s3_kill_rgw
ok "radosgw killed mid-backup with $n chunk objects stored"
wait $bpid; rc=$?
[ $rc -eq 1 ] || { cat "$T/b1.err"; die "backup exited $rc, expected 1"; }
grep -c '^ferry: ' "$T/b1.err" | grep -qx 1 || { cat "$T/b1.err"; die "not one error line"; }
grep -qE "s3 endpoint .*(attempt|refused)" "$T/b1.err" || { cat "$T/b1.err"; die "error does not name the endpoint"; }
ok "backup failed cleanly: $(cat "$T/b1.err")"

s3_start_rgw
[ "$(point_ids "$repo")" = "$id0" ] || die "a point appeared or vanished: $(point_ids "$repo")"
ok "no half restore point; the earlier point is listed"
ferry restore --repo "$repo" "$id0" --to "$T/r0.img" 2>/dev/null || die "restore earlier point"
same "$T/base.img" "$T/r0.img" "earlier point restores byte-identical after the kill"

json=$(ferry backup --repo "$repo" --name vm --json "$T/disk.img" 2>/dev/null) || die "backup after restart"
reused=$(echo "$json" | grep -o '"bytes_reused":[0-9]*' | cut -d: -f2)
[ "$reused" -ge $((20 * 65536)) ] || die "reused only $reused bytes: $json"
ok "backup after the restart reused $reused bytes uploaded before the kill"
ferry restore --repo "$repo" vm --to "$T/r1.img" 2>/dev/null || die "restore"
same "$T/disk.img" "$T/r1.img" "new point restores byte-identical"

# a restart inside the retry budget: the backup retries and succeeds
head -c $((16 << 20)) /dev/urandom >"$T/disk2.img"
before=$(chunks_in)
FERRY_S3_RETRY_TIME=60 ferry backup --repo "$repo" --name vm2 "$T/disk2.img" >"$T/b2.out" 2>"$T/b2.err" &
bpid=$!
for i in $(seq 400); do
	[ "$(chunks_in)" -gt $((before + 10)) ] && break
	kill -0 $bpid 2>/dev/null || break
	sleep 0.05
done
kill -0 $bpid 2>/dev/null || die "second backup ended before the kill"
s3_kill_rgw
sleep 1
s3_start_rgw
wait $bpid || { cat "$T/b2.err"; die "backup did not ride out the restart"; }
ok "backup retried through a radosgw restart and committed"
ferry restore --repo "$repo" vm2 --to "$T/r2.img" 2>/dev/null || die "restore 2"
same "$T/disk2.img" "$T/r2.img" "it restores byte-identical"
ferry verify --repo "$repo" 2>&1 | grep -q "no damage" || die "verify"
ok "verify: no damage"
