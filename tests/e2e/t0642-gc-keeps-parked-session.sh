#!/bin/bash
# A parked mover session survives gc: the mover is stopped (SIGTERM parks
# the session) mid-backup, gc runs on the repository's host and keeps
# every chunk the session file names (docs/format.md), removing only the
# garbage a forget left; the restarted mover resumes at the very block it
# parked at (nothing resent because of gc), the backup finishes and
# restores byte-identical.  A damaged session file does not stop gc.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
P=$T/pki
margs=(--repo "$T/repo" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt")
ferry init --repo "$T/repo" --block-size 64K >/dev/null || die "init"
truncate -s 1M "$T/old.img"
dd if=/dev/urandom of="$T/old.img" bs=64K count=16 conv=notrunc status=none
ferry backup --repo "$T/repo" --quiet "$T/old.img" >/dev/null || die "backup old 1"
dd if=/dev/urandom of="$T/old.img" bs=64K count=16 conv=notrunc status=none
ferry backup --repo "$T/repo" --quiet "$T/old.img" >/dev/null || die "backup old 2"
ferry forget --repo "$T/repo" --keep-last 1 >/dev/null 2>&1 || die "forget"
# Backups of an hour ago: gc keeps every chunk changed since a parked
# session began (what the mover acknowledged beyond the session file).
find "$T/repo/chunks" -type f -exec touch -h -d '-1 hour' {} +
ok "16 garbage chunks (an hour old) after a forget"

start_mover m -- "${margs[@]}"
port=$m_port
url=ferry://127.0.0.1:$port/repo
head -c $((12 << 20)) /dev/urandom >"$T/disk.img"
"$FERRY" backup --repo "$url" $(src_tls) --limit-rate 3M --retry 60 --json "$T/disk.img" \
	>"$T/bk.json" 2>"$T/bk.err" &
bk=$!
cleanup_fn "kill -9 $bk"
sesfile() { ls "$T/repo/sessions/" 2>/dev/null | grep -v '^\.' | head -1; }
for i in $(seq 300); do
	f=$(sesfile)
	[ -n "$f" ] && [ "$(stat -c %s "$T/repo/sessions/$f")" -gt $((200 + 33 * 40)) ] && break
	kill -0 $bk 2>/dev/null || die "the backup ended early: $(cat "$T/bk.err")"
	sleep 0.05
done
stop_pid "$m_pid" TERM || die "the mover did not stop on SIGTERM"
wait "$m_pid"
parked=$(grep -o "parked at block [0-9]*" "$T/m.log" | tail -1 | awk '{print $4}')
[ -n "$parked" ] && [ "$parked" -gt 0 ] || { cat "$T/m.log"; die "SIGTERM did not park the session"; }
kill -0 $bk || die "the backup ended: $(cat "$T/bk.err")"
ok "mover stopped mid-backup: the session parked at block $parked"

# A damaged session file next to it: gc warns, skips it, and goes on.
head -c 300 /dev/urandom >"$T/repo/sessions/$(printf '%032x' 7)"
n0=$(find "$T/repo/chunks" -type f | wc -l)
json=$(ferry gc --repo "$T/repo" --lock-timeout 5 --json 2>"$T/gc.err") ||
	{ cat "$T/gc.err"; die "gc failed"; }
grep -q "damaged" "$T/gc.err" || die "gc did not warn about the damaged session file: $(cat "$T/gc.err")"
[ "$(json_num "$json" sessions)" = 1 ] || die "gc did not read the parked session: $json"
[ "$(json_num "$json" sessions_damaged)" = 1 ] || die "gc did not count the damaged file: $json"
refs=$(json_num "$json" session_refs)
[ "$refs" -ge "$parked" ] || die "gc marked $refs session references, the session holds $parked blocks"
# Random data: every block of the session is a chunk of its own.  The
# chunks that arrived after the last entry was recorded (acknowledged as
# durable PUTs; the source will not send them again) stay too.
inflight=$((n0 - 16 - 16 - refs))
[ "$(json_num "$json" chunks_removed)" = 16 ] ||
	die "gc removed other than the 16 garbage chunks: $json"
[ "$(json_num "$json" chunks_session)" = "$inflight" ] ||
	die "gc did not keep the $inflight chunks written after the last entry: $json"
ok "gc kept the $refs chunk(s) the parked session names and the $inflight written since, removed only the garbage ($n0 -> $(find "$T/repo/chunks" -type f | wc -l) chunks); warned: $(cut -c1-90 "$T/gc.err")"
rm -f "$T/repo/sessions/$(printf '%032x' 7)"

start_mover m "$port" -- "${margs[@]}"
wait $bk || { cat "$T/bk.err"; die "the backup failed after gc"; }
resumed=$(grep -o "resumed at block [0-9]*" "$T/m.log" | tail -1 | awk '{print $4}')
[ "$resumed" = "$parked" ] || die "resumed at block $resumed, parked at $parked: gc removed acknowledged chunks"
ok "the restarted mover resumed at block $resumed, where it parked: nothing resent because of gc"
id=$(grep -o '"id":"[0-9a-f]*"' "$T/bk.json" | cut -d'"' -f4)
ferry restore --repo "$url" $(src_tls) "$id" --to "$T/r.img" 2>/dev/null || die "restore"
same "$T/disk.img" "$T/r.img" "the resumed backup restores byte-identical"
ferry verify --repo "$T/repo" >/dev/null 2>&1 || die "verify"
ok "the repository verifies"
finish_movers
