#!/bin/bash
# Ten backups at once into one mover serving two repositories (names given
# as NAME=PATH), two of them over two streams each, while a restore reads:
# every session commits, every point restores byte-identical, the mover's
# memory stays within 64 MiB + 16 MiB per session.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
P=$T/pki
ferry init --repo "$T/a" >/dev/null && ferry init --repo "$T/b" --block-size 256K >/dev/null ||
	die "init"
start_mover m -- --repo one="$T/a" --repo two="$T/b" --cert "$P/mover.crt" --key "$P/mover.key" \
	--ca "$P/ca.crt"
make_disk "$T/base.img" 8 7
ferry backup --repo "ferry://127.0.0.1:$m_port/one" $(src_tls) --name base "$T/base.img" \
	>/dev/null 2>&1 || die "first backup"
n=10
pids=()
for i in $(seq $n); do make_disk "$T/d$i.img" 12 "$i"; done
for i in $(seq $n); do
	repo=one; [ $((i % 2)) -eq 0 ] && repo=two
	streams=1; [ $i -le 2 ] && streams=2
	"$FERRY" backup --repo "ferry://127.0.0.1:$m_port/$repo" $(src_tls) --streams $streams \
		--threads 1 --limit-rate 3M --name "d$i" "$T/d$i.img" >"$T/d$i.id" 2>"$T/d$i.err" &
	pids+=($!)
	cleanup_fn "kill -9 $!"
done
ferry restore --repo "ferry://127.0.0.1:$m_port/one" $(src_tls) base --to "$T/rb.img" \
	2>"$T/rb.err" || { cat "$T/rb.err"; die "concurrent restore"; }
cmp -s "$T/base.img" "$T/rb.img" || die "concurrent restore differs"
ok "a restore during the backups is byte-identical"
most=0
running() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while running; do
	now=$(( $(ls "$T/a/sessions" | wc -l) + $(ls "$T/b/sessions" | wc -l) ))
	[ "$now" -gt "$most" ] && most=$now
	sleep 0.1
done
[ "$most" -ge 8 ] || die "at most $most sessions ran at once"
ok "$most sessions ran at once"
for i in $(seq $n); do
	wait "${pids[$((i - 1))]}" || { cat "$T/d$i.err"; die "backup $i failed"; }
done
active=$(grep -c " begin point" "$T/m.log")
[ "$active" -eq $((n + 1)) ] || die "$active sessions logged"
ok "$n concurrent backups committed ($(grep -c "committed point" "$T/m.log") commits logged)"
for i in $(seq $n); do
	repo=a; [ $((i % 2)) -eq 0 ] && repo=b
	ferry restore --repo "$T/$repo" "d$i" --to "$T/r$i.img" 2>/dev/null || die "restore d$i"
	cmp -s "$T/d$i.img" "$T/r$i.img" || die "d$i differs"
	rm -f "$T/r$i.img"
done
ok "all $n points restore byte-identical"
hwm=$(awk '/VmHWM/ {print $2}' /proc/$m_pid/status)
limit=$(( (64 + 16 * n) * 1024 ))
[ "$hwm" -le "$limit" ] || die "mover peak RSS $hwm KiB > $limit KiB"
ok "mover peak RSS $((hwm / 1024)) MiB for $n sessions (bound $((limit / 1024)) MiB)"
echo "mover-peak-rss-kib $hwm sessions $n"
finish_movers
