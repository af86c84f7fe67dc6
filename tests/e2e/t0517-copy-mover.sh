#!/bin/bash
# ferry copy from a local repository to a mover over the network
# (ferry://, TLS with client certificates): both points restore
# byte-identical through the mover, a second copy puts next to nothing on
# the wire, a copy killed with -9 reruns to completion and verifies, and
# an incremental copy after a 1 % change puts at most 1.5 x the changed
# bytes after compression on the wire.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"
. "$(dirname "$0")/copy.sh"
requires zstd bc

make_pki "$T/pki"
P=$T/pki
ferry init --repo "$T/off" >/dev/null || die "init off-site"
start_mover m -- --repo "$T/off" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt"
url=ferry://127.0.0.1:$m_port/off
copy_source "$T/a"
copy_check "$T/a" "$url" $(src_tls)
chunks_o() { find "$T/off/chunks" -type f -name '[0-9a-f]*' | wc -l; }
copy_kill_rerun "$T/a" "$url" chunks_o $(src_tls)
ferry verify --repo "$url" $(src_tls) 2>"$T/v.err" || { cat "$T/v.err"; die "verify through the mover"; }
ok "the off-site repository verifies after the kill and the rerun"
copy_incremental "$T/a" "$url" $(src_tls)
finish_movers
