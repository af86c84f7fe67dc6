#!/bin/bash
# A gateway: `ferry mover --repo s3://...` in front of the bucket, its
# session files in --state-dir.  A source backs up to ferry:// over TLS;
# the point restores byte-identical through the mover and directly from
# S3; an incremental backup through the mover sends only changed blocks.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"
. "$(dirname "$0")/s3.sh"

s3_start
repo=s3://ferry-t0507/gw/vms
ferry init --repo "$repo" --block-size 256K >/dev/null || die "init"
make_pki "$T/pki"
expect_fail 2 ferry mover --listen 127.0.0.1:0 --repo "$repo" --cert "$T/pki/mover.crt" \
	--key "$T/pki/mover.key" --ca "$T/pki/ca.crt"
one_error_line "state-dir"
ok "a gateway without --state-dir is refused: $(cat "$T/err")"
start_mover gw -- --repo "vms=$repo" --state-dir "$T/state" --cert "$T/pki/mover.crt" \
	--key "$T/pki/mover.key" --ca "$T/pki/ca.crt"
url=ferry://127.0.0.1:$gw_port/vms
make_disk "$T/disk.img" 8
cp "$T/disk.img" "$T/v1.img"
id1=$(ferry backup --repo "$url" $(src_tls) "$T/disk.img" 2>"$T/b1.err") || { cat "$T/b1.err"; die "backup through the gateway"; }
ok "backup through the gateway: point $id1"
[ -d "$T/state/vms/sessions" ] || die "no session directory in --state-dir"
ok "session files live in --state-dir"
ferry restore --repo "$url" $(src_tls) "$id1" --to "$T/r1.img" 2>/dev/null || die "restore through the gateway"
same "$T/v1.img" "$T/r1.img" "restore through the gateway is byte-identical"
ferry restore --repo "$repo" "$id1" --to "$T/r1s.img" 2>/dev/null || die "restore from S3"
same "$T/v1.img" "$T/r1s.img" "the same point restores directly from S3"

head -c 65536 /dev/urandom | dd of="$T/disk.img" bs=64K seek=20 conv=notrunc status=none
json=$(ferry backup --repo "$url" $(src_tls) --json "$T/disk.img" 2>/dev/null) || die "backup 2"
new=$(echo "$json" | grep -o '"bytes_new":[0-9]*' | cut -d: -f2)
[ "$new" -le 262144 ] || die "incremental through the gateway wrote $new new bytes"
ok "incremental backup through the gateway: $new new bytes"
id2=$(point_ids "$repo" | tail -1)
ferry restore --repo "$repo" "$id2" --to "$T/r2.img" 2>/dev/null || die "restore 2"
same "$T/disk.img" "$T/r2.img" "second point restores from S3"
ferry verify --repo "$url" $(src_tls) 2>&1 | grep -q "no damage" || die "verify through the gateway"
ok "verify through the gateway: no damage"
finish_movers
