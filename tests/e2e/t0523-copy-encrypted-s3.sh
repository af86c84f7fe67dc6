#!/bin/bash
# ferry copy with re-encoding to and from s3:// (a real Ceph RGW): a
# plain local repository copied into an encrypted bucket repository
# (chunks re-sealed and re-named with the bucket's keys), both points
# restore byte-identical from the bucket, no object holds a marker in
# plaintext, a second copy uploads nothing; then the bucket copied into a
# second local encrypted repository with its own passphrase restores too.
. "$(dirname "$0")/functions.sh"
export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024 # small key-derivation cost
json_num() { echo "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
. "$(dirname "$0")/copy.sh"
. "$(dirname "$0")/s3.sh"

export FERRY_KDF_LOG_N=12
unset FERRY_PASSWORD FERRY_FROM_PASSWORD
echo s3-pass >"$T/ps"
echo local-pass >"$T/pl"
s3_start
copy_source "$T/a"
url=s3://ferry-t0523/enc
ferry init --repo "$url" --encrypt --password-file "$T/ps" >/dev/null || die "init encrypted s3"
copy_check "$T/a" "$url" --password-file "$T/ps"
objects() { s3_curl GET "/ferry-t0523?list-type=2&prefix=enc%2F" | grep -o '<Key>' | wc -l; }
n=$(objects)
ferry copy --from "$T/a" --to "$url" --password-file "$T/ps" -q || die "third copy"
[ "$(objects)" -eq "$n" ] || die "a copy with nothing new added objects"
ok "a copy with nothing new adds no object to the bucket ($n objects)"

# No object of the bucket holds plaintext of the source: the compressible
# region of the disk (text) is in the plain source's chunks, and must
# not be in any object.
marker=$(dd if="$T/disk.img" bs=1M skip=24 count=1 status=none | tr -dc 'a-zA-Z ' | grep -o '[a-zA-Z ]\{24\}' | head -1)
[ -n "$marker" ] || die "no text marker found in the disk"
s3_curl GET "/ferry-t0523?list-type=2&prefix=enc%2F" | grep -o '<Key>[^<]*</Key>' | sed 's,<Key>\(.*\)</Key>,\1,' >"$T/keys"
hits=0
while read -r k; do
	s3_curl GET "/ferry-t0523/$k" -o "$T/obj" && grep -qF "$marker" "$T/obj" && hits=$((hits + 1))
done <"$T/keys"
[ "$hits" -eq 0 ] || die "$hits objects hold '$marker' in plaintext"
ok "none of the $(wc -l <"$T/keys") objects holds '$marker' in plaintext"

ferry init --repo "$T/back" --encrypt --password-file "$T/pl" >/dev/null || die "init back"
json=$(ferry copy --from "$url" --from-password-file "$T/ps" --to "$T/back" --password-file "$T/pl" --json) || die "copy back"
[ "$(json_num "$json" points_copied)" -eq 2 ] || die "copy back: $json"
ferry restore --repo "$T/back" --password-file "$T/pl" "$id2" --to "$T/b2.img" 2>/dev/null || die "restore back"
same "$T/disk.img" "$T/b2.img" "copied from the encrypted bucket into another key, the point restores byte-identical"
