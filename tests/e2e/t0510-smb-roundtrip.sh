#!/bin/bash
# A repository on an SMB share (Samba's smbd on loopback, a user with a
# password in a private passdb): init, backup, an incremental backup,
# restore byte-identical, points, verify, info and gc on the smb:// URL;
# the share holds the same layout as a local repository.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/smb.sh"

start_smbd
url=$(smb_url repo1)
ferry init --repo "$url" >/dev/null || die "init on the share"
[ -f "$T/smb/share/repo1/config" ] && [ -d "$T/smb/share/repo1/chunks/ff" ] ||
	die "init did not lay out the repository on the share"
ok "init made the repository on the share ($url)"
expect_fail 1 ferry init --repo "$url"
grep -q "already a ferry repository" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "a second init is refused"

make_disk "$T/disk.img" 24
cp "$T/disk.img" "$T/v1.img"
json=$(ferry backup --repo "$url" --json "$T/disk.img") || die "backup to the share"
id1=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
[ -f "$T/smb/share/repo1/points/$id1" ] || die "no manifest $id1 on the share"
ok "backup committed point $id1 on the share"
ls "$T/smb/share/repo1/points" "$T/smb/share/repo1/chunks"/* | grep -q '^\.tmp-' &&
	die "temporary files left on the share"
ok "no temporary files left behind"

for off in 3 17; do
	head -c 65536 /dev/urandom | dd of="$T/disk.img" bs=65536 seek=$((off * 16 + 1)) conv=notrunc status=none
done
json=$(ferry backup --repo "$url" --json "$T/disk.img") || die "incremental backup"
new=$(echo "$json" | grep -o '"bytes_new":[0-9]*' | cut -d: -f2)
# (sub-block deltas: a changed block that had data stores its 64 KiB; one
# that was zero before has no base and is stored whole: block 17 is in
# make_disk's text region, zero when /usr/share/doc is small)
[ "$new" -eq $((2 * 65536)) ] || [ "$new" -eq $((1048576 + 65536)) ] ||
	die "incremental stored $new new bytes, expected 128 KiB (or 1 MiB + 64 KiB)"
ok "incremental backup stores only the 2 changed blocks"

ferry restore --repo "$url" "$id1" --to "$T/r1.img" 2>/dev/null || die "restore 1"
same "$T/v1.img" "$T/r1.img" "first point restores byte-identical from the share"
ferry restore --repo "$url" disk.img --to "$T/r2.img" 2>/dev/null || die "restore 2"
same "$T/disk.img" "$T/r2.img" "latest point restores byte-identical from the share"
ferry restore --repo "$T/smb/share/repo1" disk.img --to "$T/r3.img" 2>/dev/null || die "restore local"
same "$T/disk.img" "$T/r3.img" "the share's folder is a valid local repository too"

n=$(ferry points --repo "$url" --json | grep -c '"id"')
[ "$n" -eq 2 ] || die "points lists $n points"
ok "points lists both points"
ferry verify --repo "$url" 2>"$T/verify.err" || { cat "$T/verify.err"; die "verify"; }
ok "verify passes on the share"
chunks=$(ferry info --repo "$url" --json | grep -o '"chunks":[0-9]*' | cut -d: -f2)
lchunks=$(ferry info --repo "$T/smb/share/repo1" --json | grep -o '"chunks":[0-9]*' | cut -d: -f2)
[ "$chunks" = "$lchunks" ] && [ "$chunks" -gt 0 ] || die "info says $chunks chunks, the folder has $lchunks"
ok "info counts $chunks chunks"

# A flipped byte in a chunk on the share is found by verify and refused
# by restore.
f=$(find "$T/smb/share/repo1/chunks" -type f -size +100k | head -1)
flip_bit "$f" 5000 0
expect_fail 3 ferry verify --repo "$url"
ok "verify reports a damaged chunk on the share"
ferry forget --repo "$url" --keep-last 1 >/dev/null 2>&1 || die "forget"
ferry gc --repo "$url" >/dev/null 2>"$T/gc.err" || { cat "$T/gc.err"; die "gc on the share"; }
[ -z "$(ls "$T/smb/share/repo1/locks")" ] || die "locks left: $(ls "$T/smb/share/repo1/locks")"
ok "forget and gc run on the share and leave no lock behind"
