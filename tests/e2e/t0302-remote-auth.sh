#!/bin/bash
# Mutual TLS 1.3 is the default, and every failure is refused before any
# repository access, logged once, harming no other session: no client
# certificate, one from another CA, an expired one, a client name not
# allowed, a mover certificate for another name, plain TCP against TLS.
# Plain TCP (--insecure) works on loopback only.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
make_pki "$T/other"          # a second, unrelated CA
P=$T/pki
# an expired client certificate from the right CA (openssl can backdate)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=src1 \
	-keyout "$T/old.key" -out "$T/old.csr" 2>/dev/null || die "csr"
openssl x509 -req -in "$T/old.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -days -1 \
	-out "$T/old.crt" 2>/dev/null || die "expired cert"
ferry cert issue --ca "$P/ca.crt" --ca-key "$P/ca.key" --name src2 --cert "$T/src2.crt" \
	--key "$T/src2.key" 2>/dev/null || die "src2 cert"
ferry cert issue --ca "$P/ca.crt" --ca-key "$P/ca.key" --name elsewhere.example \
	--cert "$T/far.crt" --key "$T/far.key" 2>/dev/null || die "far cert"

ferry init --repo "$T/repo" >/dev/null || die "init"
start_mover m -- --repo "$T/repo" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt" \
	--allow src1 --handshake-timeout 3
url=ferry://127.0.0.1:$m_port/repo
make_disk "$T/disk.img" 8

refused() { # WHAT EXPECTED-IN-ERROR CMD...
	local what=$1 want=$2 before after; shift 2
	before=$(grep -c "refused before any repository access" "$T/m.log")
	expect_fail 1 "$@"
	grep -qi -- "$want" "$T/err" || die "$what: unclear error: $(cat "$T/err")"
	sleep 0.3
	after=$(grep -c "refused before any repository access" "$T/m.log")
	[ "$after" -eq $((before + 1)) ] || { cat "$T/m.log"; die "$what: mover logged $((after - before)) refusals"; }
	ok "$what: refused ($(sed 's/^ferry: //' "$T/err" | cut -c1-110))"
}
refused "client certificate from another CA" "refused" \
	ferry backup --repo "$url" --cert "$T/other/src1.crt" --key "$T/other/src1.key" \
	--ca "$P/ca.crt" "$T/disk.img"
refused "expired client certificate" "refused" \
	ferry backup --repo "$url" --cert "$T/old.crt" --key "$T/old.key" --ca "$P/ca.crt" "$T/disk.img"
refused "client name not in --allow" "not allowed" \
	ferry backup --repo "$url" --cert "$T/src2.crt" --key "$T/src2.key" --ca "$P/ca.crt" "$T/disk.img"
refused "plain TCP against the TLS mover" "closed\|refused\|reset" \
	ferry points --repo "$url" --insecure
grep -q "certificate has expired" "$T/m.log" || die "the expired certificate is not named in the log"
grep -q "unknown ca\|unable to get local issuer\|certificate verify failed" "$T/m.log" ||
	die "the foreign CA is not named in the log"
ok "the mover's log names each reason"

# A client without any certificate (openssl s_client offers none).
before=$(grep -c "refused before" "$T/m.log")
echo | timeout 5 openssl s_client -connect 127.0.0.1:$m_port -CAfile "$P/ca.crt" -tls1_3 \
	>"$T/sc.out" 2>&1
sleep 0.3
grep -q "peer did not return a certificate\|certificate required" "$T/m.log" ||
	{ cat "$T/m.log"; die "no refusal logged for a client without a certificate"; }
[ "$(grep -c "refused before" "$T/m.log")" -eq $((before + 1)) ] || die "not logged exactly once"
ok "a client without a certificate is refused"
# A TLS 1.2 client is refused too.
echo | timeout 5 openssl s_client -connect 127.0.0.1:$m_port -tls1_2 -cert "$P/src1.crt" \
	-key "$P/src1.key" -CAfile "$P/ca.crt" >"$T/sc2.out" 2>&1
grep -q "Cipher is (NONE)\|alert\|error" "$T/sc2.out" || die "TLS 1.2 was accepted"
ok "TLS 1.2 is refused"

# The source checks the mover's name against the URL's host.
start_mover far -- --repo "$T/repo" --cert "$T/far.crt" --key "$T/far.key" --ca "$P/ca.crt"
expect_fail 1 ferry points --repo "ferry://127.0.0.1:$far_port/repo" $(src_tls)
grep -qi "mismatch\|refused" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "a mover certificate for another name is refused by the source ($(cut -c1-100 "$T/err"))"
grep -q "repo=repo hello\|session=" "$T/far.log" && die "the far mover served a request"

if grep -q "hello" "$T/m.log"; then cat "$T/m.log"; die "a refused client reached the HELLO"; fi
[ -z "$(ls "$T/repo/points")" ] || die "a refused client created a restore point"
ok "no refused client got as far as HELLO; the repository is untouched"
ferry backup --repo "$url" $(src_tls) "$T/disk.img" >/dev/null 2>&1 || die "a good client is refused"
ok "the right client still backs up"

# Plain TCP only on loopback, both ways.
expect_fail 2 ferry mover --listen 0.0.0.0:0 --repo "$T/repo" --insecure
grep -q "loopback" "$T/err" || die "unclear error: $(cat "$T/err")"
ok "a mover refuses --insecure on a non-loopback address"
start_mover plain -- --repo "$T/repo" --insecure
ferry points --repo "ferry://127.0.0.1:$plain_port/repo" --insecure >/dev/null ||
	die "--insecure on loopback"
ok "--insecure works on loopback"
ext=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9.]+$' | grep -v '^127\.' | head -1)
if [ -n "$ext" ]; then
	MOVER_HOST=$ext start_mover ext -- --repo "$T/repo" --cert "$P/mover.crt" --key "$P/mover.key" --ca "$P/ca.crt"
	expect_fail 2 ferry points --repo "ferry://$ext:$ext_port/repo" --insecure
	grep -q "loopback" "$T/err" || die "unclear error: $(cat "$T/err")"
	ok "a source refuses --insecure towards $ext (not loopback)"
fi
finish_movers
