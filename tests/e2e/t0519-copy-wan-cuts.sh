#!/bin/bash
# ferry copy to an off-site mover over a link that breaks every 9 MB
# (tests/tools/faultproxy, RST): the copy reconnects and resumes its
# session (never from scratch), completes, restores byte-identical and
# verifies, and the bytes that crossed the link stay within 10 % of an
# unbroken copy's.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
P=$T/pki
ferry init --repo "$T/a" >/dev/null || die "init source"
openssl enc -aes-128-ctr -pass pass:copycuts -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c $((64 << 20)) >"$T/disk.img"
id=$(ferry backup --repo "$T/a" -q "$T/disk.img") || die "backup"

run() { # NAME PROXY-ARGS...: a copy into a fresh off-site repository
	local name=$1 json; shift
	ferry init --repo "$T/$name" >/dev/null || die "init $name"
	start_mover "m$name" -- --repo "$T/$name" --cert "$P/mover.crt" --key "$P/mover.key" \
		--ca "$P/ca.crt"
	start_proxy "x$name" "$(eval echo \$m${name}_port)" "$@"
	json=$(ferry copy --from "$T/a" --to "ferry://127.0.0.1:$(eval echo \$x${name}_port)/$name" \
		$(src_tls) --retry 60 --json 2>"$T/$name.err") ||
		{ cat "$T/$name.err" "$T/x$name.log"; die "$name: copy failed"; }
	[ "$(json_num "$json" points_copied)" -eq 1 ] || die "$name: $json"
	stop_pid "$(eval echo \$x${name}_pid)"
	ferry restore --repo "$T/$name" "$id" --to "$T/$name.img" 2>/dev/null || die "$name: restore"
	cmp -s "$T/disk.img" "$T/$name.img" || die "$name: restore differs"
	rm -f "$T/$name.img"
	ferry verify --repo "$T/$name" 2>/dev/null || die "$name: verify"
}

run clean
base=$(proxy_stat xclean c2s)
ok "unbroken copy: $base bytes crossed for a 64 MiB point"
run cut --cut-every 9000000 --mode rst
c2s=$(proxy_stat xcut c2s)
cuts=$(proxy_stat xcut cuts)
begins=$(grep -c " begin point" "$T/mcut.log")
[ "$cuts" -ge 5 ] || die "only $cuts cuts"
[ "$begins" -eq 1 ] || die "$begins sessions begun (restarted from scratch)"
[ "$c2s" -le $((base + base / 10)) ] || die "$c2s bytes crossed, more than 110 % of $base"
ok "$cuts cuts: one session resumed, restores byte-identical, verifies; $c2s bytes crossed (unbroken $base)"
finish_movers
