#!/bin/bash
# gc keeps the base chunks of delta blocks: the point that wrote them is
# forgotten, gc runs, the later point (kind-2 entries) still restores
# byte-identical and verifies; then its own forget frees everything.
. "$(dirname "$0")/functions.sh"

bs=1048576
ferry init --repo "$T/repo" >/dev/null || die "init"
head -c $((32 * bs)) /dev/urandom >"$T/disk.img"
ferry backup --repo "$T/repo" "$T/disk.img" >/dev/null 2>&1 || die "backup 1"
delta_scatter "$T/disk.img" 4 $bs
json=$(ferry backup --repo "$T/repo" --json "$T/disk.img" 2>/dev/null) || die "backup 2"
[ "$(jnum "$json" blocks_delta)" -eq 4 ] || die "expected 4 delta blocks: $json"
sum=$(md5 "$T/disk.img")
ferry forget --repo "$T/repo" --name disk.img --keep-last 1 >/dev/null 2>&1 || die "forget"
ferry gc --repo "$T/repo" --json >"$T/gc.json" 2>/dev/null || die "gc"
restores_to "$T/repo" disk.img "$sum" "after forget + gc of the base point, the delta point restores byte-identical"
ferry verify --repo "$T/repo" >/dev/null 2>"$T/err" || { cat "$T/err"; die "verify after gc"; }
ok "verify is clean after gc"
# A third point made of the same deltas, then the second forgotten: the
# bases stay (named through the third point's delta entries).
ferry backup --repo "$T/repo" "$T/disk.img" >/dev/null 2>&1 || die "backup 3"
ferry forget --repo "$T/repo" --name disk.img --keep-last 1 >/dev/null 2>&1 || die "forget 2"
ferry gc --repo "$T/repo" >/dev/null 2>&1 || die "gc 2"
restores_to "$T/repo" disk.img "$sum" "a point reusing delta blocks restores after gc"
