#!/bin/bash
# ferry-test: long
# The RADOS OSD under radosgw (bluestore on a file, so data survives)
# killed with SIGKILL in the middle of a backup: radosgw stops answering,
# ferry times out, retries within its budget and fails cleanly; earlier
# points stay intact once the OSD is back, and the next backup succeeds
# and reuses the chunks stored before the kill.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

s3_start bluestore
repo=s3://ferry-t0505/r
ferry init --repo "$repo" --block-size 64K >/dev/null || die "init"
make_disk "$T/base.img" 4
ferry backup --repo "$repo" --name vm "$T/base.img" >/dev/null 2>&1 || die "first backup"
id0=$(point_ids "$repo")
head -c $((24 << 20)) /dev/urandom >"$T/disk.img"

chunks_in() {
	s3_curl GET "/ferry-t0505?list-type=2&prefix=r%2Fchunks%2F" | grep -o '<Key>' | wc -l
}
before=$(chunks_in)
FERRY_S3_UPLOADS=2 FERRY_S3_TIMEOUT=2 FERRY_S3_RETRY_TIME=6 \
	ferry backup --repo "$repo" --name vm "$T/disk.img" >"$T/b1.out" 2>"$T/b1.err" &
bpid=$!
for i in $(seq 400); do
	[ "$(chunks_in)" -gt $((before + 20)) ] && break
	kill -0 $bpid 2>/dev/null || break
	sleep 0.05
done
kill -0 $bpid 2>/dev/null || die "backup ended before the kill: $(cat "$T/b1.err")"
s3_kill_osd
ok "OSD killed mid-backup"
t0=$(date +%s)
wait $bpid; rc=$?
[ $rc -eq 1 ] || { cat "$T/b1.err"; die "backup exited $rc, expected 1"; }
grep -c '^ferry: ' "$T/b1.err" | grep -qx 1 || { cat "$T/b1.err"; die "not one error line"; }
grep -qE "s3 endpoint .*attempt" "$T/b1.err" || { cat "$T/b1.err"; die "error does not say what was tried"; }
[ $(($(date +%s) - t0)) -lt 40 ] || die "the failure took $(($(date +%s) - t0)) s"
ok "backup failed cleanly within its retry budget: $(cat "$T/b1.err")"

s3_start_osd
ok "OSD restarted (bluestore kept its data)"
# radosgw may need a moment to see the OSD again
for i in $(seq 60); do point_ids "$repo" >/dev/null 2>&1 && break; sleep 0.5; done
[ "$(point_ids "$repo")" = "$id0" ] || die "points after the restart: $(point_ids "$repo")"
ok "no half restore point; the earlier point is listed"
ferry restore --repo "$repo" "$id0" --to "$T/r0.img" 2>/dev/null || die "restore earlier point"
same "$T/base.img" "$T/r0.img" "earlier point restores byte-identical"
json=$(ferry backup --repo "$repo" --name vm --json "$T/disk.img" 2>"$T/b2.err") || { cat "$T/b2.err"; die "backup after restart"; }
reused=$(echo "$json" | grep -o '"bytes_reused":[0-9]*' | cut -d: -f2)
[ "$reused" -ge $((20 * 65536)) ] || die "reused only $reused bytes: $json"
ok "backup after the restart reused $reused bytes stored before the kill"
ferry restore --repo "$repo" vm --to "$T/r1.img" 2>/dev/null || die "restore"
same "$T/disk.img" "$T/r1.img" "new point restores byte-identical"
