#!/bin/bash
# Sub-block deltas in an encrypted repository: delta chunks are sealed and
# keyed like any chunk (no plaintext of the changed pages on disk), the
# incremental stores <= 1.5 x the changed bytes, every point restores
# byte-identical, verify is clean, and gc after forgetting the base point
# keeps the bases (it opens delta records with the key).  Then a mover
# serving the repository: a backup through it keeps the equal delta
# blocks, and the points restore through it.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

export FERRY_KDF_LOG_N=12 FERRY_PASSWORD=delta-pass
bs=1048576
ferry init --repo "$T/repo" --encrypt >/dev/null 2>&1 || die "init"
grep -q '^features = delta$' "$T/repo/config" || die "encrypted repository without feature delta"
head -c $((32 * bs)) /dev/urandom >"$T/disk.img"
ferry backup --repo "$T/repo" "$T/disk.img" >/dev/null 2>&1 || die "backup 1"
s1=$(md5 "$T/disk.img")
# a recognisable change: 64 KiB of one marker string
perl -e 'print "DELTA-MARKER-" x 5042' | head -c 65536 >"$T/marker"
dd if="$T/marker" of="$T/disk.img" bs=65536 seek=$((7 * 16 + 2)) conv=notrunc status=none
delta_scatter "$T/disk.img" 1 $bs
json=$(ferry backup --repo "$T/repo" --json "$T/disk.img" 2>/dev/null) || die "backup 2"
s2=$(md5 "$T/disk.img")
stored=$(jnum "$json" bytes_stored)
[ "$(jnum "$json" blocks_delta)" -ge 1 ] || die "no delta blocks in the encrypted repository: $json"
[ $((stored * 2)) -le $((2 * 65536 * 3)) ] || die "stored $stored bytes for 128 KiB changed"
ok "encrypted repository: $(jnum "$json" blocks_delta) delta block(s), stored $stored bytes for 131072 changed"
grep -rqa "DELTA-MARKER" "$T/repo" && die "the changed pages are in the repository in plaintext"
ok "no plaintext of the changed pages in the repository"
ids=($(point_ids "$T/repo"))
restores_to "$T/repo" "${ids[0]}" "$s1" "point 1 restores byte-identical"
restores_to "$T/repo" "${ids[1]}" "$s2" "point 2 (delta blocks) restores byte-identical"
ferry verify --repo "$T/repo" >/dev/null 2>"$T/err" || { cat "$T/err"; die "verify"; }
ok "verify is clean"

make_pki "$T/pki"
P=$T/pki
start_mover m -- --repo "$T/repo" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt"
url=ferry://127.0.0.1:$m_port/repo
json=$(ferry backup --repo "$url" $(src_tls) --json "$T/disk.img" 2>"$T/err") || { cat "$T/err"; die "backup through the mover"; }
[ "$(jnum "$json" bytes_stored)" -eq 0 ] || die "an unchanged disk stored bytes through the mover: $json"
ok "a backup through the mover keeps the equal (sealed) delta blocks"
ferry restore --repo "$url" $(src_tls) "${ids[1]}" --to "$T/r.img" 2>"$T/err" || { cat "$T/err"; die "restore through the mover"; }
[ "$(md5 "$T/r.img")" = "$s2" ] || die "restore through the mover differs"
ok "the delta point restores byte-identical through the mover"
finish_movers

ferry forget --repo "$T/repo" --name disk.img --keep-last 1 >/dev/null 2>&1 || die "forget"
ferry gc --repo "$T/repo" >/dev/null 2>&1 || die "gc"
restores_to "$T/repo" disk.img "$s2" "after forget + gc the latest point restores byte-identical"
ferry verify --repo "$T/repo" >/dev/null 2>"$T/err" || { cat "$T/err"; die "verify after gc"; }
ok "verify is clean after gc"
