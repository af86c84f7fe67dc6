#!/bin/bash
# ferry copy of points with delta blocks to a mover (ferry://, TLS): the
# mover's repository gets the delta chunks, their bases and kind-2
# entries (FEATURES says it has feature "delta"), the incremental copy
# puts <= 1.5 x the changed bytes on the wire, points restore
# byte-identical through the mover, a second copy sends nothing new; a
# mover whose repository lacks the feature gets whole blocks instead.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

bs=1048576
make_pki "$T/pki"
P=$T/pki
ferry init --repo "$T/a" >/dev/null || die "init a"
ferry init --repo "$T/off" >/dev/null || die "init off"
ferry init --repo "$T/old" --no-delta >/dev/null || die "init old"
start_mover m -- --repo "$T/off" --repo "$T/old" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt"
url=ferry://127.0.0.1:$m_port/off
head -c $((48 * bs)) /dev/urandom >"$T/disk.img"
ferry backup --repo "$T/a" "$T/disk.img" >/dev/null 2>&1 || die "backup 1"
s1=$(md5 "$T/disk.img")
ferry copy --from "$T/a" --to "$url" $(src_tls) >/dev/null 2>"$T/err" || { cat "$T/err"; die "copy 1"; }
delta_scatter "$T/disk.img" 3 $bs
changed=$((3 * 65536))
ferry backup --repo "$T/a" "$T/disk.img" >/dev/null 2>&1 || die "backup 2"
s2=$(md5 "$T/disk.img")
json=$(ferry copy --from "$T/a" --to "$url" $(src_tls) --json 2>"$T/err") || { cat "$T/err"; die "copy 2"; }
sent=$(jnum "$json" net_bytes_sent)
[ $((sent * 2)) -le $((changed * 3)) ] || die "incremental copy put $sent bytes on the wire for $changed changed: $json"
ok "incremental copy to the mover: $sent bytes on the wire for $changed changed (<= 1.5 x)"
json=$(ferry copy --from "$T/a" --to "$url" $(src_tls) --json 2>/dev/null) || die "copy 3"
[ "$(jnum "$json" bytes_sent)" -eq 0 ] || die "second copy sent chunks: $json"
ok "a second copy sends no chunk"
ids=($(point_ids "$T/a"))
n2=0
for i in $(seq 0 47); do
	read -r k _ <<<"$(entry_of "$T/off" "${ids[1]}" "$i")"
	[ "$k" = 2 ] && n2=$((n2 + 1))
done
[ $n2 -eq 3 ] || die "the mover's copy has $n2 delta entries, expected 3"
ok "the mover's repository holds the 3 delta entries"
out=$T/r.img
ferry restore --repo "$url" $(src_tls) "${ids[1]}" --to "$out" 2>"$T/err" || { cat "$T/err"; die "restore through the mover"; }
[ "$(md5 "$out")" = "$s2" ] || die "restore of the delta point through the mover differs"
ok "the delta point restores byte-identical through the mover"
ferry verify --repo "$url" $(src_tls) >/dev/null 2>"$T/err" || { cat "$T/err"; die "verify through the mover"; }
ferry verify --repo "$T/off" >/dev/null 2>"$T/err" || { cat "$T/err"; die "verify off"; }
ok "the off-site repository verifies (through the mover and locally)"

# A backup through the mover of the same disk: its base point (the copy)
# has delta blocks; equal blocks keep their kind-2 entries, nothing is sent.
json=$(ferry backup --repo "$url" $(src_tls) --json "$T/disk.img" 2>"$T/err") || { cat "$T/err"; die "backup through the mover"; }
[ "$(jnum "$json" bytes_stored)" -eq 0 ] || die "an unchanged disk stored bytes through the mover: $json"
id3=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
n2=0
for i in $(seq 0 47); do
	read -r k _ <<<"$(entry_of "$T/off" "$id3" "$i")"
	[ "$k" = 2 ] && n2=$((n2 + 1))
done
[ $n2 -eq 3 ] || die "the backup through the mover has $n2 delta entries, expected 3 kept"
ferry restore --repo "$T/off" "$id3" --to "$out" 2>/dev/null || die "restore id3"
[ "$(md5 "$out")" = "$s2" ] || die "the backup through the mover does not restore"
ok "a backup through the mover keeps the base point's equal delta blocks (stored 0 bytes)"

# A mover's repository without the feature: whole blocks.
url2=ferry://127.0.0.1:$m_port/old
ferry copy --from "$T/a" --to "$url2" $(src_tls) >/dev/null 2>"$T/err" || { cat "$T/err"; die "copy to old"; }
for i in $(seq 0 47); do
	read -r k _ <<<"$(entry_of "$T/old" "${ids[1]}" "$i")"
	[ "$k" = 2 ] && die "block $i is a delta entry in the --no-delta repository"
done
ferry restore --repo "$T/old" "${ids[1]}" --to "$out" 2>/dev/null || die "restore old"
[ "$(md5 "$out")" = "$s2" ] || die "restore from the --no-delta copy differs"
ok "into a --no-delta repository behind a mover: whole blocks, byte-identical"
ferry restore --repo "$T/old" "${ids[0]}" --to "$out" 2>/dev/null || die "restore old 1"
[ "$(md5 "$out")" = "$s1" ] || die "restore of point 1 from the --no-delta copy differs"
finish_movers
