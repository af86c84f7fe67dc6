#!/bin/bash
# Dedup inside an encrypted repository: a second backup of the same image
# stores no new chunk and ~0 bytes (keyed ids are deterministic per
# repository), the same image under another name too, and the chunk count
# stays; a second encrypted repository names the same blocks differently
# (its own id key).
. "$(dirname "$0")/functions.sh"

export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024 FERRY_PASSWORD=dd-pass
repo=$T/repo
ferry init --repo "$repo" --encrypt --block-size 256K >/dev/null || die "init"
make_disk "$T/d.img" 16
num() { echo "$1" | grep -o "\"$2\":[0-9]*" | cut -d: -f2; }
j1=$(ferry backup --repo "$repo" --json "$T/d.img" 2>/dev/null) || die "backup 1"
c1=$(find "$repo/chunks" -type f | wc -l)
s1=$(du -sb "$repo/chunks" | cut -f1)
j2=$(ferry backup --repo "$repo" --json "$T/d.img" 2>/dev/null) || die "backup 2"
j3=$(ferry backup --repo "$repo" --json --name other "$T/d.img" 2>/dev/null) || die "backup 3"
c3=$(find "$repo/chunks" -type f | wc -l)
s3=$(du -sb "$repo/chunks" | cut -f1)
[ "$(num "$j1" bytes_new)" -gt 0 ] || die "first backup stored nothing: $j1"
for j in "$j2" "$j3"; do
	[ "$(num "$j" bytes_new)" = 0 ] && [ "$(num "$j" bytes_stored)" = 0 ] || die "a repeat backup stored bytes: $j"
done
[ "$c1" = "$c3" ] && [ "$s1" = "$s3" ] || die "chunks changed: $c1 -> $c3 files, $s1 -> $s3 bytes"
ok "second backup and another name of the same image: 0 new bytes, $c1 chunks unchanged"

ferry init --repo "$T/repo2" --encrypt --block-size 256K >/dev/null || die "init 2"
ferry backup --repo "$T/repo2" --quiet "$T/d.img" >/dev/null || die "backup repo2"
(cd "$repo/chunks" && find . -type f | sort) >"$T/n1"
(cd "$T/repo2/chunks" && find . -type f | sort) >"$T/n2"
[ -z "$(comm -12 "$T/n1" "$T/n2")" ] || die "two encrypted repositories share chunk names"
ok "another encrypted repository names the same blocks differently (its own id key)"
for id in $(point_ids "$repo"); do
	restores_to "$repo" "$id" "$(md5 "$T/d.img")" "point $id restores byte-identical"
done
