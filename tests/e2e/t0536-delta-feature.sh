#!/bin/bash
# The repository feature "delta": a repository made with --no-delta keeps
# storing whole blocks (kind 1 only, readable by older ferry releases); a
# ferry without the feature refuses a delta repository (simulated: an
# unknown feature name); and a kind-2 entry in a repository whose config
# lacks the feature is refused by every reader, never guessed at.
. "$(dirname "$0")/functions.sh"

bs=1048576
ferry init --repo "$T/old" --no-delta --json | grep -q '"delta":false' || die "init --no-delta"
grep -q 'features.*delta' "$T/old/config" && die "--no-delta config announces the feature"
head -c $((16 * bs)) /dev/urandom >"$T/disk.img"
ferry backup --repo "$T/old" "$T/disk.img" >/dev/null 2>&1 || die "backup 1"
delta_scatter "$T/disk.img" 2 $bs
json=$(ferry backup --repo "$T/old" --json "$T/disk.img" 2>/dev/null) || die "backup 2"
[ "$(jnum "$json" blocks_delta)" -eq 0 ] || die "delta blocks in a --no-delta repository: $json"
[ "$(jnum "$json" bytes_new)" -eq $((2 * bs)) ] || die "expected 2 whole new blocks: $json"
id=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
for i in $(seq 0 15); do
	read -r k _ <<<"$(entry_of "$T/old" "$id" "$i")"
	[ "$k" = 1 ] || die "block $i has kind $k"
done
ok "--no-delta: the incremental stores whole blocks, kind 1 only"

# A delta repository, as an older ferry sees it.
ferry init --repo "$T/new" >/dev/null || die "init"
cp -r "$T/new" "$T/future"
sed -i 's/^features = delta$/features = delta-v9/' "$T/future/config"
expect_fail 4 ferry points --repo "$T/future"
grep -q 'feature "delta-v9"' "$T/err" || { cat "$T/err"; die "the unknown feature is not named"; }
ok "a repository needing an unknown feature is refused, naming it"

# Kind-2 entries where the config does not allow them.
ferry backup --repo "$T/new" "$T/disk.img" >/dev/null 2>&1 || die "backup new 1"
delta_scatter "$T/disk.img" 1 $bs
json=$(ferry backup --repo "$T/new" --json "$T/disk.img" 2>/dev/null) || die "backup new 2"
[ "$(jnum "$json" blocks_delta)" -eq 1 ] || die "expected a delta block: $json"
id=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
sed -i '/^features = delta$/d' "$T/new/config"
expect_fail 3 ferry restore --repo "$T/new" "$id" --to "$T/r.img"
grep -q 'kind 2\|invalid' "$T/err" || { cat "$T/err"; die "unclear refusal"; }
ok "a kind-2 entry without the feature is refused: $(head -1 "$T/err")"
expect_fail 3 ferry verify --repo "$T/new" "$id"
ok "verify refuses it too"
