#!/bin/bash
# A WAN between the movers, from the test suite's own emulator: 50 ms
# round trip, 100 Mbit/s, the link cut every 8 MB.  The backup completes
# and restores byte-identical; its throughput is reported against the
# link rate, with the bytes on the wire next to the image size.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
P=$T/pki
ferry init --repo "$T/repo" --block-size 256K >/dev/null || die "init"
start_mover m -- --repo "$T/repo" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt"
rate=12500000 # 100 Mbit/s
start_proxy wan "$m_port" --delay 25 --rate $rate --cut-every 8000000
make_disk "$T/disk.img" 64 3

t0=$(date +%s%N)
json=$(ferry backup --repo "ferry://127.0.0.1:$wan_port/repo" $(src_tls) --retry 60 --json \
	"$T/disk.img" 2>"$T/bk.err") || { cat "$T/bk.err"; die "backup over the WAN"; }
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
stop_pid "$wan_pid"
id=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
ferry restore --repo "$T/repo" "$id" --to "$T/r.img" 2>/dev/null || die "restore"
same "$T/disk.img" "$T/r.img" "the backup over the WAN restores byte-identical"

c2s=$(proxy_stat wan c2s)
cuts=$(proxy_stat wan cuts)
stored=$(json_num "$json" bytes_stored)
size=$(stat -c %s "$T/disk.img")
wire_pct=$(( c2s * 1000 / ms * 100 / rate ))   # percent of the link rate
ok "64 MiB image, $stored bytes after zero-skipping and compression, $c2s bytes on the wire ($cuts cuts); $ms ms: image $((size / 1000 / ms)) MB/s, wire $((c2s / 1000 / ms)) MB/s = $wire_pct % of 100 Mbit/s"
echo "wan image=$size stored=$stored wire=$c2s ms=$ms link_pct=$wire_pct cuts=$cuts"
[ "$cuts" -ge 2 ] || die "the link was cut only $cuts times"
[ "$(json_num "$json" resumes)" -eq "$cuts" ] || die "resumes do not match cuts"
ok "every cut was resumed"
finish_movers
