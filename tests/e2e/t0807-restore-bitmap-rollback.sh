#!/bin/bash
# Quick rollback with a dirty bitmap: a qcow2 VM disk is backed up with a
# checkpoint bitmap; writes through qemu-nbd change about 1 % of it; then
# `ferry restore --changed-only --bitmap` into qcow2:PATH reads only the
# dirty extents, writes only the pages that differ, and the image equals
# the point (qemu-img compare and cmp of a raw conversion).  Without the
# bitmap every allocated block is read; a bitmap that does not stand for
# the point is refused with a warning and every block compared; a full
# restore into the qcow2 works too.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/vm-functions.sh"
requires qemu-img qemu-io qemu-nbd nbdinfo

mib=96
img=$T/vm.qcow2
make_disk "$T/seed.raw" $mib
qemu-img convert -q -f raw -O qcow2 "$T/seed.raw" "$img" || die "convert"
qemu-img bitmap --add "$img" ck1 || die "bitmap --add"
ferry init --repo "$T/repo" >/dev/null || die "init"
json=$(ferry backup --repo "$T/repo" --json --checkpoint ck1 "qcow2:$img" 2>"$T/warn") || { cat "$T/warn"; die "backup"; }
id1=$(json_id "$json")
echo "$json" | grep -q '"checkpoint":"ck1"' || die "no checkpoint recorded"
qemu-img convert -f qcow2 -O raw "$img" "$T/p1.raw" || die "convert p1"

# guest_writes: writes through qemu-nbd (as a VM's would go through
# QEMU's block layer): 64 KiB, 4 KiB, 512 KiB across a block edge, zeros
# over data, data in a zero region, and a rewrite of unchanged bytes.
guest_writes() {
	local sock=$T/vm.sock
	qemu-nbd -t -f qcow2 -k "$sock" "$img" &
	local qpid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
	dd if="$T/p1.raw" of="$T/same.bin" bs=64k skip=$((60 * 16)) count=1 status=none
	qemu-io -f raw -c "write -P 0x5a 5M 64k" -c "write -P 0x33 30728k 4k" \
		-c "write -P 0x77 70400k 512k" -c "write -z 10M 128k" \
		-c "write -P 0x11 $(((mib - 8) << 20)) 64k" \
		"nbd+unix:///?socket=$sock" >/dev/null || die "qemu-io writes"
	# the same bytes again at 60 MiB: dirty, but equal to the point
	qemu-io -f raw -c "write -s $T/same.bin 60M 64k" "nbd+unix:///?socket=$sock" >/dev/null ||
		die "qemu-io rewrite"
	kill $qpid; wait $qpid
	no_qemu_nbd_for "$img"
}
guest_writes
changed=$(( (64 + 4 + 512 + 128 + 64) << 10 ))
dirty=$(nbdinfo --map="qemu:dirty-bitmap:ck1" -- [ qemu-nbd -r -f qcow2 -B ck1 "$img" ] |
	awk '$3 == 1 { n += $2 } END { print n + 0 }')
[ "$dirty" -ge "$changed" ] || die "the bitmap marks $dirty bytes, $changed were written"
ok "guest wrote $changed bytes ($(( changed * 1000 / (mib << 20) )) per mille of the disk); the bitmap marks $dirty"

json=$(ferry restore --repo "$T/repo" "$id1" --to "qcow2:$img" --changed-only --bitmap ck1 --json 2>"$T/warn") ||
	{ cat "$T/warn"; die "rollback with --bitmap"; }
[ ! -s "$T/warn" ] || { cat "$T/warn"; die "the rollback warned"; }
echo "$json" | grep -q '"bitmap_used":true' || die "the bitmap was not used: $json"
rd=$(json_num "$json" bytes_compared)
wr=$(json_num "$json" bytes_written)
clean=$(json_num "$json" bytes_clean)
[ "$rd" -le "$dirty" ] || die "read $rd bytes of the target; the bitmap marks $dirty"
[ "$wr" -ge $(( changed - (64 << 10) )) ] && [ "$wr" -le "$changed" ] ||
	die "wrote $wr bytes; $changed changed (64 KiB rewritten unchanged)"
