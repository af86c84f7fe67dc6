#!/bin/bash
# gc on the repository's host while a mover serves it: the mover holds the
# repository's shared lock only while a session adds data, so with no
# session running gc gets its exclusive lock at once, frees what a forget
# left, and remote backups go on afterwards (issue 6).
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
P=$T/pki
ferry init --repo "$T/repo" --block-size 64K >/dev/null || die "init"
start_mover m -- --repo "$T/repo" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt"
url=ferry://127.0.0.1:$m_port/repo
truncate -s 1M "$T/d.img"
dd if=/dev/urandom of="$T/d.img" bs=64K count=16 conv=notrunc status=none
ferry backup --repo "$url" $(src_tls) --quiet "$T/d.img" >/dev/null || die "remote backup 1"
dd if=/dev/urandom of="$T/d.img" bs=64K count=16 conv=notrunc status=none
id2=$(ferry backup --repo "$url" $(src_tls) --quiet "$T/d.img") || die "remote backup 2"
ferry forget --repo "$T/repo" --keep-last 1 >/dev/null 2>&1 || die "forget"
[ "$(find "$T/repo/chunks" -type f | wc -l)" -eq 32 ] || die "expected 32 chunks"
ok "two remote backups through the mover, the first forgotten: 16 of 32 chunks garbage"

kill -0 "$m_pid" || die "the mover is not running"
json=$(ferry gc --repo "$T/repo" --lock-timeout 5 --json 2>"$T/gc.err") ||
	{ cat "$T/gc.err"; die "gc beside the idle mover failed"; }
echo "$json" | grep -q '"chunks_removed":16' || die "gc removed the wrong count: $json"
wait_s=$(echo "$json" | grep -o '"wait_seconds":[0-9.]*' | cut -d: -f2)
awk -v w="$wait_s" 'BEGIN { exit !(w < 1.0) }' || die "gc waited $wait_s s beside an idle mover"
[ "$(find "$T/repo/chunks" -type f | wc -l)" -eq 16 ] || die "the space was not freed"
ok "gc beside the running, idle mover took the lock after $wait_s s and removed the 16 garbage chunks"
restores_to "$T/repo" "$id2" "$(md5 "$T/d.img")" "the kept point restores"

dd if=/dev/urandom of="$T/d.img" bs=64K count=4 conv=notrunc status=none
id3=$(ferry backup --repo "$url" $(src_tls) --quiet "$T/d.img") || die "remote backup after gc"
ferry restore --repo "$url" $(src_tls) "$id3" --to "$T/r3.img" 2>/dev/null || die "restore 3"
same "$T/d.img" "$T/r3.img" "a remote backup after gc restores byte-identical"
ferry gc --repo "$T/repo" --lock-timeout 5 >/dev/null || die "a second gc beside the mover"
ok "and a second gc beside the mover runs too (the lock is taken and let go per session)"
ferry verify --repo "$T/repo" >/dev/null 2>&1 || die "verify"
ok "the repository verifies"
finish_movers
