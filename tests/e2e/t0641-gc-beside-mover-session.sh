#!/bin/bash
# gc on the repository's host while a remote backup is mid-session: the
# mover holds the shared lock for the session, so gc --lock-timeout 1 gives
# up cleanly (nothing removed), and gc without a limit waits, then
# completes once the session commits; the backup's point restores
# byte-identical and the garbage is gone (issue 6).
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
P=$T/pki
ferry init --repo "$T/repo" --block-size 64K >/dev/null || die "init"
truncate -s 1M "$T/old.img"
dd if=/dev/urandom of="$T/old.img" bs=64K count=16 conv=notrunc status=none
ferry backup --repo "$T/repo" --quiet "$T/old.img" >/dev/null || die "backup old 1"
dd if=/dev/urandom of="$T/old.img" bs=64K count=16 conv=notrunc status=none
ferry backup --repo "$T/repo" --quiet "$T/old.img" >/dev/null || die "backup old 2"
ferry forget --repo "$T/repo" --keep-last 1 >/dev/null 2>&1 || die "forget"
ok "16 garbage chunks after a forget"

start_mover m -- --repo "$T/repo" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt"
url=ferry://127.0.0.1:$m_port/repo
head -c $((12 << 20)) /dev/urandom >"$T/disk.img"
"$FERRY" backup --repo "$url" $(src_tls) --limit-rate 3M --json "$T/disk.img" \
	>"$T/bk.json" 2>"$T/bk.err" &
bk=$!
cleanup_fn "kill -9 $bk"
for i in $(seq 200); do
	[ -n "$(ls "$T/repo/sessions/" 2>/dev/null)" ] && break
	sleep 0.05
done
[ -n "$(ls "$T/repo/sessions/")" ] || die "no session began"
sleep 0.5
kill -0 $bk || die "the backup ended too early: $(cat "$T/bk.err")"
n0=$(find "$T/repo/chunks" -type f | wc -l)
expect_fail 1 ferry gc --repo "$T/repo" --lock-timeout 1
one_error_line "gave up, nothing removed"
kill -0 $bk || die "the backup ended before gc gave up (too fast to test)"
ok "mid-session, gc --lock-timeout 1 gives up: $(cut -c1-100 "$T/err")"

ferry gc --repo "$T/repo" --lock-timeout 0 --json >"$T/gc.json" 2>"$T/gc.err" &
gc=$!
cleanup_fn "kill -9 $gc"
wait $bk || { cat "$T/bk.err"; die "the backup failed beside a waiting gc"; }
wait $gc || { cat "$T/gc.err"; die "gc failed"; }
json=$(cat "$T/gc.json")
wait_s=$(echo "$json" | grep -o '"wait_seconds":[0-9.]*' | cut -d: -f2)
awk -v w="$wait_s" 'BEGIN { exit !(w >= 0.5) }' || die "gc did not wait for the session ($wait_s s)"
echo "$json" | grep -q '"chunks_removed":16' || die "gc removed the wrong count: $json"
ok "gc waited $wait_s s for the session, then removed the 16 garbage chunks (store had $n0+ chunks mid-session)"
id=$(grep -o '"id":"[0-9a-f]*"' "$T/bk.json" | cut -d'"' -f4)
[ -n "$id" ] || die "no point id: $(cat "$T/bk.json")"
restores_to "$T/repo" "$id" "$(md5 "$T/disk.img")" "the backup's point restores byte-identical after gc"
ferry restore --repo "$url" $(src_tls) "$id" --to "$T/r.img" 2>/dev/null || die "remote restore"
same "$T/disk.img" "$T/r.img" "and through the mover"
ferry verify --repo "$T/repo" >/dev/null 2>&1 || die "verify"
ok "the repository verifies"
finish_movers
