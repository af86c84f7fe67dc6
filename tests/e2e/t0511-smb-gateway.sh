#!/bin/bash
# A gateway: `ferry mover --repo smb://...` serves a repository on an SMB
# share to source movers; the source talks to the gateway over TLS, the
# gateway to the share.  Session files stay in the gateway's --state-dir.
# The point restores byte-identical through the gateway and straight from
# the share; verify passes both ways; a restart of the share's server
# under the running gateway does not need a gateway restart.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"
. "$(dirname "$0")/smb.sh"

start_smbd
make_pki "$T/pki"
P=$T/pki
url=$(smb_url gw)
ferry init --repo "$url" >/dev/null || die "init on the share"

"$FERRY" mover --listen 127.0.0.1:0 --repo "$url" --insecure >"$T/nostate.log" 2>&1 &
pid=$!
cleanup_fn "kill -9 $pid"
for i in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
kill -0 $pid 2>/dev/null && die "a gateway without --state-dir started"
grep -q -- "--state-dir" "$T/nostate.log" || die "unclear error: $(cat "$T/nostate.log")"
ok "a gateway without --state-dir is refused, naming the option"

start_mover gw -- --repo "$url" --state-dir "$T/state" --cert "$P/mover.crt" \
	--key "$P/mover.key" --ca "$P/ca.crt"
furl=ferry://127.0.0.1:$gw_port/gw
make_disk "$T/disk.img" 24
json=$(ferry backup --repo "$furl" $(src_tls) --json "$T/disk.img") || die "backup through the gateway"
id1=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
[ -f "$T/smb/share/gw/points/$id1" ] || die "point $id1 is not on the share"
[ -d "$T/state/gw/sessions" ] || die "no session directory in the state dir"
[ ! -e "$T/smb/share/gw/sessions" ] || die "sessions written to the share"
ok "backup through the gateway committed $id1 on the share; sessions in --state-dir"

cp "$T/disk.img" "$T/v1.img"
head -c $((1 << 20)) /dev/urandom | dd of="$T/disk.img" bs=1M seek=5 conv=notrunc status=none
json=$(ferry backup --repo "$furl" $(src_tls) --json "$T/disk.img") || die "second backup"
new=$(json_num "$json" bytes_new)
[ "$new" -eq $((1 << 20)) ] || die "incremental through the gateway stored $new new bytes"
ok "incremental through the gateway sends the one changed block"

ferry restore --repo "$furl" $(src_tls) "$id1" --to "$T/r1.img" 2>/dev/null || die "restore through the gateway"
same "$T/v1.img" "$T/r1.img" "first point restores byte-identical through the gateway"
ferry restore --repo "$url" disk.img --to "$T/r2.img" 2>/dev/null || die "restore from the share"
same "$T/disk.img" "$T/r2.img" "latest point restores byte-identical from the share directly"
ferry verify --repo "$furl" $(src_tls) 2>"$T/v.err" || { cat "$T/v.err"; die "verify through the gateway"; }
ok "verify through the gateway passes"
ferry verify --repo "$url" 2>"$T/v.err" || { cat "$T/v.err"; die "verify on the share"; }
ok "verify on the share passes"

# The share's server restarts under the running gateway: the gateway
# drops its dead connections and serves the next backup.
stop_smbd
start_smbd "$smb_port"
head -c $((1 << 20)) /dev/urandom | dd of="$T/disk.img" bs=1M seek=9 conv=notrunc status=none
ferry backup --repo "$furl" $(src_tls) -q "$T/disk.img" >/dev/null 2>"$T/bk3.err" ||
	{ cat "$T/bk3.err"; die "backup through the gateway after the share's server restarted"; }
ferry restore --repo "$url" disk.img --to "$T/r3.img" 2>/dev/null || die "restore 3"
same "$T/disk.img" "$T/r3.img" "after smbd restarted, the same gateway backs up again (restores byte-identical)"
finish_movers
