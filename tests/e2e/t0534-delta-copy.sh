#!/bin/bash
# ferry copy of points with delta blocks, local to local: the copy
# restores byte-identical, a second copy sends nothing, the incremental
# point sends <= 1.5 x the changed bytes; into a repository without the
# feature (init --no-delta) the delta blocks arrive whole (kind 1) and
# restore byte-identical too.
. "$(dirname "$0")/functions.sh"

bs=1048576
ferry init --repo "$T/src" >/dev/null || die "init src"
ferry init --repo "$T/dst" >/dev/null || die "init dst"
ferry init --repo "$T/old" --no-delta >/dev/null || die "init old"
head -c $((64 * bs)) /dev/urandom >"$T/disk.img"
ferry backup --repo "$T/src" "$T/disk.img" >/dev/null 2>&1 || die "backup 1"
s1=$(md5 "$T/disk.img")
ferry copy --from "$T/src" --to "$T/dst" >/dev/null 2>&1 || die "copy 1"
delta_scatter "$T/disk.img" 2 $bs
changed=$((2 * 65536))
ferry backup --repo "$T/src" "$T/disk.img" >/dev/null 2>&1 || die "backup 2"
s2=$(md5 "$T/disk.img")
json=$(ferry copy --from "$T/src" --to "$T/dst" --json 2>/dev/null) || die "copy 2"
sent=$(jnum "$json" bytes_sent)
[ "$(jnum "$json" points_copied)" -eq 1 ] || die "copy 2: $json"
[ $((sent * 2)) -le $((changed * 3)) ] || die "the incremental copy sent $sent bytes for $changed changed (> 1.5 x)"
ok "incremental copy sent $sent bytes for $changed changed (<= 1.5 x)"
json=$(ferry copy --from "$T/src" --to "$T/dst" --json 2>/dev/null) || die "copy 3"
[ "$(jnum "$json" bytes_sent)" -eq 0 ] && [ "$(jnum "$json" points_copied)" -eq 0 ] || die "second copy sent something: $json"
ok "a second copy sends nothing"
ids=($(point_ids "$T/src"))
restores_to "$T/dst" "${ids[0]}" "$s1" "point 1 restores byte-identical from the copy"
restores_to "$T/dst" "${ids[1]}" "$s2" "point 2 (delta blocks) restores byte-identical from the copy"
ferry verify --repo "$T/dst" >/dev/null 2>"$T/err" || { cat "$T/err"; die "verify dst"; }
ok "the copy verifies"
# The delta chunks and their bases were copied, not rebuilt.
for i in $(seq 0 63); do
	read -r k h <<<"$(entry_of "$T/dst" "${ids[1]}" "$i")"
	[ "$k" = 2 ] && { [ -f "$(chunk_file "$T/dst" "$h")" ] || die "delta chunk of block $i missing"; n2=$((${n2:-0} + 1)); }
done
[ "${n2:-0}" -eq 2 ] || die "the copy has ${n2:-0} delta entries, expected 2"
ok "the copy keeps the 2 delta entries"

ferry copy --from "$T/src" --to "$T/old" >/dev/null 2>"$T/err" || { cat "$T/err"; die "copy to old"; }
restores_to "$T/old" "${ids[1]}" "$s2" "copied into a --no-delta repository, point 2 restores byte-identical"
for i in $(seq 0 63); do
	read -r k _ <<<"$(entry_of "$T/old" "${ids[1]}" "$i")"
	[ "$k" = 2 ] && die "block $i is a delta entry in a repository without the feature"
done
ok "there it has whole blocks only (kind 1)"
ferry verify --repo "$T/old" >/dev/null 2>"$T/err" || { cat "$T/err"; die "verify old"; }
ok "and verifies"
