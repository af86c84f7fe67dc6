#!/bin/bash
# ferry copy local -> s3:// (a real Ceph RGW): both points restore
# byte-identical from the bucket, a second copy uploads nothing; and back
# s3:// -> local, which restores too.
. "$(dirname "$0")/functions.sh"
json_num() { echo "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
. "$(dirname "$0")/copy.sh"
. "$(dirname "$0")/s3.sh"

s3_start
copy_source "$T/a"
ferry init --repo s3://ferry-t0520/off >/dev/null || die "init s3"
objects() { s3_curl GET "/ferry-t0520?list-type=2&prefix=off%2F" | grep -o '<Key>' | wc -l; }
copy_check "$T/a" s3://ferry-t0520/off
n=$(objects)
json=$(ferry copy --from "$T/a" --to s3://ferry-t0520/off --json) || die "third copy"
[ "$(objects)" -eq "$n" ] || die "a copy with nothing new added objects"
ok "a copy with nothing new adds no object to the bucket ($n objects)"
ferry verify --repo s3://ferry-t0520/off 2>&1 | grep -q "no damage" || die "verify the copy"
ok "the copy in the bucket verifies"

ferry init --repo "$T/back" >/dev/null || die "init back"
json=$(ferry copy --from s3://ferry-t0520/off --to "$T/back" --json) || die "copy back"
[ "$(json_num "$json" points_copied)" -eq 2 ] || die "copy back: $json"
ferry restore --repo "$T/back" "$id2" --to "$T/b2.img" 2>/dev/null || die "restore back"
same "$T/disk.img" "$T/b2.img" "copied back from S3, the point restores byte-identical"
