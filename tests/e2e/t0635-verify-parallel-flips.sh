#!/bin/bash
# Full verify on two threads finds every flipped bit: FERRY_FLIPS (150;
# 60 in the ASan tier) single-bit flips across chunk and manifest files,
# each one detected by `verify --threads 2` (exit 3); then 12 flips at
# once in 12 different files: one run names every flipped chunk and every
# damaged manifest, exactly as `--threads 1` does, and records damage for
# exactly the points affected.
. "$(dirname "$0")/functions.sh"

if asan_tier; then flips=${FERRY_FLIPS:-60}; else flips=${FERRY_FLIPS:-150}; fi
RANDOM=${FERRY_SEED:-7}
repo=$T/repo bs=65536
ferry init --repo "$repo" --block-size 64K >/dev/null || die "init"
declare -A uses # chunk -> points
for n in 1 2 3 4 5 6; do
	truncate -s 384K "$T/d$n.img"
	openssl enc -aes-128-ctr -pass pass:"d$((n % 3))" -nosalt -pbkdf2 </dev/zero 2>/dev/null |
		head -c 393216 | dd of="$T/d$n.img" conv=notrunc status=none
	dd if=/dev/urandom of="$T/d$n.img" bs=64K count=2 seek=$((n % 5)) conv=notrunc status=none
	id=$(ferry backup --repo "$repo" --quiet --name "d$n" "$T/d$n.img") || die "backup $n"
	for ((k = 0; k < 6; k++)); do
		h=$(block_hash "$T/d$n.img" $k $bs)
		uses[$h]="${uses[$h]:-} $id"
	done
done
files=("$repo"/chunks/*/* "$repo"/points/*)
ok "${#files[@]} files (chunks and manifests) of 6 points"
ferry verify --repo "$repo" --threads 2 >/dev/null 2>&1 || die "verify of the intact repository"

nc=0 nm=0
for ((i = 1; i <= flips; i++)); do
	f=${files[$(rnd ${#files[@]})]}
	byte=$(rnd "$(stat -c %s "$f")") bit=$((RANDOM % 8))
	flip_bit "$f" "$byte" "$bit"
	"$FERRY" verify --repo "$repo" --threads 2 >/dev/null 2>"$T/verr"; rc=$?
	case $f in */points/*) [ "$byte" -ge 4 ] && [ "$byte" -le 7 ] && [ $rc -eq 4 ] && rc=3 ;; esac
	[ $rc -eq 3 ] || { cat "$T/verr"; die "flip $i (byte $byte bit $bit of $f) not detected: exit $rc"; }
	case $f in */points/*) nm=$((nm + 1)) ;; *) nc=$((nc + 1)) ;; esac
	flip_bit "$f" "$byte" "$bit"
done
ok "$flips single-bit flips ($nc in chunks, $nm in manifests): each detected by verify --threads 2"

# 12 at once, each in its own file (never the version field of a manifest).
declare -A picked
sel=()
while [ ${#sel[@]} -lt 12 ]; do
	f=${files[$(rnd ${#files[@]})]}
	[ -n "${picked[$f]:-}" ] && continue
	picked[$f]=1
	sel+=("$f")
done
for f in "${sel[@]}"; do
	size=$(stat -c %s "$f")
	byte=$((8 + $(rnd $((size - 8)))))
	flip_bit "$f" "$byte" $((RANDOM % 8))
done
for t in 1 2; do
	"$FERRY" verify --repo "$repo" --threads $t --json >"$T/v$t.json" 2>"$T/v$t.err"; rc=$?
	[ $rc -eq 3 ] || { cat "$T/v$t.err"; die "verify --threads $t exited $rc"; }
	sort "$T/v$t.err" >"$T/v$t.sorted"
done
want_points=""
for f in "${sel[@]}"; do
	name=$(basename "$f")
	case $f in
	*/points/*)
		grep -q "restore point $name: " "$T/v2.err" || { cat "$T/v2.err"; die "damaged manifest $name not named"; }
		want_points="$want_points $name" ;;
	*)
		grep -q "bad chunk $name" "$T/v2.err" || { cat "$T/v2.err"; die "flipped chunk $name not named"; }
		want_points="$want_points ${uses[$name]}" ;;
	esac
done
cmp -s "$T/v1.sorted" "$T/v2.sorted" || { diff "$T/v1.sorted" "$T/v2.sorted"; die "--threads 1 and 2 report differently"; }
ok "12 flips at once: verify --threads 2 names every flipped chunk and manifest, the same report as --threads 1"
for id in $(ls "$repo/points"); do
	if echo " $want_points " | grep -q " $id"; then want=damaged; else want=ok; fi
	got=$(sed -n 's/^result=//p' "$repo/verify/$id")
	[ "$got" = "$want" ] || die "point $id recorded as '$got', expected $want"
done
ok "the verify record is 'damaged' for exactly the affected points, 'ok' for the others"
