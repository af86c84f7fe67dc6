# s3.sh - sourced by the S3 tests (after functions.sh): a throwaway
# single-node Ceph cluster (one monitor, one OSD, radosgw) on loopback
# ports chosen at run time, in $T/ceph, killed by pid on exit.  Settings
# and their reasons: ../../shared/TESTING.md "A real S3 server for tests".
#
#   s3_start [memstore|bluestore]   cluster + radosgw + a user; exports
#                                   S3_ENDPOINT, AWS_ACCESS_KEY_ID, ...
#   s3_kill_rgw / s3_start_rgw      radosgw only (SIGKILL, then again)
#   s3_kill_osd / s3_start_osd      the OSD only (bluestore keeps data)
#   s3_curl METHOD PATH [curl args] a signed raw request (curl --aws-sigv4)

requires ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph curl python3

S3_DIR=$T/ceph
S3_ACCESS=FERRYTESTKEY0000001
S3_SECRET=ferrytestsecret0000000000000000000000001

# free_port: a TCP port nobody listens on right now (bound by the kernel).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

_ceph() { ceph -c "$S3_DIR/ceph.conf" --connect-timeout 20 "$@"; }

# wait_for SECONDS CMD...: until CMD succeeds.
_wait_for() {
	local n=$(($1 * 10)); shift
	while ((n-- > 0)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# _wait_gone PID: until the (killed) process has exited.
_wait_gone() {
	local n=100
	while ((n-- > 0)) && kill -0 "$1" 2>/dev/null; do sleep 0.05; done
	true
}

s3_start() {
	local store=${1:-memstore} fsid
	mkdir -p "$S3_DIR"/{mon,osd,run,log,rgw}
	fsid=$(cat /proc/sys/kernel/random/uuid)
	S3_MON_PORT=$(free_port)
	S3_RGW_PORT=$(free_port)
	cat >"$S3_DIR/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$S3_MON_PORT
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
ms client mode = crc secure
paxos propose interval = 0.05
paxos min wait = 0.01
mon data avail warn = 1
mon data avail crit = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
osd objectstore = $store
osd fast shutdown = false
osd data = $S3_DIR/osd
memstore device bytes = ${S3_MEMSTORE_BYTES:-1073741824}
bluestore block path = $S3_DIR/bluestore.img
bluestore block create = true
bluestore block size = ${S3_BLUESTORE_BYTES:-2147483648}
bluestore fsck on mount = false
osd max object size = 134217728
mon data = $S3_DIR/mon
run dir = $S3_DIR/run
admin socket = $S3_DIR/run/\$name.asok
log file = $S3_DIR/log/\$name.log
pid file = $S3_DIR/run/\$name.pid
keyring = $S3_DIR/keyring
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$S3_RGW_PORT
rgw data = $S3_DIR/rgw
rgw dns name = localhost
rgw multipart min part size = 4096
rgw enable usage log = false
rgw gc obj min wait = 5
EOF
	touch "$S3_DIR/keyring"
	monmaptool --create --clobber --fsid "$fsid" \
		--addv a "[v2:127.0.0.1:$S3_MON_PORT]" "$S3_DIR/monmap" >/dev/null ||
		die "monmaptool failed"
	ceph-mon -c "$S3_DIR/ceph.conf" --mkfs -i a --monmap "$S3_DIR/monmap" \
		>"$S3_DIR/log/mkfs-mon.out" 2>&1 || { cat "$S3_DIR/log/mkfs-mon.out"; die "ceph-mon --mkfs failed"; }
	ceph-mon -c "$S3_DIR/ceph.conf" -i a -f >"$S3_DIR/log/mon.out" 2>&1 &
	S3_MON_PID=$!
	disown $S3_MON_PID
	cleanup_fn "kill -9 $S3_MON_PID"
	_wait_for 20 _ceph mon stat || { tail -20 "$S3_DIR/log/mon.a.log"; die "ceph-mon did not come up"; }
	_ceph osd create >/dev/null || die "ceph osd create failed"
	ceph-osd -c "$S3_DIR/ceph.conf" -i 0 --mkfs >"$S3_DIR/log/mkfs-osd.out" 2>&1 ||
		{ tail -20 "$S3_DIR/log/mkfs-osd.out"; die "ceph-osd --mkfs failed"; }
	s3_start_osd
	s3_start_rgw
	radosgw-admin -c "$S3_DIR/ceph.conf" -n client.rgw user create --uid=ferry \
		--display-name=ferry --access-key="$S3_ACCESS" --secret-key="$S3_SECRET" \
		>"$S3_DIR/log/user.out" 2>&1 || { cat "$S3_DIR/log/user.out"; die "radosgw-admin user create failed"; }
	export S3_ENDPOINT="http://127.0.0.1:$S3_RGW_PORT"
	export FERRY_S3_ENDPOINT=$S3_ENDPOINT
	export AWS_ACCESS_KEY_ID=$S3_ACCESS AWS_SECRET_ACCESS_KEY=$S3_SECRET
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE
	export FERRY_S3_RETRY_TIME=${FERRY_S3_RETRY_TIME:-20} FERRY_S3_TIMEOUT=${FERRY_S3_TIMEOUT:-10}
}

s3_start_osd() {
	ceph-osd -c "$S3_DIR/ceph.conf" -i 0 -f >>"$S3_DIR/log/osd.out" 2>&1 &
	S3_OSD_PID=$!
	disown $S3_OSD_PID
	cleanup_fn "kill -9 $S3_OSD_PID"
	_wait_for 30 sh -c "ceph -c '$S3_DIR/ceph.conf' --connect-timeout 5 osd stat -f json | grep -q '\"num_up_osds\":1'" ||
		{ tail -20 "$S3_DIR/log/osd.0.log"; die "ceph-osd did not come up"; }
}

s3_kill_osd() {
	kill -9 "$S3_OSD_PID" 2>/dev/null
	_wait_gone "$S3_OSD_PID"
	# The monitor marks it down (so that a restart is seen as new).
	_ceph osd down 0 >/dev/null 2>&1 || true
}

s3_start_rgw() {
	radosgw -c "$S3_DIR/ceph.conf" -n client.rgw -f >>"$S3_DIR/log/rgw.out" 2>&1 &
	S3_RGW_PID=$!
	disown $S3_RGW_PID
	cleanup_fn "kill -9 $S3_RGW_PID"
	_wait_for 90 curl -sf -o /dev/null "http://127.0.0.1:$S3_RGW_PORT/" ||
		{ tail -20 "$S3_DIR/log/client.rgw.log"; die "radosgw did not come up"; }
}

s3_kill_rgw() {
	kill -9 "$S3_RGW_PID" 2>/dev/null
	_wait_gone "$S3_RGW_PID"
}

# s3_curl METHOD /BUCKET/KEY[?QUERY] [curl args]: a request signed with
# the test user's keys; prints the HTTP status on the last line.
s3_curl() {
	local m=$1 p=$2; shift 2
	curl -s -X "$m" --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$S3_ACCESS:$S3_SECRET" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
		-w '\n%{http_code}\n' "$@" "$S3_ENDPOINT$p"
}

# s3_head /BUCKET/KEY: the response headers of a signed HEAD.
s3_head() {
	curl -sI --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS:$S3_SECRET" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$S3_ENDPOINT$1" | tr -d '\r'
}
