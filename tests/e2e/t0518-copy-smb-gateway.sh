#!/bin/bash
# ferry copy with an SMB share on either side: from a repository on the
# share to a local one, and from a local repository to a gateway mover in
# front of the share (ferry:// -> gateway -> smb://).  Every copy restores
# byte-identical and a second copy sends nothing.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"
. "$(dirname "$0")/smb.sh"
. "$(dirname "$0")/copy.sh"

start_smbd
make_pki "$T/pki"
P=$T/pki
src=$(smb_url src)
ferry init --repo "$src" >/dev/null || die "init on the share"
copy_source "$T/a"
ferry copy --from "$T/a" --to "$src" -q || die "copy onto the share"
ferry init --repo "$T/b" >/dev/null || die "init b"
copy_check "$src" "$T/b"
ok "(from the share to a local repository)"

gw=$(smb_url gw)
ferry init --repo "$gw" >/dev/null || die "init gw"
start_mover g -- --repo "$gw" --state-dir "$T/state" --cert "$P/mover.crt" \
	--key "$P/mover.key" --ca "$P/ca.crt"
copy_check "$T/a" "ferry://127.0.0.1:$g_port/gw" $(src_tls)
ok "(from a local repository through a gateway mover to the share)"
ferry verify --repo "$gw" 2>"$T/v.err" || { cat "$T/v.err"; die "verify on the share"; }
ok "the gateway's share verifies"
finish_movers
