#!/bin/bash
# Sub-block deltas: 64 KiB writes scattered over 1 % of a disk's blocks.
# The incremental backup stores about the changed bytes (<= 1.5 x), not a
# whole 1 MiB block per write; every point restores byte-identical; verify
# is clean; a later change of the same blocks is a delta against the same
# base (depth 1); an unchanged disk stores nothing.
. "$(dirname "$0")/functions.sh"

mib=64
bs=1048576
ferry init --repo "$T/repo" --json | grep -q '"delta":true' || die "init: delta not on by default"
grep -q '^features = delta$' "$T/repo/config" || die "config lacks features = delta"
# random data: compressed == raw
head -c $((mib * bs)) /dev/urandom >"$T/disk.img"
sums=()
ferry backup --repo "$T/repo" "$T/disk.img" >/dev/null 2>&1 || die "backup 1"
sums+=("$(md5 "$T/disk.img")")
n=$((mib / 100)); [ "$n" -ge 1 ] || n=1
delta_scatter "$T/disk.img" "$n" $bs
changed=$((n * 65536))
before=$(chunk_bytes "$T/repo")
json=$(ferry backup --repo "$T/repo" --json "$T/disk.img") || die "backup 2"
sums+=("$(md5 "$T/disk.img")")
stored=$(jnum "$json" bytes_stored)
grow=$(($(chunk_bytes "$T/repo") - before))
[ "$(jnum "$json" blocks_delta)" -eq "$n" ] || die "expected $n delta blocks: $json"
[ $((stored * 2)) -le $((changed * 3)) ] || die "incremental stored $stored bytes for $changed changed (> 1.5 x)"
[ $((grow * 2)) -le $((changed * 3)) ] || die "repository grew $grow bytes for $changed changed (> 1.5 x)"
ok "1 % changed in 64 KiB writes ($changed bytes): stored $stored, repository grew $grow (<= 1.5 x; whole blocks: $((n * bs)))"

# The same blocks changed again (and one more write in each): deltas
# against the first point's chunks, still small.
delta_scatter "$T/disk.img" "$n" $bs
json=$(ferry backup --repo "$T/repo" --json "$T/disk.img") || die "backup 3"
sums+=("$(md5 "$T/disk.img")")
stored=$(jnum "$json" bytes_stored)
[ $((stored * 2)) -le $((changed * 2 * 3)) ] || die "third backup stored $stored bytes"
ok "third backup: stored $stored bytes"
json=$(ferry backup --repo "$T/repo" --json "$T/disk.img") || die "backup 4"
sums+=("$(md5 "$T/disk.img")")
[ "$(jnum "$json" bytes_stored)" -eq 0 ] || die "unchanged disk stored bytes: $json"
ok "an unchanged disk stores nothing (delta blocks are reused as they are)"

i=0
for id in $(point_ids "$T/repo"); do
	restores_to "$T/repo" "$id" "${sums[$i]}" "point $((i + 1)) restores byte-identical"
	i=$((i + 1))
done
[ $i -eq 4 ] || die "expected 4 points, found $i"
ferry verify --repo "$T/repo" >/dev/null 2>"$T/err" || { cat "$T/err"; die "verify"; }
ok "verify is clean"
last=$(point_ids "$T/repo" | tail -1)
ferry verify --repo "$T/repo" "$last" >/dev/null 2>"$T/err" || { cat "$T/err"; die "verify POINT"; }
ok "verify of the last point is clean"
# --changed-only rollback from the first state through delta blocks
ferry restore --repo "$T/repo" "$(point_ids "$T/repo" | head -1)" --to "$T/first.img" 2>/dev/null || die "restore first"
ferry restore --repo "$T/repo" "$last" --to "$T/first.img" --changed-only 2>/dev/null || die "changed-only"
[ "$(md5 "$T/first.img")" = "${sums[3]}" ] || die "--changed-only through delta blocks is not byte-identical"
ok "--changed-only rolls back through delta blocks"
