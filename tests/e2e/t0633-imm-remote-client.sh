#!/bin/bash
# A hardened repository behind a mover: backups from a remote client get
# the immutable attribute on the mover's side.  A client with valid
# credentials cannot delete or overwrite a restore point through the
# protocol: forget and gc over ferry:// are refused (the protocol has no
# message that removes anything), raw frames that try (a BEGIN reusing a
# committed point's id, a PUT of other bytes under a stored chunk's hash,
# a frame type the protocol does not have) are refused or change nothing,
# and afterwards the point restores byte-identical.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"
requires_root
requires lsattr chattr
cleanup_fn "chattr -R -i '$T'"

make_pki "$T/pki"
P=$T/pki repo=$T/repo
ferry init --repo "$repo" --block-size 64K --immutable-days 5 >/dev/null || die "init"
start_mover m -- --repo "$repo" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt"
url=ferry://127.0.0.1:$m_port/repo
printf 'cert = %s\nkey = %s\nca = %s\n' "$P/src1.crt" "$P/src1.key" "$P/ca.crt" >"$T/ferry.conf"
export FERRY_CONFIG=$T/ferry.conf

truncate -s 1M "$T/d.img"
dd if=/dev/urandom of="$T/d.img" bs=64K count=12 conv=notrunc status=none
id=$(ferry backup --repo "$url" --quiet "$T/d.img") || die "remote backup"
sum=$(md5 "$T/d.img")
cp "$T/d.img" "$T/d1.img"
dd if=/dev/urandom of="$T/d.img" bs=64K count=1 seek=14 conv=notrunc status=none
id2=$(ferry backup --repo "$url" --quiet "$T/d.img") || die "second remote backup"
for f in "$repo"/chunks/*/* "$repo/points/$id" "$repo/expiry/$id"; do
	lsattr -d "$f" | cut -d' ' -f1 | grep -q i || die "$f (written by the mover) lacks 'i'"
done
ok "2 backups through the mover: their $(find "$repo/chunks" -type f | wc -l) chunks, manifest and expiry record carry 'i'"
fp() { (cd "$repo" && find chunks points expiry -type f -print0 | sort -z | xargs -0 md5sum) | md5sum; }
before=$(fp)

# The commands a client has.
FERRY_NOW=+30d ferry forget --repo "$url" --keep-last 1 >"$T/fo" 2>"$T/err"; rc=$?
[ $rc -ne 0 ] || { cat "$T/fo" "$T/err"; die "remote forget succeeded"; }
grep -q "cannot remove restore points; run forget where the repository is" "$T/err" || { cat "$T/err"; die "remote forget: unclear refusal"; }
ok "forget over ferry:// (even with a client clock 30 days ahead): $(tail -1 "$T/err" | cut -c1-120)"
expect_fail 2 ferry gc --repo "$url"
one_error_line "cannot remove chunks"
ok "gc over ferry://: $(cut -c1-100 "$T/err")"
[ "$(fp)" = "$before" ] || die "a refused command changed the repository"

# Raw frames from an authenticated client (the mover's certificate chain).
le16() { printf '\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)); }
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
frame() { # TYPE FILE: a frame carrying FILE's bytes
	printf "$(le32 "$(stat -c %s "$2")")$(le16 "$1")\\x00\\x00"
	cat "$2"
}
hello='\x14\x00\x00\x00\x01\x00\x00\x00FERRYMV1\x01\x00\x01\x00\x04\x00repo\x00\x00'
send() { # FILE: HELLO, then FILE's frames, over TLS with src1's certificate
	{ printf "$hello"; cat "$1"; sleep 1; } |
		timeout 15 openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:$m_port" -cert "$P/src1.crt" \
			-key "$P/src1.key" -CAfile "$P/ca.crt" >"$T/sc.out" 2>&1
	sleep 0.3
}
man=$repo/points/$id
hl=$(od -An -tu4 -j8 -N4 "$man" | tr -d ' ')
{ printf "$(le16 "$hl")"; head -c "$hl" "$man"; } >"$T/begin.same"
frame 16 "$T/begin.same" >"$T/f1"
send "$T/f1"
grep -q "restore point $id exists already" "$T/m.log" || { tail "$T/m.log"; die "a BEGIN reusing $id was not refused"; }
ok "BEGIN with the committed point's id: refused ('restore point $id exists already')"

# A new session, then a PUT of another chunk's bytes under a stored hash.
cp "$T/begin.same" "$T/begin.new"
nb=$(printf %02x $((0x${id:0:2} ^ 0xff)))
printf "\\x$nb" | dd of="$T/begin.new" bs=1 seek=$((2 + 40)) conv=notrunc status=none
h1=$(block_hash "$T/d1.img" 0 65536) h2=$(block_hash "$T/d1.img" 1 65536)
c1=$(chunk_file "$repo" "$h1") c2=$(chunk_file "$repo" "$h2")
m1=$(md5 "$c1")
{ printf "$(echo "$h1" | sed 's/../\\x&/g')"; cat "$c2"; } >"$T/put"
{ frame 16 "$T/begin.new"; frame 22 "$T/put"; } >"$T/f2"
send "$T/f2"
sline=$(grep "begin point $nb${id:2}" "$T/m.log" | head -1)
[ -n "$sline" ] || { tail "$T/m.log"; die "the new session did not begin"; }
sess=$(echo "$sline" | grep -o 'session=[0-9a-f]*')
grep "$sess .*error:" "$T/m.log" | grep -qv "closed the connection" &&
	{ grep "$sess" "$T/m.log"; die "the PUT was refused for another reason (the test would prove nothing)"; }
[ "$(md5 "$c1")" = "$m1" ] || die "a PUT replaced stored chunk $h1"
ok "PUT of other bytes under stored chunk $h1: the stored chunk is unchanged"

# A frame type the protocol does not have (as a delete request would be).
printf '%s' "$id" | sed 's/../\\x&/g' | xargs -0 printf >"$T/pid"
frame 48 "$T/pid" >"$T/f3"
send "$T/f3"
grep -q "unknown frame type 48" "$T/m.log" || { tail "$T/m.log"; die "frame type 48 not refused"; }
ok "a frame of an unknown type (48) naming the point: refused as a protocol error"

[ "$(fp)" = "$before" ] || die "the attempts changed chunks, points or expiry records"
lsattr -d "$man" | cut -d' ' -f1 | grep -q i || die "the manifest lost its attribute"
ok "chunks, manifests and expiry records are unchanged, still immutable"
ferry restore --repo "$url" "$id" --to "$T/r.img" 2>/dev/null || die "remote restore"
same "$T/d1.img" "$T/r.img" "the point restores byte-identical through the mover"
restores_to "$repo" "$id" "$sum" "and from the repository directly"
ferry verify --repo "$url" >/dev/null 2>&1 || die "remote verify"
ok "verify through the mover passes"
finish_movers
