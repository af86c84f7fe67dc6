#!/bin/bash
# An encrypted repository (sealed chunks and manifests) on S3 with Object
# Lock: points list (through the manifest reader, with the key), restore
# byte-identical, and a point reusing every chunk raises their retention
# (a sealed manifest is read back through the reader at commit).
. "$(dirname "$0")/functions.sh"
export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024 # small key-derivation cost
. "$(dirname "$0")/s3.sh"

s3_start
B=ferry-t0521
repo=s3://$B/r
export FERRY_PASSWORD=t0521-secret FERRY_S3_OBJECT_LOCK_EXTRA=0
ferry init --repo "$repo" --encrypt --object-lock-days 1 >/dev/null || die "init"
make_disk "$T/disk.img" 4
id1=$(ferry backup --repo "$repo" --name vm "$T/disk.img" 2>/dev/null) || die "backup"
ferry points --repo "$repo" | grep -q "$id1.*vm" || die "points: $(ferry points --repo "$repo" 2>&1)"
ok "encrypted point $id1 listed"
ck=$(s3_curl GET "/$B?list-type=2&prefix=r%2Fchunks%2F" | grep -o '<Key>[^<]*</Key>' | head -1 | sed 's/<[^>]*>//g')
u1=$(s3_head "/$B/$ck" | grep -i "^x-amz-object-lock-retain-until-date:" | cut -d' ' -f2)
sleep 2
ferry backup --repo "$repo" --name vm "$T/disk.img" >/dev/null 2>&1 || die "backup 2"
u2=$(s3_head "/$B/$ck" | grep -i "^x-amz-object-lock-retain-until-date:" | cut -d' ' -f2)
[ "$(date -d "$u2" +%s)" -gt "$(date -d "$u1" +%s)" ] || die "retention not raised: $u1 -> $u2"
ok "reused chunk's retention raised by the later point: $u1 -> $u2"
ferry restore --repo "$repo" vm --to "$T/r.img" 2>/dev/null || die "restore"
same "$T/disk.img" "$T/r.img" "encrypted point restores from S3 byte-identical"
ferry verify --repo "$repo" 2>&1 | grep -q "no damage" || die "verify"
ok "verify: no damage"
