# functions.sh - sourced by every tests/e2e/tNNNN-*.sh script: a private
# temporary directory, cleanup of processes and mounts, and helpers that
# state what they check.
set -u
set -o pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FERRY=${FERRY:-$top/bin/ferry}
T=$(mktemp -d /tmp/ferry-test.XXXXXX)
# caches (ferry info on s3://) stay inside the test
export FERRY_CACHE_DIR=$T/cache
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

# ---- helpers of the adversarial tests (crash, bit rot, errors, races) ----

# FERRY_TEST_TIER=asan runs a slower, instrumented binary: tests scale down.
asan_tier() { [ "${FERRY_TEST_TIER:-}" = asan ]; }

# smb_binary: a test that reaches SMB runs, in the ASan tier, the build
# with libsmbclient loaded at start (ferry-smb next to FERRY; Makefile).
smb_binary() {
	if asan_tier && [ -x "$FERRY-smb" ]; then FERRY=$FERRY-smb; fi
}

# md5 FILE: the MD5 of FILE, hex only.
md5() { md5sum "$1" | cut -d' ' -f1; }

# rand_fill FILE OFF_MIB LEN_MIB TAG: overwrite LEN_MIB MiB of FILE at
# OFF_MIB MiB with pseudo-random bytes determined by TAG alone.
rand_fill() {
	openssl enc -aes-128-ctr -pass pass:"$4" -nosalt -pbkdf2 </dev/zero 2>/dev/null |
		head -c $(($3 * 1024 * 1024)) |
		dd of="$1" bs=1M seek="$2" conv=notrunc status=none
}

# sleep_ms MS
sleep_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }

# rnd N: a seeded pseudo-random number in [0, N) (seed with RANDOM=SEED).
rnd() { echo $(((RANDOM * 32768 + RANDOM) % $1)); }

# one_error_line [REGEX]: after expect_fail, stderr ($T/err) is exactly one
# line, a "ferry: " line, matching REGEX (extended, case-insensitive).
one_error_line() {
	local n
	n=$(wc -l <"$T/err")
	[ "$n" -eq 1 ] || { cat "$T/err" >&2; die "expected exactly one line on stderr, got $n"; }
	[ -z "${1:-}" ] || grep -qiE "$1" "$T/err" ||
		{ cat "$T/err" >&2; die "the error line does not say '$1'"; }
}

# reports_then_one_error: after expect_fail, every stderr line is a "ferry: "
# line, and all but exactly one are reports of bad blocks, chunks or points.
reports_then_one_error() {
	local other
	if grep -qv '^ferry: ' "$T/err"; then
		cat "$T/err" >&2
		die "stderr has lines that are not 'ferry: ' lines"
	fi
	other=$(grep -cvE '^ferry: (bad block [0-9]+ \(offset [0-9]+\) of restore point [0-9a-f]{16}: |bad chunk [0-9a-f]{64}: |restore point [0-9a-f]{16}: )' "$T/err")
	[ "$other" -eq 1 ] || { cat "$T/err" >&2; die "expected one summary error line besides the reports, got $other"; }
}

# names_bad_block ID BLOCK BLOCK_SIZE: $T/err names that block of that point.
names_bad_block() {
	grep -qF "ferry: bad block $2 (offset $(($2 * $3))) of restore point $1: " "$T/err" ||
		{ cat "$T/err" >&2; die "block $2 (offset $(($2 * $3))) of point $1 is not named"; }
}

# flip_bit FILE BYTE BIT: invert one bit of FILE in place.
flip_bit() {
	perl -e 'open(my $f, "+<", $ARGV[0]) or die "$ARGV[0]: $!"; binmode $f;
		seek($f, $ARGV[1], 0); read($f, my $c, 1) == 1 or die "short file";
		seek($f, $ARGV[1], 0); print $f chr(ord($c) ^ (1 << $ARGV[2]));
		close $f or die' "$1" "$2" "$3"
}

# block_hash FILE INDEX BLOCK_SIZE: SHA-256 of one block (its chunk id).
block_hash() {
	dd if="$1" bs="$3" skip="$2" count=1 status=none | sha256sum | cut -c1-64
}

