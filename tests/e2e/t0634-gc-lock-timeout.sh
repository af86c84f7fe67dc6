#!/bin/bash
# gc --lock-timeout: while backups hold the repository lock shared, gc
# waits at most that long for the exclusive lock, then gives up cleanly
# (exit 1, one line saying why, nothing removed); once the lock is free it
# runs; 0 waits as long as it takes.  An idle mover holds no lock.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"
requires flock

repo=$T/repo
ferry init --repo "$repo" --block-size 64K >/dev/null || die "init"
truncate -s 512K "$T/d.img"
dd if=/dev/urandom of="$T/d.img" bs=64K count=8 conv=notrunc status=none
ferry backup --repo "$repo" --quiet "$T/d.img" >/dev/null || die "backup 1"
dd if=/dev/urandom of="$T/d.img" bs=64K count=8 conv=notrunc status=none
id2=$(ferry backup --repo "$repo" --quiet "$T/d.img") || die "backup 2"
ferry forget --repo "$repo" --keep-last 1 >/dev/null 2>&1 || die "forget"
[ "$(find "$repo/chunks" -type f | wc -l)" -eq 16 ] || die "expected 16 chunks"
ok "16 chunks, 8 of them garbage after forget"

# A backup's shared lock (what ferry backup takes on REPO/lock).
# hold_shared SECONDS: one process holding it (killing it frees the lock)
# (returns once the holder has it)
hold_shared() {
	( exec 9<>"$repo/lock"; flock -s 9; exec sleep "$1" ) & holder=$!
	for _ in $(seq 100); do flock -n -x "$repo/lock" true || return 0; sleep 0.05; done
	die "the lock holder did not take the lock"
}
hold_shared 30
cleanup_fn "kill $holder"
t0=$(date +%s%N)
expect_fail 1 ferry gc --repo "$repo" --lock-timeout 1
t1=$(date +%s%N)
one_error_line "held the lock .* for 1 s \(--lock-timeout\); gave up, nothing removed"
ms=$(((t1 - t0) / 1000000))
[ "$ms" -ge 900 ] && [ "$ms" -lt 5000 ] || die "gc gave up after $ms ms, expected about 1 s"
[ "$(find "$repo/chunks" -type f | wc -l)" -eq 16 ] || die "a gc that gave up removed chunks"
ok "beside a shared lock, gc --lock-timeout 1 gives up after $ms ms: $(cut -c1-110 "$T/err")"

# 0: waits until the holder is gone, then runs.
kill $holder; wait $holder 2>/dev/null
# Held for 4 s from when the holder has it: gc's own start (slow under
# ASan on a loaded machine) must not eat the second gc has to wait.
hold_shared 4
json=$(ferry gc --repo "$repo" --lock-timeout 0 --json) || die "gc --lock-timeout 0"
wait_s=$(echo "$json" | grep -o '"wait_seconds":[0-9.]*' | cut -d: -f2)
awk -v w="$wait_s" 'BEGIN { exit !(w >= 1.0) }' || die "gc did not wait ($wait_s s)"
echo "$json" | grep -q '"chunks_removed":8' || die "gc removed the wrong count: $json"
ok "--lock-timeout 0 waited $wait_s s for the holder, then removed the 8 garbage chunks"
restores_to "$repo" "$id2" "$(md5 "$T/d.img")" "the kept point restores"

# A mover serving the repository holds the lock only while a session adds
# data (t0640-t0642): beside an idle mover gc runs.
start_mover m -- --repo "$repo" --insecure
ferry gc --repo "$repo" --lock-timeout 1 >/dev/null || die "gc beside an idle mover"
ok "beside an idle mover gc --lock-timeout 1 runs"
finish_movers
expect_fail 2 ferry gc --repo "$repo" --lock-timeout soon
expect_fail 2 ferry gc --repo "$repo" --lock-timeout -1
ok "a bad --lock-timeout is refused"
ferry gc --help | grep -q "default 3600" || die "the default is not documented in --help"
ok "--help documents the default (3600 s)"
