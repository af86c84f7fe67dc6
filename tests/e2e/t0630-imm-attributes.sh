#!/bin/bash
# Hardened repository (init --immutable-days): once committed, every chunk,
# manifest and expiry record carries the immutable attribute ('i' in
# lsattr); as root, rm, mv and writing into them fail with EPERM; a
# backup reusing chunks keeps working, and every point restores
# byte-identical.
. "$(dirname "$0")/functions.sh"
requires_root
requires lsattr chattr
cleanup_fn "chattr -R -i '$T'"

repo=$T/repo
ferry init --repo "$repo" --block-size 64K --immutable-days 7 >"$T/init.out" || die "init --immutable-days 7"
grep -q "immutable for 7 day" "$T/init.out" || { cat "$T/init.out"; die "init does not say it is hardened"; }
grep -q '^features = immutable$' "$repo/config" || die "config lacks 'features = immutable'"
grep -q '^immutable_days = 7$' "$repo/config" || die "config lacks immutable_days = 7"
ok "init --immutable-days 7: config has features = immutable and immutable_days = 7"

truncate -s 1M "$T/a.img"
rand_fill "$T/a.img" 0 1 a1
a1=$(ferry backup --repo "$repo" --quiet "$T/a.img") || die "backup a1"
sum_a1=$(md5 "$T/a.img")
cp "$T/a.img" "$T/a1.img"
rand_fill "$T/a.img" 0 0 x
dd if=/dev/urandom of="$T/a.img" bs=64K count=2 seek=3 conv=notrunc status=none
a2=$(ferry backup --repo "$repo" --quiet "$T/a.img") || die "backup a2"
sum_a2=$(md5 "$T/a.img")

has_i() { lsattr -d "$1" 2>/dev/null | cut -d' ' -f1 | grep -q i; }
n=0
for f in "$repo"/chunks/*/* "$repo"/points/* "$repo"/expiry/*; do
	has_i "$f" || die "$f lacks the immutable attribute: $(lsattr -d "$f")"
	n=$((n + 1))
done
nc=$(find "$repo/chunks" -type f | wc -l)
[ "$nc" -ge 16 ] || die "expected at least 16 chunks, found $nc"
[ -f "$repo/expiry/$a1" ] && [ -f "$repo/expiry/$a2" ] || die "no expiry record per point"
grep -q '^until_ns=[0-9]*$' "$repo/expiry/$a1" || die "expiry record has no until_ns"
ok "all $n files carry 'i': $nc chunks, 2 manifests, 2 expiry records"

# Expiry = commit time + 7 days (within a minute).
until_s=$(($(sed -n 's/^until_ns=//p' "$repo/expiry/$a2") / 1000000000))
want=$(($(date +%s) + 7 * 86400))
[ $((until_s - want)) -le 60 ] && [ $((want - until_s)) -le 60 ] || die "expiry $until_s is not now + 7 days ($want)"
ferry points --repo "$repo" --json | grep -q "\"id\":\"$a2\".*\"immutable_until\":\"$(date -u -d "@$until_s" +%Y-%m-%dT%H:%M:%SZ)\"" ||
	{ ferry points --repo "$repo" --json; die "points --json does not show immutable_until"; }
ok "the expiry record says commit time + 7 days (and points --json shows it as immutable_until)"

chunk=$(find "$repo/chunks" -type f | head -1)
for f in "$chunk" "$repo/points/$a1" "$repo/expiry/$a1"; do
	rm -f "$f" 2>"$T/rm.err" && die "rm $f succeeded as root"
	grep -q "Operation not permitted" "$T/rm.err" || { cat "$T/rm.err"; die "rm $f: not EPERM"; }
	[ -f "$f" ] || die "$f is gone"
	mv "$f" "$f.x" 2>/dev/null && die "mv $f succeeded"
	( echo junk >>"$f" ) 2>/dev/null && die "appending to $f succeeded"
	truncate -s 0 "$f" 2>/dev/null && die "truncating $f succeeded"
done
ok "as root, rm, mv, append and truncate of a chunk, a manifest and an expiry record fail (EPERM)"

# A restore point whose file is replaced under another name is refused too.
ln "$repo/points/$a1" "$T/hardlink" 2>/dev/null && die "hard link to an immutable manifest succeeded"
ok "no hard link to an immutable manifest"

restores_to "$repo" "$a1" "$sum_a1" "point 1 restores byte-identical"
restores_to "$repo" "$a2" "$sum_a2" "point 2 restores byte-identical"
ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify of the hardened repository"
ok "verify passes"

# A chunk a killed backup left without the attribute gets it when a later
# point references it (a disk of another name: every block is looked up).
chunk=$(chunk_file "$repo" "$(block_hash "$T/a1.img" 3 65536)")
chattr -i "$chunk"
has_i "$chunk" && die "chattr -i did not work"
b1=$(ferry backup --repo "$repo" --quiet --name b "$T/a1.img") || die "backup b"
has_i "$chunk" || die "a chunk reused by a new point did not get the attribute back"
ok "a reused chunk without the attribute gets it at the next commit"
