#!/bin/bash
# ferry-test: long
# Bit rot in stored chunks: a flipped bit (in a raw payload, a compressed
# payload, the header), a truncated chunk, 4 KiB of zeros, two chunk files
# swapped, a chunk deleted.  Every damage is found: verify exits 3 naming
# each block it breaks, restore exits 3 naming the block and never writes
# it (the rest of the disk is restored), and points that do not use the
# damaged chunk still restore byte-identical.  FERRY_SEED=N picks other
# chunks and bits.
. "$(dirname "$0")/functions.sh"

seed=${FERRY_SEED:-1}
RANDOM=$seed
trials=${FERRY_BITROT_TRIALS:-3} # of each kind of damage
bs=$((256 * 1024))
nb=32
repo=$T/repo
ram_scratch # restored images
echo "seed $seed, $trials trials of each kind of damage"

# compressible BLOCKS at FIRST of FILE, lines made unique by TAG
text_fill() {
	seq -f "$4 line %.0f: ferry keeps every block it stores checked" 1 999999 |
		head -c $(($3 * bs)) | dd of="$1" bs=$bs seek="$2" conv=notrunc status=none
}
# a.img: 16 random blocks, 8 compressible ones, 8 zero ones
truncate -s $((nb * bs)) "$T/a.img"
rand_fill "$T/a.img" 0 4 "a-$seed"
text_fill "$T/a.img" 16 8 a
# a2.img: a.img with 2 blocks changed (shares the others' chunks)
cp "$T/a.img" "$T/a2.img"
head -c $bs /dev/urandom | dd of="$T/a2.img" bs=$bs seek=3 conv=notrunc status=none
text_fill "$T/a2.img" 17 1 a2
# b.img: its own random and compressible blocks
truncate -s $((nb * bs)) "$T/b.img"
rand_fill "$T/b.img" 0 3 "b-$seed"
text_fill "$T/b.img" 12 8 b

ferry init --repo "$repo" --block-size 256K --compression zstd >/dev/null || die "init"
declare -A src sum
for s in a a2 b; do
	id=$(ferry backup --repo "$repo" --quiet --name "$s" "$T/$s.img") || die "backup $s"
	src[$id]=$T/$s.img
	sum[$id]=$(md5 "$T/$s.img")
	points+=("$id")
done
ok "3 points: ${points[*]}"

# Which chunk each block of each point uses: "POINT BLOCK HASH" lines.
zero=$(head -c $bs /dev/zero | sha256sum | cut -c1-64)
for p in "${points[@]}"; do
	for ((i = 0; i < nb; i++)); do
		h=$(block_hash "${src[$p]}" $i $bs)
		[ "$h" = "$zero" ] || echo "$p $i $h"
	done
done >"$T/refs"
codec() { od -An -tu1 -j4 -N1 "$(chunk_file "$repo" "$1")" | tr -d ' '; }
cut -d' ' -f3 "$T/refs" | sort -u >"$T/hashes"
raw=() zstd=() big=()
while read -r h; do
	[ -f "$(chunk_file "$repo" "$h")" ] || die "chunk $h of a block is not stored"
	case $(codec "$h") in 0) raw+=("$h") ;; 1) zstd+=("$h") ;; esac
	[ "$(stat -c %s "$(chunk_file "$repo" "$h")")" -gt 8192 ] && big+=("$h")
