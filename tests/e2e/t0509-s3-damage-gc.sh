#!/bin/bash
# Verify on read with object storage: a chunk object changed on the
# server (one flipped bit) or removed is reported by verify naming the
# chunk, and restore refuses it rather than writing wrong data; forget +
# gc free the chunks of removed points on S3 and the rest still restores.
# Listings come in pages of 3 keys here (continuation tokens).
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

s3_start
export FERRY_S3_LIST_KEYS=3 # listings of several pages
B=ferry-t0509
repo=s3://$B/r
ferry init --repo "$repo" --block-size 256K >/dev/null || die "init"
make_disk "$T/a.img" 4 1
make_disk "$T/b.img" 4 2
ida=$(ferry backup --repo "$repo" --name a "$T/a.img" 2>/dev/null) || die "backup a"
idb=$(ferry backup --repo "$repo" --name b "$T/b.img" 2>/dev/null) || die "backup b"
cp "$T/b.img" "$T/b2.img"
rand_fill "$T/b2.img" 0 1 t0509
idb2=$(ferry backup --repo "$repo" --name b "$T/b2.img" 2>/dev/null) || die "backup b2"

chunk_keys() { s3_curl GET "/$B?list-type=2&prefix=r%2Fchunks%2F" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g'; }
n0=$(chunk_keys | wc -l)
ferry forget --repo "$repo" --name b --keep-last 1 >"$T/f.out" 2>&1 || die "forget"
grep -q "$idb .*removed" "$T/f.out" || { cat "$T/f.out"; die "forget did not remove the older b point"; }
ok "forget removed the older point of b"
ferry gc --repo "$repo" --json >"$T/gc.json" 2>/dev/null || die "gc"
n1=$(chunk_keys | wc -l)
removed=$(grep -o '"chunks_removed":[0-9]*' "$T/gc.json" | cut -d: -f2)
[ "$removed" -ge 4 ] && [ $((n0 - n1)) -eq "$removed" ] || die "gc: $n0 -> $n1 chunks, $(cat "$T/gc.json")"
ok "gc removed $removed chunk objects only the forgotten point used ($n0 -> $n1)"
ferry restore --repo "$repo" "$idb2" --to "$T/rb2.img" 2>/dev/null || die "restore b2"
same "$T/b2.img" "$T/rb2.img" "the kept b point restores after gc"
ferry restore --repo "$repo" "$ida" --to "$T/ra.img" 2>/dev/null || die "restore a"
same "$T/a.img" "$T/ra.img" "the a point restores after gc"

# damage one chunk of b on the server: flip one bit of its stored bytes
key=$(chunk_keys | head -1)
s3_curl GET "/$B/$key" -o "$T/chunk" >/dev/null
python3 - "$T/chunk" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x10
open(p, 'wb').write(b)
PY
s3_curl PUT "/$B/$key" --data-binary @"$T/chunk" | tail -1 | grep -qx 200 || die "put damaged chunk"
expect_fail 3 ferry verify --repo "$repo"
grep -q "${key##*/}" "$T/err" || { cat "$T/err"; die "verify does not name the chunk"; }
ok "verify reports the flipped bit in chunk ${key##*/}"
owner=$(for id in $(point_ids "$repo"); do
	ferry restore --repo "$repo" "$id" --to "$T/x.img" >/dev/null 2>&1 || echo "$id"
done)
[ -n "$owner" ] || die "no restore refused the damaged chunk"
ok "restore refuses the point(s) with the damaged chunk: $(echo $owner)"

# a chunk removed on the server: missing, named
s3_curl DELETE "/$B/$key" >/dev/null
expect_fail 3 ferry verify --repo "$repo"
grep -qi "missing" "$T/err" || { cat "$T/err"; die "verify does not report the missing chunk"; }
ok "verify reports the missing chunk"

# a manifest damaged on the server (one bit among its entries): listed
# from its header and footer, refused by verify and restore
mkey=r/points/$idb2
s3_curl GET "/$B/$mkey" -o "$T/man" >/dev/null
python3 - "$T/man" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x01
open(p, 'wb').write(b)
PY
s3_curl PUT "/$B/$mkey" --data-binary @"$T/man" | tail -1 | grep -qx 200 || die "put damaged manifest"
expect_fail 3 ferry restore --repo "$repo" "$idb2" --to "$T/x2.img"
grep -qi "manifest.*$idb2\|$idb2.*manifest\|checksum" "$T/err" || { cat "$T/err"; die "restore does not name the manifest"; }
ok "restore refuses the damaged manifest: $(tail -1 "$T/err")"
