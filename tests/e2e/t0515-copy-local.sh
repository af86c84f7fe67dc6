#!/bin/bash
# ferry copy between local repositories: both points restore
# byte-identical from the copy, a second copy sends nothing, --name and
# POINT select, a killed copy reruns to completion, a damaged source chunk
# stops the copy naming the chunk with nothing committed, and a block size
# mismatch or the same repository twice are refused clearly.
. "$(dirname "$0")/functions.sh"
json_num() { echo "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
. "$(dirname "$0")/copy.sh"

copy_source "$T/a"
ferry init --repo "$T/b" >/dev/null || die "init b"
copy_check "$T/a" "$T/b"
ferry verify --repo "$T/b" 2>/dev/null || die "verify b"
ok "the copy verifies"

ferry init --repo "$T/c" >/dev/null || die "init c"
json=$(ferry copy --from "$T/a" --to "$T/c" --json "$id1") || die "copy one point"
[ "$(json_num "$json" points_copied)" -eq 1 ] && [ "$(point_ids "$T/c")" = "$id1" ] || die "POINT copy: $json"
ok "copy POINT copies only that point"
ferry backup --repo "$T/a" -q --name other "$T/v1.img" >/dev/null || die "backup other"
json=$(ferry copy --from "$T/a" --to "$T/c" --name other --json) || die "copy --name"
[ "$(json_num "$json" points_copied)" -eq 1 ] && [ "$(json_num "$json" chunks_sent)" -eq 0 ] || die "--name copy: $json"
ok "copy --name copies that name's point, sending no chunk the target has"

chunks_b() { find "$T/b/chunks" -type f -name '[0-9a-f]*' | wc -l; }
copy_kill_rerun "$T/a" "$T/b" chunks_b
ferry verify --repo "$T/b" 2>/dev/null || die "verify b after the kill"
ok "the target verifies after the kill and the rerun"

ferry init --repo "$T/small" --block-size 256K >/dev/null || die "init small"
expect_fail 2 ferry copy --from "$T/a" --to "$T/small"
grep -q "block sizes differ" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "a block size mismatch is refused: $(cat "$T/err")"
expect_fail 2 ferry copy --from "$T/a" --to "$T/a"
grep -q "same repository" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "copying a repository onto itself is refused"

# A damaged chunk of a point not yet copied: the copy fails naming it
# and commits nothing; the target is unharmed.
ferry init --repo "$T/d" >/dev/null || die "init d"
h=$(block_hash "$T/disk.img" 7 1048576)
f=$(chunk_file "$T/a" "$h")
chmod u+w "$f"; flip_bit "$f" 4000 0
expect_fail 3 ferry copy --from "$T/a" --to "$T/d" "$id2"
grep -q "$h" "$T/err" || die "the error does not name chunk $h: $(cat "$T/err")"
[ -z "$(point_ids "$T/d")" ] || die "a point was committed from a damaged source"
ok "a damaged source chunk stops the copy, named: $(cut -c1-120 "$T/err")"
