#!/bin/bash
# Faults injected with strace at each step of a backup's commit (syncfs,
# manifest write, manifest fsync, link, directory fsync), into chunk writes
# and links, and into a restore's writes and fsync.  Each gives exactly one
# "ferry: " line and exit 1 and leaves the repository as it was: the same
# points (no point is left behind, not even when only the directory fsync
# after the link failed), nothing else in points/, verify passes, the
# earlier point restores.  Without faults the same backup then succeeds.
. "$(dirname "$0")/functions.sh"

requires strace
repo=$T/repo
truncate -s 8M "$T/a.img" "$T/n.img"
rand_fill "$T/a.img" 0 6 a
rand_fill "$T/n.img" 0 6 n
ferry init --repo "$repo" >/dev/null || die "init"
p1=$(ferry backup --repo "$repo" --quiet "$T/a.img") || die "backup"
sum1=$(md5 "$T/a.img")
ok "repository with point $p1"

intact() { # WHAT
	local junk
	[ "$(point_ids "$repo")" = "$p1" ] || die "$1: points are now $(point_ids "$repo" | tr '\n' ' ')"
	junk=$(ls -A "$repo/points" | grep -vx "$p1" | tr '\n' ' ')
	[ -z "$junk" ] || die "$1: left in points/: $junk"
	ferry verify --repo "$repo" 2>"$T/verify.err" || { cat "$T/verify.err" >&2; die "$1: verify fails"; }
	restores_to "$repo" "$p1" "$sum1" "$1: points unchanged, verify passes, $p1 restores"
}

fault() { # WHAT INJECTION REGEX SOURCE
	expect_fail 1 under_strace -f -o /dev/null -e inject="$2" \
		"$FERRY" backup --repo "$repo" --threads 1 --quiet "$4"
	one_error_line "$3"
	ok "$1 ($2): exit 1, one line ($(cat "$T/err"))"
	intact "after $1"
}

# a.img is stored already: the backup's only writes are its commit's
fault "EIO from syncfs" syncfs:error=EIO "sync repository" "$T/a.img"
fault "ENOSPC writing the manifest" write:error=ENOSPC:when=1 "manifest.*no space left" "$T/a.img"
fault "EIO from the manifest's fsync" fsync:error=EIO:when=1 "commit restore point.*input/output" "$T/a.img"
fault "ENOSPC from the manifest's fsync" fsync:error=ENOSPC:when=1 "no space left" "$T/a.img"
fault "EIO linking the manifest" linkat:error=EIO:when=1 "commit restore point.*input/output" "$T/a.img"
# (regression: the backup failed here but its point stayed visible)
fault "EIO from the directory fsync after the link" fsync:error=EIO:when=2 "points.*input/output" "$T/a.img"
# n.img is new: chunks are written
fault "ENOSPC writing a chunk" write:error=ENOSPC:when=2 "write chunk.*no space left" "$T/n.img"
fault "EIO linking a chunk" linkat:error=EIO:when=2 "chunk.*input/output" "$T/n.img"

p2=$(ferry backup --repo "$repo" --quiet "$T/n.img") || die "backup without faults"
sum2=$(md5 "$T/n.img")
restores_to "$repo" "$p2" "$sum2" "without faults the same backup succeeds and restores byte-identical"

# the restore target fails.  strace counts calls per thread: with two
# workers and 6 data blocks one of them makes at least 3 writes.
fp=$(repo_fingerprint "$repo")
for inj in pwrite64:error=EIO:when=2 pwrite64:error=ENOSPC:when=3 fsync:error=EIO:when=1; do
	expect_fail 1 under_strace -f -o /dev/null -e inject=$inj \
		"$FERRY" restore --repo "$repo" "$p2" --to "$T/out.img" --threads 2
	one_error_line "restore target"
	[ "$(repo_fingerprint "$repo")" = "$fp" ] || die "restore with $inj changed the repository"
	ok "restore with $inj: exit 1, one line ($(cat "$T/err")), repository untouched"
done
ferry verify --repo "$repo" 2>/dev/null || die "verify at the end"
ok "verify passes at the end"
