#!/bin/bash
# Hardened repository, retention: before expiry, forget keeps the points
# its rules drop ("immutable until ...", the date of the expiry record)
# and gc removes nothing they reference and says until when they are
# protected; the library refuses to remove such a point even when asked
# directly (forget --damaged on a damaged one).  After expiry (test clock
# FERRY_NOW), forget removes them (lifting the attribute), gc lifts and
# removes their chunks, and the points kept still restore byte-identical.
. "$(dirname "$0")/functions.sh"
requires_root
requires lsattr chattr
cleanup_fn "chattr -R -i '$T'"

repo=$T/repo bs=65536
ferry init --repo "$repo" --block-size 64K --immutable-days 2 >/dev/null || die "init"
declare -A sum
for v in 1 2 3; do
	truncate -s 512K "$T/d.img"
	rand_fill "$T/d.img" 0 0 x
	openssl enc -aes-128-ctr -pass pass:"v$v" -nosalt -pbkdf2 </dev/zero 2>/dev/null |
		head -c 524288 | dd of="$T/d.img" conv=notrunc status=none
	id=$(ferry backup --repo "$repo" --quiet --name d "$T/d.img") || die "backup v$v"
	sum[$id]=$(md5 "$T/d.img")
	eval "id$v=$id"
done
ok "3 points with distinct data (8 chunks each)"
nchunks() { find "$repo/chunks" -type f | wc -l; }
[ "$(nchunks)" -eq 24 ] || die "expected 24 chunks, found $(nchunks)"

# Before expiry: forget keeps everything, naming the date.
before=$(repo_fingerprint "$repo")
ferry forget --repo "$repo" --keep-last 1 >"$T/f1" 2>"$T/f1.err" || { cat "$T/f1.err"; die "forget"; }
until1=$(sed -n 's/^until_ns=//p' "$repo/expiry/$id1")
day1=$(date -u -d "@$((until1 / 1000000000))" '+%Y-%m-%d %H:%M:%S UTC')
grep -q "^$id1 .*keep *immutable until $day1" "$T/f1" || { cat "$T/f1"; die "forget does not keep $id1 'immutable until $day1'"; }
grep -q "^$id2 .*keep *immutable until" "$T/f1" || { cat "$T/f1"; die "forget does not keep $id2 as immutable"; }
grep -q "2 restore point(s) the rules drop stay until their expiry" "$T/f1.err" || { cat "$T/f1.err"; die "no summary of protected points"; }
[ "$(repo_fingerprint "$repo")" = "$before" ] || die "forget changed the repository before expiry"
ferry forget --repo "$repo" --keep-last 1 --json >"$T/f1.json" || die "forget --json"
grep -q '"immutable_kept":2' "$T/f1.json" || { cat "$T/f1.json"; die "--json lacks immutable_kept 2"; }
ok "before expiry forget --keep-last 1 removes nothing: 2 points 'immutable until $day1'"

# One day later: still protected.
FERRY_NOW=+1d ferry forget --repo "$repo" --keep-last 1 >/dev/null 2>&1 || die "forget at +1d"
[ "$(point_ids "$repo" | wc -l)" -eq 3 ] || die "a point went one day after it was made"
ok "one day later (FERRY_NOW=+1d) the points still stay"

# gc removes nothing referenced and says until when.
ferry gc --repo "$repo" >"$T/gc1" 2>&1 || { cat "$T/gc1"; die "gc"; }
grep -q "^0 of 24 chunk" "$T/gc1" || { cat "$T/gc1"; die "gc removed chunks"; }
grep -q "immutable: 3 restore point(s) still protected (the first expires $(date -u -d "@$((until1 / 1000000000))" +%Y-%m-%dT%H:%M:%SZ))" "$T/gc1" ||
	{ cat "$T/gc1"; die "gc does not say until when the points are protected"; }
[ "$(repo_fingerprint "$repo")" = "$before" ] || die "gc changed the repository"
ok "gc before expiry: nothing removed, '3 restore point(s) still protected' with the first expiry"

# A garbage chunk (no point references it) is lifted and removed by gc.
junk=$repo/chunks/00/00$(printf '%062d' 0)
cp "$(find "$repo/chunks" -type f | head -1)" "$junk"
chattr +i "$junk"
ferry gc --repo "$repo" >"$T/gc2" 2>&1 || { cat "$T/gc2"; die "gc of garbage"; }
[ -e "$junk" ] && die "gc left an immutable garbage chunk"
grep -q "^1 of 25 chunk" "$T/gc2" || { cat "$T/gc2"; die "gc did not count 1 removed chunk"; }
ok "gc lifts the attribute of an unreferenced chunk and removes it"

# A damaged unexpired manifest cannot be removed either.
chattr -i "$repo/points/$id1"
flip_bit "$repo/points/$id1" 100 3
chattr +i "$repo/points/$id1"
ferry forget --repo "$repo" --damaged >"$T/fd" 2>&1 || { cat "$T/fd"; die "forget --damaged"; }
[ -f "$repo/points/$id1" ] || die "forget --damaged removed an unexpired point"
grep -q "$id1 .*keep *immutable until $day1" "$T/fd" || { cat "$T/fd"; die "forget --damaged does not say until when"; }
flip_bit_imm() { chattr -i "$1"; flip_bit "$1" "$2" "$3"; chattr +i "$1"; }
flip_bit_imm "$repo/points/$id1" 100 3
ok "forget --damaged keeps an unexpired damaged manifest, 'immutable until $day1'"

# After expiry: forget removes the two old points, gc their chunks.
export FERRY_NOW=+3d
ferry forget --repo "$repo" --keep-last 1 >"$T/f2" 2>&1 || { cat "$T/f2"; die "forget at +3d"; }
[ "$(point_ids "$repo")" = "$id3" ] || { cat "$T/f2"; die "after expiry forget should leave only $id3"; }
[ ! -e "$repo/expiry/$id1" ] && [ ! -e "$repo/expiry/$id2" ] || die "expiry records of removed points remain"
ok "after expiry (FERRY_NOW=+3d) forget lifts and removes the 2 dropped points and their expiry records"
ferry gc --repo "$repo" >"$T/gc3" 2>&1 || { cat "$T/gc3"; die "gc at +3d"; }
grep -q "^16 of 24 chunk" "$T/gc3" || { cat "$T/gc3"; die "gc should remove 16 of 24 chunks"; }
[ "$(nchunks)" -eq 8 ] || die "expected 8 chunks left, found $(nchunks)"
grep -q "still protected" "$T/gc3" && die "gc still reports protected points at +3d"
for f in "$repo"/chunks/*/* "$repo/points/$id3"; do
	lsattr -d "$f" | cut -d' ' -f1 | grep -q i || die "$f lost its attribute"
done
ok "gc lifts and removes the 16 chunks of the expired points; the 8 left keep 'i'"
unset FERRY_NOW
restores_to "$repo" "$id3" "${sum[$id3]}" "the kept point restores byte-identical"
ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify after gc"
ok "verify passes"
