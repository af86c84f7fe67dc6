#!/bin/bash
# ferry-test: alone
# 1,000 random single-bit flips (FERRY_FLIPS; 200 in the ASan tier) across
# the chunk and manifest files of a small repository: each flipped, then
# verify must fail (exit 3), then unflipped; two workers on two copies of
# the repository share them.  Every 100th flip of a worker (50th when it
# has fewer than 200) also restores every point: the points that use the
# flipped file fail naming the block, the others restore byte-identical.  Then verify's record:
# `ferry points` shows the last verify per point (ok, DAMAGED, sample).
. "$(dirname "$0")/functions.sh"

seed=${FERRY_SEED:-1}
if asan_tier; then flips=${FERRY_FLIPS:-200}; else flips=${FERRY_FLIPS:-1000}; fi
RANDOM=$seed
repo=$T/repo bs=65536
ferry init --repo "$repo" --block-size 64K >/dev/null || die "init"

declare -A sum img where # point -> md5, point -> image; chunk -> "point:block ..."
truncate -s 512K "$T/a.img" "$T/b.img"
rand_fill "$T/a.img" 0 0 x 2>/dev/null
openssl enc -aes-128-ctr -pass pass:"a$seed" -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 524288 | dd of="$T/a.img" conv=notrunc status=none
openssl enc -aes-128-ctr -pass pass:"b$seed" -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 524288 | dd of="$T/b.img" conv=notrunc status=none
cp "$T/a.img" "$T/a1.img"
cp "$T/a.img" "$T/a2.img"
head -c 131072 /dev/zero | tr '\0' 'x' | dd of="$T/a2.img" bs=64K seek=3 conv=notrunc status=none
for f in a1 a2 b; do
	id=$(ferry backup --repo "$repo" --quiet --name "$f" "$T/$f.img") || die "backup $f"
	sum[$id]=$(md5 "$T/$f.img")
	img[$id]=$T/$f.img
	for ((k = 0; k < 8; k++)); do
		h=$(block_hash "$T/$f.img" $k $bs)
		where[$h]="${where[$h]:-} $id:$k"
	done
