#!/bin/bash
# ferry-test: long
# The SMB server dies mid-backup (smbd and its children killed with -9):
# the backup fails cleanly (one "ferry:" error line, no point committed),
# the earlier point still restores; smbd restarted on the same port, the
# next backup succeeds and reuses the chunks uploaded before the kill.
# Then a link to the server that breaks every 16 MB (RST, through
# tests/tools/faultproxy): each cut chunk transfer is tried again over a
# new connection and the backup completes.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"
. "$(dirname "$0")/smb.sh"

start_smbd
url=$(smb_url repo)
ferry init --repo "$url" >/dev/null || die "init"
make_disk "$T/small.img" 8
id0=$(ferry backup --repo "$url" "$T/small.img" 2>/dev/null) || die "first backup"
ok "earlier point $id0"

openssl enc -aes-128-ctr -pass pass:smbkill -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c $((160 << 20)) >"$T/disk.img"
nchunks() { find "$T/smb/share/repo/chunks" -type f -name '[0-9a-f]*' | wc -l; }
before=$(nchunks)
"$FERRY" backup --repo "$url" --threads 1 --json "$T/disk.img" >"$T/bk.json" 2>"$T/bk.err" &
bk=$!
cleanup_fn "kill -9 $bk"
for i in $(seq 400); do
	[ $(($(nchunks) - before)) -ge 20 ] && break
	kill -0 $bk 2>/dev/null || die "the backup ended before the kill: $(cat "$T/bk.err")"
	sleep 0.02
done
stop_smbd
wait $bk; rc=$?
[ $rc -ne 0 ] || die "the backup succeeded with the server killed"
grep -q '^ferry: ' "$T/bk.err" || { cat "$T/bk.err"; die "no clear error line"; }
grep -qi 'smb\|server\|share' "$T/bk.err" || die "the error does not name the share: $(cat "$T/bk.err")"
ok "backup failed cleanly (exit $rc): $(grep '^ferry: ' "$T/bk.err" | head -1)"
uploaded=$(($(nchunks) - before))
[ "$(ls "$T/smb/share/repo/points" | grep -vc '^\.')" -eq 1 ] || die "a point was committed: $(ls "$T/smb/share/repo/points")"
ok "no new point committed; $uploaded chunks had been uploaded"

start_smbd "$smb_port"
ferry restore --repo "$url" "$id0" --to "$T/r0.img" 2>/dev/null || die "restore earlier point"
same "$T/small.img" "$T/r0.img" "the earlier point restores after the restart"
json=$(ferry backup --repo "$url" --json "$T/disk.img" 2>"$T/bk2.err") || { cat "$T/bk2.err"; die "backup after the restart"; }
reused=$(echo "$json" | grep -o '"bytes_reused":[0-9]*' | cut -d: -f2)
[ "$reused" -ge $(((uploaded - 2) << 20)) ] || die "reused $reused bytes, $uploaded chunks were uploaded"
ok "the next backup succeeds and reuses $((reused >> 20)) MiB uploaded before the kill"
ferry restore --repo "$url" disk.img --to "$T/r1.img" 2>/dev/null || die "restore new point"
same "$T/disk.img" "$T/r1.img" "the new point restores byte-identical"
ferry verify --repo "$url" 2>"$T/v.err" || { cat "$T/v.err"; die "verify"; }
ok "verify passes"

start_proxy cut "$smb_port" --cut-every 16000000 --mode rst
curl=smb://127.0.0.1:$cut_port/backup/cut
ferry init --repo "$curl" >/dev/null || die "init through the proxy"
ferry backup --repo "$curl" -q "$T/disk.img" >/dev/null 2>"$T/cut.err" ||
	{ cat "$T/cut.err"; die "backup over a link cut every 16 MB"; }
cuts=$(proxy_stat cut cuts)
[ "$cuts" -ge 4 ] || die "only $cuts cuts"
ferry restore --repo "$(smb_url cut)" disk.img --to "$T/r3.img" 2>/dev/null || die "restore cut"
same "$T/disk.img" "$T/r3.img" "a backup over a link cut $cuts times completes and restores byte-identical"
