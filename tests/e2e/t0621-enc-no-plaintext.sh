#!/bin/bash
# A stolen encrypted repository shows no content: a marker string written
# many times into the source is in no chunk or manifest file, nor is the
# point's name or source path; chunk file names are not the SHA-256 of
# any block (ids are keyed); chunks and manifests carry the sealed magics
# (FCE1, FMAE) that older readers refuse.
. "$(dirname "$0")/functions.sh"

export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024 FERRY_PASSWORD=s3cret-pass
repo=$T/repo bs=65536
ferry init --repo "$repo" --encrypt --block-size 64K >/dev/null || die "init"
marker=FERRY-MARKER-7f3a9c-TOP-SECRET-PAYLOAD
truncate -s 4M "$T/src.img"
rand_fill "$T/src.img" 0 1 rnd
# A compressible region full of the marker, one raw (incompressible)
# region with the marker at known offsets.
yes "$marker" | head -c $((1024 * 1024)) | dd of="$T/src.img" bs=1M seek=1 conv=notrunc status=none
for k in 0 7 13; do
	printf '%s' "$marker" | dd of="$T/src.img" bs=1 seek=$((k * 65536 + 100)) conv=notrunc status=none
done
grep -c "$marker" "$T/src.img" >/dev/null || die "the marker is not in the source"
ferry backup --repo "$repo" --quiet --name "name-$marker" "$T/src.img" >/dev/null || die "backup"

nchunks=$(find "$repo/chunks" -type f | wc -l)
[ "$nchunks" -gt 10 ] || die "only $nchunks chunks"
if grep -rl "$marker" "$repo" >"$T/hits"; then cat "$T/hits"; die "the marker is in repository files"; fi
grep -rl "FERRY-MARKER" "$repo" && die "part of the marker is in repository files"
grep -rl -F "$T/src.img" "$repo/points" "$repo/chunks" && die "the source path is in a manifest"
ok "no chunk or manifest file holds the marker, the point's name or its source path ($nchunks chunks)"

for f in $(find "$repo/chunks" -type f); do
	[ "$(head -c 4 "$f")" = FCE1 ] || die "$f is not a sealed chunk"
done
for f in "$repo"/points/*; do
	[ "$(head -c 4 "$f")" = FMAE ] || die "$f is not a sealed manifest"
done
ok "every chunk has the magic FCE1 and every manifest FMAE"

for ((k = 0; k < 64; k++)); do
	h=$(block_hash "$T/src.img" $k $bs)
	[ -e "$(chunk_file "$repo" "$h")" ] && die "block $k is stored under its SHA-256"
	find "$repo/chunks" -name "$h" | grep -q . && die "a chunk is named by block $k's SHA-256"
done
ok "no chunk is named by the SHA-256 of a block (ids are HMAC-SHA-256 with the id key)"

ferry restore --repo "$repo" "name-$marker" --to "$T/out.img" 2>/dev/null || die "restore"
same "$T/src.img" "$T/out.img" "and the point restores byte-identical"
