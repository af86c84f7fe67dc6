#!/bin/bash
# Object Lock: init --object-lock-days makes the bucket with Object Lock;
# every chunk and manifest gets a COMPLIANCE retention; the server itself
# refuses to delete a locked manifest or chunk (a raw signed DELETE of the
# version, as stolen keys would send); a later point that reuses a chunk
# raises its retention; forget keeps locked points and gc keeps locked
# chunks, saying so, and gc removes a chunk once its retention expired.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

s3_start
B=ferry-t0506
repo=s3://$B/r
s3_curl PUT "/ferry-t0506-plain" >/dev/null
expect_fail 2 ferry init --repo s3://ferry-t0506-plain/r --object-lock-days 1
one_error_line "no Object Lock"
ok "a bucket without Object Lock is refused: $(cat "$T/err")"
expect_fail 2 ferry init --repo "$T/local" --object-lock-days 1
ok "--object-lock-days on a local repository is refused"

ferry init --repo "$repo" --object-lock-days 1 --block-size 256K | grep -q "object lock 1 days" || die "init"
s3_curl GET "/$B?object-lock=" | grep -q "<ObjectLockEnabled>Enabled" || die "bucket has no object lock"
ok "init created the bucket with Object Lock enabled"

make_disk "$T/disk.img" 4
export FERRY_S3_OBJECT_LOCK_EXTRA=0 # chunks kept exactly as long as the point
id1=$(ferry backup --repo "$repo" --name vm "$T/disk.img" 2>/dev/null) || die "backup"
s3_head "/$B/r/points/$id1" >"$T/h1"
grep -qi "^x-amz-object-lock-mode: COMPLIANCE" "$T/h1" || { cat "$T/h1"; die "manifest not locked"; }
until1=$(grep -i "^x-amz-object-lock-retain-until-date:" "$T/h1" | cut -d' ' -f2)
exp=$(date -u -d '+1 day' +%s)
got=$(date -u -d "$until1" +%s)
[ $((got - exp)) -lt 120 ] && [ $((exp - got)) -lt 120 ] || die "manifest kept until $until1, expected about a day"
ok "manifest $id1 has a COMPLIANCE retention until $until1"
ck=$(s3_curl GET "/$B?list-type=2&prefix=r%2Fchunks%2F" | grep -o '<Key>[^<]*</Key>' | head -1 | sed 's/<[^>]*>//g')
s3_head "/$B/$ck" >"$T/c1"
grep -qi "^x-amz-object-lock-mode: COMPLIANCE" "$T/c1" || { cat "$T/c1"; die "chunk not locked"; }
cuntil1=$(grep -i "^x-amz-object-lock-retain-until-date:" "$T/c1" | cut -d' ' -f2)
ok "chunk ${ck##*/} has a COMPLIANCE retention until $cuntil1"

# raw deletes of the stored versions, signed with the repository's keys
for key in "r/points/$id1" "$ck"; do
	ver=$(s3_curl GET "/$B?prefix=$(echo "$key" | sed 's|/|%2F|g')&versions=" |
		grep -o '<VersionId>[^<]*</VersionId>' | head -1 | sed 's/<[^>]*>//g')
	[ -n "$ver" ] || die "no version of $key"
	st=$(s3_curl DELETE "/$B/$key?versionId=$ver" | tail -1)
	[ "$st" = 403 ] || die "DELETE of locked $key version $ver answered $st"
	ok "the server refuses to delete $key (version $ver): HTTP $st"
	st=$(s3_curl PUT "/$B/$key?retention=" -H "Content-MD5: $(printf '<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>2020-01-01T00:00:00Z</RetainUntilDate></Retention>' | openssl md5 -binary | base64)" \
		--data-binary '<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>2020-01-01T00:00:00Z</RetainUntilDate></Retention>' | tail -1)
	[ "$st" = 403 ] || [ "$st" = 400 ] || die "shortening the retention of $key answered $st"
	ok "the server refuses to shorten its retention: HTTP $st"