[ "$clean" -ge $(( (mib << 20) - dirty )) ] || die "only $clean bytes were skipped as clean"
ok "rollback with --bitmap read $rd bytes of the $((mib << 20))-byte disk, wrote $wr, skipped $clean as clean"
no_qemu_nbd_for "$img"
qemu-img compare -q -f qcow2 -F raw "$img" "$T/p1.raw" || die "qemu-img compare: the image differs from the point"
qemu-img convert -f qcow2 -O raw "$img" "$T/back.raw" || die "convert back"
same "$T/p1.raw" "$T/back.raw" "the rolled-back image equals the restore point"

# Without the bitmap: every block is compared (zero extents are not read).
guest_writes
json=$(ferry restore --repo "$T/repo" "$id1" --to "qcow2:$img" --changed-only --json 2>"$T/warn") ||
	{ cat "$T/warn"; die "rollback without --bitmap"; }
rd2=$(json_num "$json" bytes_compared)
wr2=$(json_num "$json" bytes_written)
[ "$rd2" -gt $((rd * 10)) ] || die "without the bitmap only $rd2 bytes were read"
[ "$wr2" = "$wr" ] || die "without the bitmap $wr2 bytes were written, with it $wr"
qemu-img convert -f qcow2 -O raw "$img" "$T/back.raw" || die "convert back"
same "$T/p1.raw" "$T/back.raw" "rollback without the bitmap reads $rd2 bytes, writes the same $wr2, equals the point"

# A bitmap that is not the point's checkpoint: warned, every block compared.
qemu-img bitmap --add "$img" ck2 || die "bitmap ck2"
guest_writes
json=$(ferry restore --repo "$T/repo" "$id1" --to "qcow2:$img" --changed-only --bitmap ck2 --json 2>"$T/warn") ||
	{ cat "$T/warn"; die "rollback with the wrong bitmap"; }
grep -q "ferry: warning: bitmap: restore point $id1 says the writes after it are in bitmap 'ck1', not 'ck2'; comparing every block" "$T/warn" ||
	{ cat "$T/warn"; die "no warning about the wrong bitmap"; }
echo "$json" | grep -q '"bitmap_used":false' || die "the wrong bitmap was used"
qemu-img convert -f qcow2 -O raw "$img" "$T/back.raw" || die "convert back"
same "$T/p1.raw" "$T/back.raw" "a bitmap that is not the point's checkpoint is not trusted; the result equals the point"

# A missing bitmap: the same.
json=$(ferry restore --repo "$T/repo" "$id1" --to "qcow2:$img" --changed-only --bitmap nosuch --json 2>"$T/warn") ||
	{ cat "$T/warn"; die "rollback with a missing bitmap"; }
grep -q "has no bitmap 'nosuch'; comparing every block" "$T/warn" || { cat "$T/warn"; die "no warning about the missing bitmap"; }
ok "a missing bitmap is reported; every block compared"

# Full restore into the existing qcow2 image.
guest_writes
ferry restore --repo "$T/repo" "$id1" --to "qcow2:$img" 2>"$T/err" || { cat "$T/err"; die "full restore into qcow2"; }
qemu-img convert -f qcow2 -O raw "$img" "$T/back.raw" || die "convert back"
same "$T/p1.raw" "$T/back.raw" "a full restore into qcow2:PATH equals the point"

# An image another process holds open (a running VM): refused, untouched.
qemu-nbd -r -f qcow2 -k "$T/busy.sock" "$img" &  # read-only: it cannot change the image itself
bpid=$!
cleanup_fn "kill $bpid"
for _ in $(seq 100); do [ -S "$T/busy.sock" ] && break; sleep 0.05; done
sum=$(md5 "$img")
expect_fail 1 ferry restore --repo "$T/repo" "$id1" --to "qcow2:$img" --changed-only --bitmap ck1
grep -q "^ferry: restore failed: cannot open qcow2:$img through qemu-nbd (is a VM still running on it?" "$T/err" ||
	{ cat "$T/err"; die "no clear error for an image in use"; }
[ "$(md5 "$img")" = "$sum" ] || die "the image in use was changed"
kill $bpid; wait $bpid 2>/dev/null
ok "an image in use by another process is refused and left alone"

expect_fail 2 ferry restore --repo "$T/repo" "$id1" --to "$T/p1.raw" --bitmap ck1
ok "--bitmap without --changed-only is a usage error"
expect_fail 2 ferry restore --repo "$T/repo" "$id1" --to "$T/p1.raw" --changed-only --bitmap ck1
one_error_line "qcow2:PATH or an NBD URL"
ok "--bitmap with a plain file target is refused: $(cat "$T/err")"
no_qemu_nbd_for "$img"
