#!/bin/bash
# No space left: a repository on an 8 MiB tmpfs fills up in the middle of
# a backup, and a restore target on an 8 MiB tmpfs is too small.  Each gives
# exactly one "ferry: " line and exit 1; the repository keeps exactly its
# points, verify passes and the earlier point restores byte-identical.  Once
# space returns (the tmpfs is made larger) the same backup succeeds.
. "$(dirname "$0")/functions.sh"

requires_root
small=$T/small
mkdir "$small"
mount -t tmpfs -o size=8m tmpfs "$small" || skip "cannot mount a tmpfs"
cleanup_fn umount "$small"
repo=$small/repo
truncate -s 2M "$T/small.img"
rand_fill "$T/small.img" 0 2 small
truncate -s 32M "$T/big.img"
rand_fill "$T/big.img" 0 30 big
ferry init --repo "$repo" >/dev/null || die "init on the tmpfs"
p1=$(ferry backup --repo "$repo" --quiet "$T/small.img") || die "backup of 2 MiB into 8 MiB"
sum1=$(md5 "$T/small.img")
ok "repository on an 8 MiB tmpfs with point $p1"

intact() { # WHAT
	[ "$(point_ids "$repo")" = "$p1" ] || die "$1: points are now $(point_ids "$repo" | tr '\n' ' ')"
	ferry verify --repo "$repo" 2>"$T/verify.err" || { cat "$T/verify.err" >&2; die "$1: verify fails"; }
	restores_to "$repo" "$p1" "$sum1" "$1: only $p1 listed, verify passes, it restores byte-identical"
}

for attempt in 1 2; do
	expect_fail 1 ferry backup --repo "$repo" "$T/big.img"
	one_error_line "no space left"
	ok "backup of 30 MiB into the full tmpfs (attempt $attempt): exit 1, one line ($(cat "$T/err"))"
	intact "after ENOSPC (attempt $attempt)"
done
used=$(df --output=used -k "$small" | tail -1 | tr -d " ")
junk=$(find "$repo/chunks" -type f | grep -vE "/[0-9a-f]{2}/[0-9a-f]{64}$" | head -3)
[ -z "$junk" ] || die "files other than chunks in chunks/: $junk"
ok "the full tmpfs holds $used KiB: whole chunks of the failed backups (verify read them all), no temporary files"

mount -o remount,size=64m "$small" || die "cannot grow the tmpfs"
p2=$(ferry backup --repo "$repo" --quiet "$T/big.img") || die "backup once space returned"
ok "with space again the same backup succeeds: point $p2"
ferry verify --repo "$repo" 2>/dev/null || die "verify after the backup with space"
restores_to "$repo" "$p2" "$(md5 "$T/big.img")" "the new point restores byte-identical"
restores_to "$repo" "$p1" "$sum1" "the earlier point still restores byte-identical"

# a restore target without space
tgt=$T/tgt
mkdir "$tgt"
mount -t tmpfs -o size=8m tmpfs "$tgt" || skip "cannot mount a second tmpfs"
cleanup_fn umount "$tgt"
fp=$(repo_fingerprint "$repo")
expect_fail 1 ferry restore --repo "$repo" "$p2" --to "$tgt/out.img"
one_error_line "no space left"
ok "restore of 32 MiB onto an 8 MiB tmpfs: exit 1, one line ($(cat "$T/err"))"
[ "$(repo_fingerprint "$repo")" = "$fp" ] || die "the failed restore changed the repository"
ferry verify --repo "$repo" 2>/dev/null || die "verify after the failed restore"
ok "the failed restore left the repository as it was, verify passes"
rm -f "$tgt/out.img"
mount -o remount,size=64m "$tgt" || die "cannot grow the target tmpfs"
ferry restore --repo "$repo" "$p2" --to "$tgt/out.img" 2>/dev/null || die "restore once the target has space"
same "$T/big.img" "$tgt/out.img" "with space on the target the restore succeeds byte-identical"
