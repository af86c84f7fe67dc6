#!/bin/bash
# The other readers of an encrypted repository: `ferry files ls/get` read
# an ext4 file system out of a sealed point, and `ferry serve` exports a
# sealed point over NBD (instant recovery); both byte-identical to the
# source; a wrong passphrase stops both before they serve anything.  A
# quick rollback (restore --changed-only into a file and into qcow2:)
# recognises unchanged blocks by their keyed ids and writes only the
# changed ones.
. "$(dirname "$0")/functions.sh"
requires mkfs.ext4 nbdcopy

export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024 FERRY_PASSWORD=files-pw
mkdir -p "$T/tree/etc" "$T/tree/home"
seq 1 20000 >"$T/tree/etc/numbers.txt"
head -c 300000 /dev/urandom >"$T/tree/home/blob"
truncate -s 24M "$T/fs.img"
mkfs.ext4 -q -b 4096 -d "$T/tree" "$T/fs.img" || die "mkfs.ext4"
ferry init --repo "$T/repo" --encrypt --block-size 256K >/dev/null || die "init"
id=$(ferry backup --repo "$T/repo" --quiet "$T/fs.img") || die "backup"

ferry files ls --repo "$T/repo" "$id" /etc >"$T/ls" || die "files ls"
grep -q numbers.txt "$T/ls" || { cat "$T/ls"; die "files ls does not list numbers.txt"; }
mkdir "$T/got"
ferry files get --repo "$T/repo" "$id" /etc/numbers.txt /home/blob --to "$T/got" 2>/dev/null || die "files get"
same "$T/tree/etc/numbers.txt" "$T/got/numbers.txt" "files get of a text file from a sealed point"
same "$T/tree/home/blob" "$T/got/blob" "files get of a binary file from a sealed point"
FERRY_PASSWORD=nope expect_fail 5 ferry files ls --repo "$T/repo" "$id" /etc
ok "files with a wrong passphrase: exit 5"

sock=$T/nbd.sock
"$FERRY" serve --repo "$T/repo" "$id" --nbd "unix:$sock" >"$T/serve.out" 2>"$T/serve.err" &
spid=$!
cleanup_fn "kill -9 $spid"
for i in $(seq 200); do
	grep -q '^serving ' "$T/serve.out" 2>/dev/null && break
	kill -0 $spid 2>/dev/null || { cat "$T/serve.err"; die "ferry serve exited"; }
	sleep 0.05
done
nbdcopy "nbd+unix:///?socket=$sock" "$T/served.img" || { cat "$T/serve.err"; die "nbdcopy"; }
same "$T/fs.img" "$T/served.img" "serve exports the sealed point byte-identical over NBD"
kill "$spid"; wait "$spid" || die "serve exited $? on SIGTERM"
FERRY_PASSWORD=nope expect_fail 5 ferry serve --repo "$T/repo" "$id" --nbd "unix:$T/nbd2.sock"
[ ! -e "$T/nbd2.sock" ] || die "serve listened with a wrong passphrase"
ok "serve with a wrong passphrase: exit 5, no socket"

# Quick rollback: the target's blocks are hashed with the id key.
num() { echo "$1" | grep -o "\"$2\":[0-9]*" | cut -d: -f2; }
cp "$T/fs.img" "$T/roll.img"
printf 'changed' | dd of="$T/roll.img" bs=1 seek=$((5 << 20)) conv=notrunc status=none
json=$(ferry restore --repo "$T/repo" "$id" --to "$T/roll.img" --changed-only --json 2>/dev/null) ||
	die "restore --changed-only"
same "$T/fs.img" "$T/roll.img" "changed-only restore into a file"
[ "$(num "$json" bytes_unchanged)" -ge $((20 << 20)) ] && [ "$(num "$json" blocks_written)" -le 2 ] ||
	die "changed-only did not recognise unchanged blocks: $json"
ok "changed-only into a file: unchanged blocks recognised by keyed id ($json)"
if command -v qemu-img >/dev/null && command -v qemu-io >/dev/null && command -v qemu-nbd >/dev/null; then
	qemu-img convert -q -f raw -O qcow2 "$T/fs.img" "$T/roll.qcow2" || die "qemu-img convert"
	qemu-io -f qcow2 -c "write -P 0x5a 7M 64k" "$T/roll.qcow2" >/dev/null || die "qemu-io"
	json=$(ferry restore --repo "$T/repo" "$id" --to "qcow2:$T/roll.qcow2" --changed-only --json 2>/dev/null) ||
		die "restore --changed-only into qcow2"
	qemu-img compare -q -f qcow2 -F raw "$T/roll.qcow2" "$T/fs.img" || die "qcow2 differs from the point"
	[ "$(num "$json" blocks_written)" -le 2 ] || die "qcow2 rollback wrote too much: $json"
	ok "changed-only into qcow2: equal to the point, only the changed block written ($json)"
fi
