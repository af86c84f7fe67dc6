#!/bin/bash
# ferry copy from a local repository to one on an SMB share (smbd on
# loopback): both points restore byte-identical from the share, a second
# copy sends nothing, a copy killed with -9 reruns to completion and
# verifies, and an incremental copy after a 1 % change sends at most
# 1.5 x the changed bytes after compression.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/smb.sh"
. "$(dirname "$0")/copy.sh"
json_num() { echo "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
requires zstd bc

start_smbd
url=$(smb_url copy)
copy_source "$T/a"
ferry init --repo "$url" >/dev/null || die "init on the share"
copy_check "$T/a" "$url"
chunks_s() { find "$T/smb/share/copy/chunks" -type f -name '[0-9a-f]*' | wc -l; }
copy_kill_rerun "$T/a" "$url" chunks_s
ferry verify --repo "$url" 2>"$T/v.err" || { cat "$T/v.err"; die "verify on the share"; }
ok "the share verifies after the kill and the rerun"
copy_incremental "$T/a" "$url"
