#!/bin/bash
# ferry-test: long
# SIGKILL during backups of a changing disk, at FERRY_KILLS (default 20)
# seeded random moments: at a random fraction of the source read (blocks
# being read, hashed, compressed and stored) and inside the commit (syncfs
# of the chunks, fsync of the manifest, fsync of points/); then once at the
# entry of every step of the commit (strace).  After every kill the points
# are exactly the committed ones, none damaged, nothing left in points/; at
# the end every earlier point restores byte-identical, verify passes and a
# new backup of the same source succeeds.  FERRY_SEED=N replays other
# moments.
. "$(dirname "$0")/functions.sh"

seed=${FERRY_SEED:-1}
if asan_tier; then
	kills=${FERRY_KILLS:-10} mib=128
else
	kills=${FERRY_KILLS:-20} mib=128
fi
RANDOM=$seed
echo "seed $seed: $kills kills during backups of a $mib MiB image"

ram_scratch # the source and restored images live in RAM, the repository on disk
src=$SCRATCH/disk.img
repo=$T/repo
truncate -s "${mib}M" "$src"
rand_fill "$src" 0 $((mib * 7 / 8)) "base-$seed" # the last 1/8 stays a hole
ferry init --repo "$repo" >/dev/null || die "init"
mkfifo "$T/tick" && exec 9<>"$T/tick" # read -t on it: a sleep without a fork

# The commit runs on the main thread.  With --threads 1 that thread only
# reads the source (pread64) and waits for the worker (futex) before it;
# then it writes the manifest, syncfs()s the chunks, fsync()s the manifest,
# links it into points/ and fsync()s points/.
case $(uname -m) in
x86_64) NR_WRITE=1 NR_PREAD=17 NR_FSYNC=74 NR_FUTEX=202 NR_LINKAT=265 NR_SYNCFS=306 ;;
aarch64) NR_WRITE=64 NR_PREAD=67 NR_FSYNC=82 NR_FUTEX=98 NR_LINKAT=37 NR_SYNCFS=267 ;;
*) NR_WRITE=x NR_PREAD=x NR_FSYNC=x NR_FUTEX=x NR_LINKAT=x NR_SYNCFS=x ;;
esac
commit_step() { # NR FD POINTS_FD: the step of the commit, or nothing
	case $1 in
	"$NR_WRITE") echo "writing the manifest" ;;
	"$NR_SYNCFS") echo "syncfs of the chunks" ;;
	"$NR_FSYNC") if [ -n "$3" ] && [ "$2" = "$3" ]; then echo "fsync of points/"; else echo "fsync of the manifest"; fi ;;
	"$NR_LINKAT") echo "linking the manifest" ;;
	esac
}
sys_name() {
	case $1 in
	"$NR_PREAD") echo "pread64 of the source" ;;
	"$NR_FUTEX") echo "futex (waiting for the worker)" ;;
	running) echo "no syscall (running)" ;;
	gone) echo "exit" ;;
	*) echo "syscall $1" ;;
	esac
}
can_watch=0
[ "$NR_WRITE" != x ] && read -r _ _ 2>/dev/null <"/proc/$$/syscall" && can_watch=1
[ $can_watch = 1 ] || echo "note: /proc/PID/syscall unreadable: kills are timed, not watched"
# Random kills aim at the commit's longest step; strace kills at each step.
targets=("syncfs of the chunks")

ids=() sums=() # committed points, and the MD5 of the source each holds
last_ms=1000

check_points() { # WHAT: exactly the committed points, all intact
	local now want junk
	now=$(point_ids "$repo" | sort | tr '\n' ' ')
	want=$(printf '%s\n' "${ids[@]}" | sort | tr '\n' ' ')
	[ "$now" = "$want" ] || die "$1: points are [$now], expected [$want]"
	if ferry points --repo "$repo" --json | grep -q '"corrupt":true'; then
		die "$1: a damaged manifest is visible"
	fi
	junk=$(ls -A "$repo/points" | grep -vxE '[0-9a-f]{16}' | tr '\n' ' ')
	[ -z "$junk" ] || die "$1: left in points/: $junk"
}

# After a kill: a new point may only be a complete one (the kill came
# after the manifest's link); it must then hold exactly the source.
adopt_new_point() { # WHAT
	new=$(point_ids "$repo" | grep -vxF -f <(printf '%s\n' "${ids[@]}") || true)
	[ -n "$new" ] || return 1
	[ "$(echo "$new" | wc -l)" -eq 1 ] || die "$1: several new points: $new"
	ids+=("$new")
	sums+=("$(md5 "$src")")
}

