#!/bin/bash
# ferry key passwd: the old passphrase stops working, the new one works,
# and only the config changed (no chunk or manifest was rewritten); a
# wrong old passphrase changes nothing; the prompt path (no echo, asked
# twice) works on a terminal (tmux), and two different entries refuse.
. "$(dirname "$0")/functions.sh"

export FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024
repo=$T/repo
FERRY_PASSWORD=old-pass ferry init --repo "$repo" --encrypt --block-size 64K >/dev/null || die "init"
make_disk "$T/d.img" 4
id=$(FERRY_PASSWORD=old-pass ferry backup --repo "$repo" --quiet "$T/d.img") || die "backup"
data_fp() { (cd "$repo" && find chunks points -type f -print0 | sort -z | xargs -0 md5sum) | md5sum; }
before=$(data_fp)
cfg_before=$(md5 "$repo/config")

printf 'new-pass\n' >"$T/new"
FERRY_PASSWORD=not-it expect_fail 5 ferry key passwd --repo "$repo" --new-password-file "$T/new"
[ "$(md5 "$repo/config")" = "$cfg_before" ] || die "a wrong old passphrase changed the config"
ok "wrong old passphrase: exit 5, config unchanged"

FERRY_PASSWORD=old-pass ferry key passwd --repo "$repo" --new-password-file "$T/new" >/dev/null ||
	die "key passwd"
[ "$(md5 "$repo/config")" != "$cfg_before" ] || die "the config did not change"
[ "$(data_fp)" = "$before" ] || die "chunks or manifests changed"
ok "key passwd rewrote only the config; chunks and manifests untouched"
FERRY_PASSWORD=old-pass expect_fail 5 ferry points --repo "$repo"
one_error_line "wrong passphrase"
ok "the old passphrase no longer opens the repository"
FERRY_PASSWORD=new-pass restores_to "$repo" "$id" "$(md5 "$T/d.img")" "the new passphrase restores the point"
FERRY_PASSWORD=new-pass ferry verify --repo "$repo" >/dev/null 2>&1 || die "verify with the new passphrase"
ls "$repo" | grep -q 'config.tmp' && die "a temporary config was left"
ok "verify passes with the new passphrase; no temporary left"

# The prompt: on a terminal, without echo, asked twice on init.
if command -v tmux >/dev/null; then
	sock=$T/tmux.sock
	tmux -S "$sock" new-session -d -x 120 -y 20 "env -u FERRY_PASSWORD FERRY_KDF_LOG_N=12 FERRY_KDF_OPSLIMIT=1 FERRY_KDF_MEMLIMIT_KIB=1024 $FERRY init --repo $T/prompted --encrypt; echo EXIT=\$?; sleep 30" ||
		die "tmux did not start"
	cleanup_fn tmux -S "$sock" kill-server
	for ((i = 0; i < 200; i++)); do tmux -S "$sock" capture-pane -p 2>/dev/null | grep -q 'passphrase:' && break; sleep 0.1; done
	tmux -S "$sock" send-keys 'typed-secret' Enter
	for ((i = 0; i < 200; i++)); do tmux -S "$sock" capture-pane -p 2>/dev/null | grep -q 'again' && break; sleep 0.1; done
	tmux -S "$sock" send-keys 'typed-secret' Enter
	for ((i = 0; i < 200; i++)); do tmux -S "$sock" capture-pane -p 2>/dev/null | grep -q 'EXIT=' && break; sleep 0.1; done
	tmux -S "$sock" capture-pane -p >"$T/pane"
	grep -q 'EXIT=0' "$T/pane" || { cat "$T/pane"; die "init on the prompt failed"; }
	grep -q 'typed-secret' "$T/pane" && { cat "$T/pane"; die "the passphrase was echoed"; }
	FERRY_PASSWORD=typed-secret ferry points --repo "$T/prompted" >/dev/null || die "prompted passphrase does not open"
	ok "init --encrypt on a terminal: asked twice, not echoed, and it opens the repository"
	tmux -S "$sock" kill-server
	sock=$T/tmux2.sock
	tmux -S "$sock" new-session -d -x 120 -y 20 "env -u FERRY_PASSWORD $FERRY init --repo $T/prompted2 --encrypt; echo EXIT=\$?; sleep 30" ||
		die "tmux did not start"
	cleanup_fn tmux -S "$sock" kill-server
	for ((i = 0; i < 200; i++)); do tmux -S "$sock" capture-pane -p 2>/dev/null | grep -q 'passphrase:' && break; sleep 0.1; done
	tmux -S "$sock" send-keys 'one' Enter
	for ((i = 0; i < 200; i++)); do tmux -S "$sock" capture-pane -p 2>/dev/null | grep -q 'again' && break; sleep 0.1; done
	tmux -S "$sock" send-keys 'two' Enter
	for ((i = 0; i < 200; i++)); do tmux -S "$sock" capture-pane -p 2>/dev/null | grep -q 'EXIT=' && break; sleep 0.1; done
	tmux -S "$sock" capture-pane -p | grep -q 'EXIT=2' || die "two different entries did not refuse"
	[ ! -e "$T/prompted2/config" ] || die "a repository was made from two different entries"
	ok "two different entries: refused (exit 2), nothing created"
	tmux -S "$sock" kill-server
	sock=$T/tmux3.sock
	tmux -S "$sock" new-session -d -x 120 -y 20 "env -u FERRY_PASSWORD $FERRY init --repo $T/prompted3 --encrypt; echo EXIT=\$?; stty -a | grep -o ' echo '; echo STTY-DONE; sleep 30" ||
		die "tmux did not start"
	cleanup_fn tmux -S "$sock" kill-server
	for ((i = 0; i < 200; i++)); do tmux -S "$sock" capture-pane -p 2>/dev/null | grep -q 'passphrase:' && break; sleep 0.1; done
	tmux -S "$sock" send-keys 'half'
	tmux -S "$sock" send-keys C-c
	# Wait for the marker after stty, not for EXIT=: stty's line comes later.
	for ((i = 0; i < 200; i++)); do tmux -S "$sock" capture-pane -p 2>/dev/null | grep -q 'STTY-DONE' && break; sleep 0.1; done
	tmux -S "$sock" capture-pane -p >"$T/pane3"
	grep -q 'EXIT=130' "$T/pane3" || { cat "$T/pane3"; die "Ctrl-C at the prompt did not exit 130"; }
	grep -q '^ echo' "$T/pane3" || { cat "$T/pane3"; die "echo was not restored after Ctrl-C"; }
	[ ! -e "$T/prompted3/config" ] || die "a repository was made after Ctrl-C"
	ok "Ctrl-C at the prompt: exit 130, terminal echo restored, nothing created"
else
	ok "(tmux not installed: prompt not exercised)"
fi
