/* fuzz_frame.c - libFuzzer target for the mover protocol: the input is a
 * byte stream as a peer would send it.  It goes through the real frame
 * reader (ferry_conn_recv over a socket pair, with the limits of each
 * state), every frame through the server's handshake and session state
 * machine and the parser of its type, and through the parsers a source
 * uses on a mover's answers.  Nothing may crash, read out of bounds, or
 * allocate more than the limit of the state it arrived in. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a server does with one frame in state *ST (without a repository):
 * check it may come now, parse it, and move on. */
static int server_frame(enum ferry_sstate *st, unsigned type, const uint8_t *p,
			size_t n)
{
	struct ferry_hello h;
	struct ferry_point pt;
	struct ferry_stats6 s6;
	const uint8_t *a, *b;
	uint32_t q, off;
	uint16_t c;
	uint64_t first;
	size_t len;
	int e;

	if ((e = ferry_server_accepts(*st, type)) != 0)
		return e;
	switch (type) {
	case FM_HELLO:
		e = ferry_hello_parse(p, n, &h);
		if (e == 0 && (!ferry_name_valid(h.repo) || strlen(h.agent) > FERRY_AGENT_MAX))
			abort();
		break;
	case FM_BEGIN:
		e = ferry_begin_parse(p, n, &pt, &a, &len);
		if (e == 0 && (len > n || pt.block_size < FERRY_BLOCK_MIN))
			abort();
		break;
	case FM_RESUME:
		e = n == FERRY_SID_LEN + FERRY_PID_LEN ? 0 : FERRY_E_PROTO;
		break;
	case FM_ATTACH:
		e = n == FERRY_SID_LEN ? 0 : FERRY_E_PROTO;
		break;
	case FM_HAVE:
		e = ferry_have_parse(p, n, &q, &c, &a);
		if (e == 0 && (a + (size_t)c * FERRY_HASH_LEN != p + n))
			abort();
		break;
	case FM_PUT:
		e = ferry_put_parse(p, n, &a, &b, &len);
		if (e == 0) {
			uint32_t raw, plen;
			int codec;

			if (b + len != p + n)
				abort();
			ferry_chunk_header(b, len, &raw, &plen, &codec);
		}
		break;
	case FM_PUT_REST:
		e = ferry_put_rest_parse(p, n, &a, &off, &b, &len);
		if (e == 0 && b + len != p + n)
			abort();
		break;
	case FM_RECORDS:
		e = ferry_records_parse(p, n, &first, &c, &a);
		if (e == 0 && a + (size_t)c * FERRY_ENTRY_LEN != p + n)
			abort();
		break;
	case FM_COMMIT:
		e = ferry_stats6_parse(p, n, &s6);
		break;
	case FM_PING:
		e = n == 8 ? 0 : FERRY_E_PROTO;
		break;
	default:
		e = 0; /* read requests: fixed sizes, checked by the mover */
	}
	if (e == 0)
		*st = ferry_server_next(*st, type);
	return e;
}

/* The parsers a source runs on a mover's frames. */
static void client_frame(unsigned type, const uint8_t *p, size_t n)
{
	struct ferry_welcome w;
	struct ferry_ack a;
	struct ferry_session_msg s;
	char msg[FERRY_MSG_MAX + 1];
	const uint8_t *bits;
	uint32_t q;
	uint16_t c;
	int code;

	switch (type) {
	case FM_WELCOME:
		if (ferry_welcome_parse(p, n, &w) == 0 &&
		    (w.block_size < FERRY_BLOCK_MIN || w.max_have > FERRY_HAVE_MAX))
			abort();
		break;
	case FM_ERROR:
	case FM_GOODBYE:
		if (ferry_error_parse(p, n, &code, msg, sizeof(msg)) == 0 && code >= 0)
			abort();
		break;
	case FM_ACK:
		if (ferry_ack_parse(p, n, &a) == 0 && a.frames_durable > a.frames)
			abort();
		break;
	case FM_HAVE_R:
		if (ferry_have_r_parse(p, n, &q, &c, &bits) == 0 &&
		    bits + ((size_t)c + 7) / 8 != p + n)
			abort();
		break;
	case FM_SESSION:
		if (ferry_session_parse(p, n, &s) == 0 && s.done > s.nblocks)
			abort();
		break;
	case FM_POINT_INFO: {
		struct ferry_point pt;
		uint8_t again[1 + 2 + FERRY_MANIFEST_HEADER_MAX + 48];

		/* what parses re-encodes to the same bytes */
		if (ferry_point_info_parse(p, n, &pt) == 0 &&
		    (ferry_point_info_encode(again, sizeof(again), &pt) != n ||
		     memcmp(again, p, n)))
			abort();
		break;
	}
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum ferry_sstate st = FS_HELLO;
	struct ferry_conn *c;
	int sv[2], e;

	if (size > 65536)
		return 0;
	/* Every message as a lone frame payload, for the client parsers. */
	if (size >= 1)
		client_frame(data[0] % 48, data + 1, size - 1);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return 0;
	{
		int big = 1 << 20;

		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	}
	if (size && write(sv[0], data, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	close(sv[0]);
	c = ferry_conn_new(sv[1], "fuzz");
	if (!c) {
		close(sv[1]);
		return 0;
	}
	/* As the mover reads: small frames until HELLO, then the limits of
	 * a repository of 64 KiB blocks. */
	while ((e = ferry_conn_recv(c)) == 1) {
		size_t cap = c->rx_cap;

		if (c->rx_len > c->max_frame || cap > ferry_msg_limit(FM_PUT, FERRY_BLOCK_MIN) +
						     FERRY_FRAME_CTRL)
			abort();
		client_frame(c->rx_type, c->rx, c->rx_len);
		if (server_frame(&st, c->rx_type, c->rx, c->rx_len) != 0)
			break;
		if (st != FS_HELLO && c->max_frame == FERRY_FRAME_PREAUTH) {
			c->block_size = FERRY_BLOCK_MIN;
			c->max_frame = FERRY_FRAME_CTRL;
		}
	}
	if (e == 0)
		abort(); /* the writer closed: the reader must see the end */
	ferry_conn_free(c);
	return 0;
}