# chunk_file REPO HASH: where that chunk is stored.
chunk_file() { echo "$1/chunks/${2:0:2}/$2"; }

# repo_fingerprint REPO: MD5 over every file's name and content (small
# repositories only): equal before and after means nothing was changed.
# verify/ (the advisory records of the last verify) is left out.
repo_fingerprint() {
	(cd "$1" && find . -path ./verify -prune -o -type f -print0 | sort -z | xargs -0 md5sum) | md5sum | cut -c1-32
}

# ram_scratch: set SCRATCH to a private directory in RAM (/dev/shm) for
# large images that are only checksummed; restores_to writes there.
ram_scratch() {
	SCRATCH=$T
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		SCRATCH=$(mktemp -d /dev/shm/ferry-test.XXXXXX) || SCRATCH=$T
		[ "$SCRATCH" = "$T" ] || cleanup_fn rm -rf "$SCRATCH"
	fi
}

# restores_to REPO POINT MD5 WHAT: POINT restores to bytes with that MD5.
restores_to() {
	local out=${SCRATCH:-$T}/restore-check.img
	"$FERRY" restore --repo "$1" "$2" --to "$out" 2>"$T/restore-check.err" ||
		{ cat "$T/restore-check.err" >&2; die "$4: restore of $2 failed"; }
	[ "$(md5 "$out")" = "$3" ] || die "$4: restore of $2 is not byte-identical"
	rm -f "$out"
	ok "$4"
}

# under_strace ARGS...: run strace ARGS with LeakSanitizer off (it cannot
# work under ptrace; an ASan build would abort at exit).
under_strace() {
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace "$@"
}

# delta_scatter FILE N BS: N random 64 KiB writes into N different blocks
# of BS bytes (at a random 64 KiB-aligned place in each); the changed
# bytes are N * 65536.  Sub-block delta tests (t0530-t0539).
delta_scatter() {
	local f=$1 n=$2 bs=$3 nb b used=" "
	nb=$(($(stat -c %s "$f") / bs))
	for _ in $(seq "$n"); do
		b=$(rnd "$nb")
		while [[ $used == *" $b "* ]]; do b=$(rnd "$nb"); done
		used="$used$b "
		head -c 65536 /dev/urandom | dd of="$f" bs=65536 conv=notrunc status=none \
			seek=$((b * (bs / 65536) + $(rnd $((bs / 65536)))))
	done
}
# chunk_bytes REPO: bytes of every stored chunk.
chunk_bytes() { find "$1/chunks" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
# jnum JSON KEY: a number field of a --json line.
jnum() { echo "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
# entry_of REPO POINT INDEX: "KIND HASH" of a manifest entry (plain repo).
entry_of() {
	local f=$1/points/$2 h
	h=$(od -An -tu4 -j8 -N4 "$f" | tr -d ' ')
	od -An -tx1 -v -j $((h + 33 * $3)) -N 33 "$f" | tr -d ' \n' |
		sed -E 's/^(..)(.*)$/\1 \2/' | sed -E 's/^0//'
}

# serve_start ARGS...: start `ferry serve ARGS...` in the background (pid in
# spid, output in serve.out/serve.err) and wait for its "serving" line.
# (serve.out is removed first: the background shell truncates it only once
# it runs, and the last run's line would be seen too early.)
serve_start() {
	rm -f "$T/serve.out"
	"$FERRY" serve "$@" >"$T/serve.out" 2>"$T/serve.err" &
	spid=$!
	cleanup_fn "kill $spid"
	for _ in $(seq 200); do
		grep -q '^serving ' "$T/serve.out" 2>/dev/null && return 0
		kill -0 $spid 2>/dev/null || { cat "$T/serve.err"; die "ferry serve exited"; }
		sleep 0.05
	done
	die "ferry serve did not start"
}
# serve_stop: SIGTERM; ferry serve must exit 0.
serve_stop() { kill "$spid"; wait "$spid" || die "ferry serve exited $? on SIGTERM"; }
