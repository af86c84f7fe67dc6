# smb.sh - sourced (after functions.sh) by the SMB backend tests (t051N):
# Samba's smbd on a free loopback port with its state in $T/smb, one
# share "backup" ($T/smb/share), and a user with a random password in a
# private passdb ($T/smb/private/passdb.tdb) made with smbpasswd.  The
# Samba account is named after the Unix user running the test (smbpasswd
# needs one), its password exists only in this passdb; guest access is
# off ("map to guest = never"), so a wrong password is refused.
requires smbd smbpasswd
# Under ASan: Samba's own process-wide allocations are not ferry's leaks.
export LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$top/tests/e2e/lsan-samba.supp
smb_binary
[ "$(id -u)" = 0 ] || skip "smbd needs root here (it switches to the logged-in user)"

# free_port: a TCP port free on 127.0.0.1 now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# smb_conf DIR PORT: write DIR/smb.conf.
smb_conf() {
	local d=$1 port=$2
	cat >"$d/smb.conf" <<EOF
[global]
  smb ports = $port
  interfaces = 127.0.0.1
  bind interfaces only = yes
  state directory = $d/state
  cache directory = $d/cache
  lock directory = $d/lock
  pid directory = $d/pid
  private dir = $d/private
  ncalrpc dir = $d/ncalrpc
  log file = $d/log/log.%m
  passdb backend = tdbsam:$d/private/passdb.tdb
  server role = standalone server
  disable netbios = yes
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  map to guest = never
  server min protocol = SMB2_02
[backup]
  path = $d/share
  read only = no
[backupsync]
  path = $d/share
  read only = no
  sync always = yes
EOF
}

# start_smbd [PORT]: run smbd (PORT: reuse, e.g. after a kill); sets
# smbd_pid, smb_port, SMB_USER, SMB_PASS, and writes the credentials
# file $T/smb/creds (exported as FERRY_SMB_CREDENTIALS).
start_smbd() {
	local d=$T/smb port=${1:-} i sub
	mkdir -p "$d"
	for sub in state cache lock pid private ncalrpc log share; do mkdir -p "$d/$sub"; done
	if [ -z "$port" ]; then
		port=$(free_port)
		smb_conf "$d" "$port"
		SMB_USER=$(id -un)
		SMB_PASS=pw$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
		printf '%s\n%s\n' "$SMB_PASS" "$SMB_PASS" |
			smbpasswd -c "$d/smb.conf" -a -s "$SMB_USER" >/dev/null 2>&1 ||
			die "smbpasswd could not add $SMB_USER to the private passdb"
		printf 'username=%s\npassword=%s\n' "$SMB_USER" "$SMB_PASS" >"$d/creds"
		chmod 600 "$d/creds"
		export FERRY_SMB_CREDENTIALS=$d/creds
	fi
	smbd -F --no-process-group -s "$d/smb.conf" >>"$d/log/smbd.out" 2>&1 &
	smbd_pid=$!
	cleanup_fn "kill_tree $smbd_pid"
	for i in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
		kill -0 "$smbd_pid" 2>/dev/null || { cat "$d/log/smbd.out" >&2; die "smbd did not start"; }
		sleep 0.1
	done
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "smbd does not listen on $port"
	smb_port=$port
}

# kill_tree PID: kill PID and its children (smbd forks one per
# connection, plus helpers) with -9, and wait until they are gone.
kill_tree() {
	local kids k i
	kids=$(pgrep -P "$1" 2>/dev/null || true)
	kill -9 "$1" $kids 2>/dev/null
	wait "$1" 2>/dev/null
	for k in $kids; do
		for i in $(seq 100); do kill -0 "$k" 2>/dev/null || break; sleep 0.05; done
	done
}

# stop_smbd: the server dies at once (kill -9 of smbd and its children).
stop_smbd() { kill_tree "$smbd_pid"; }

# smb_url PATH: the repository URL of PATH in the share ("backupsync"
# is the same folder with every write synced on the server).
smb_url() { echo "smb://127.0.0.1:$smb_port/backup/$1"; }
