#!/bin/bash
# forget + gc: a keep policy removes exactly the points it does not keep
# (per name, dry run changes nothing, reasons shown), gc then removes
# exactly the chunks only forgotten points used (the chunk files left are
# the union of the kept points' blocks), every kept point still restores,
# stale temporaries go, and a damaged manifest makes gc remove nothing.
. "$(dirname "$0")/functions.sh"

repo=$T/repo
ferry init --repo "$repo" --block-size 64K >/dev/null || die "init"
bs=65536

# chunk_set IMG: the chunk ids of IMG's non-zero blocks, sorted.
chunk_set() {
	local n i
	n=$(($(stat -c %s "$1") / bs))
	for ((i = 0; i < n; i++)); do block_hash "$1" $i $bs; done | sort -u
}

declare -A sum
# Two disks, three versions each; each version rewrites a quarter.
for d in a b; do
	truncate -s 2M "$T/$d.img"
	rand_fill "$T/$d.img" 0 2 "$d-0"
	for v in 1 2 3; do
		[ $v = 1 ] || rand_fill "$T/$d.img" $((v - 2)) 1 "$d-$v"
		cp "$T/$d.img" "$T/$d-v$v.img"
		id=$(ferry backup --repo "$repo" --quiet "$T/$d.img") || die "backup $d v$v"
		sum[$id]=$(md5 "$T/$d.img")
		eval "id_${d}_$v=$id"
		sleep 0.01
	done
done
ok "6 points of 2 disks"

# A dry run decides and shows, and changes nothing.
before=$(repo_fingerprint "$repo")
ferry forget --repo "$repo" --keep-last 1 --dry-run >"$T/dry" 2>"$T/dry.err" || die "forget --dry-run"
[ "$(repo_fingerprint "$repo")" = "$before" ] || die "forget --dry-run changed the repository"
[ "$(grep -c 'would go' "$T/dry")" -eq 4 ] || { cat "$T/dry"; die "dry run should drop 4 points"; }
ok "forget --dry-run shows 4 points to go and changes nothing"

# A rule is required.
expect_fail 2 ferry forget --repo "$repo"
ok "forget without a keep rule is refused"

# --name limits it to one disk; --json names the reasons.
ferry forget --repo "$repo" --name a.img --keep-last 2 --json >"$T/fa.json" || die "forget --name a.img"
grep -q "\"id\":\"$id_a_1\",\"name\":\"a.img\",\"created\":\"[^\"]*\",\"keep\":false" "$T/fa.json" ||
	{ cat "$T/fa.json"; die "a v1 not forgotten"; }
grep -q "\"id\":\"$id_a_3\",[^}]*\"keep\":true,\"reasons\":\"last\"" "$T/fa.json" ||
	{ cat "$T/fa.json"; die "a v3 not kept as last"; }
! grep -q "$id_b_1" "$T/fa.json" || die "forget --name a looked at b's points"
[ "$(point_ids "$repo" | wc -l)" -eq 5 ] || die "expected 5 points after forgetting a v1"
ok "forget --name a.img --keep-last 2 removes a's oldest only"

ferry forget --repo "$repo" --keep-last 1 >/dev/null 2>&1 || die "forget --keep-last 1"
now=$(point_ids "$repo" | sort | tr '\n' ' ')
want=$(printf '%s\n' "$id_a_3" "$id_b_3" | sort | tr '\n' ' ')
[ "$now" = "$want" ] || die "points are [$now], expected [$want]"
ok "forget --keep-last 1 keeps the newest point of each name"

# A stale temporary of a process that is gone.
deadpid=$(sh -c 'echo $$')
head -c 5000 /dev/urandom >"$repo/chunks/00/.tmp-$deadpid-7"

# gc removes exactly the chunks no kept point uses.
ferry gc --repo "$repo" --dry-run --json >"$T/gcdry.json" || die "gc --dry-run"
ferry gc --repo "$repo" --json >"$T/gc.json" || die "gc"
cat "$T/gc.json"
want=$( (chunk_set "$T/a-v3.img"; chunk_set "$T/b-v3.img") | sort -u)
have=$(cd "$repo/chunks" && ls -A */ | grep -E '^[0-9a-f]{64}$' | sort)
[ "$have" = "$want" ] || die "chunks left are not exactly the kept points' blocks"
removed=$(grep -o '"chunks_removed":[0-9]*' "$T/gc.json" | cut -d: -f2)
[ "$removed" -eq 64 ] || die "gc removed $removed chunks, expected 64 (32 blocks of each disk only its forgotten points held)"
grep -q '"chunks_removed":64,' "$T/gcdry.json" || die "the dry run did not predict 64 chunks"
grep -q '"bytes_removed":[1-9]' "$T/gc.json" || die "gc reports no space freed"
[ ! -e "$repo/chunks/00/.tmp-$deadpid-7" ] || die "stale temporary left"
grep -q '"stale_files":1,' "$T/gc.json" || die "stale temporary not counted"
ok "gc removed the 64 chunks only forgotten points used, and the stale temporary"

for id in "$id_a_3" "$id_b_3"; do
	restores_to "$repo" "$id" "${sum[$id]}" "kept point $id restores after gc"
done
ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify after gc"
ok "verify passes after gc"

# A second gc finds nothing.
ferry gc --repo "$repo" --json | grep -q '"chunks_removed":0,' || die "second gc removed chunks"
ok "a second gc removes nothing"

# A damaged manifest: gc cannot know what it needs, and removes nothing.
ferry backup --repo "$repo" --quiet --name c "$T/a-v1.img" >/dev/null || die "backup c"
ferry forget --repo "$repo" --name a.img --keep-last 1 >/dev/null 2>&1
flip_bit "$repo/points/$id_a_3" 100 3
before=$(repo_fingerprint "$repo")
expect_fail 3 ferry gc --repo "$repo"
one_error_line "removes nothing"
[ "$(repo_fingerprint "$repo")" = "$before" ] || die "gc changed a repository with a damaged manifest"
ok "gc refuses to remove anything while a manifest is damaged"
ferry forget --repo "$repo" --keep-last 1 --json | grep -q '"reasons":"damaged manifest"' ||
	die "forget does not keep the damaged point"
ok "forget keeps a damaged point, naming why"
