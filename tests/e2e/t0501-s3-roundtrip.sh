#!/bin/bash
# An s3:// repository on a real Ceph RGW: init creates the bucket; backup,
# restore byte-identical, points, verify and info; an incremental backup
# uploads only the changed blocks; virtual-hosted addressing and keys
# from a credentials file work as well as path-style and the environment.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

s3_start
repo=s3://ferry-t0501/backups/vm
make_disk "$T/disk.img" 8
cp "$T/disk.img" "$T/v1.img"

ferry init --repo "$repo" --block-size 256K >"$T/init.out" || die "init"
grep -q "created repository $repo" "$T/init.out" || die "init said: $(cat "$T/init.out")"
s3_curl GET "/ferry-t0501/backups/vm/config" | grep -q "format = ferry-repository" ||
	die "no config object in the bucket"
ok "init created the bucket and the config object"
expect_fail 1 ferry init --repo "$repo"
grep -q "already a ferry repository" "$T/err" || die "second init: $(cat "$T/err")"
ok "a second init is refused"

json=$(ferry backup --repo "$repo" --json "$T/disk.img") || die "backup"
id1=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
[ -n "$id1" ] || die "no id in $json"
ok "backup to $repo: point $id1"
ferry restore --repo "$repo" "$id1" --to "$T/r1.img" 2>/dev/null || die "restore"
same "$T/v1.img" "$T/r1.img" "restore from S3 is byte-identical"

# 1 % change: two 64 KiB writes
for off in 3 77; do
	head -c 65536 /dev/urandom | dd of="$T/disk.img" bs=64K seek=$off conv=notrunc status=none
done
json=$(ferry backup --repo "$repo" --json "$T/disk.img") || die "second backup"
new=$(echo "$json" | grep -o '"bytes_new":[0-9]*' | cut -d: -f2)
reused=$(echo "$json" | grep -o '"bytes_reused":[0-9]*' | cut -d: -f2)
[ "$new" -le $((2 * 262144)) ] && [ "$reused" -gt 0 ] || die "incremental: new $new reused $reused"
ok "incremental backup uploaded $new bytes of new blocks, reused $reused"
id2=$(point_ids "$repo" | tail -1)
ferry restore --repo "$repo" "$id2" --to "$T/r2.img" 2>/dev/null || die "restore 2"
same "$T/disk.img" "$T/r2.img" "second point restores byte-identical"

ferry verify --repo "$repo" >"$T/verify.out" 2>&1 || { cat "$T/verify.out"; die "verify"; }
grep -q "no damage" "$T/verify.out" || die "verify: $(cat "$T/verify.out")"
ok "verify reads every chunk back: no damage"
ferry points --repo "$repo" | grep -q "ok " || die "points does not show the verify"
ok "points lists both points with the verify record"
ferry info --repo "$repo" --json >"$T/info.json" || die "info"
grep -q '"point_count":2' "$T/info.json" || grep -q '"points":2' "$T/info.json" ||
	die "info: $(cat "$T/info.json")"
ok "info counts 2 points"

# virtual-hosted addressing (bucket in the host name: *.localhost is loopback)
FERRY_S3_ADDRESSING=virtual ferry restore --repo "$repo" \
	--s3-endpoint "http://localhost:$S3_RGW_PORT" "$id1" --to "$T/r3.img" 2>"$T/virt.err" ||
	{ cat "$T/virt.err"; die "virtual-hosted restore"; }
same "$T/v1.img" "$T/r3.img" "virtual-hosted addressing (--s3-endpoint http://localhost:PORT)"

# keys from a credentials file and a profile, not the environment
printf '[default]\naws_access_key_id = nobody\naws_secret_access_key = x\n[t0501]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
	"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$T/credentials"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE="$T/credentials" \
	AWS_PROFILE=t0501 "$FERRY" points --repo "$repo" >/dev/null 2>"$T/cred.err" ||
	{ cat "$T/cred.err"; die "credentials file"; }
ok "keys from AWS_SHARED_CREDENTIALS_FILE, profile AWS_PROFILE"
