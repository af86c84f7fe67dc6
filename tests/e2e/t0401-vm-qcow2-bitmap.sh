#!/bin/bash
# qcow2 with a persistent dirty bitmap, read through qemu-nbd: the full
# backup skips unallocated extents, the incremental reads no more than the
# blocks the bitmap marks dirty, and every point restores byte-identical
# to `qemu-img convert -O raw` of the disk at that time.  Then the same
# over nbd+unix:// and nbd:// exports of a qemu-nbd started here.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/vm-functions.sh"
requires qemu-img qemu-io qemu-nbd nbdinfo

img=$T/vm.qcow2
make_disk "$T/seed.raw" 64
qemu-img convert -q -f raw -O qcow2 "$T/seed.raw" "$img" || die "convert"
qemu-img bitmap --add "$img" ferry0 || die "bitmap --add"
ferry init --repo "$T/repo" >/dev/null || die "init"

alloc=$(nbdinfo --map -- [ qemu-nbd -r -f qcow2 "$img" ] | awk '$3 == 0 || $3 == 1 { n += $2 } END { print n + 0 }')
json=$(ferry backup --repo "$T/repo" --json --bitmap ferry0 "qcow2:$img" 2>"$T/warn") || { cat "$T/warn"; die "full backup"; }
[ ! -s "$T/warn" ] || { cat "$T/warn"; die "the first backup warned"; }
id1=$(json_id "$json")
rd=$(json_num "$json" bytes_read)
[ "$rd" -le $(( (alloc / 1048576 + 1) * 1048576 )) ] && [ "$rd" -lt $((64 << 20)) ] ||
	die "full backup read $rd bytes; $alloc are allocated"
ok "full backup read $rd bytes: unallocated extents skipped"
echo "$json" | grep -q '"checkpoint":"ferry0"' || die "no checkpoint recorded"
qemu-img convert -f qcow2 -O raw "$img" "$T/v1.raw"
no_qemu_nbd_for "$img"
ok "qemu-nbd stopped after the backup"

# guest writes: 64 KiB, 1.5 MiB across a block edge, 4 KiB
qemu-io -f qcow2 -c 'write -P 0x5a 5M 64k' -c 'write -P 0x33 29952k 1536k' \
	-c 'write -P 0x77 50M 4k' "$img" >/dev/null || die "qemu-io"
dirty=$(dirty_block_bytes "$img" ferry0)
json=$(ferry backup --repo "$T/repo" --json --bitmap ferry0 "qcow2:$img" 2>"$T/warn") || { cat "$T/warn"; die "incremental"; }
[ ! -s "$T/warn" ] || { cat "$T/warn"; die "the incremental warned"; }
id2=$(json_id "$json")
rd=$(json_num "$json" bytes_read)
unch=$(json_num "$json" bytes_unchanged)
[ "$rd" -gt 0 ] && [ "$rd" -le "$dirty" ] || die "incremental read $rd bytes; dirty blocks hold $dirty"
[ "$unch" -gt 0 ] || die "nothing reported unchanged"
echo "$json" | grep -q "\"base\":\"$id1\"" || die "base is not the first point"
echo "$json" | grep -q '"bitmap":"ferry0","bitmap_generation":"1"' || die "bitmap generation not recorded"
ok "incremental read $rd bytes (dirty blocks: $dirty), $unch unchanged"
qemu-img convert -f qcow2 -O raw "$img" "$T/v2.raw"

qemu-io -f qcow2 -c 'write -P 0x11 40M 2M' "$img" >/dev/null || die "qemu-io 2"
json=$(ferry backup --repo "$T/repo" --json --bitmap ferry0 "qcow2:$img" 2>/dev/null) || die "incremental 2"
id3=$(json_id "$json")
echo "$json" | grep -q '"bitmap_generation":"2"' || die "generation 2 not recorded"
qemu-img convert -f qcow2 -O raw "$img" "$T/v3.raw"

for n in 1 2 3; do
	eval id=\$id$n
	ferry restore --repo "$T/repo" "$id" --to "$T/r$n.raw" 2>/dev/null || die "restore $n"
	same "$T/v$n.raw" "$T/r$n.raw" "point $n restores byte-identical to qemu-img convert"
done
ferry verify --repo "$T/repo" 2>/dev/null || die "verify"

# The same disk over NBD exports of our own qemu-nbd.
sock=$T/nbd.sock
start_nbd() {
	qemu-nbd -r -f qcow2 -B ferry0 --persistent -k "$sock" "$img" &
	nbd_pid=$!
	cleanup_fn "kill $nbd_pid"
	for _ in $(seq 50); do [ -S "$sock" ] && return; sleep 0.1; done
	die "qemu-nbd did not start"
}
stop_nbd() { kill "$nbd_pid"; wait "$nbd_pid" 2>/dev/null; rm -f "$sock"; }
uri="nbd+unix:///?socket=$sock"
start_nbd
json=$(ferry backup --repo "$T/repo" --json --name vm-unix --bitmap ferry0 "$uri" 2>/dev/null) || die "nbd+unix backup"
stop_nbd
qemu-io -f qcow2 -c 'write -P 0x99 7M 128k' "$img" >/dev/null || die "qemu-io 3"
start_nbd
json=$(ferry backup --repo "$T/repo" --json --name vm-unix --bitmap ferry0 "$uri" 2>"$T/warn") || die "nbd+unix incremental"
[ ! -s "$T/warn" ] || { cat "$T/warn"; die "the nbd+unix incremental warned"; }
[ "$(json_num "$json" bytes_unchanged)" -gt 0 ] || die "nbd+unix incremental read everything"
stop_nbd
qemu-img convert -f qcow2 -O raw "$img" "$T/v4.raw"
ferry restore --repo "$T/repo" vm-unix --to "$T/r4.raw" 2>/dev/null || die "restore 4"
same "$T/v4.raw" "$T/r4.raw" "nbd+unix:// incremental restores byte-identical"

port=$((20000 + $$ % 20000))
qemu-nbd -r -f qcow2 -b 127.0.0.1 -p "$port" --persistent "$img" &
tcp_pid=$!
cleanup_fn "kill $tcp_pid"
for _ in $(seq 50); do nbdinfo --size "nbd://127.0.0.1:$port" >/dev/null 2>&1 && break; sleep 0.1; done
json=$(ferry backup --repo "$T/repo" --json --name vm-tcp "nbd://127.0.0.1:$port" 2>/dev/null) || die "nbd:// backup"
kill "$tcp_pid"
ferry restore --repo "$T/repo" vm-tcp --to "$T/r5.raw" 2>/dev/null || die "restore 5"
same "$T/v4.raw" "$T/r5.raw" "nbd:// (TCP) backup restores byte-identical"
