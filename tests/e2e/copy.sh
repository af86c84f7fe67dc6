# copy.sh - sourced (after functions.sh) by the backup copy tests (t0515-
# t0518): a source repository with two points, the kill-and-rerun check,
# and the incremental copy measurement.

# copy_source DIR: a repository with two points of $T/disk.img (48 MiB:
# random, compressible and zero regions); $T/v1.img is the first version.
copy_source() {
	ferry init --repo "$1" >/dev/null || die "init source"
	make_disk "$T/disk.img" 48
	cp "$T/disk.img" "$T/v1.img"
	id1=$(ferry backup --repo "$1" -q "$T/disk.img") || die "backup 1"
	head -c $((3 << 20)) /dev/urandom | dd of="$T/disk.img" bs=1M seek=7 conv=notrunc status=none
	id2=$(ferry backup --repo "$1" -q "$T/disk.img") || die "backup 2"
}

# copy_check FROM TO [OPTS...]: copy, restore both points from TO
# byte-identical, then a second copy sends nothing.
copy_check() {
	local from=$1 to=$2 json n; shift 2
	json=$(ferry copy --from "$from" --to "$to" "$@" --json) || die "copy to $to"
	[ "$(json_num "$json" points_copied)" -eq 2 ] || die "copy: $json"
	ok "copied 2 points: $(json_num "$json" chunks_sent) chunks, $(json_num "$json" bytes_sent) bytes"
	ferry restore --repo "$to" "$@" "$id1" --to "$T/c1.img" 2>/dev/null || die "restore copy 1"
	same "$T/v1.img" "$T/c1.img" "the copy of the first point restores byte-identical"
	ferry restore --repo "$to" "$@" "$id2" --to "$T/c2.img" 2>/dev/null || die "restore copy 2"
	same "$T/disk.img" "$T/c2.img" "the copy of the second point restores byte-identical"
	json=$(ferry copy --from "$from" --to "$to" "$@" --json) || die "second copy"
	[ "$(json_num "$json" points_copied)" -eq 0 ] && [ "$(json_num "$json" points_present)" -eq 2 ] &&
		[ "$(json_num "$json" chunks_sent)" -eq 0 ] && [ "$(json_num "$json" bytes_sent)" -eq 0 ] ||
		die "second copy sent something: $json"
	n=$(json_num "$json" net_bytes_sent)
	[ "$n" -lt 65536 ] || die "second copy put $n bytes on the wire"
	ok "a second copy copies no point and sends no chunk ($n bytes of protocol)"
	rm -f "$T/c1.img" "$T/c2.img"
}

# copy_killed FROM TO COUNT_CMD MIB TAG [OPTS...]: backs up a fresh MIB MiB
# random image (seeded by TAG) into FROM, sets idb to its point and before
# to COUNT_CMD's count, and starts copy --threads 1 OPTS to TO, killed
# with -9 once COUNT_CMD (chunks on the target) grew by 8.  A loaded
# machine may let the whole copy finish between two looks at the count
# (exit 0, not 137): then again with a fresh point, three times at most.
copy_killed() {
	local from=$1 to=$2 count=$3 mib=$4 tag=$5 pid i killed=0 rc try; shift 5
	for try in 1 2 3; do
		openssl enc -aes-128-ctr -pass pass:$tag$try -nosalt -pbkdf2 </dev/zero 2>/dev/null |
			head -c $((mib << 20)) >"$T/big-$tag.img"
		idb=$(ferry backup --repo "$from" -q "$T/big-$tag.img") || die "backup big-$tag"
		before=$($count)
		"$FERRY" copy --from "$from" --to "$to" "$@" --threads 1 >/dev/null 2>"$T/kill.err" &
		pid=$!
		cleanup_fn "kill -9 $pid"
		killed=0
		for i in $(seq 1000); do
			[ $(($($count) - before)) -ge 8 ] && { kill -9 $pid; killed=1; break; }
			kill -0 $pid 2>/dev/null || break
			sleep 0.005
		done
		wait $pid 2>/dev/null
		rc=$?
		[ $killed = 1 ] && [ $rc = 137 ] && return 0
		echo "try $try: the copy ended (exit $rc) before the kill landed"
	done
	die "the copy ended before it could be killed, 3 times: $(cat "$T/kill.err")"
}

# copy_kill_rerun FROM TO COUNT_CMD [OPTS...]: a copy of a fresh 96 MiB
# random point killed with -9 once COUNT_CMD (chunks on the target) grew
# by 8; the rerun sends only what is missing, and the point restores.
copy_kill_rerun() {
	local from=$1 to=$2 count=$3 json sent present; shift 3
	copy_killed "$from" "$to" "$count" 96 copykill "$@"
	ferry points --repo "$to" "$@" --json 2>/dev/null | grep -q "$idb" && die "a killed copy committed point $idb"
	ok "copy killed with -9 after $(($($count) - before)) chunks; point $idb not on the target"
	json=$(ferry copy --from "$from" --to "$to" "$@" --json) || die "rerun after the kill"
	sent=$(json_num "$json" chunks_sent)
	present=$(json_num "$json" chunks_present)
	[ "$(json_num "$json" points_copied)" -eq 1 ] || die "rerun: $json"
	[ "$present" -ge 8 ] && [ "$sent" -le $((96 - 8)) ] || die "rerun resent chunks: $json"
	ok "the rerun completes: $sent chunks sent, $present were there from the killed run"
	ferry restore --repo "$to" "$@" "$idb" --to "$T/cb.img" 2>/dev/null || die "restore big copy"
	same "$T/big-copykill.img" "$T/cb.img" "the point copied after the kill restores byte-identical"
	rm -f "$T/cb.img"
}

# copy_incremental FROM TO [OPTS...]: 1 % of a 256 MiB disk changed
# (3 blocks of mixed data), backed up, copied: bytes sent <= 1.5 x the
# changed bytes after compression (each 1 MiB block compressed with zstd
# -2, which shrinks them more than ferry's default lz4 does); prints the
# numbers.
copy_incremental() {
	local from=$1 to=$2 json sent zc=0 off; shift 2
	make_disk "$T/inc.img" 256 7
	ferry backup --repo "$from" -q "$T/inc.img" >/dev/null || die "backup inc 1"
	ferry copy --from "$from" --to "$to" "$@" -q || die "copy inc 1"
	for off in 11 97 203; do
		{ head -c $((512 << 10)) /dev/urandom; head -c $((512 << 10)) /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/* 2>/dev/null | head -c $((512 << 10)); } |
			dd of="$T/inc.img" bs=1M seek=$off conv=notrunc status=none
		zc=$((zc + $(dd if="$T/inc.img" bs=1M skip=$off count=1 status=none | zstd -2 -c | wc -c)))
	done
	ferry backup --repo "$from" -q "$T/inc.img" >/dev/null || die "backup inc 2"
	json=$(ferry copy --from "$from" --to "$to" "$@" --json) || die "copy inc 2"
	sent=$(json_num "$json" net_bytes_sent)
	echo "incremental copy: changed $((3 << 20)) bytes (1.2 % of 256 MiB), $zc after zstd -2, sent $sent bytes, ratio $(echo "scale=3; $sent / $zc" | bc)"
	[ "$sent" -le $((zc * 3 / 2)) ] || die "incremental copy sent $sent bytes for $zc compressed changed bytes"
	ok "incremental copy sends $sent bytes <= 1.5 x $zc"
	rm -f "$T/inc.img"
}
