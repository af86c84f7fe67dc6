#!/bin/bash
# Quick rollback with a dirty bitmap into an NBD export (a qemu-nbd that
# exports the VM disk and its bitmap, as QEMU's block-export-add would):
# the point was backed up through the same URL.  A damaged chunk of a
# block the guest wrote is named, never written, ferry exits 3, and the
# other dirty blocks are rolled back; with the chunk repaired the disk
# equals the point.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/vm-functions.sh"
requires qemu-img qemu-io qemu-nbd nbdcopy

img=$T/vm.qcow2
make_disk "$T/seed.raw" 48
qemu-img convert -q -f raw -O qcow2 "$T/seed.raw" "$img" || die "convert"
qemu-img bitmap --add "$img" ck1 || die "bitmap --add"
sock=$T/vm.sock
url="nbd+unix:///?socket=$sock"
qemu-nbd -t -f qcow2 -B ck1 -k "$sock" "$img" &
qpid=$!
cleanup_fn "kill $qpid"
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
ferry init --repo "$T/repo" >/dev/null || die "init"
json=$(ferry backup --repo "$T/repo" --json --checkpoint ck1 "$url" 2>"$T/warn") || { cat "$T/warn"; die "backup over NBD"; }
id=$(json_id "$json")
echo "$json" | grep -q '"checkpoint":"ck1"' || die "no checkpoint recorded"
nbdcopy "$url" "$T/p1.raw" || die "nbdcopy"

qemu-io -f raw -c "write -P 0x42 5M 64k" -c "write -P 0x43 20M 128k" -c "write -P 0x44 2M 4k" "$url" >/dev/null ||
	die "guest writes"
nbdcopy "$url" "$T/changed.raw" || die "nbdcopy changed"
h=$(block_hash "$T/p1.raw" 5 1048576)
f=$(chunk_file "$T/repo" "$h")
[ -f "$f" ] || die "block 5 has no chunk of its own"
cp "$f" "$T/chunk.bak"
flip_bit "$f" 120 2

expect_fail 3 ferry restore --repo "$T/repo" "$id" --to "$url" --changed-only --bitmap ck1
names_bad_block "$id" 5 1048576
reports_then_one_error
ok "a damaged chunk of a dirty block is named; ferry exits 3"
nbdcopy "$url" "$T/after.raw" || die "nbdcopy after"
cmp -s <(dd if="$T/after.raw" bs=1M skip=5 count=1 status=none) <(dd if="$T/changed.raw" bs=1M skip=5 count=1 status=none) ||
	die "block 5 was written although its chunk is damaged"
cmp -s <(dd if="$T/after.raw" bs=1M skip=20 count=1 status=none) <(dd if="$T/p1.raw" bs=1M skip=20 count=1 status=none) ||
	die "block 20 was not rolled back"
cmp -s <(dd if="$T/after.raw" bs=1M skip=2 count=1 status=none) <(dd if="$T/p1.raw" bs=1M skip=2 count=1 status=none) ||
	die "block 2 was not rolled back"
ok "the damaged block is left as it was, the other dirty blocks are rolled back"

cp "$T/chunk.bak" "$f"
json=$(ferry restore --repo "$T/repo" "$id" --to "$url" --changed-only --bitmap ck1 --json 2>"$T/warn") ||
	{ cat "$T/warn"; die "rollback after repair"; }
[ ! -s "$T/warn" ] || { cat "$T/warn"; die "the rollback warned"; }
echo "$json" | grep -q '"bitmap_used":true' || die "the bitmap was not used: $json"
rd=$(json_num "$json" bytes_compared)
[ "$rd" -le $((2 << 20)) ] || die "read $rd bytes of the target"
nbdcopy "$url" "$T/after.raw" || die "nbdcopy after"
same "$T/p1.raw" "$T/after.raw" "with the chunk repaired, the rollback over nbd+unix:// equals the point ($rd bytes read)"
