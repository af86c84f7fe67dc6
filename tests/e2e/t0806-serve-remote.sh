#!/bin/bash
# Instant recovery from an off-site copy: `ferry serve` and `ferry mount`
# read a restore point of a repository served by a mover (ferry://, TLS
# with client certificates).  qemu-img convert from the NBD export and the
# mounted disk file equal a full restore; parallel readers get the right
# bytes; a chunk damaged at the mover's side is EIO on its block only; the
# mover's repository is not changed.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"
requires qemu-img qemu-io nbdinfo nbdcopy fusermount3
# The background mount has no stderr: sanitizer reports go to files.
asan_tier && export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/asan

make_pki "$T/pki"
ferry init --repo "$T/repo" >/dev/null || die "init"
start_mover m -- --repo "$T/repo" --cert "$T/pki/mover.crt" --key "$T/pki/mover.key" \
	--ca "$T/pki/ca.crt"
url=ferry://127.0.0.1:$m_port/repo
mib=24
make_disk "$T/disk.img" $mib
id=$(ferry backup --repo "$url" $(src_tls) "$T/disk.img" 2>/dev/null) || die "remote backup"
ferry restore --repo "$T/repo" "$id" --to "$T/full.img" 2>/dev/null || die "restore"
fp=$(repo_fingerprint "$T/repo")

sock=$T/nbd.sock
nurl="nbd+unix:///?socket=$sock"
serve_remote() { serve_start --repo "$url" $(src_tls) --nbd "unix:$sock" "$id" "$@"; }

serve_remote
[ "$(nbdinfo --size "$nurl")" = $((mib << 20)) ] || die "nbdinfo size"
ok "ferry serve of a ferry:// point: nbdinfo reports the size"
qemu-img convert -f raw -O raw "$nurl" "$T/conv.img" || die "qemu-img convert"
same "$T/full.img" "$T/conv.img" "qemu-img convert from the export of the remote point equals a full restore"
want=$(md5 "$T/full.img")
pids=()
for i in 1 2 3 4; do
	( nbdcopy "$nurl" - | md5sum | cut -d' ' -f1 >"$T/par.$i" ) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || die "a parallel reader failed"; done
for i in 1 2 3 4; do [ "$(cat "$T/par.$i")" = "$want" ] || die "parallel reader $i got wrong bytes"; done
ok "4 parallel readers get the right bytes over the remote repository"
serve_stop

# Damage one chunk in the mover's repository.
h=$(block_hash "$T/full.img" 3 1048576)
f=$(chunk_file "$T/repo" "$h")
cp "$f" "$T/chunk.bak"
flip_bit "$f" 300 1
serve_remote
qemu-io -r -f raw -c "read 3M 4k" "$nurl" >"$T/qio" 2>&1 && die "a read of the damaged block succeeded"
grep -qi "input/output error" "$T/qio" || { cat "$T/qio"; die "no I/O error"; }
qemu-io -r -f raw -c "read 2M 1M" -c "read 4M 1M" "$nurl" >"$T/qio" 2>&1 || { cat "$T/qio"; die "blocks around the damage fail"; }
ok "a chunk damaged at the mover is EIO on its block; the blocks around it read"
grep -q "bad block 3 (offset 3145728) of restore point $id" "$T/serve.err" || { cat "$T/serve.err"; die "not logged"; }
ok "the bad block is logged"
serve_stop
cp "$T/chunk.bak" "$f"

# The mover restarts under a running export: reads wait for it (--retry)
# and go on; with the mover gone for longer than --retry, a read is EIO.
serve_remote --retry 3
qemu-io -r -f raw -c "read 1M 1M" "$nurl" >/dev/null 2>&1 || die "read before the restart"
kill -9 "$m_pid"; wait "$m_pid" 2>/dev/null
start_mover m2 "$m_port" -- --repo "$T/repo" --cert "$T/pki/mover.crt" --key "$T/pki/mover.key" \
	--ca "$T/pki/ca.crt"
qemu-io -r -f raw -c "read 10M 1M" "$nurl" >"$T/qio" 2>&1 || { cat "$T/qio" "$T/serve.err"; die "read after the mover restarted"; }
nbdcopy "$nurl" - | cmp -s - "$T/full.img" || die "the export reads wrong after the mover restarted"
ok "the mover restarted under the export (kill -9): reads reconnect and stay right"
serve_stop
serve_remote --retry 2 --cache 1
kill -9 "$m2_pid"; wait "$m2_pid" 2>/dev/null
t0=$SECONDS
qemu-io -r -f raw -c "read 4M 1M" "$nurl" >"$T/qio" 2>&1 && die "a read succeeded with the mover gone"
grep -qi "input/output error" "$T/qio" || { cat "$T/qio"; die "no EIO with the mover gone"; }
[ $((SECONDS - t0)) -lt 30 ] || die "the read took $((SECONDS - t0)) s to fail"
ok "with the mover gone longer than --retry, a read is EIO ($((SECONDS - t0)) s)"
serve_stop
start_mover m3 "$m_port" -- --repo "$T/repo" --cert "$T/pki/mover.crt" --key "$T/pki/mover.key" \
	--ca "$T/pki/ca.crt"

# ferry mount of the remote point.
mkdir "$T/mnt"
cleanup_fn "fusermount3 -u -z '$T/mnt'"
ferry mount --repo "$url" $(src_tls) "$id" "$T/mnt" --json --log "$T/mount.log" >"$T/mount.json" 2>"$T/mount.err" ||
	{ cat "$T/mount.err"; die "ferry mount of a ferry:// point"; }
mpid=$(grep -o '"pid":[0-9]*' "$T/mount.json" | cut -d: -f2)
cleanup_fn "kill $mpid"
same "$T/full.img" "$T/mnt/disk.img" "the mounted disk file of the remote point equals a full restore"
fusermount3 -u "$T/mnt" || die "fusermount3 -u"
for _ in $(seq 50); do s=$(ps -o stat= -p "$mpid" | tr -d ' '); case "$s" in ''|Z*) break ;; esac; sleep 0.1; done
case "$s" in ''|Z*) ;; *) die "the mount process is still there" ;; esac
ok "unmounted; the process ended"

[ "$(repo_fingerprint "$T/repo")" = "$fp" ] || die "the repository changed"
ok "the mover's repository is unchanged"
finish_movers
if asan_tier && ls "$T"/asan.* >/dev/null 2>&1; then cat "$T"/asan.*; die "sanitizer reports"; fi
