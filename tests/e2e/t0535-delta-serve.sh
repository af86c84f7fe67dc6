#!/bin/bash
# Instant recovery of a point with delta blocks: `ferry serve` exports it
# over NBD and nbdcopy reads it byte-identical (image.c rebuilds the delta
# blocks); a flipped bit in a delta chunk is an I/O error for that block
# only.
. "$(dirname "$0")/functions.sh"
requires nbdcopy

bs=1048576
ferry init --repo "$T/repo" >/dev/null || die "init"
head -c $((24 * bs)) /dev/urandom >"$T/disk.img"
ferry backup --repo "$T/repo" "$T/disk.img" >/dev/null 2>&1 || die "backup 1"
for b in 3 11 17; do
	head -c 65536 /dev/urandom | dd of="$T/disk.img" bs=65536 seek=$((b * 16 + 7)) conv=notrunc status=none
done
json=$(ferry backup --repo "$T/repo" --json "$T/disk.img" 2>/dev/null) || die "backup 2"
[ "$(jnum "$json" blocks_delta)" -eq 3 ] || die "expected 3 delta blocks: $json"
id=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)

sock=$T/nbd.sock
serve_start --repo "$T/repo" --nbd "unix:$sock" "$id"
nbdcopy "nbd+unix:///?socket=$sock" "$T/served.img" || die "nbdcopy"
same "$T/disk.img" "$T/served.img" "the served point with delta blocks reads byte-identical"

read -r k d <<<"$(entry_of "$T/repo" "$id" 11)"
[ "$k" = 2 ] || die "block 11 is not a delta block"
f=$(chunk_file "$T/repo" "$d")
flip_bit "$f" $(($(stat -c %s "$f") - 3)) 1
# (a new server: the old one may hold the good block in its cache)
kill $spid; wait $spid 2>/dev/null
serve_start --repo "$T/repo" --nbd "unix:$sock" "$id"
cmp -s <(nbdcopy "nbd+unix:///?socket=$sock" - 2>/dev/null | head -c $((11 * bs))) \
	<(head -c $((11 * bs)) "$T/disk.img") || die "blocks before the damaged one read wrong"
if nbdcopy "nbd+unix:///?socket=$sock" "$T/bad.img" 2>/dev/null; then
	die "a damaged delta block was served"
fi
ok "a flipped bit in a delta chunk is an I/O error, never wrong bytes"
grep -q "block 11" "$T/serve.err" "$T/serve.out" || { cat "$T/serve.err"; die "the damaged block is not logged"; }
ok "ferry serve logs the damaged block 11"
kill $spid; wait $spid 2>/dev/null
