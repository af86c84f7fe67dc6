#!/bin/bash
# libcurl, libnbd, libpq and libmicrohttpd are loaded when first used, not
# at start (src/lib/common/dl.h): the binary does not list them, and on a
# machine without libnbd and libcurl (hidden here in a mount namespace)
# file backups and restores still work, while an nbd:// source or an s3://
# repository fails with one error line naming the package to install and
# leaves the repository as it was.
. "$(dirname "$0")/functions.sh"
requires_root
requires unshare mount ldd

libs=$(ldd "$FERRY") || die "ldd $FERRY"
for l in libcurl libnbd libpq libmicrohttpd; do
	echo "$libs" | grep -q "$l\\.so" && die "$FERRY links $l at start"
done
ok "the binary does not load libcurl, libnbd, libpq or libmicrohttpd at start"

nbd_so=$(readlink -f "$(ldconfig -p | awk '/libnbd\.so\.0 / { print $NF; exit }')")
curl_so=$(readlink -f "$(ldconfig -p | awk '/libcurl\.so\.4 / { print $NF; exit }')")
[ -f "$nbd_so" ] && [ -f "$curl_so" ] || skip "libnbd or libcurl not found by ldconfig"
unshare -m true 2>/dev/null || skip "no mount namespaces here"

truncate -s 8M "$T/a.img"
rand_fill "$T/a.img" 0 6 "a"
ferry init --repo "$T/repo" >/dev/null || die "init"
# without LIB...: CMD in a mount namespace where LIB files read as empty
without() {
	local hide=$1; shift
	unshare -m sh -c 'for f in $1; do mount --bind /dev/null "$f" || exit 99; done; shift; exec "$@"' \
		sh "$hide" "$@"
}
id=$(without "$nbd_so $curl_so" "$FERRY" backup --repo "$T/repo" --quiet "$T/a.img") ||
	die "a file backup failed without libnbd and libcurl"
without "$nbd_so $curl_so" "$FERRY" restore --repo "$T/repo" "$id" --to "$T/b.img" 2>/dev/null ||
	die "restore failed without libnbd and libcurl"
same "$T/a.img" "$T/b.img" "without libnbd and libcurl, a file backup restores byte-identical"

before=$(repo_fingerprint "$T/repo")
expect_fail 1 without "$nbd_so" "$FERRY" backup --repo "$T/repo" --quiet nbd://127.0.0.1:1/x
grep -q "install libnbd0" "$T/err" || { cat "$T/err"; die "the NBD error does not name libnbd0"; }
[ "$(grep -c '^ferry: backup failed' "$T/err")" = 1 ] || { cat "$T/err"; die "not one error line"; }
[ "$(repo_fingerprint "$T/repo")" = "$before" ] || die "the failed NBD backup changed the repository"
ok "an nbd:// source without libnbd: $(grep '^ferry: backup failed' "$T/err")"

expect_fail 1 without "$curl_so" env AWS_ACCESS_KEY_ID=a AWS_SECRET_ACCESS_KEY=b \
	"$FERRY" init --repo s3://bucket --s3-endpoint http://127.0.0.1:1
grep -q "install libcurl4" "$T/err" || { cat "$T/err"; die "the S3 error does not name libcurl4"; }
grep -q "cannot start libcurl" "$T/err" || { cat "$T/err"; die "the S3 error is unclear"; }
ok "an s3:// repository without libcurl: $(tail -1 "$T/err")"