full_backup() { # WHAT
	local t0 id
	t0=$(date +%s%N)
	id=$(ferry backup --repo "$repo" --threads 1 --quiet "$src") || die "$1: backup failed"
	last_ms=$((($(date +%s%N) - t0) / 1000000))
	ids+=("$id")
	sums+=("$(md5 "$src")")
	ok "$1: point $id committed in $last_ms ms"
}

full_backup "first backup"
landed=0 round=0 aims=0 n_linked=0 n_read=0 n_early=0 n_end=0 min_pct=100 max_pct=0
n_in_commit=0 need=1 # kills inside the commit (or after its link) wanted
[ "$kills" -ge 20 ] && need=2
declare -A at_step
while [ $landed -lt "$kills" ]; do
	round=$((round + 1))
	[ $round -le $((kills * 3 + 10)) ] || die "only $landed of $kills kills landed in $((round - 1)) tries"
	# The disk changes between runs: a quarter of it is rewritten.
	len=$((mib / 4))
	off=$(rnd $((mib - len)))
	rand_fill "$src" "$off" "$len" "round-$seed-$round"
	# Every fourth round aims at the commit; past half the kills, every
	# round does until enough landed there (a fast machine's commit is
	# short: most such rounds finish before the kill).
	if [ $((round % 4)) -eq 0 ] ||
		{ [ $landed -ge $((kills / 2)) ] && [ $n_in_commit -lt $need ]; }; then
		target=${targets[$((aims % ${#targets[@]}))]}
		aims=$((aims + 1))
		aim="commit: $target"
	else
		frac=$(rnd 100)
		aim="$frac% read"
	fi

	# A kill aimed at a fraction read watches rchar in /proc/PID/io,
	# which counts pread, not a mapped image: those backups pread.
	nomap=0
	[ "${aim%%:*}" = commit ] || nomap=1
	start=$(date +%s%N)
	FERRY_NO_MMAP=$nomap "$FERRY" backup --repo "$repo" --threads 1 --quiet "$src" >"$T/bk.out" 2>"$T/bk.err" &
	pid=$!
	pfd="" entered=""
	if [ $can_watch = 0 ]; then
		case $aim in
		commit*) sleep_ms $((last_ms * 9 / 10 + $(rnd $((last_ms / 5 + 1))))) ;;
		*) sleep_ms $((5 + last_ms * frac / 100)) ;;
		esac
	elif [ "${aim%%:*}" = commit ]; then
		# Wait until the main thread enters that step of the commit;
		# kill it then.
		case $target in
		syncfs*) tnr=$NR_SYNCFS ;;
		fsync*) tnr=$NR_FSYNC ;;
		esac
		# (no forks in this loop once points/'s descriptor is known)
		while read -r nr a1 _ <"/proc/$pid/syscall"; do
			if [ -z "$pfd" ]; then
				for f in /proc/$pid/fd/*; do
					[ "$(readlink "$f")" = "$repo/points" ] && pfd=${f##*/}
				done
			fi
			[ "$nr" = "$tnr" ] || continue
			case $target in
			"fsync of points/") [ $((a1)) = "$pfd" ] && { entered=$target; break; } ;;
			"fsync of the manifest") [ $((a1)) != "$pfd" ] && { entered=$target; break; } ;;
			*) entered=$target && break ;;
			esac
		done 2>/dev/null
		# at once, or up to 50 ms later (inside the syncfs, or past it)
		[ "$(rnd 2)" = 0 ] && read -r -t 0.0$(rnd 5)$(rnd 10) -u 9
	elif [ "$frac" -lt 2 ]; then
		# the very start: loading, opening the repository
		read -r -t 0.0$(rnd 4)$(rnd 10) -u 9
	else
		# Wait until that fraction of the source has been read.
		want=$((frac * mib * 1048576 / 100))
		while :; do
			rchar=0
			while read -r k v; do
				[ "$k" = rchar: ] && { rchar=$v; break; }
			done <"/proc/$pid/io" || break
			[ "$rchar" -ge $want ] && break
			read -r -t 0.001 -u 9
		done 2>/dev/null
	fi
	nr=gone a1=0 rchar=0
	read -r nr a1 _ 2>/dev/null <"/proc/$pid/syscall"
	while read -r k v; do [ "$k" = rchar: ] && rchar=$v; done 2>/dev/null <"/proc/$pid/io"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	if [ $rc -eq 0 ]; then
		# It finished first: a committed point like any other.
		ids+=("$(cat "$T/bk.out")")
		sums+=("$(md5 "$src")")
		echo "round $round (aimed at $aim): the backup finished before the kill ($ms ms)"
		check_points "round $round"
		continue
	fi
	[ $rc -eq 137 ] || { cat "$T/bk.err" >&2; die "round $round: backup exited $rc instead of being killed"; }
	landed=$((landed + 1))
	pct=$((rchar * 100 / (mib * 1048576)))
	[ $pct -gt 100 ] && pct=100
	step=$(commit_step "$nr" $((a1)) "$pfd")
	# Seen entering a step of the commit, killed later (a delay, or a
	# fast syncfs that returned first) and no point linked: the kill
	# still landed inside the commit, past that step's start.
	[ -z "$step" ] && [ -n "$entered" ] && step="past the start of the $entered"
	[ -n "$step" ] && n_in_commit=$((n_in_commit + 1))
	if adopt_new_point "kill $landed"; then
		n_linked=$((n_linked + 1))
		[ -z "$step" ] && n_in_commit=$((n_in_commit + 1))
		where="${step:-$(sys_name "$nr")}, after the manifest was linked: the point is complete"
	elif [ -n "$step" ]; then
		at_step[$step]=$((${at_step[$step]:-0} + 1))
		where="the commit ($step)"
	else
		where="$(sys_name "$nr"), $pct% of the source read"
		if [ $pct -lt 2 ]; then
			n_early=$((n_early + 1))
		elif [ $pct -lt 99 ]; then
			n_read=$((n_read + 1))
			[ $pct -lt $min_pct ] && min_pct=$pct
			[ $pct -gt $max_pct ] && max_pct=$pct
		else
			n_end=$((n_end + 1))
		fi
	fi
	check_points "kill $landed"
	echo "ok: kill $landed (round $round, aimed at $aim) after $ms ms, in $where: no half point visible"
	# Now and then a backup runs to the end: more earlier points to keep.
	[ $((landed % 7)) -eq 0 ] && full_backup "backup after kill $landed"
