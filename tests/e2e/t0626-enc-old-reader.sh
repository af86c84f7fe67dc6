#!/bin/bash
# Fail closed: a reader that does not know the feature refuses the
# repository ("features = encryption" is required), and a reader that
# ignores it (simulated by removing the line) meets the sealed magics and
# reports damage (exit 3) instead of restoring anything.  A plain
# repository's chunks planted into an encrypted one are refused too.
. "$(dirname "$0")/functions.sh"

export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024 FERRY_PASSWORD=pw
repo=$T/repo
ferry init --repo "$repo" --encrypt --block-size 64K >/dev/null || die "init"
make_disk "$T/d.img" 2
id=$(ferry backup --repo "$repo" --quiet "$T/d.img") || die "backup"

cp -a "$repo" "$T/unknown"
sed -i 's/^features = encryption$/features = encryption-v9/' "$T/unknown/config"
expect_fail 4 ferry points --repo "$T/unknown"
one_error_line 'feature "encryption-v9"'
ok "a repository needing an unknown feature is refused (exit 4), naming it"

cp -a "$repo" "$T/blind"
sed -i '/^features = encryption$/d' "$T/blind/config"
# (This ferry still knows the sealed magics and says a key is needed,
# exit 5; a ferry without encryption calls them a bad magic, exit 3.)
for cmd in "verify" "restore $id --to $T/out.img"; do
	"$FERRY" $cmd --repo "$T/blind" >/dev/null 2>"$T/err"; rc=$?
	[ $rc -eq 5 ] || [ $rc -eq 3 ] || { cat "$T/err"; die "$cmd on the blind repository exited $rc"; }
	grep -qiE "encrypted|sealed|bad magic" "$T/err" || { cat "$T/err"; die "$cmd does not say why"; }
done
[ ! -s "$T/out.img" ] || die "a reader without the feature wrote data"
ok "a reader blind to the feature refuses the sealed chunks and manifests and restores nothing"

# A plain repository's chunk and manifest moved into the encrypted one.
ferry init --repo "$T/plain" --block-size 64K >/dev/null || die "init plain"
pid=$(ferry backup --repo "$T/plain" --quiet "$T/d.img") || die "plain backup"
cp "$T/plain/points/$pid" "$repo/points/$pid"
expect_fail 3 ferry restore --repo "$repo" "$pid" --to "$T/out2.img"
grep -q "not sealed" "$T/err" || { cat "$T/err"; die "the planted manifest is not called unsealed"; }
rm -f "$repo/points/$pid"
ok "a plain manifest planted in the encrypted repository is refused (not sealed)"
restores_to "$repo" "$id" "$(md5 "$T/d.img")" "the encrypted point still restores"
