#!/bin/bash
# gc beside running backups, many rounds (the race behind a published PBS
# advisory: gc removing a chunk a running backup reuses).  Two backup loops
# cycle two disks through four versions, so each backup reuses chunks that
# only forgotten points held; after every backup, forget keeps the last 2
# points of that disk; a third loop runs gc back to back.  At the end no
# chunk is missing (verify passes) and every remaining point restores
# byte-identical to the version it was taken from.
. "$(dirname "$0")/functions.sh"

if asan_tier; then rounds=${FERRY_ROUNDS:-8}; else rounds=${FERRY_ROUNDS:-30}; fi
seed=${FERRY_SEED:-1}
RANDOM=$seed
repo=$T/repo
ferry init --repo "$repo" --block-size 64K >/dev/null || die "init"

# Four versions of a 4 MiB disk, each rewriting a different MiB of v0.
truncate -s 4M "$T/v0.img"
rand_fill "$T/v0.img" 0 4 "race-$seed"
for v in 1 2 3; do
	cp "$T/v0.img" "$T/v$v.img"
	rand_fill "$T/v$v.img" "$v" 1 "race-$seed-$v"
done
for v in 0 1 2 3; do echo "$v $(md5 "$T/v$v.img")"; done >"$T/versions"

backup_loop() { # DISK SEED: back up random versions, forget all but 2
	local d=$1 i v id
	RANDOM=$2
	for ((i = 0; i < rounds; i++)); do
		v=$((RANDOM % 4))
		cp "$T/v$v.img" "$T/$d.img"
		id=$(ferry backup --repo "$repo" --threads 2 --quiet --name "$d" "$T/$d.img") ||
			{ echo "backup of $d failed" >"$T/$d.fail"; return 1; }
		echo "$id $v" >>"$T/$d.log"
		ferry forget --repo "$repo" --name "$d" --keep-last 2 >/dev/null 2>&1 ||
			{ echo "forget of $d failed" >"$T/$d.fail"; return 1; }
	done
}

backup_loop d1 $((seed * 7)) &
p1=$!
backup_loop d2 $((seed * 13)) &
p2=$!
cleanup_fn kill $p1 $p2
touch "$T/gc.log"
(
	while [ ! -e "$T/stop" ]; do
		ferry gc --repo "$repo" --json >>"$T/gc.log" 2>"$T/gc.err" || { cat "$T/gc.err" >"$T/gc.fail"; exit 1; }
	done
) &
pg=$!
cleanup_fn kill $pg
wait $p1 || die "$(cat "$T/d1.fail" 2>/dev/null)"
wait $p2 || die "$(cat "$T/d2.fail" 2>/dev/null)"
touch "$T/stop"
wait $pg || die "gc failed: $(cat "$T/gc.fail")"
runs=$(grep -c . "$T/gc.log")
freed=$(grep -o '"chunks_removed":[0-9]*' "$T/gc.log" | cut -d: -f2 | paste -sd+ | bc)
late=$(grep -o '"points_late":[0-9]*' "$T/gc.log" | cut -d: -f2 | paste -sd+ | bc)
waited=$(grep -c '"wait_seconds":0\.0[0-9][1-9]\|"wait_seconds":[1-9]\|"wait_seconds":0\.[1-9]' "$T/gc.log")
ok "$((rounds * 2)) backups and forgets beside $runs gc runs ($freed chunks removed, $late points marked late, $waited runs waited for backups)"
[ "$runs" -ge 3 ] || die "gc ran only $runs times"
# Under ASan every backup is slow enough that gc may find one running at
# every turn and keep what it would free (8 rounds: 0 removed, seen a few
# times), and the last two points of each disk may hold every version, so
# that nothing is garbage at the end either.  There a forgotten point of
# its own is made garbage, and the final gc, with nothing running, must
# free it: gc is still seen to free.
if asan_tier && [ "$freed" -eq 0 ]; then
	for k in 1 2; do
		truncate -s 1M "$T/junk.img"
		rand_fill "$T/junk.img" 0 1 "junk-$seed-$k"
		ferry backup --repo "$repo" --quiet --name junk "$T/junk.img" >/dev/null || die "backup junk $k"
	done
	ferry forget --repo "$repo" --name junk --keep-last 1 >/dev/null 2>&1 || die "forget junk"
fi
# One more gc with nothing running, then the checks.
final=$(ferry gc --repo "$repo" --json) || die "final gc"
if asan_tier && [ "$freed" -eq 0 ]; then
	freed=$(echo "$final" | grep -o '"chunks_removed":[0-9]*' | cut -d: -f2)
	ok "ASan tier: nothing freed during the race; the final gc removed ${freed:-0} chunks"
fi
[ "${freed:-0}" -gt 0 ] || die "gc never removed anything: the test proves nothing"
ferry verify --repo "$repo" >"$T/verify.out" 2>&1 || { cat "$T/verify.out"; die "verify after the race"; }
ok "verify passes: no chunk missing"
n=0
for d in d1 d2; do
	for id in $(point_ids "$repo"); do
		v=$(grep "^$id " "$T/$d.log" | cut -d' ' -f2) || continue
		[ -n "$v" ] || continue
		restores_to "$repo" "$id" "$(grep "^$v " "$T/versions" | cut -d' ' -f2)" "point $id of $d (version $v)"
		n=$((n + 1))
	done
done
[ "$n" -eq 4 ] || die "expected 4 points (2 per disk), restored $n"
ok "every remaining point restores byte-identical"
