#!/bin/bash
# ferry-test: long
# Damaged manifests and a missing chunk: a manifest truncated at several
# lengths, overwritten with garbage, with one bit flipped, or carrying
# another format version (the u32 at offset 4); a chunk deleted.  Restoring
# that point prints one clear "ferry: " line with the documented exit code
# (3 damaged, 4 unsupported version) and changes neither the repository nor
# an existing target file; `points` still lists every point and marks that
# one damaged; verify names it and why, and exits 3 (4 when the manifest is
# of another format version); the other point still restores.
# With the file put back, verify passes again.
. "$(dirname "$0")/functions.sh"

seed=${FERRY_SEED:-1}
RANDOM=$seed
repo=$T/repo
truncate -s 8M "$T/a.img" "$T/b.img"
rand_fill "$T/a.img" 0 6 "a-$seed"
rand_fill "$T/b.img" 1 5 "b-$seed"
ferry init --repo "$repo" >/dev/null || die "init"
pa=$(ferry backup --repo "$repo" --quiet --name a "$T/a.img") || die "backup a"
pb=$(ferry backup --repo "$repo" --quiet --name b "$T/b.img") || die "backup b"
suma=$(md5 "$T/a.img")
sumb=$(md5 "$T/b.img")
man=$repo/points/$pb
size=$(stat -c %s "$man")
cp -p "$man" "$T/manifest.saved"
pristine=$(repo_fingerprint "$repo")
ok "points $pa (a) and $pb (b); b's manifest has $size bytes"

check_case() { # WHAT RC REGEX [VERIFY_RC]: restore of b fails so; the rest holds
	local what=$1 rc=$2 re=$3 vrc=${4:-3} fp
	fp=$(repo_fingerprint "$repo")
	echo "old target" >"$T/target.img"
	expect_fail "$rc" ferry restore --repo "$repo" "$pb" --to "$T/target.img"
	one_error_line "$re"
	grep -q "$pb" "$T/err" || die "$what: the error does not name point $pb"
	[ "$(cat "$T/target.img")" = "old target" ] || die "$what: the failed restore changed the target file"
	[ "$(repo_fingerprint "$repo")" = "$fp" ] || die "$what: the failed restore changed the repository"
	ok "$what: restore exits $rc with one line ($(cat "$T/err")), target and repository untouched"

	ferry points --repo "$repo" --json >"$T/points.json" || die "$what: points failed"
	[ "$(point_ids "$repo" | sort | tr '\n' ' ')" = "$(printf '%s\n' "$pa" "$pb" | sort | tr '\n' ' ')" ] ||
		die "$what: points lists $(point_ids "$repo" | tr '\n' ' ')"
	grep -q "\"id\":\"$pb\",\"corrupt\":true" "$T/points.json" || die "$what: points does not mark $pb damaged"
	grep -q "\"id\":\"$pa\",\"name\":\"a\"" "$T/points.json" || die "$what: points lost $pa"
	ok "$what: points lists both points and marks $pb damaged"

	expect_fail "$vrc" ferry verify --repo "$repo"
	grep -q "^ferry: restore point $pb: " "$T/err" || { cat "$T/err" >&2; die "$what: verify does not name $pb"; }
	[ "$vrc" != 4 ] || grep -q "^ferry: restore point $pb: .*version" "$T/err" ||
		{ cat "$T/err" >&2; die "$what: verify does not say the format version is the reason"; }
	reports_then_one_error
	ok "$what: verify exits $vrc and names restore point $pb ($(grep "restore point $pb: " "$T/err"))"
	restores_to "$repo" "$pa" "$suma" "$what: the other point still restores byte-identical"

	cp -p "$T/manifest.saved" "$man"
	[ "$(repo_fingerprint "$repo")" = "$pristine" ] || die "$what: repository differs after the repair"
}

hl=$((size - 8 * 33 - 92))
# (regression: a damaged header was reported as "restore point X: restore
# point X: ..." garbage, the message formatted into its own buffer)
for n in 0 7 $((hl / 2)) $hl $((size - 92)) $((size - 33)) $((size - 1)) $((1 + $(rnd $((size - 1))))); do
	truncate -s "$n" "$man"
	check_case "manifest truncated to $n of $size bytes" 3 "manifest|truncated|damaged"
done
: >"$man"
restores_to "$repo" a "$suma" "with b's manifest empty, the name 'a' still resolves and restores"
cp -p "$T/manifest.saved" "$man"

head -c "$size" /dev/urandom >"$man"
check_case "manifest overwritten with random bytes" 3 "manifest|damaged"
head -c 4096 /dev/urandom >"$man"
check_case "manifest replaced by 4 KiB of random bytes" 3 "manifest|damaged"
{ head -c 8 "$T/manifest.saved"; head -c $((size - 8)) /dev/urandom; } >"$man"
check_case "manifest with a valid magic and version, then garbage" 3 "manifest|damaged"
printf 'FMAN\001\000\000\000' >"$man"
check_case "manifest of nothing but magic and version" 3 "manifest|damaged"
cat "$T/manifest.saved" "$T/manifest.saved" >"$man"
check_case "manifest with trailing bytes" 3 "manifest|trailing|damaged"
for k in 1 2 3; do
	off=$(rnd "$size")
	[ $off -ge 4 ] && [ $off -lt 8 ] && off=$((off + 4)) # not the version
	flip_bit "$man" "$off" $((k + 2))
	check_case "manifest with bit $((k + 2)) of byte $off flipped" 3 "manifest|damaged|checksum"
done

# (regression: restore said "corrupt", exit 3, and verify "damaged", exit 3)
for v in '\002\000\000\000' '\000\000\000\000' '\377\377\377\377' '\000\001\000\000'; do
	printf "$v" | dd of="$man" bs=1 seek=4 conv=notrunc status=none
	check_case "manifest with format version $(od -An -tu4 -j4 -N4 "$man" | tr -d " ")" 4 "version" 4
done

# a chunk only b uses goes missing
h=$(block_hash "$T/b.img" 2 $((1024 * 1024)))
f=$(chunk_file "$repo" "$h")
[ -f "$f" ] || die "chunk of block 2 of b not found"
mv "$f" "$T/chunk.saved"
fp=$(repo_fingerprint "$repo")
expect_fail 3 ferry restore --repo "$repo" "$pb" --to "$T/out.img"
names_bad_block "$pb" 2 $((1024 * 1024))
reports_then_one_error
grep -q 'missing' "$T/err" || die "restore does not say the chunk is missing"
[ "$(repo_fingerprint "$repo")" = "$fp" ] || die "the failed restore changed the repository"
ok "missing chunk: restore exits 3 and names block 2 of $pb as missing, repository untouched"
expect_fail 3 ferry verify --repo "$repo"
names_bad_block "$pb" 2 $((1024 * 1024))
reports_then_one_error
ok "missing chunk: verify exits 3 and names block 2 of $pb"
restores_to "$repo" "$pa" "$suma" "missing chunk: the other point still restores byte-identical"
mv "$T/chunk.saved" "$f"

ferry verify --repo "$repo" 2>/dev/null || die "verify after the repairs"
ok "verify passes after the repairs"
restores_to "$repo" "$pb" "$sumb" "after the repairs, $pb restores byte-identical"
