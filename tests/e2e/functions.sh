# functions.sh - sourced by every tests/e2e/tNNNN-*.sh script: a private
# temporary directory, cleanup of processes and mounts, and helpers that
# state what they check.
set -u
set -o pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FERRY=${FERRY:-$top/bin/ferry}
T=$(mktemp -d /tmp/ferry-test.XXXXXX)
_cleanups=()

cleanup_fn() { _cleanups+=("$*"); }
_run_cleanups() {
	local i
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_cleanups[$i]}" >/dev/null 2>&1 || true
	done
	rm -rf "$T"
}
trap _run_cleanups EXIT

ferry() { "$FERRY" "$@"; }
die() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
skip() { echo "skip: $*"; exit 77; }
# requires CMD...: skip unless each command exists.
requires() { local c; for c in "$@"; do command -v "$c" >/dev/null || skip "$c not installed"; done; }
requires_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }

# expect_fail CODE CMD...: the command must exit with CODE and print one
# "ferry: " error line on stderr; the line is left in $T/err.
expect_fail() {
	local want=$1 rc; shift
	"$@" >"$T/out" 2>"$T/err"; rc=$?
	[ $rc -eq "$want" ] || { cat "$T/err" >&2; die "'$*' exited $rc, expected $want"; }
	grep -q '^ferry: ' "$T/err" || { cat "$T/err" >&2; die "'$*' printed no 'ferry:' error line"; }
}

# same FILE1 FILE2 WHAT: byte-identical, or fail.
same() { cmp -s "$1" "$2" || die "$3: $1 and $2 differ"; ok "$3"; }

# make_disk FILE MIB: a sparse disk image with random, compressible and
# zero regions (deterministic per FILE name through SEED).
make_disk() {
	local f=$1 mib=$2 seed=${3:-1}
	truncate -s "${mib}M" "$f"
	openssl enc -aes-128-ctr -pass pass:"seed$seed" -nosalt -pbkdf2 </dev/zero 2>/dev/null |
		head -c $((mib * 1024 * 1024 / 4)) | dd of="$f" conv=notrunc status=none
	# a compressible region: text from /usr/share
	find /usr/share/doc -type f -name '*.gz' 2>/dev/null | head -200 | xargs cat 2>/dev/null |
		head -c $((mib * 1024 * 1024 / 4)) |
		dd of="$f" bs=1M seek=$((mib / 2)) conv=notrunc status=none
}

# point_ids REPO: restore point ids, oldest first.
point_ids() { "$FERRY" points --repo "$1" --json | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4; }
