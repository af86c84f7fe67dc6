#!/bin/bash
# ferry info on s3:// (a real Ceph RGW) with its local cache of chunk
# sizes: the totals are the same cold (no cache), warm (the cache from the
# run before), after new chunks were uploaded, after forget + gc removed
# chunks, and with a damaged or foreign cache file; the cache file is
# private (mode 0600) and a warm run is not slower than a cold one.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

s3_start
url=s3://ferry-t0525/r
ferry init --repo "$url" --block-size 64K >/dev/null || die "init"
make_disk "$T/d.img" 16
ferry backup --repo "$url" -q "$T/d.img" >/dev/null || die "backup 1"
info() { FERRY_CACHE_DIR=$1 "$FERRY" info --repo "$url" --json || die "info"; }
cold() { rm -rf "$T/cold"; info "$T/cold"; }

a=$(cold)
b=$(info "$T/warm")
f=$(ls "$T/warm"/info-* 2>/dev/null) || die "no cache file written"
[ "$(stat -c %a "$f")" = 600 ] || die "the cache file is mode $(stat -c %a "$f")"
t0=$(date +%s%N); c=$(info "$T/warm"); t1=$(date +%s%N)
[ "$a" = "$b" ] && [ "$b" = "$c" ] || die "totals differ: cold $a / first $b / warm $c"
echo "$c" | grep -q '"chunks":[1-9]' || die "no chunks counted: $c"
t2=$(date +%s%N); cold >/dev/null; t3=$(date +%s%N)
ok "cold and warm totals equal ($(echo "$c" | grep -o '"chunks":[0-9]*'), chunk_bytes $(echo "$c" | grep -o '"chunk_bytes":[0-9]*' | cut -d: -f2)); warm $(((t1 - t0) / 1000000)) ms, cold $(((t3 - t2) / 1000000)) ms; cache file mode 0600"
[ $((t1 - t0)) -le $((t3 - t2 + 500000000)) ] || die "the warm run is slower than a cold one"

head -c $((2 << 20)) /dev/urandom | dd of="$T/d.img" bs=1M seek=3 conv=notrunc status=none
id2=$(ferry backup --repo "$url" -q "$T/d.img") || die "backup 2"
pre=$(info "$T/warm")
[ "$pre" = "$(cold)" ] || die "after new chunks the warm totals differ from cold ones"
ok "after a backup added chunks, warm totals equal cold ones"

ferry forget --repo "$url" --keep-last 1 >/dev/null 2>&1 || die "forget"
ferry gc --repo "$url" >/dev/null 2>&1 || die "gc"
w=$(info "$T/warm")
[ "$w" = "$(cold)" ] || die "after gc: warm $w, cold $(cold)"
n1=$(echo "$pre" | grep -o '"chunks":[0-9]*' | cut -d: -f2)
n2=$(echo "$w" | grep -o '"chunks":[0-9]*' | cut -d: -f2)
[ "$n2" -lt "$n1" ] || die "gc removed nothing ($n1 chunks before, $n2 after)"
ok "after forget + gc removed the first point's own chunks, warm totals equal cold ones"
a=$w

head -c 5000 /dev/urandom >"$f"
[ "$(info "$T/warm")" = "$a" ] || die "a damaged cache changed the totals"
{ printf 'FICH0001%s' 00000000000000000000000000000000; head -c 4400 /dev/urandom; } >"$f"
[ "$(info "$T/warm")" = "$a" ] || die "a foreign cache changed the totals"
[ "$(info "$T/warm")" = "$a" ] || die "the rewritten cache changed the totals"
ok "a damaged or foreign cache file is ignored and rewritten"
