#!/bin/bash
# Several backups into one repository at once, over several rounds: the
# same file twice, a byte-identical copy of it, and a different disk, all
# writing the same new chunks at the same moment; a verify and a restore of
# the previous round run alongside.  Every backup succeeds, verify passes,
# and every point restores byte-identical.
. "$(dirname "$0")/functions.sh"

seed=${FERRY_SEED:-1}
RANDOM=$seed
if asan_tier; then rounds=${FERRY_ROUNDS:-2} mib=16; else rounds=${FERRY_ROUNDS:-4} mib=32; fi
repo=$T/repo
ram_scratch
truncate -s "${mib}M" "$T/a.img" "$T/b.img"
rand_fill "$T/a.img" 0 $((mib * 3 / 4)) "a-$seed"
rand_fill "$T/b.img" 0 $((mib / 2)) "b-$seed"
ferry init --repo "$repo" --block-size 256K >/dev/null || die "init"
echo "seed $seed: $rounds rounds of 4 parallel backups of $mib MiB disks"

declare -A sum
prev=""
for ((r = 1; r <= rounds; r++)); do
	# new data in both disks, some of it the same in both
	rand_fill "$T/a.img" "$(rnd $((mib - 4)))" 4 "round-$seed-$r"
	rand_fill "$T/b.img" "$(rnd $((mib - 4)))" 4 "round-$seed-$r"
	rand_fill "$T/b.img" "$(rnd $((mib - 2)))" 2 "b-round-$seed-$r"
	cp "$T/a.img" "$T/a-copy.img"
	sa=$(md5 "$T/a.img")
	sb=$(md5 "$T/b.img")
	pids=()
	for job in "a:$T/a.img" "a-again:$T/a.img" "a-copy:$T/a-copy.img" "b:$T/b.img"; do
		"$FERRY" backup --repo "$repo" --threads 2 --quiet --name "${job%%:*}" "${job#*:}" \
			>"$T/out.${job%%:*}" 2>"$T/err.${job%%:*}" &
		pids+=($!)
	done
	if [ -n "$prev" ]; then
		"$FERRY" verify --repo "$repo" >/dev/null 2>"$T/err.verify" &
		vpid=$!
		"$FERRY" restore --repo "$repo" "$prev" --to "$SCRATCH/prev.img" 2>"$T/err.restore" &
		rpid=$!
	fi
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || { cat "$T"/err.* >&2; die "round $r: backup $i failed"; }
	done
	for n in a a-again a-copy; do
		id=$(cat "$T/out.$n")
		sum[$id]=$sa
		ids+=("$id")
	done
	id=$(cat "$T/out.b")
	sum[$id]=$sb
	ids+=("$id")
	ok "round $r: 4 parallel backups succeeded ($(cat "$T"/out.* | tr '\n' ' '))"
	if [ -n "$prev" ]; then
		wait $vpid || { cat "$T/err.verify" >&2; die "round $r: verify alongside the backups failed"; }
		wait $rpid || { cat "$T/err.restore" >&2; die "round $r: restore alongside the backups failed"; }
		[ "$(md5 "$SCRATCH/prev.img")" = "${sum[$prev]}" ] || die "round $r: restore alongside the backups differs"
		rm -f "$SCRATCH/prev.img"
		ok "round $r: a verify and a restore of $prev alongside them succeeded"
	fi
	prev=$id
done

[ "$(point_ids "$repo" | wc -l)" -eq $((rounds * 4)) ] || die "expected $((rounds * 4)) points, found $(point_ids "$repo" | wc -l)"
if ferry points --repo "$repo" --json | grep -q '"corrupt":true'; then die "a damaged manifest is listed"; fi
ok "$((rounds * 4)) points, none damaged"
ferry verify --repo "$repo" 2>"$T/verify.err" || { cat "$T/verify.err" >&2; die "verify after the races"; }
ok "verify passes ($(cat "$T/verify.err"))"
for id in "${ids[@]}"; do
	restores_to "$repo" "$id" "${sum[$id]}" "point $id restores byte-identical"
done
