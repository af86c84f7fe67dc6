#!/bin/bash
# kill -9 at random moments of backups that store delta blocks: earlier
# points stay intact (restore byte-identical, verify clean) and the next
# backup succeeds and stores delta blocks.
. "$(dirname "$0")/functions.sh"

bs=1048576
mib=96; asan_tier && mib=48
ferry init --repo "$T/repo" >/dev/null || die "init"
head -c $((mib * bs)) /dev/urandom >"$T/disk.img"
ferry backup --repo "$T/repo" "$T/disk.img" >/dev/null 2>&1 || die "backup 1"
sums=("$(md5 "$T/disk.img")")
for round in 1 2 3; do
	before=$(chunk_bytes "$T/repo")
	delta_scatter "$T/disk.img" 12 $bs
	"$FERRY" backup --repo "$T/repo" "$T/disk.img" >/dev/null 2>&1 &
	pid=$!
	sleep_ms $((20 + $(rnd 300)))
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	n=$(point_ids "$T/repo" | wc -l)
	[ "$n" -eq $round ] || [ "$n" -eq $((round + 1)) ] || die "round $round: $n points"
	if [ "$n" -eq $((round + 1)) ]; then
		ok "round $round: the backup finished before the kill"
	else
		json=$(ferry backup --repo "$T/repo" --json "$T/disk.img" 2>/dev/null) || die "round $round: backup after the kill"
		# The killed backup may already have stored every delta chunk
		# (then this one reuses them: blocks_delta 0), so judge by what
		# the round added: 12 writes of 64 KiB are 0.75 MiB as deltas,
		# 12 MiB as whole (random) blocks.
		grown=$(($(chunk_bytes "$T/repo") - before))
		[ "$grown" -le $((2 * 1048576)) ] || die "round $round: the repository grew $grown bytes for 12 x 64 KiB (no deltas?): $json"
		ok "round $round: killed mid-backup; the next backup completes, the round stored $grown bytes (deltas)"
	fi
	sums+=("$(md5 "$T/disk.img")")
done
i=0
for id in $(point_ids "$T/repo"); do
	restores_to "$T/repo" "$id" "${sums[$i]}" "point $((i + 1)) restores byte-identical"
	i=$((i + 1))
done
ferry verify --repo "$T/repo" >/dev/null 2>"$T/err" || { cat "$T/err"; die "verify"; }
ok "verify is clean"
