#!/bin/bash
# forget --damaged: a manifest that fails its checksum is listed as
# damaged and stops gc (it cannot tell what the point references);
# forget --damaged --dry-run names it and changes nothing; forget
# --damaged removes exactly it (named in the output and in --json), after
# which points lists no damage, gc runs again, and every other point
# restores byte-identical.
. "$(dirname "$0")/functions.sh"

repo=$T/repo
ferry init --repo "$repo" --block-size 64K >/dev/null || die "init"
declare -A sum
for v in 1 2 3; do
	truncate -s 512K "$T/d$v.img"
	dd if=/dev/urandom of="$T/d$v.img" bs=64K count=8 conv=notrunc status=none
	id=$(ferry backup --repo "$repo" --quiet --name "d$v" "$T/d$v.img") || die "backup $v"
	sum[$id]=$(md5 "$T/d$v.img")
	eval "id$v=$id"
done
flip_bit "$repo/points/$id2" 200 5
ferry points --repo "$repo" --json | grep -q "\"id\":\"$id2\".*damaged" ||
	ferry points --repo "$repo" | grep "$id2" | grep -qi damaged || die "points does not show $id2 as damaged"
expect_fail 3 ferry gc --repo "$repo"
grep -q "gc cannot tell which chunks it needs and removes nothing" "$T/err" || { cat "$T/err"; die "gc beside a damaged manifest"; }
ok "a damaged manifest ($id2) is listed as damaged and stops gc"

before=$(repo_fingerprint "$repo")
ferry forget --repo "$repo" --damaged --dry-run >"$T/dry" 2>"$T/dry.err" || { cat "$T/dry.err"; die "forget --damaged --dry-run"; }
grep -q "^$id2 .*would go .*(damaged manifest)" "$T/dry" || { cat "$T/dry"; die "dry run does not name $id2"; }
[ "$(grep -c 'would go' "$T/dry")" -eq 1 ] || { cat "$T/dry"; die "dry run would remove more than the damaged one"; }
[ "$(repo_fingerprint "$repo")" = "$before" ] || die "forget --damaged --dry-run changed the repository"
ok "forget --damaged --dry-run names $id2 only and changes nothing"

expect_fail 2 ferry forget --repo "$repo" --damaged --keep-last 1
ok "--damaged with a keep rule is refused"

ferry forget --repo "$repo" --damaged --json >"$T/f.json" || die "forget --damaged --json"
grep -q "\"id\":\"$id2\",\"name\":\"\",\"created\":null,\"keep\":false,\"reasons\":\"damaged manifest\",\"damaged\":true" "$T/f.json" ||
	{ cat "$T/f.json"; die "--json does not name the removed damaged manifest"; }
grep -q '"removed":1' "$T/f.json" || { cat "$T/f.json"; die "--json removed count"; }
[ ! -e "$repo/points/$id2" ] || die "the damaged manifest is still there"
[ "$(point_ids "$repo" | sort | tr '\n' ' ')" = "$(printf '%s\n' "$id1" "$id3" | sort | tr '\n' ' ')" ] ||
	die "the other points are not all there"
ok "forget --damaged removed $id2 only (named in --json)"

# A manifest of a newer format version is listed the same way, but it is
# not damage: forget --damaged keeps it.
printf '\x02' | dd of="$repo/points/$id3" bs=1 seek=4 conv=notrunc status=none
ferry forget --repo "$repo" --damaged >"$T/nv" 2>&1 || { cat "$T/nv"; die "forget --damaged beside a newer manifest"; }
[ -f "$repo/points/$id3" ] || die "forget --damaged removed a manifest of a newer format version"
grep -q "^$id3 .*keep *newer format version, not damaged" "$T/nv" || { cat "$T/nv"; die "the newer manifest is not named as kept"; }
printf '\x01' | dd of="$repo/points/$id3" bs=1 seek=4 conv=notrunc status=none
ok "a manifest of a newer format version is kept ('newer format version, not damaged')"
ferry points --repo "$repo" | grep -qi damaged && die "points still shows damage"
ferry gc --repo "$repo" >"$T/gc" 2>&1 || { cat "$T/gc"; die "gc after forget --damaged"; }
grep -q "^8 of 24 chunk" "$T/gc" || { cat "$T/gc"; die "gc should free the 8 chunks of the damaged point"; }
ok "gc runs again and frees the damaged point's 8 chunks"
restores_to "$repo" "$id1" "${sum[$id1]}" "point 1 restores byte-identical"
restores_to "$repo" "$id3" "${sum[$id3]}" "point 3 restores byte-identical"
ferry forget --repo "$repo" --damaged >"$T/none" 2>&1 || die "forget --damaged on a clean repository"
grep -q "no damaged manifest found" "$T/none" || { cat "$T/none"; die "nothing-to-do message"; }
ok "forget --damaged on a clean repository says so"
