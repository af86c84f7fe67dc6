#!/bin/bash
# demo.sh - the main job on a sample disk: make a disk image with a
# partition table and an ext4 file system full of real files, back it up,
# change 1 % of it, back it up again, restore the latest point, compare.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
ferry=${FERRY:-$top/bin/ferry}
dir=${DEMO_DIR:-$top/build/demo}
rm -rf "$dir"
mkdir -p "$dir"
img=$dir/disk.img repo=$dir/repo

step() { printf '\n== %s\n' "$*"; }

step "making a 512 MiB sample disk: GPT, ext4 with files from /usr/share, free space zero"
mkdir -p "$dir/files"
# about 150 MiB of real files
(cd /usr/share && find . -type f -size -4M 2>/dev/null | head -6000 |
	tar -cf - -T - 2>/dev/null) | head -c 150000000 | tar -C "$dir/files" -xf - 2>/dev/null || true
truncate -s 510M "$dir/part.img"
mkfs.ext4 -q -F -d "$dir/files" "$dir/part.img"
truncate -s 512M "$img"
printf 'label: gpt\nstart=2048, size=1044480, type=L\n' | sfdisk -q "$img"
dd if="$dir/part.img" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
rm -rf "$dir/files"
ls -ls "$img"

step "ferry init --repo $repo"
"$ferry" init --repo "$repo"

step "ferry backup (full)"
"$ferry" backup --repo "$repo" --name demo "$img"

step "changing the guest's files: a new 4 MiB file written with debugfs (no mount)"
head -c 4194304 /dev/urandom >"$dir/new.bin"
debugfs -w -R "write $dir/new.bin new.bin" "$dir/part.img" >/dev/null 2>&1
dd if="$dir/part.img" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$dir/new.bin" "$dir/part.img"

step "ferry backup (incremental: reads everything, writes only the changed blocks)"
"$ferry" backup --repo "$repo" --name demo "$img"

step "ferry points"
"$ferry" points --repo "$repo"

step "ferry restore demo (its latest point) and compare with the disk"
"$ferry" restore --repo "$repo" demo --to "$dir/restored.img"
cmp "$img" "$dir/restored.img"
echo "restored image is byte-identical to the source ($(stat -c %s "$img") bytes)"

step "ferry verify"
"$ferry" verify --repo "$repo"

step "ferry info"
"$ferry" info --repo "$repo"
printf '\ndemo ok: files are in %s\n' "$dir"
