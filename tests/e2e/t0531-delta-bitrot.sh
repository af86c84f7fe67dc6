#!/bin/bash
# A flipped bit in a delta chunk, and in a base chunk used only through
# deltas: verify names the block and the point; restore fails naming it
# and never writes wrong bytes there; other points still restore.
. "$(dirname "$0")/functions.sh"

bs=1048576
ferry init --repo "$T/repo" >/dev/null || die "init"
head -c $((24 * bs)) /dev/urandom >"$T/disk.img"
id1=$(ferry backup --repo "$T/repo" "$T/disk.img" 2>/dev/null) || die "backup 1"
sum1=$(md5 "$T/disk.img")
for b in 5 9; do
	head -c 65536 /dev/urandom | dd of="$T/disk.img" bs=65536 seek=$((b * 16 + 3)) conv=notrunc status=none
done
id2=$(ferry backup --repo "$T/repo" "$T/disk.img" 2>/dev/null) || die "backup 2"
read -r k5 d5 <<<"$(entry_of "$T/repo" "$id2" 5)"
read -r k9 d9 <<<"$(entry_of "$T/repo" "$id2" 9)"
read -r _ b9 <<<"$(entry_of "$T/repo" "$id1" 9)"
[ "$k5" = 2 ] && [ "$k9" = 2 ] || die "blocks 5 and 9 are not delta blocks (kinds $k5 $k9)"
ok "blocks 5 and 9 of the second point are delta blocks (kind 2)"

zero_block() { # FILE INDEX: the block reads as zeros (not written)
	cmp -s <(dd if="$1" bs=$bs skip="$2" count=1 status=none) <(head -c $bs /dev/zero)
}

# 1. the delta chunk of block 5
f=$(chunk_file "$T/repo" "$d5")
size=$(stat -c %s "$f")
cp "$f" "$T/saved"
flip_bit "$f" $((size - 5)) 3
expect_fail 3 ferry verify --repo "$T/repo"
names_bad_block "$id2" 5 $bs
grep -q "bad block 5 .*of restore point $id1" "$T/err" && die "verify blames point 1"
ok "verify names block 5 of point $id2 (flipped bit in its delta chunk)"
expect_fail 3 ferry restore --repo "$T/repo" "$id2" --to "$T/r2.img"
names_bad_block "$id2" 5 $bs
zero_block "$T/r2.img" 5 || die "restore wrote block 5 from a damaged delta"
ok "restore fails naming block 5 and does not write it"
restores_to "$T/repo" "$id1" "$sum1" "point 1 still restores byte-identical"
cp "$T/saved" "$f"

# 2. a base chunk used only through deltas (its point forgotten)
ferry forget --repo "$T/repo" --name disk.img --keep-last 1 >/dev/null || die "forget"
f=$(chunk_file "$T/repo" "$b9")
[ -f "$f" ] || die "base chunk of block 9 is gone"
flip_bit "$f" 100 0
expect_fail 3 ferry verify --repo "$T/repo"
names_bad_block "$id2" 9 $bs
ok "verify names block 9 of point $id2 (flipped bit in its base chunk)"
expect_fail 3 ferry verify --repo "$T/repo" "$id2"
names_bad_block "$id2" 9 $bs
ok "verify POINT names it too"
expect_fail 3 ferry restore --repo "$T/repo" "$id2" --to "$T/r3.img"
names_bad_block "$id2" 9 $bs
grep -q "base chunk $b9" "$T/err" || { cat "$T/err"; die "the error does not name the base chunk"; }
zero_block "$T/r3.img" 9 || die "restore wrote block 9 from a damaged base"
cmp -s <(dd if="$T/r3.img" bs=$bs skip=5 count=1 status=none) \
	<(dd if="$T/disk.img" bs=$bs skip=5 count=1 status=none) || die "block 5 not restored"
ok "restore fails naming block 9 and its base chunk, writes the good delta block 5"
