#!/bin/bash
# Objects above the multipart threshold go up in parts (forced small
# here): the chunks are multipart objects on the server (ETag "...-N"),
# and the point restores byte-identical and verifies; a large manifest
# goes up in parts too.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

s3_start
repo=s3://ferry-t0502/mp
head -c $((6 * 1024 * 1024)) /dev/urandom >"$T/disk.img"
export FERRY_S3_MULTIPART_THRESHOLD=256K FERRY_S3_PART_SIZE=64K
ferry init --repo "$repo" --block-size 4M >/dev/null || die "init"
ferry backup --repo "$repo" "$T/disk.img" >/dev/null 2>&1 || die "backup"
s3_curl GET "/ferry-t0502?list-type=2&prefix=mp%2Fchunks%2F" >"$T/list.xml"
parts=$(grep -o '<ETag>[^<]*</ETag>' "$T/list.xml" | grep -c -- '-[0-9]*&quot;</ETag>')
[ "$parts" -eq 2 ] || { cat "$T/list.xml"; die "expected 2 multipart chunk objects, found $parts"; }
ok "both 4 MiB chunks were uploaded as multipart objects (64 KiB parts)"
ferry restore --repo "$repo" disk.img --to "$T/r.img" 2>/dev/null || die "restore"
same "$T/disk.img" "$T/r.img" "multipart chunks restore byte-identical"
ferry verify --repo "$repo" 2>&1 | grep -q "no damage" || die "verify"
ok "verify: no damage"

# a manifest above the threshold: 64 MiB sparse disk at 64 KiB blocks
# has 1024 entries (34 KiB), so set the threshold below that
repo2=s3://ferry-t0502/mp2
truncate -s 64M "$T/sparse.img"
head -c 1M /dev/urandom | dd of="$T/sparse.img" bs=1M seek=30 conv=notrunc status=none
FERRY_S3_MULTIPART_THRESHOLD=16K FERRY_S3_PART_SIZE=8K ferry init --repo "$repo2" --block-size 64K >/dev/null || die "init 2"
FERRY_S3_MULTIPART_THRESHOLD=16K FERRY_S3_PART_SIZE=8K ferry backup --repo "$repo2" "$T/sparse.img" >/dev/null 2>&1 ||
	die "backup 2"
s3_curl GET "/ferry-t0502?list-type=2&prefix=mp2%2Fpoints%2F" | grep -q -- '-[0-9]*&quot;</ETag>' ||
	die "manifest not multipart"
ok "a manifest above the threshold was uploaded in parts"
ferry restore --repo "$repo2" sparse.img --to "$T/r2.img" 2>/dev/null || die "restore 2"
same "$T/sparse.img" "$T/r2.img" "it restores byte-identical"
# no upload left behind
s3_curl GET "/ferry-t0502?uploads=" | grep -q "<Upload>" && die "multipart uploads left open"
ok "no multipart upload left open"
