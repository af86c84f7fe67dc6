#!/bin/bash
# A link that breaks every few MiB (RST, then FIN, then RST under a backup
# over three streams) between the movers: the backup reconnects, resumes
# its session from the last acknowledged block (never from scratch),
# completes and restores byte-identical, and the bytes that crossed the
# link stay within 5 % of an unbroken run's (15 % over three streams).
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
P=$T/pki
mib=96
# incompressible data, so that the bytes on the wire are the image's
openssl enc -aes-128-ctr -pass pass:cuts -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c $((mib << 20)) >"$T/disk.img"

run() { # NAME PROXY-ARGS...: a backup into a fresh repository through the proxy
	local name=$1 json streams=1; shift
	[ "$name" = streams ] && streams=3
	ferry init --repo "$T/$name" >/dev/null || die "init"
	start_mover "m$name" -- --repo "$T/$name" --cert "$P/mover.crt" --key "$P/mover.key" \
		--ca "$P/ca.crt"
	start_proxy "x$name" "$(eval echo \$m${name}_port)" "$@"
	json=$(ferry backup --repo "ferry://127.0.0.1:$(eval echo \$x${name}_port)/$name" \
		$(src_tls) --retry 60 --streams $streams --json "$T/disk.img" 2>"$T/$name.err") ||
		{ cat "$T/$name.err" "$T/x$name.log"; die "$name: backup failed"; }
	echo "$json" >"$T/$name.json"
	stop_pid "$(eval echo \$x${name}_pid)"
	id=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
	ferry restore --repo "$T/$name" "$id" --to "$T/$name.img" 2>/dev/null || die "$name: restore"
	cmp -s "$T/disk.img" "$T/$name.img" || die "$name: restore differs"
	rm -f "$T/$name.img"
}

run clean
base=$(proxy_stat xclean c2s)
ok "unbroken run: $base bytes from source to mover for a $mib MiB image"

cut=9000000 # not a multiple of the block size: cuts land anywhere in a chunk
for mode in rst fin streams; do
	pmode=$mode; [ $mode = streams ] && pmode=rst
	run "$mode" --cut-every $cut --mode $pmode
	c2s=$(proxy_stat "x$mode" c2s)
	cuts=$(proxy_stat "x$mode" cuts)
	resumes=$(json_num "$(cat "$T/$mode.json")" resumes)
	begins=$(grep -c " begin point" "$T/m$mode.log")
	resumed=$(grep -c "resumed at block" "$T/m$mode.log")
	[ "$cuts" -ge 10 ] || die "$mode: only $cuts cuts"
	[ "$begins" -eq 1 ] || die "$mode: $begins sessions begun (restarted from scratch)"
	[ "$resumed" -eq "$cuts" ] && [ "$resumes" -eq "$cuts" ] ||
		die "$mode: $cuts cuts but $resumed resumes logged, $resumes counted"
	# The first resume starts past block 0: blocks were made durable
	# before the first cut.  Over three streams the second one: under
	# ASan with three scripts at a time, the first 9 MB crossed the three
	# links before the mover's first group commit came back (CI run of
	# 7d16989).  The byte count below still tells a restart (+100 %).
	nth=1; [ $mode = streams ] && nth=2
	[ "$(grep "resumed at block" "$T/m$mode.log" | sed -n "${nth}p" | grep -c "block 0 of")" -eq 0 ] ||
		die "$mode: resume $nth started from block 0"
	pct=$(( (c2s - base) * 1000 / base ))
	# one stream: within 5 %; three streams (a cut drops the windows of
	# the other two as well, and more so on a loaded machine where acks
	# lag: +10.9 % seen at load 16): within 15 %, which still tells a
	# resume from a restart (+100 %).
	limit=$((base + base / 20)); [ $mode = streams ] && limit=$((base + base * 15 / 100))
	[ "$c2s" -le "$limit" ] || die "$mode: $c2s bytes crossed, more than $limit"
	ok "$mode: $cuts cuts every $cut bytes, $resumed resumes (one session), restores byte-identical; $c2s bytes crossed = +$((pct / 10)).$((pct % 10)) % over unbroken"
	echo "bytes-on-wire $mode clean=$base cut=$c2s cuts=$cuts"
done
finish_movers