done
ferry restore --repo "$repo" "$id1" --to "$T/r1.img" 2>/dev/null || die "restore"
same "$T/disk.img" "$T/r1.img" "the point restores after the delete attempts"

# a later point reusing every chunk raises their retention
sleep 2
json=$(ferry backup --repo "$repo" --name vm --json "$T/disk.img" 2>/dev/null) || die "backup 2"
echo "$json" | grep -q '"bytes_new":0,' || die "second backup wrote new chunks: $json"
id2=$(point_ids "$repo" | tail -1)
s3_head "/$B/$ck" >"$T/c2"
cuntil2=$(grep -i "^x-amz-object-lock-retain-until-date:" "$T/c2" | cut -d' ' -f2)
[ "$(date -d "$cuntil2" +%s)" -gt "$(date -d "$cuntil1" +%s)" ] || die "chunk retention not raised: $cuntil1 -> $cuntil2"
ok "reused chunk's retention raised by the later point: $cuntil1 -> $cuntil2"

ferry forget --repo "$repo" --keep-last 1 >"$T/forget.out" 2>"$T/forget.err" || die "forget"
grep -q "$id1.*keep.*object-lock" "$T/forget.out" || { cat "$T/forget.out"; die "forget did not keep the locked point"; }
grep -q "1 restore point(s) kept because their object lock retention has not expired" "$T/forget.err" ||
	die "forget did not say why: $(cat "$T/forget.err")"
[ "$(point_ids "$repo" | wc -l)" -eq 2 ] || die "a locked point went"
ok "forget keeps the locked point and says so"

# an unreferenced chunk under a short retention: kept, then removed
fake=$(printf 'x%.0s' $(seq 100) | sha256sum | cut -d' ' -f1)
printf 'not a real chunk, only here to be collected.............' >"$T/fake"
until=$(date -u -d '+4 sec' +%Y-%m-%dT%H:%M:%SZ)
st=$(s3_curl PUT "/$B/r/chunks/${fake:0:2}/$fake" -H "x-amz-object-lock-mode: COMPLIANCE" \
	-H "x-amz-object-lock-retain-until-date: $until" \
	-H "Content-MD5: $(openssl md5 -binary "$T/fake" | base64)" --data-binary @"$T/fake" | tail -1)
[ "$st" = 200 ] || die "PUT of the locked test object: $st"
ferry gc --repo "$repo" >"$T/gc1.out" 2>&1 || { cat "$T/gc1.out"; die "gc"; }
grep -q "kept 1 unreferenced chunk(s) .* still under object lock" "$T/gc1.out" || { cat "$T/gc1.out"; die "gc did not keep the locked chunk"; }
ok "gc keeps a locked unreferenced chunk: $(tail -1 "$T/gc1.out")"
sleep 5
ferry gc --repo "$repo" --json >"$T/gc2.json" 2>/dev/null || die "gc 2"
grep -q '"chunks_removed":1,' "$T/gc2.json" && grep -q '"chunks_locked":0' "$T/gc2.json" || die "gc 2: $(cat "$T/gc2.json")"
s3_curl GET "/$B?prefix=r%2Fchunks%2F${fake:0:2}%2F$fake&versions=" | grep -q "<VersionId>" && die "versions of the expired chunk remain"
ok "once expired, gc removes it (every version)"
ferry restore --repo "$repo" "$id2" --to "$T/r2.img" 2>/dev/null || die "restore 2"
same "$T/disk.img" "$T/r2.img" "points still restore after gc"
ferry verify --repo "$repo" 2>&1 | grep -q "no damage" || die "verify"
ok "verify: no damage"
s3_curl GET "/$B?prefix=r%2Flocks%2F&versions=" | grep -qE "<Version>|<DeleteMarker>" &&
	die "lock objects left versions or delete markers in the versioned bucket"
ok "lock objects leave no version behind in the versioned bucket"