done

n_commit=0 steps=""
for s in "${targets[@]}" "writing the manifest" "linking the manifest" "${targets[@]/#/past the start of the }"; do
	[ -n "${at_step[$s]:-}" ] || continue
	n_commit=$((n_commit + ${at_step[$s]}))
	steps="$steps, ${at_step[$s]} in $s"
done
ok "$landed kills landed: $n_early at the start, $n_read while reading and storing blocks ($min_pct%..$max_pct% of the source read), $n_end after the last read, $n_commit inside the commit${steps}, $n_linked after the manifest's link"
if [ "$kills" -ge 8 ] && [ $can_watch = 1 ]; then
	[ $((n_commit + n_linked)) -ge $need ] || die "fewer than $need kills landed inside the commit"
	[ $n_read -ge $((kills / 3)) ] || die "fewer than $((kills / 3)) kills landed while blocks were read"
	ok "kills landed at varied moments, inside the commit too"
fi

# Every step of the commit once, killed at its entry by strace (the
# blocks are stored already: the main thread's syscalls are the commit's).
if command -v strace >/dev/null; then
	full_backup "a backup to store every block"
	for step in write syncfs fsync:when=1 linkat fsync:when=2; do
		inj=${step%%:*}:signal=KILL${step#"${step%%:*}"}
		{
			under_strace -f -o /dev/null -e inject="$inj" "$FERRY" backup --repo "$repo" \
				--threads 1 --quiet "$src" >/dev/null 2>"$T/bk.err"
			rc=$?
		} 2>/dev/null # (no "Killed" notice from the shell)
		[ $rc -eq 137 ] || { cat "$T/bk.err" >&2; die "backup killed at $inj exited $rc"; }
		if adopt_new_point "killed at $inj"; then
			what="the point is complete"
		else
			what="no point"
		fi
		check_points "killed at $inj"
		ok "killed at the entry of $step (strace $inj): $what, no half point visible"
	done
fi

ferry verify --repo "$repo" 2>"$T/verify.err" || { cat "$T/verify.err" >&2; die "verify after the kills"; }
ok "verify passes after the kills ($(tail -1 "$T/verify.err"))"
for i in "${!ids[@]}"; do
	restores_to "$repo" "${ids[$i]}" "${sums[$i]}" "earlier point $((i + 1)) of ${#ids[@]} (${ids[$i]}) restores byte-identical"
done
full_backup "a new backup of the same source after the kills"
restores_to "$repo" "${ids[-1]}" "${sums[-1]}" "the new point restores byte-identical"
ferry verify --repo "$repo" "${ids[-1]}" 2>/dev/null || die "verify of the new point"
ok "verify of the new point passes"
