#!/bin/bash
# Wrong repositories and bad sources: a path that is not a repository (in
# eight shapes), a repository config of a future version, a source that does
# not exist, a directory or character device as source, a source that fails
# with EIO or ends early while it is read (strace fault injection).  Each
# gives exactly one "ferry: " line on stderr and the documented exit code
# (4 not a repository / unsupported version / not found, 1 unreadable
# source), creates nothing, and leaves the repository as it was: the same
# points, verify passes, the earlier point restores; after the fault a
# backup of the same source succeeds.
. "$(dirname "$0")/functions.sh"

repo=$T/repo
src=$T/disk.img
truncate -s 8M "$src"
rand_fill "$src" 0 6 "disk"
ferry init --repo "$repo" >/dev/null || die "init"
p1=$(ferry backup --repo "$repo" --quiet "$src") || die "backup"
sum1=$(md5 "$src")
pristine=$(repo_fingerprint "$repo")
ok "repository with point $p1"

state() { # PATH: what is there, to see that nothing was created
	if [ -e "$1" ]; then
		find "$1" -printf '%P %y %s %m\n' | sort | md5sum
		[ -f "$1" ] && md5sum <"$1"
	else
		echo absent
	fi
}

not_repo() { # PATH WHAT
	local path=$1 what=$2 before cmd
	before=$(state "$path")
	for cmd in points info verify "verify $p1" "backup $src" "restore $p1 --to $T/out.img"; do
		# shellcheck disable=SC2086
		expect_fail 4 ferry ${cmd%% *} --repo "$path" $(echo "$cmd" | cut -s -d' ' -f2-)
		one_error_line "not a ferry repository"
		grep -qF "$path" "$T/err" || die "$what: '$cmd' does not name $path"
		[ "$(state "$path")" = "$before" ] || die "$what: '$cmd' changed $path"
		[ ! -e "$T/out.img" ] || die "$what: '$cmd' created the restore target"
	done
	ok "$what: points, info, verify, backup and restore exit 4 with one line ($(cat "$T/err")), nothing created"
}

not_repo "$T/nowhere" "a path that does not exist"
not_repo "$T/no/such/dir" "a path under a missing directory"
mkdir "$T/empty"
not_repo "$T/empty" "an empty directory"
not_repo "$src" "a disk image file"
mkdir -p "$T/other/sub" && echo hello >"$T/other/notes.txt"
not_repo "$T/other" "a directory of other files"
mkdir -p "$T/half/chunks" "$T/half/points"
not_repo "$T/half" "a repository whose init was cut short (no config)"
mkdir "$T/garbage" && head -c 3000 /dev/urandom >"$T/garbage/config"
not_repo "$T/garbage" "a directory whose config is random bytes"
mkdir "$T/foreign" && printf 'format = something-else\nversion = 1\nblock_size = 1048576\ncompression = zstd\n' >"$T/foreign/config"
not_repo "$T/foreign" "a config of another format"
mkdir "$T/nochunks" && cp "$repo/config" "$T/nochunks/config" && mkdir "$T/nochunks/points"
not_repo "$T/nochunks" "a config without chunks/"
expect_fail 4 env FERRY_REPO="$T/nowhere" "$FERRY" points
one_error_line "not a ferry repository"
ok "FERRY_REPO naming a missing repository: exit 4, one line"

# a repository from a future ferry
cp -p "$repo/config" "$T/config.saved"
for v in 2 99; do
	sed -i "s/^version = .*/version = $v/" "$repo/config"
	fp=$(repo_fingerprint "$repo")
	for cmd in points info verify "backup $src" "restore $p1 --to $T/out.img"; do
		# shellcheck disable=SC2086
		expect_fail 4 ferry ${cmd%% *} --repo "$repo" $(echo "$cmd" | cut -s -d' ' -f2-)
		one_error_line "version $v"
		[ "$(repo_fingerprint "$repo")" = "$fp" ] || die "config version $v: '$cmd' changed the repository"
		[ ! -e "$T/out.img" ] || die "config version $v: '$cmd' created the restore target"
	done
	ok "config version $v: every command exits 4 with one line ($(cat "$T/err")), repository untouched"
