#!/bin/bash
# The source's send path without copies (chunks written to the socket
# from the log's buffers; only frames under 64 KiB are copied): backups
# through a mover into repositories with 4 MiB blocks (every chunk by
# reference) and with 64 KiB blocks (compressed chunks copied, random ones
# by reference), over one and over two streams, restore byte-identical;
# the mover picks AES-128-GCM even for a client that lists AES-256 first,
# and logs the suite.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/remote.sh"

make_pki "$T/pki"
ferry init --repo "$T/big" --block-size 4M >/dev/null || die "init big"
ferry init --repo "$T/small" --block-size 64K >/dev/null || die "init small"
start_mover m -- --repo "$T/big" --repo "$T/small" --cert "$T/pki/mover.crt" \
	--key "$T/pki/mover.key" --ca "$T/pki/ca.crt"
make_disk "$T/disk.img" 24 7

for repo in big small; do
	for streams in 1 2; do
		json=$(ferry backup --repo "ferry://127.0.0.1:$m_port/$repo" $(src_tls) \
			--streams $streams --name "s$streams" --json "$T/disk.img") ||
			die "$repo: backup over $streams stream(s)"
		id=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
		[ -n "$id" ] || die "$repo: no point id in $json"
		ferry restore --repo "ferry://127.0.0.1:$m_port/$repo" $(src_tls) "$id" \
			--to "$T/r.img" 2>"$T/r.err" || { cat "$T/r.err"; die "$repo: restore"; }
		same "$T/disk.img" "$T/r.img" "$repo blocks, $streams stream(s): restores byte-identical"
		rm -f "$T/r.img"
	done
	ferry verify --repo "$T/$repo" >/dev/null 2>&1 || die "$repo: verify found damage"
	ok "$repo: the repository verifies (every chunk's hash)"
	# a change in the middle of the image: only that block travels again
	cp "$T/disk.img" "$T/d2.img"
	head -c 65536 /dev/urandom | dd of="$T/d2.img" bs=65536 seek=100 conv=notrunc status=none
	json=$(ferry backup --repo "ferry://127.0.0.1:$m_port/$repo" $(src_tls) --name s1 \
		--json "$T/d2.img") || die "$repo: second backup"
	id=$(echo "$json" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4)
	ferry restore --repo "$T/$repo" "$id" --to "$T/r.img" 2>/dev/null || die "$repo: local restore"
	same "$T/d2.img" "$T/r.img" "$repo: the changed image restores from the repository directly"
	rm -f "$T/r.img" "$T/d2.img"
done

grep -q "hello agent=.* tls=TLS_AES_128_GCM_SHA256" "$T/m.log" ||
	{ grep hello "$T/m.log" | head -3; die "the mover did not log AES-128-GCM"; }
ok "ferry movers negotiate TLS_AES_128_GCM_SHA256, logged at hello"
got=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$m_port" \
	-cert "$T/pki/src1.crt" -key "$T/pki/src1.key" -CAfile "$T/pki/ca.crt" \
	-ciphersuites TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256 \
	2>/dev/null | grep -o "Cipher is [A-Z0-9_]*")
[ "$got" = "Cipher is TLS_AES_128_GCM_SHA256" ] ||
	die "a client listing AES-256 first got '$got', not AES-128-GCM"
ok "a client listing AES-256 and ChaCha20 first still gets AES-128-GCM (the mover's choice)"
finish_movers
