#!/bin/bash
# A broken change-tracking chain falls back to a full read and says so:
# a missing bitmap, an inconsistent one (QEMU killed with the image open),
# a bitmap that is not the base point's checkpoint, a base point taken
# without change tracking, other unused-block settings.  The rotation flow
# (--checkpoint NEXT) keeps the chain.  Every point restores exactly.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/vm-functions.sh"
requires qemu-img qemu-io qemu-nbd nbdinfo

img=$T/vm.qcow2
make_disk "$T/seed.raw" 32
qemu-img convert -q -f raw -O qcow2 "$T/seed.raw" "$img" || die "convert"
ferry init --repo "$T/repo" >/dev/null || die "init"
n=0
# backup ARGS...: a backup of $img; leaves the JSON in $json, warnings in
# $T/warn, and checks that the point restores like qemu-img convert.
backup() {
	json=$(ferry backup --repo "$T/repo" --json --name vm "$@" "qcow2:$img" 2>"$T/warn") ||
		{ cat "$T/warn"; die "backup $*"; }
	n=$((n + 1))
	qemu-img convert -f qcow2 -O raw "$img" "$T/v.raw"
	ferry restore --repo "$T/repo" "$(json_id "$json")" --to "$T/r$n.raw" 2>/dev/null || die "restore"
	cmp -s "$T/v.raw" "$T/r$n.raw" || die "point $n does not restore byte-identical"
	rm -f "$T/r$n.raw"
}
write() { qemu-io -f qcow2 -c "write -P $1 $2 64k" "$img" >/dev/null || die "qemu-io"; }
full_read() { # WHAT PATTERN: a warning matching PATTERN and nothing unchanged
	grep -q "$2" "$T/warn" || { cat "$T/warn"; die "$1: no warning matching '$2'"; }
	[ "$(json_num "$json" bytes_unchanged)" -eq 0 ] || die "$1: blocks were taken as unchanged"
	echo "$json" | grep -q '"bitmap":' && die "$1: the point claims a bitmap"
	ok "$1: full read, warned: $(grep -o "$2.*" "$T/warn" | head -1 | cut -c1-90)"
}
incremental() { # WHAT GEN
	[ ! -s "$T/warn" ] || { cat "$T/warn"; die "$1: warned"; }
	[ "$(json_num "$json" bytes_unchanged)" -gt 0 ] || die "$1: nothing unchanged"
	echo "$json" | grep -q "\"bitmap_generation\":\"$2\"" || die "$1: generation is not $2"
	ok "$1: incremental, generation $2"
}

qemu-img bitmap --add "$img" b1
backup --bitmap b1
write 0x21 3M
backup --bitmap b1
incremental "same bitmap" 1

# 1. the bitmap is gone
qemu-img bitmap --remove "$img" b1
write 0x22 9M
backup --bitmap b1
full_read "missing bitmap" "has no bitmap 'b1'"

# ... and a point taken while it was missing names no checkpoint: a
# bitmap made after it would miss the writes in between.
echo "$json" | grep -q '"checkpoint"' && die "a point without its bitmap names a checkpoint"
qemu-img bitmap --add "$img" b1
backup --bitmap b1
grep -q "names no checkpoint bitmap" "$T/warn" || die "bitmap made after the point was trusted"
[ "$(json_num "$json" bytes_unchanged)" -eq 0 ] || die "bitmap made after the point: blocks taken as unchanged"
ok "a bitmap made after the point is not trusted"

# 2. an inconsistent bitmap: QEMU was killed while it had the image open
qemu-io -f qcow2 -c 'write -P 0x23 11M 64k' -c 'sleep 20000' "$img" >/dev/null &
qio=$!
cleanup_fn "kill -9 $qio"
sleep 0.5
disown $qio
kill -9 $qio
sleep 0.2
qemu-img info "$img" | grep -q in-use || die "the bitmap is not flagged in-use"
backup --bitmap b1
full_read "inconsistent bitmap" "inconsistent"
qemu-img bitmap --remove "$img" b1 2>/dev/null || true

# 3. rotation: each backup names the bitmap created at its checkpoint
qemu-img bitmap --add "$img" r1
backup --bitmap r1
write 0x24 13M
qemu-img bitmap --add "$img" r2
backup --bitmap r1 --checkpoint r2
incremental "rotation r1 -> r2" 1
qemu-img bitmap --remove "$img" r1
write 0x25 17M
qemu-img bitmap --add "$img" r3
backup --bitmap r2 --checkpoint r3
incremental "rotation r2 -> r3" 2

# 4. a bitmap that is not the base point's checkpoint (r2 is older)
write 0x26 19M
backup --bitmap r2 --checkpoint r3
full_read "not the checkpoint" "not 'r2' (broken chain)"

# 5. a base point taken without change tracking
backup
write 0x27 21M
backup --bitmap r3
full_read "base without change tracking" "names no checkpoint bitmap"

# 6. other unused-block settings than the base point's
backup --bitmap r3
write 0x28 23M
backup --bitmap r3 --no-exclude-free
grep -q "other unused-block settings" "$T/warn" || die "settings change not warned"
[ "$(json_num "$json" bytes_unchanged)" -eq 0 ] || die "settings change: blocks taken as unchanged"
ok "changed unused-block settings: full read, warned"
backup --bitmap r3 --no-exclude-free
incremental "same settings again" 1
no_qemu_nbd_for "$img"
