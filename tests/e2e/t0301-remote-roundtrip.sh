#!/bin/bash
# Back up through a mover on loopback over TLS 1.3 with client
# certificates: the point restores byte-identical; a second backup sends
# only the changed blocks; points, verify and info work on the ferry://
# URL; settings come from a config file as well as from options.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
ferry init --repo "$T/repo" >/dev/null || die "init"
start_mover m -- --repo "$T/repo" --cert "$T/pki/mover.crt" --key "$T/pki/mover.key" \
	--ca "$T/pki/ca.crt"
url=ferry://127.0.0.1:$m_port/repo
make_disk "$T/disk.img" 48
cp "$T/disk.img" "$T/v1.img"

json=$(ferry backup --repo "$url" $(src_tls) --json "$T/disk.img") || die "remote backup"
id1=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
sent=$(json_num "$json" bytes_sent)
stored=$(json_num "$json" bytes_stored)
[ -n "$id1" ] && [ "$sent" -gt "$stored" ] || die "no id or byte counts in $json"
ok "backup over TLS: point $id1, $stored bytes stored, $sent bytes sent"
grep -q "client=src1 session=.* begin point $id1" "$T/m.log" || die "mover did not log the session"
grep -q "committed point $id1" "$T/m.log" || die "mover did not log the commit"
ok "mover logged the session's begin and commit with the client's name"

ferry restore --repo "$url" $(src_tls) "$id1" --to "$T/r1.img" 2>/dev/null || die "remote restore"
same "$T/v1.img" "$T/r1.img" "remote restore is byte-identical"
ferry restore --repo "$T/repo" "$id1" --to "$T/r1l.img" 2>/dev/null || die "local restore"
same "$T/v1.img" "$T/r1l.img" "the point restores from the repository directly too"

for off in 5 21; do
	head -c 8192 /dev/urandom | dd of="$T/disk.img" bs=4096 seek=$((off * 256 + 3)) conv=notrunc status=none
done
printf 'cert = %s\nkey = %s\nca = %s\n# comment\nstreams = 2\n' "$T/pki/src1.crt" \
	"$T/pki/src1.key" "$T/pki/ca.crt" >"$T/ferry.conf"
json=$(FERRY_CONFIG=$T/ferry.conf ferry backup --repo "$url" --json "$T/disk.img") ||
	die "backup with a config file"
new=$(json_num "$json" bytes_new)
sent2=$(json_num "$json" bytes_sent)
[ "$new" -eq $((2 * 1024 * 1024)) ] || die "incremental stored $new new bytes, expected 2 MiB"
[ "$sent2" -lt $((3 * 1024 * 1024)) ] || die "incremental sent $sent2 bytes for 2 changed blocks"
ok "incremental over 2 streams (config file): 2 changed blocks, $sent2 bytes on the wire"
ferry restore --repo "$url" --config "$T/ferry.conf" disk.img --to "$T/r2.img" 2>/dev/null ||
	die "restore latest by name"
same "$T/disk.img" "$T/r2.img" "the latest point restores by name, remotely"

n=$(ferry points --repo "$url" $(src_tls) --json | grep -c '"id"')
[ "$n" -eq 2 ] || die "remote points lists $n points"
ok "remote points lists both points"
ferry verify --repo "$url" $(src_tls) 2>"$T/verify.err" || { cat "$T/verify.err"; die "remote verify"; }
ok "remote verify passes"
chunks=$(ferry info --repo "$url" $(src_tls) --json | grep -o '"chunks":[0-9]*' | cut -d: -f2)
lchunks=$(ferry info --repo "$T/repo" --json | grep -o '"chunks":[0-9]*' | cut -d: -f2)
[ "$chunks" = "$lchunks" ] || die "remote info says $chunks chunks, local $lchunks"
ok "remote info matches the repository ($chunks chunks)"

expect_fail 4 ferry points --repo "ferry://127.0.0.1:$m_port/nosuch" $(src_tls)
grep -q "no repository named 'nosuch'" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "an unknown repository name is refused with the names served"
ls "$T/repo/sessions" | grep -q . && die "a finished session left its file behind"
ok "no session files left after commits"

# A damaged manifest: the mover's checks flag it in a remote listing.
flip_bit "$T/repo/points/$id1" 100 0
ferry points --repo "$url" $(src_tls) --json | grep -q "\"id\":\"$id1\",\"corrupt\":true" ||
	die "a damaged point is not listed as damaged remotely"
expect_fail 3 ferry restore --repo "$url" $(src_tls) "$id1" --to "$T/bad.img"
ok "a damaged manifest is listed as damaged and refused remotely"

finish_movers
