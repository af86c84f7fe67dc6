#!/bin/bash
# The other readers of an encrypted repository: `ferry files ls/get` read
# an ext4 file system out of a sealed point, and `ferry serve` exports a
# sealed point over NBD (instant recovery); both byte-identical to the
# source; a wrong passphrase stops both before they serve anything.
. "$(dirname "$0")/functions.sh"
requires mkfs.ext4 nbdcopy

export FERRY_KDF_LOG_N=12 FERRY_PASSWORD=files-pw
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