done <"$T/hashes"
[ ${#raw[@]} -gt 0 ] && [ ${#zstd[@]} -gt 0 ] || die "expected raw and zstd chunks (${#raw[@]} raw, ${#zstd[@]} zstd)"
ok "$(wc -l <"$T/hashes") chunks back $(wc -l <"$T/refs") blocks: ${#raw[@]} stored raw, ${#zstd[@]} compressed"
ferry verify --repo "$repo" 2>/dev/null || die "verify before any damage"
pristine=$(repo_fingerprint "$repo")

pick() { # ARRAY-NAME: a random element
	local -n a=$1
	echo "${a[$(rnd ${#a[@]})]}"
}
size_of() { stat -c %s "$1"; }

detected=0 total=0
trial() { # KIND: damage one chunk (two for swap), check, repair
	local kind=$1 h h2 f f2 size off bit what p i n expect_img damaged
	case $kind in
	flip-raw) h=$(pick raw) ;;
	flip-zstd) h=$(pick zstd) ;;
	zero4k) h=$(pick big) ;;
	*) h=$(pick all) ;;
	esac
	f=$(chunk_file "$repo" "$h")
	size=$(size_of "$f")
	cp -p "$f" "$T/saved"
	damaged=$h
	case $kind in
	flip-raw | flip-zstd)
		off=$((24 + $(rnd $((size - 24)))))
		bit=$(rnd 8)
		flip_bit "$f" $off $bit
		what="bit $bit of byte $off (payload) flipped"
		;;
	flip-header)
		off=$(rnd 24)
		bit=$(rnd 8)
		flip_bit "$f" $off $bit
		what="bit $bit of byte $off (header) flipped"
		;;
	truncate)
		n=$(rnd "$size")
		truncate -s "$n" "$f"
		what="truncated from $size to $n bytes"
		;;
	zero4k)
		[ "$size" -gt 4096 ] || die "chunk $h is too small to zero 4 KiB"
		off=$(rnd $((size - 4096)))
		dd if=/dev/zero of="$f" bs=4096 count=1 seek="$off" oflag=seek_bytes conv=notrunc status=none
		what="4 KiB at byte $off zeroed"
		;;
	swap)
		h2=$(pick all)
		while [ "$h2" = "$h" ]; do h2=$(pick all); done
		f2=$(chunk_file "$repo" "$h2")
		mv "$f" "$T/swap" && mv "$f2" "$f" && mv "$T/swap" "$f2"
		damaged="$h $h2"
		what="swapped with ${h2:0:12}"
		;;
	delete)
		rm "$f"
		what="deleted"
		;;
	esac
	total=$((total + 1))
	grep -F "$(printf '%s\n' $damaged)" "$T/refs" >"$T/hit"
	echo "-- $kind: chunk ${h:0:12} ($what); it backs $(wc -l <"$T/hit") block(s)"

	expect_fail 3 ferry verify --repo "$repo"
	while read -r p i _; do names_bad_block "$p" "$i" $bs; done <"$T/hit"
	reports_then_one_error
	ok "$kind: verify exits 3 and names all $(wc -l <"$T/hit") damaged block(s)"

	for p in "${points[@]}"; do
		if ! grep -q "^$p " "$T/hit"; then
			ferry verify --repo "$repo" "$p" 2>/dev/null || die "$kind: verify of unaffected point $p failed"
			restores_to "$repo" "$p" "${sum[$p]}" "$kind: unaffected point $p verifies and restores byte-identical"
			continue
		fi
		expect_fail 3 ferry verify --repo "$repo" "$p"
		grep "^$p " "$T/hit" | while read -r _ i _; do names_bad_block "$p" "$i" $bs; done || exit 1
		rm -f "$SCRATCH/out.img"
		expect_fail 3 ferry restore --repo "$repo" "$p" --to "$SCRATCH/out.img"
		reports_then_one_error
		expect_img=$SCRATCH/expect.img
		cp "${src[$p]}" "$expect_img"
		while read -r _ i _; do
			names_bad_block "$p" "$i" $bs
			# the damaged chunk's payload, as a careless restore would
			# have written it
			if [ "$kind" = flip-raw ]; then
				if tail -c +25 "$f" | cmp -s - <(dd if="$SCRATCH/out.img" bs=$bs skip="$i" count=1 status=none); then
					die "$kind: restore wrote the flipped data of block $i"
				fi
			fi
			dd if=/dev/zero of="$expect_img" bs=$bs seek="$i" count=1 conv=notrunc status=none
		done < <(grep "^$p " "$T/hit")
		cmp -s "$SCRATCH/out.img" "$expect_img" ||
			die "$kind: restore of $p wrote something other than the good blocks (and holes for the bad)"
		ok "$kind: restore of $p exits 3, names the block(s), leaves them unwritten and restores the rest"
	done
	detected=$((detected + 1))

	# repair
	case $kind in
	swap) mv "$f" "$T/swap" && mv "$f2" "$f" && mv "$T/swap" "$f2" ;;
	*) cp -p "$T/saved" "$f" ;;
	esac
	[ "$(repo_fingerprint "$repo")" = "$pristine" ] || die "$kind: the repair did not restore the repository"
}

mapfile -t all <"$T/hashes"
for kind in flip-raw flip-zstd flip-header truncate zero4k swap delete; do
	for ((t = 0; t < trials; t++)); do trial $kind; done
done
ok "$detected of $total damaged chunks detected by verify and by restore (100%)"
[ $detected -eq $total ] || die "not every damage was detected"
ferry verify --repo "$repo" 2>/dev/null || die "verify after the repairs"
for p in "${points[@]}"; do restores_to "$repo" "$p" "${sum[$p]}" "after the repairs, $p restores byte-identical"; done