done
ids=(${!sum[@]})
files=()
for f in "$repo"/chunks/*/* "$repo"/points/*; do files+=("$f"); done
ok "${#files[@]} files (chunks and manifests) of ${#ids[@]} points"

restore_check() { # FILE: affected points fail naming the block, others restore
	local file=$1 name affected="" id blk rc
	name=$(basename "$file")
	if [ "${file#"$repo"/points/}" != "$file" ]; then
		affected=" $name:-"
	else
		affected=${where[$name]}
	fi
	for id in "${ids[@]}"; do
		blk=$(echo "$affected" | tr ' ' '\n' | grep "^$id:" | head -1 | cut -d: -f2)
		if [ -z "$blk" ]; then
			restores_to "$repo" "$id" "${sum[$id]}" "  unaffected point $id restores"
			continue
		fi
		"$FERRY" restore --repo "$repo" "$id" --to "$T/r.img" >/dev/null 2>"$T/err"; rc=$?
		# (exit 4: the flip made the manifest's version a newer one)
		[ $rc -eq 3 ] || { [ "$blk" = - ] && [ $rc -eq 4 ]; } ||
			{ cat "$T/err"; die "restore of affected point $id exited $rc, expected 3"; }
		if [ "$blk" = - ]; then
			grep -q "$id" "$T/err" || { cat "$T/err"; die "restore error does not name point $id"; }
		else
			names_bad_block "$id" "$blk" $bs
		fi
		if [ "$blk" = - ]; then what="its damaged manifest"; else what="block $blk"; fi
		ok "  affected point $id: restore fails naming $what"
		rm -f "$T/r.img"
	done
}

# flip_worker K COUNT: COUNT flips on copy K of the repository, with $T
# and $repo its own (two workers keep both cores busy: the script runs
# alone); leaves "CHUNK_FLIPS MANIFEST_FLIPS" in its counts file.
flip_worker() {
	local k=$1 n=$2 i f size byte bit rc nchunk=0 nman=0 repo0=$repo every
	repo=$repo0.w$k T=$T/w$k every=$(($2 < 200 ? 50 : 100))
	RANDOM=$((seed * 10 + k))
	for ((i = 1; i <= n; i++)); do
		f=${files[$(rnd ${#files[@]})]}
		f=$repo${f#"$repo0"}
		size=$(stat -c %s "$f")
		byte=$(rnd "$size") bit=$((RANDOM % 8))
		flip_bit "$f" "$byte" "$bit"
		"$FERRY" verify --repo "$repo" >/dev/null 2>"$T/verr"; rc=$?
		# A flip in a manifest's version field reads as a newer format
		# (exit 4, the point named): detected, and not called damage.
		case $f in */points/*) [ "$byte" -ge 4 ] && [ "$byte" -le 7 ] && [ $rc -eq 4 ] &&
			grep -q "$(basename "$f")" "$T/verr" && rc=3 ;; esac
		[ $rc -eq 3 ] || { cat "$T/verr"; die "worker $k flip $i (byte $byte bit $bit of $f) not detected: verify exited $rc"; }
		case $f in */points/*) nman=$((nman + 1)) ;; *) nchunk=$((nchunk + 1)) ;; esac
		if [ $((i % every)) -eq 0 ]; then
			ok "worker $k flip $i: byte $byte bit $bit of $(basename "$f") detected"
			restore_check "$f"
		fi
		flip_bit "$f" "$byte" "$bit"
	done
	echo "$nchunk $nman" >"$T/counts"
}
wpids=()
for k in 1 2; do
	cp -a "$repo" "$repo.w$k" && mkdir "$T/w$k" || die "copy for worker $k"
	flip_worker $k $(( (flips + 2 - k) / 2 )) &
	wpids+=($!)
done
for k in 1 2; do wait "${wpids[$((k - 1))]}" || die "flip worker $k failed (its FAIL line is above)"; done
read -r c1 m1 <"$T/w1/counts"; read -r c2 m2 <"$T/w2/counts"
nchunk=$((c1 + c2)) nman=$((m1 + m2))
[ $((nchunk + nman)) -eq "$flips" ] || die "$((nchunk + nman)) flips made, $flips asked"
ok "$flips single-bit flips ($nchunk in chunks, $nman in manifests): every one detected by verify"

# The verify record.
ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify of the intact repository"
ferry points --repo "$repo" --json | grep -c '"verified":"ok","verified_at":"[^"]*","verified_sample":100' |
	grep -qx 3 || die "points does not show 3 verified points"
ferry points --repo "$repo" | grep -q ' ok [0-9-]* ' || die "points' VERIFIED column does not say ok"
ok "a clean verify is recorded for every point and shown by ferry points"

bad=${ids[0]}
h=$(block_hash "${img[$bad]}" 0 $bs)
flip_bit "$(chunk_file "$repo" "$h")" 30 1
expect_fail 3 ferry verify --repo "$repo"
for id in "${ids[@]}"; do
	if echo "${where[$h]}" | grep -q "$id:"; then want=damaged; else want=ok; fi
	ferry points --repo "$repo" --json | grep -q "\"id\":\"$id\".*\"verified\":\"$want\"" ||
		die "point $id not recorded as $want"
done
ferry points --repo "$repo" | grep "^$bad" | grep -q DAMAGED || die "points does not show DAMAGED"
ok "verify records damage only for the points that use the bad chunk"
flip_bit "$(chunk_file "$repo" "$h")" 30 1

ferry verify --repo "$repo" --sample 10 --json >"$T/s.json" || die "verify --sample 10"
grep -q '"sample":10,' "$T/s.json" || die "sample not reported"
checked=$(grep -o '"chunks_checked":[0-9]*' "$T/s.json" | cut -d: -f2)
total=$(find "$repo/chunks" -type f | wc -l)
[ "$checked" -lt "$total" ] || die "--sample 10 read all $total chunks"
ferry points --repo "$repo" --json | grep -q '"verified_sample":10' || die "sample not recorded"
ok "verify --sample 10 read $checked of $total chunks and is recorded as a 10% sample"
# A missing chunk is found by a sample that does not read it.
rm "$(chunk_file "$repo" "$h")"
expect_fail 3 ferry verify --repo "$repo" --sample 1
ok "verify --sample 1 still finds a missing chunk"
