#!/bin/bash
# ferry copy with re-encoding through a mover (ferry:// on loopback, TLS,
# the mover without any passphrase): a plain local repository copied into
# an encrypted repository behind the mover (the copying side re-seals
# every chunk and builds the sealed manifest), both points restore
# byte-identical, the mover's files hold no marker of the source, a
# second copy sends nothing; then the encrypted repository read back
# through the mover into a local plain one restores too.
. "$(dirname "$0")/functions.sh"
export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024 # small key-derivation cost
json_num() { echo "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
. "$(dirname "$0")/remote.sh"
. "$(dirname "$0")/copy.sh"

export FERRY_KDF_LOG_N=12
unset FERRY_PASSWORD FERRY_FROM_PASSWORD
make_pki "$T/pki"
echo mover-side-pass >"$T/pw"
ferry init --repo "$T/off" --encrypt --password-file "$T/pw" >/dev/null || die "init off"
start_mover m -- --repo "$T/off" --cert "$T/pki/mover.crt" --key "$T/pki/mover.key" --ca "$T/pki/ca.crt"
url=ferry://127.0.0.1:$m_port/off
marker=MOVER-COPY-MARKER-77ab
ferry init --repo "$T/a" --compression none >/dev/null || die "init a"
make_disk "$T/disk.img" 16
yes "$marker" | head -c $((1 << 20)) | dd of="$T/disk.img" bs=1M seek=3 conv=notrunc status=none
cp "$T/disk.img" "$T/v1.img"
id1=$(ferry backup --repo "$T/a" -q "$T/disk.img") || die "backup 1"
head -c $((2 << 20)) /dev/urandom | dd of="$T/disk.img" bs=1M seek=9 conv=notrunc status=none
id2=$(ferry backup --repo "$T/a" -q "$T/disk.img") || die "backup 2"
grep -rlq "$marker" "$T/a/chunks" || die "control: no marker in the plain source"
copy_check "$T/a" "$url" $(src_tls) --password-file "$T/pw"
grep -rlq "$marker" "$T/off" && die "the encrypted repository behind the mover holds the marker"
ok "no file behind the mover holds the marker"

ferry init --repo "$T/back" >/dev/null || die "init back"
json=$(ferry copy --from "$url" --from-password-file "$T/pw" --to "$T/back" $(src_tls) --json) || die "copy back"
[ "$(json_num "$json" points_copied)" -eq 2 ] || die "copy back: $json"
ferry restore --repo "$T/back" "$id2" --to "$T/b2.img" 2>/dev/null || die "restore back"
same "$T/disk.img" "$T/b2.img" "read back through the mover into a plain repository, the point restores byte-identical"
