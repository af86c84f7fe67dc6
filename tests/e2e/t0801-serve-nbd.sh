#!/bin/bash
# Instant recovery: `ferry serve` exports a restore point over NBD.
# qemu-img convert from the export equals a full restore; nbdinfo reports
# the size; 8 parallel readers get the right bytes; a flipped bit in one
# chunk is an I/O error on that block's range only (and logged); with
# --writable, writes are visible to clients and the repository is unchanged.
. "$(dirname "$0")/functions.sh"
requires qemu-img qemu-io nbdinfo nbdcopy


mib=40; asan_tier && mib=24
make_disk "$T/disk.img" $mib
# a short last block (qemu needs a multiple of 512 bytes)
truncate -s $((mib * 1024 * 1024 + 1536)) "$T/disk.img"
ferry init --repo "$T/repo" >/dev/null || die "init"
id=$(ferry backup --repo "$T/repo" "$T/disk.img") || die "backup"
ferry restore --repo "$T/repo" "$id" --to "$T/full.img" 2>/dev/null || die "restore"
size=$(stat -c %s "$T/disk.img")

sock=$T/nbd.sock
url="nbd+unix:///?socket=$sock"
serve_start --repo "$T/repo" --nbd "unix:$sock" "$id"
grep -q "nbd+unix:///?socket=$sock" "$T/serve.out" || die "serve does not print its URI"
got=$(nbdinfo --size "$url") || die "nbdinfo"
[ "$got" = "$size" ] || die "nbdinfo says $got bytes, disk has $size"
ok "nbdinfo reports the disk size ($size)"
nbdinfo "$url" | grep -q 'is_read_only: true' || die "export is not read-only"
ok "the export is read-only without --writable"

qemu-img convert -f raw -O raw "$url" "$T/conv.img" || die "qemu-img convert"
same "$T/full.img" "$T/conv.img" "qemu-img convert from the export equals a full restore"

want=$(md5 "$T/full.img")
pids=()
for i in 1 2 3 4 5 6 7 8; do
	( nbdcopy "$url" - | md5sum | cut -d' ' -f1 >"$T/par.$i" ) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || die "a parallel reader failed"; done
for i in 1 2 3 4 5 6 7 8; do
	[ "$(cat "$T/par.$i")" = "$want" ] || die "parallel reader $i got wrong bytes"
done
ok "8 parallel readers (nbdcopy, 4 requests in flight each) get the right bytes"
serve_stop

# A flipped bit in the chunk of block 5: reads of block 5 fail, the
# blocks around it still read right.
h=$(block_hash "$T/disk.img" 5 1048576)
f=$(chunk_file "$T/repo" "$h")
cp "$f" "$T/chunk.bak"
flip_bit "$f" 100 3
serve_start --repo "$T/repo" --nbd "unix:$sock" "$id"
qemu-io -r -f raw -c "read 5M 4k" "$url" >"$T/qio" 2>&1 && die "a read of the damaged block succeeded"
grep -qi "input/output error" "$T/qio" || { cat "$T/qio"; die "no I/O error reported"; }
ok "a read touching the damaged block is an I/O error"
# range URL OFF LEN OUT: bytes [OFF, OFF+LEN) of the export.
range() {
	qemu-img convert --image-opts "driver=raw,offset=$2,size=$3,file.driver=nbd,file.path=$sock" \
		-O raw "$4" 2>"$T/range.err"
}
range "$url" 0 $((5 << 20)) "$T/before" || { cat "$T/range.err"; die "blocks before the damage fail"; }
cmp -s "$T/before" <(head -c $((5 << 20)) "$T/full.img") || die "blocks before the damage read wrong"
range "$url" $((6 << 20)) $((4 << 20)) "$T/after" || { cat "$T/range.err"; die "blocks after the damage fail"; }
cmp -s "$T/after" <(dd if="$T/full.img" bs=1M skip=6 count=4 status=none) || die "blocks after the damage read wrong"
range "$url" $((5 << 20)) 4096 "$T/bad" && die "a copy of the damaged range succeeded"
ok "the blocks around it read right"
grep -q "bad block 5 (offset 5242880) of restore point $id" "$T/serve.err" || { cat "$T/serve.err"; die "the bad block is not logged"; }
ok "the bad block is logged"
serve_stop
cp "$T/chunk.bak" "$f"

# --writable: writes land in the overlay; the repository is unchanged.
fp=$(repo_fingerprint "$T/repo")
serve_start --repo "$T/repo" --nbd "unix:$sock" "$id" --writable --overlay "$T/overlay"
qemu-io -f raw -c "write -P 0xab 1000 5000" -c "write -P 0xcd 3M 1M" -c "flush" "$url" >/dev/null || die "writes failed"
qemu-io -f raw -c "read -P 0xab 1000 5000" -c "read -P 0xcd 3M 1M" "$url" >"$T/qio" 2>&1 || { cat "$T/qio"; die "writes not visible"; }
ok "writes through --writable are visible to a new client"
nbdcopy "$url" "$T/written.img" || die "nbdcopy of the written export"
cp "$T/full.img" "$T/expect.img"
perl -e 'print chr(0xab) x 5000' | dd of="$T/expect.img" bs=1 seek=1000 conv=notrunc status=none
perl -e 'print chr(0xcd) x 1048576' | dd of="$T/expect.img" bs=1M seek=3 conv=notrunc status=none
same "$T/expect.img" "$T/written.img" "the written export is the restore point plus the writes (unaligned too)"
serve_stop
[ "$(repo_fingerprint "$T/repo")" = "$fp" ] || die "the repository changed"
ok "the repository is unchanged after writes"
ferry restore --repo "$T/repo" "$id" --to "$T/again.img" 2>/dev/null || die "restore after serve"
same "$T/full.img" "$T/again.img" "the point still restores as before"
