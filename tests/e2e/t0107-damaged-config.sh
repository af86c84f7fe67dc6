#!/bin/bash
# A damaged or hostile repository config (as a compromised share or bucket
# could hold): a block size that is not a power of two (a backup would
# write manifests no restore accepts), a compression level out of range
# (sent as one byte to a mover peer), an id that is not 32 hex digits (it
# names cache files and goes to mover peers), no id at all.  Each is
# refused by backup and restore with one "ferry: " line naming the field,
# exit 4, and the repository is left exactly as it was; with the config
# put back, a backup restores byte for byte.  Found by fuzz/fuzz_repo_config.c.
. "$(dirname "$0")/functions.sh"

repo=$T/repo
truncate -s 4M "$T/a.img"
rand_fill "$T/a.img" 0 3 "a"
ferry init --repo "$repo" >/dev/null || die "init"
p1=$(ferry backup --repo "$repo" --quiet --name a "$T/a.img") || die "first backup"
cp "$repo/config" "$T/config.good"

check() { # WHAT SED-EXPR REGEX
	local what=$1 expr=$2 re=$3 before
	sed "$expr" "$T/config.good" >"$repo/config"
	before=$(repo_fingerprint "$repo")
	expect_fail 4 ferry backup --repo "$repo" --quiet --name a "$T/a.img"
	grep -Eq "not a ferry repository \(bad config: $re" "$T/err" ||
		{ cat "$T/err" >&2; die "$what: backup's message does not name the cause"; }
	expect_fail 4 ferry restore --repo "$repo" "$p1" --to "$T/out.img"
	grep -Eq "bad config: $re" "$T/err" || die "$what: restore's message does not name the cause"
	[ ! -e "$T/out.img" ] || die "$what: restore wrote a target"
	[ "$(repo_fingerprint "$repo")" = "$before" ] || die "$what: the repository changed"
	ok "$what: refused ($(sed 's/^ferry: //' "$T/err"))"
}

check "block size 100000" 's/^block_size = .*/block_size = 100000/' "block_size '100000'"
check "level 300" 's/^level = .*/level = 300/' "level '300'"
check "level -1" 's/^level = .*/level = -1/' "level '-1'"
check "level 2x" 's/^level = .*/level = 2x/' "level '2x'"
check "id ../../../../tmp/abcdefghijklmn" 's#^id = .*#id = ../../../../tmp/abcdefghijklmn#' "id '\.\./"
check "id in upper case" 's/^id = .*/id = 0123456789ABCDEF0123456789ABCDEF/' "id '0123456789ABCDEF"
check "no id line" '/^id = /d' "no id line"

cp "$T/config.good" "$repo/config"
p2=$(ferry backup --repo "$repo" --quiet --name a "$T/a.img") || die "backup with the config put back"
ferry restore --repo "$repo" "$p2" --to "$T/out.img" >/dev/null || die "restore"
same "$T/a.img" "$T/out.img" "config put back: backup and restore work"