done
cp -p "$T/config.saved" "$repo/config"
[ "$(repo_fingerprint "$repo")" = "$pristine" ] || die "repository differs after the config was put back"

intact() { # WHAT: the repository is as it was
	[ "$(point_ids "$repo")" = "$p1" ] || die "$1: points are now $(point_ids "$repo" | tr '\n' ' ')"
	ferry verify --repo "$repo" 2>/dev/null || die "$1: verify fails"
	restores_to "$repo" "$p1" "$sum1" "$1: same points, verify passes, $p1 restores byte-identical"
}

expect_fail 4 ferry backup --repo "$repo" "$T/nope.img"
one_error_line "nope.img"
[ "$(repo_fingerprint "$repo")" = "$pristine" ] || die "backup of a missing source changed the repository"
ok "a source that does not exist: exit 4, one line ($(cat "$T/err")), repository untouched"
expect_fail 1 ferry backup --repo "$repo" "$T/empty"
one_error_line "not a disk image"
[ "$(repo_fingerprint "$repo")" = "$pristine" ] || die "backup of a directory changed the repository"
ok "a directory as source: exit 1, one line ($(cat "$T/err")), repository untouched"
expect_fail 1 ferry backup --repo "$repo" /dev/null
one_error_line "not a disk image"
[ "$(repo_fingerprint "$repo")" = "$pristine" ] || die "backup of /dev/null changed the repository"
ok "a character device as source: exit 1, one line, repository untouched"
intact "after the bad sources"

# read errors, from strace's fault injection on the source file only
requires strace
rand_fill "$src" 2 2 "changed" # new data, so blocks are stored before the fault
# (--no-exclude-*: no partition probe, so read N is the Nth data read;
# FERRY_NO_MMAP: the image is read with pread, where strace injects, not
# through its mapping)
export FERRY_NO_MMAP=1
for when in 1 3 6; do
	expect_fail 1 under_strace -f -o /dev/null -P "$src" -e trace=pread64 \
		-e inject=pread64:error=EIO:when=$when "$FERRY" backup --repo "$repo" \
		--no-exclude-swap --no-exclude-free "$src"
	one_error_line "read source .*Input/output error"
	ok "EIO on source read $when: exit 1, one line ($(cat "$T/err"))"
	intact "after EIO on read $when"
done
expect_fail 1 under_strace -f -o /dev/null -P "$src" -e trace=pread64 \
	-e inject=pread64:retval=0:when=4 "$FERRY" backup --repo "$repo" \
	--no-exclude-swap --no-exclude-free "$src"
one_error_line "shrank"
ok "a source that ends early: exit 1, one line ($(cat "$T/err"))"
intact "after a source that ended early"

# With the unused-block filter on, a failed partition-table probe is not a
# failed backup: it falls back to reading every block, and says so.
before=$(point_ids "$repo" | wc -l)
under_strace -f -o /dev/null -P "$src" -e trace=pread64 \
	-e inject=pread64:error=EIO:when=1 "$FERRY" backup --repo "$repo" "$src" >"$T/out" 2>"$T/err" ||
	{ cat "$T/err" >&2; die "backup with a failed probe read"; }
grep -q "warning: .*reading the whole disk" "$T/err" || die "no fallback warning after a failed probe read"
restores_to "$repo" "$(cat "$T/out")" "$(md5 "$src")" "EIO on the partition probe: warning, whole disk read, the point restores byte-identical"
[ "$(point_ids "$repo" | wc -l)" -eq $((before + 1)) ] || die "probe fallback did not add one point"

unset FERRY_NO_MMAP
p2=$(ferry backup --repo "$repo" --quiet "$src") || die "backup after the read errors"
restores_to "$repo" "$p2" "$(md5 "$src")" "a backup of the same source after the read errors succeeds and restores byte-identical"
ferry verify --repo "$repo" 2>/dev/null || die "verify at the end"
ok "verify passes at the end"
