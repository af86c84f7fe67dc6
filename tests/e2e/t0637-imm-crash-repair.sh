#!/bin/bash
# Hardened repository, crash safety: a backup SIGKILLed at each of its
# ioctl calls (strace), which are the steps that set the immutable
# attribute (each chunk after the sync, the expiry record, the manifest
# right after its link), leaves either no point or a complete one; a point
# committed just before its manifest got the attribute, and a chunk or
# record that lost it, get it back from gc (the maintenance step), which
# says how many; then every file of every point carries 'i', gc removed
# the killed backups' leftovers, and every point restores byte-identical.
. "$(dirname "$0")/functions.sh"
requires_root
requires strace lsattr chattr
cleanup_fn "chattr -R -i '$T'"

repo=$T/repo
ferry init --repo "$repo" --block-size 64K --immutable-days 3 >/dev/null || die "init"
truncate -s 512K "$T/d.img"
declare -A sum
ids() { ls "$repo/points"; }
dd if=/dev/urandom of="$T/d.img" bs=64K count=8 conv=notrunc status=none
p0=$(ferry backup --repo "$repo" --quiet "$T/d.img") || die "first backup"
sum[$p0]=$(md5 "$T/d.img")
p1=$(under_strace -f -qq -e trace=ioctl -o "$T/st" "$FERRY" backup --repo "$repo" --quiet --threads 1 "$T/d.img") ||
	die "backup under strace"
sum[$p1]=${sum[$p0]}
n_ioctl=$(grep -c 'ioctl(' "$T/st")
n_set=$(grep -c 'FS_IOC_SETFLAGS' "$T/st")
[ "$n_set" -ge 2 ] || die "expected FS_IOC_SETFLAGS calls in a backup, saw $n_set"
ok "a backup makes $n_ioctl ioctl calls, $n_set of them setting the attribute (the duplicate backup's expiry and manifest)"

kills=0 committed=0
for ((n = 1; n <= 22; n++)); do
	dd if=/dev/urandom of="$T/d.img" bs=64K count=8 conv=notrunc status=none
	before=$(ids | tr '\n' ' ')
	under_strace -f -qq -e trace=ioctl -e inject=ioctl:signal=KILL:when=$n -o /dev/null \
		"$FERRY" backup --repo "$repo" --quiet --threads 1 "$T/d.img" >"$T/out" 2>/dev/null
	rc=$?
	new=$(ids | grep -vxF -f <(echo "$before" | tr ' ' '\n' | grep .) || true)
	if [ $rc -eq 0 ]; then
		[ -n "$new" ] || die "backup with no kill committed nothing"
	else
		kills=$((kills + 1))
	fi
	for id in $new; do sum[$id]=$(md5 "$T/d.img"); committed=$((committed + 1)); done
	"$FERRY" points --repo "$repo" >/dev/null 2>&1 || die "points after kill $n"
	"$FERRY" points --repo "$repo" | grep -qi damaged && die "a damaged point after kill $n"
done
ok "$kills backups killed at ioctl 1..22, $committed of those runs committed a point; none damaged"

# What a kill can leave: simulate the rest too (a chunk, a record).
chunk=$(chunk_file "$repo" "$(block_hash "$T/d.img" 0 65536)")
chattr -i "$chunk" "$repo/expiry/$p0"
ferry gc --repo "$repo" --json >"$T/gc.json" 2>"$T/gc.err" || { cat "$T/gc.err"; die "gc"; }
fp=$(grep -o '"files_protected":[0-9]*' "$T/gc.json" | cut -d: -f2)
[ "$fp" -ge 2 ] || { cat "$T/gc.json"; die "gc set the attribute on $fp files, expected at least 2"; }
ok "gc set the attribute on $fp file(s) of protected points that lacked it"
n=0
for f in "$repo"/chunks/*/* "$repo"/points/* "$repo"/expiry/*; do
	lsattr -d "$f" | cut -d' ' -f1 | grep -q i || die "$f lacks 'i' after gc"
	n=$((n + 1))
done
for id in $(ids); do
	[ -f "$repo/expiry/$id" ] || die "point $id has no expiry record"
done
ok "after gc all $n files carry 'i'; every point has its expiry record"
nchunks=$(find "$repo/chunks" -type f | wc -l)
# (p1 repeats p0: its chunks are p0's)
[ "$nchunks" -eq $((8 * ($(ids | wc -l) - 1))) ] || die "$nchunks chunks for $(ids | wc -l) points: gc left killed backups' chunks"
ok "gc removed the chunks and expiry records the killed backups left ($nchunks chunks left, 8 per distinct point)"
for id in $(ids); do
	[ -n "${sum[$id]:-}" ] || die "point $id appeared without a backup that made it"
	restores_to "$repo" "$id" "${sum[$id]}" "point $id restores byte-identical"
done
ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify"
ok "verify passes"
