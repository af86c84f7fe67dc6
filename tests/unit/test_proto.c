/* test_proto.c - the mover protocol: every frame header is checked against
 * its type's limit (a 4 GiB claim never allocates), each message parses
 * only in its exact shape and round-trips through its encoder, the
 * server's state machine admits each message only in its state, and the
 * connection layer carries frames over a socket pair. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"
#include "unit.h"

static void hdr(uint8_t *h, uint32_t len, uint16_t type, uint16_t zero)
{
	ferry_put_le32(h, len);
	h[4] = (uint8_t)type;
	h[5] = (uint8_t)(type >> 8);
	h[6] = (uint8_t)zero;
	h[7] = (uint8_t)(zero >> 8);
}

static void test_headers(void)
{
	uint8_t h[FERRY_FRAME_HDR];
	uint32_t len;
	uint16_t type;

	for (unsigned t = 0; t < 64; t++) {
		uint32_t lim = ferry_msg_limit(t, FERRY_BLOCK_DEFAULT);

		hdr(h, UINT32_MAX, (uint16_t)t, 0);
		CHECK(ferry_frame_header_parse(h, UINT32_MAX, FERRY_BLOCK_DEFAULT, &len,
					       &type) == FERRY_E_PROTO);
		if (!lim && strcmp(ferry_msg_name(t), "unknown"))
			continue;
		if (!strcmp(ferry_msg_name(t), "unknown")) {
			hdr(h, 0, (uint16_t)t, 0);
			CHECK(ferry_frame_header_parse(h, UINT32_MAX, 0, &len, &type) ==
			      FERRY_E_PROTO);
			continue;
		}
		hdr(h, lim, (uint16_t)t, 0);
		CHECK(ferry_frame_header_parse(h, UINT32_MAX, FERRY_BLOCK_DEFAULT, &len,
					       &type) == 0 && len == lim && type == t);
		hdr(h, lim + 1, (uint16_t)t, 0);
		CHECK(ferry_frame_header_parse(h, UINT32_MAX, FERRY_BLOCK_DEFAULT, &len,
					       &type) == FERRY_E_PROTO);
		/* the receiver's state limit applies too */
		hdr(h, lim, (uint16_t)t, 0);
		if (lim > 0)
			CHECK(ferry_frame_header_parse(h, lim - 1, FERRY_BLOCK_DEFAULT,
						       &len, &type) == FERRY_E_PROTO);
	}
	hdr(h, 8, FM_PING, 1);
	CHECK(ferry_frame_header_parse(h, 4096, 0, &len, &type) == FERRY_E_PROTO);
	/* a PUT for a small-block repository may not carry a big chunk */
	CHECK(ferry_msg_limit(FM_PUT, 65536) < ferry_msg_limit(FM_PUT, 1u << 20));
	CHECK(ferry_msg_limit(FM_HELLO, 0) <= FERRY_FRAME_PREAUTH);
	CHECK(ferry_msg_limit(FM_RECORDS, 0) <= FERRY_FRAME_CTRL);
	CHECK(ferry_msg_limit(FM_CHUNK_LIST_R, 0) <= FERRY_FRAME_CTRL);
}

static void test_messages(void)
{
	uint8_t b[1024];
	struct ferry_hello h;
	struct ferry_welcome w, w2;
	struct ferry_ack a;
	struct ferry_session_msg sm, sm2;
	char msg[64];
	size_t n;
	int code;

	n = ferry_hello_encode(b, sizeof(b), "repo1", "ferry test");
	CHECK(n > 0 && ferry_hello_parse(b, n, &h) == 0);
	CHECK(!strcmp(h.repo, "repo1") && !strcmp(h.agent, "ferry test"));
	CHECK(h.min_version == FERRY_PROTO_VERSION);
	CHECK(ferry_hello_parse(b, n - 1, &h) == FERRY_E_PROTO);
	b[n] = 0;
	CHECK(ferry_hello_parse(b, n + 1, &h) == FERRY_E_PROTO);
	b[0] = 'X';
	CHECK(ferry_hello_parse(b, n, &h) == FERRY_E_PROTO);
	n = ferry_hello_encode(b, sizeof(b), "../etc", "");
	CHECK(ferry_hello_parse(b, n, &h) == FERRY_E_PROTO);

	memset(&w, 0, sizeof(w));
	w.version = FERRY_PROTO_VERSION;
	w.format_version = 1;
	w.block_size = 1u << 20;
	w.codec = FERRY_CODEC_ZSTD;
	w.level = 3;
	memcpy(w.repo_id, "0123456789abcdef0123456789abcdef", 33);
	w.max_frame = ferry_msg_limit(FM_PUT, w.block_size);
	w.max_have = FERRY_HAVE_MAX;
	w.max_records = FERRY_RECORDS_MAX;
	n = ferry_welcome_encode(b, sizeof(b), &w);
	CHECK(n > 0 && ferry_welcome_parse(b, n, &w2) == 0);
	CHECK(w2.block_size == w.block_size && !strcmp(w2.repo_id, w.repo_id));
	w.block_size = 3000;
	n = ferry_welcome_encode(b, sizeof(b), &w);
	CHECK(ferry_welcome_parse(b, n, &w2) == FERRY_E_PROTO);

	n = ferry_error_encode(b, sizeof(b), FERRY_E_NOTFOUND, "no such repo");
	CHECK(ferry_error_parse(b, n, &code, msg, sizeof(msg)) == 0);
	CHECK(code == FERRY_E_NOTFOUND && !strcmp(msg, "no such repo"));
	ferry_put_le32(b, 0);
	CHECK(ferry_error_parse(b, n, &code, msg, sizeof(msg)) == FERRY_E_PROTO);

	a.frames = 10;
	a.bytes = 1000;
	a.frames_durable = 11;
	a.blocks_durable = 3;
	n = ferry_ack_encode(b, sizeof(b), &a);
	CHECK(ferry_ack_parse(b, n, &a) == FERRY_E_PROTO); /* durable > seen */

	memset(&sm, 0, sizeof(sm));
	sm.done = 5;
	sm.nblocks = 9;
	n = ferry_session_encode(b, sizeof(b), &sm);
	CHECK(n == FERRY_SID_LEN + 20 && ferry_session_parse(b, n, &sm2) == 0);
	CHECK(sm2.done == 5 && sm2.npartial == 0);
	sm.npartial = 2;
	sm.partial[0].len = 1000;
	memset(sm.partial[0].hash, 0xab, FERRY_HASH_LEN);
	sm.partial[1].len = 7;
	n = ferry_session_encode(b, sizeof(b), &sm);
	CHECK(ferry_session_parse(b, n, &sm2) == 0 && sm2.npartial == 2 &&
	      sm2.partial[0].len == 1000 && sm2.partial[0].hash[31] == 0xab &&
	      sm2.partial[1].len == 7);
	CHECK(ferry_session_parse(b, n - 1, &sm2) == FERRY_E_PROTO);
	ferry_put_le32(b + FERRY_SID_LEN + 16, FERRY_PARTIALS_MAX + 1);
	CHECK(ferry_session_parse(b, n, &sm2) == FERRY_E_PROTO);
	sm.npartial = 0;
	sm.done = 10; /* more done than blocks */
	n = ferry_session_encode(b, sizeof(b), &sm);
	CHECK(ferry_session_parse(b, n, &sm2) == FERRY_E_PROTO);
}

static void test_point_info(void)
{
	struct ferry_point p, q;
	uint8_t b[1 + 2 + FERRY_MANIFEST_HEADER_MAX + 48];
	size_t n;

	memset(&p, 0, sizeof(p));
	memcpy(p.id, "0123456789abcdef", 17);
	snprintf(p.name, sizeof(p.name), "vm1");
	snprintf(p.source, sizeof(p.source), "/dev/vg/vm1");
	p.block_size = 1u << 20;
	p.disk_size = 5u << 20;
	p.nblocks = 5;
	p.bytes_stored = 1234;
	n = ferry_point_info_encode(b, sizeof(b), &p);
	CHECK(n > 48 && ferry_point_info_parse(b, n, &q) == 0);
	CHECK(!strcmp(q.id, p.id) && !strcmp(q.name, "vm1") && q.bytes_stored == 1234 &&
	      q.nblocks == 5 && !q.corrupt);
	CHECK(ferry_point_info_parse(b, n - 1, &q) == FERRY_E_PROTO);
	b[1 + 2 + 4] ^= 1; /* a header that does not parse */
	CHECK(ferry_point_info_parse(b, n, &q) == FERRY_E_PROTO);
	p.corrupt = 1;
	n = ferry_point_info_encode(b, sizeof(b), &p);
	CHECK(n == 9 && ferry_point_info_parse(b, n, &q) == 0 && q.corrupt &&
	      !strcmp(q.id, p.id));
}

static void test_batches(void)
{
	static uint8_t b[10 + FERRY_RECORDS_MAX * FERRY_ENTRY_LEN + 64];
	const uint8_t *p;
	uint32_t qid, off;
	uint16_t count;
	uint64_t first;
	size_t len;

	ferry_put_le32(b, 7);
	b[4] = 2;
	b[5] = 0;
	CHECK(ferry_have_parse(b, 6 + 2 * FERRY_HASH_LEN, &qid, &count, &p) == 0 &&
	      qid == 7 && count == 2);
	CHECK(ferry_have_parse(b, 6 + 2 * FERRY_HASH_LEN + 1, &qid, &count, &p) ==
	      FERRY_E_PROTO);
	b[4] = 0;
	CHECK(ferry_have_parse(b, 6, &qid, &count, &p) == FERRY_E_PROTO);
	b[4] = (FERRY_HAVE_MAX + 1) & 0xff;
	b[5] = (FERRY_HAVE_MAX + 1) >> 8;
	CHECK(ferry_have_parse(b, 6 + (FERRY_HAVE_MAX + 1) * FERRY_HASH_LEN, &qid,
			       &count, &p) == FERRY_E_PROTO);
	b[4] = 9;
	b[5] = 0;
	CHECK(ferry_have_r_parse(b, 6 + 2, &qid, &count, &p) == 0 && count == 9);
	CHECK(ferry_have_r_parse(b, 6 + 1, &qid, &count, &p) == FERRY_E_PROTO);

	memset(b, 0, sizeof(b));
	b[0] = 4; /* first block 4 */
	b[8] = 2;
	b[10] = FERRY_ENTRY_DATA;
	CHECK(ferry_records_parse(b, 10 + 2 * FERRY_ENTRY_LEN, &first, &count, &p) == 0 &&
	      first == 4 && count == 2);
	b[10 + FERRY_ENTRY_LEN + 5] = 1; /* a zero entry with a hash */
	CHECK(ferry_records_parse(b, 10 + 2 * FERRY_ENTRY_LEN, &first, &count, &p) ==
	      FERRY_E_PROTO);
	b[10 + FERRY_ENTRY_LEN + 5] = 0;
	b[10] = 2; /* a delta block: parsed; the mover checks its repository */
	CHECK(ferry_records_parse(b, 10 + 2 * FERRY_ENTRY_LEN, &first, &count, &p) == 0);
	b[10] = 3; /* no such kind */
	CHECK(ferry_records_parse(b, 10 + 2 * FERRY_ENTRY_LEN, &first, &count, &p) ==
	      FERRY_E_PROTO);

	memset(b, 0, 64);
	CHECK(ferry_put_parse(b, FERRY_HASH_LEN + FERRY_CHUNK_HDR, &p, &p, &len) ==
	      FERRY_E_PROTO);
	ferry_put_le32(b + FERRY_HASH_LEN, 100);
	CHECK(ferry_put_rest_parse(b, FERRY_HASH_LEN + 4 + 10, &p, &off, &p, &len) == 0 &&
	      off == 100 && len == 10);
	ferry_put_le32(b + FERRY_HASH_LEN, 0);
	CHECK(ferry_put_rest_parse(b, FERRY_HASH_LEN + 4 + 10, &p, &off, &p, &len) ==
	      FERRY_E_PROTO);
}

static void test_states(void)
{
	CHECK(ferry_server_accepts(FS_HELLO, FM_HELLO) == 0);
	CHECK(ferry_server_accepts(FS_HELLO, FM_BEGIN) == FERRY_E_PROTO);
	CHECK(ferry_server_accepts(FS_HELLO, FM_PING) == FERRY_E_PROTO);
	CHECK(ferry_server_accepts(FS_READY, FM_HELLO) == FERRY_E_PROTO);
	CHECK(ferry_server_accepts(FS_READY, FM_PUT) == FERRY_E_PROTO);
	CHECK(ferry_server_accepts(FS_READY, FM_CHUNK_GET) == 0);
	CHECK(ferry_server_accepts(FS_SESSION, FM_CHUNK_GET) == FERRY_E_PROTO);
	CHECK(ferry_server_accepts(FS_SESSION, FM_RECORDS) == 0);
	CHECK(ferry_server_accepts(FS_STREAM, FM_RECORDS) == FERRY_E_PROTO);
	CHECK(ferry_server_accepts(FS_STREAM, FM_PUT_REST) == 0);
	CHECK(ferry_server_accepts(FS_TLS, FM_HELLO) == FERRY_E_PROTO);
	CHECK(ferry_server_accepts(FS_SESSION, FM_WELCOME) == FERRY_E_PROTO);
	CHECK(ferry_server_next(FS_HELLO, FM_HELLO) == FS_READY);
	CHECK(ferry_server_next(FS_READY, FM_RESUME) == FS_SESSION);
	CHECK(ferry_server_next(FS_READY, FM_ATTACH) == FS_STREAM);
	CHECK(ferry_server_next(FS_SESSION, FM_COMMIT) == FS_READY);
	CHECK(ferry_server_next(FS_SESSION, FM_PUT) == FS_SESSION);
}

static void test_urls(void)
{
	struct ferry_url u;
	char h[64], p[8];

	CHECK(ferry_url_parse("ferry://backup1:7150/vms", &u) == 0 &&
	      !strcmp(u.host, "backup1") && !strcmp(u.port, "7150") &&
	      !strcmp(u.repo, "vms"));
	CHECK(ferry_url_parse("ferry://[::1]:7150/r", &u) == 0 && !strcmp(u.host, "::1"));
	CHECK(ferry_url_parse("ferry://host/r", &u) == FERRY_E_INVAL);
	CHECK(ferry_url_parse("ferry://host:99999/r", &u) == FERRY_E_INVAL);
	CHECK(ferry_url_parse("ferry://host:1/", &u) == FERRY_E_INVAL);
	CHECK(ferry_url_parse("ferry://host:1/a/b", &u) == FERRY_E_INVAL);
	CHECK(ferry_url_parse("/srv/repo", &u) == FERRY_E_INVAL);
	CHECK(ferry_hostport_parse("127.0.0.1:0", h, sizeof(h), p, sizeof(p)) == 0 &&
	      !strcmp(p, "0"));
	CHECK(ferry_hostport_parse(":80", h, sizeof(h), p, sizeof(p)) != 0);
	CHECK(ferry_is_remote_url("ferry://x:1/y") && !ferry_is_remote_url("x"));
}

static void test_rate(void)
{
	struct ferry_rate r;
	int wait;
	size_t got = 0;

	ferry_rate_init(&r, 1000000);
	got += ferry_rate_take(&r, 1u << 20, &wait);
	CHECK(got > 0 && got <= 20001 + 16384);
	/* then only what trickled in since, at 1 MB/s */
	CHECK(ferry_rate_take(&r, 1u << 20, &wait) < 2000);
	ferry_rate_release(&r);
	CHECK(ferry_rate_take(NULL, 12345, &wait) == 12345 && wait == 0);
}

/* Frames over a real socket: what goes in comes out, and a frame that
 * claims 4 GiB is refused before any buffer is sized for it. */
static void test_conn(void)
{
	int sv[2];
	struct ferry_conn *a, *b;
	uint8_t payload[3000], h[FERRY_FRAME_HDR];
	double deadline;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	a = ferry_conn_new(sv[0], "a");
	b = ferry_conn_new(sv[1], "b");
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	b->max_frame = FERRY_FRAME_CTRL;
	deadline = ferry_mono_seconds() + 5;
	CHECK(ferry_conn_queue(a, FM_PING, payload, 8, NULL, 0) == 0);
	CHECK(ferry_conn_queue(a, FM_POINT_DATA, payload, 1000, payload + 1000, 2000) == 0);
	CHECK(ferry_conn_send_wait(a, deadline) == 0);
	CHECK(ferry_conn_recv_wait(b, deadline) == 0 && b->rx_type == FM_PING &&
	      b->rx_len == 8);
	CHECK(ferry_conn_recv_wait(b, deadline) == 0 && b->rx_type == FM_POINT_DATA &&
	      b->rx_len == 3000 && !memcmp(b->rx, payload, 3000));
	CHECK(a->bytes_out == b->bytes_in && a->bytes_out == 2 * FERRY_FRAME_HDR + 3008);
	free(b->rx);
	b->rx = NULL;
	b->rx_cap = 0;
	hdr(h, UINT32_MAX, FM_PUT, 0);
	CHECK(write(sv[0], h, sizeof(h)) == (ssize_t)sizeof(h));
	CHECK(ferry_conn_recv_wait(b, deadline) == FERRY_E_PROTO);
	CHECK(b->rx_cap == 0 && b->rx == NULL);
	CHECK(strstr(ferry_last_error(), "4294967295") != NULL);
	ferry_conn_free(a);
	/* the peer is gone: end of stream, said clearly */
	b->hdr_got = 0;
	CHECK(ferry_conn_recv_wait(b, deadline) == FERRY_E_NET && b->eof);
	ferry_conn_free(b);
}

/* What a mover checks of a chunk it receives: header and payload
 * checksums, without decoding. */
static void test_chunk_check(void)
{
	static uint8_t in[100000], out[120000];
	struct ferry_codec_ctx *c = ferry_codec_ctx_new(FERRY_CODEC_ZSTD, 3);
	size_t n;
	uint32_t raw;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 / 3);
	CHECK(c && ferry_chunk_encode(c, in, sizeof(in), out, sizeof(out), &n) == 0);
	CHECK(ferry_chunk_check(out, n, &raw) == 0 && raw == sizeof(in));
	out[n - 1] ^= 1;
	CHECK(ferry_chunk_check(out, n, &raw) == FERRY_E_CORRUPT);
	out[n - 1] ^= 1;
	out[9] ^= 1;
	CHECK(ferry_chunk_check(out, n, &raw) == FERRY_E_CORRUPT);
	CHECK(ferry_chunk_check(out, 10, &raw) == FERRY_E_CORRUPT);
	ferry_codec_ctx_free(c);
}

/* Payloads queued by reference (chunks from the source's log) go out in
 * order between copied frames, byte for byte, whatever the socket takes
 * at a time; ferry_conn_refs says when the memory is free again, and a
 * full reference ring falls back to copies. */
static void test_conn_refs(void)
{
	enum { BIG = 200000, N = FERRY_TXREF_MAX + 4 };
	static uint8_t big[N][BIG];
	int sv[2], sz = 4096;
	struct ferry_conn *a, *b;
	double deadline = ferry_mono_seconds() + 20;
	uint8_t small[40];
	size_t expect = 0;
	int ok = 1, r;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	/* a small socket buffer: many partial writes */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	a = ferry_conn_new(sv[0], "a");
	b = ferry_conn_new(sv[1], "b");
	b->max_frame = FERRY_HASH_LEN + BIG + 100;
	b->block_size = BIG;
	for (int k = 0; k < N; k++)
		for (size_t i = 0; i < BIG; i++)
			big[k][i] = (uint8_t)(i * 131 + (size_t)k * 7 + i / 4099);
	memset(small, 0x5a, sizeof(small));
	for (int k = 0; k < N; k++) {
		CHECK(ferry_conn_queue(a, FM_POINT_DATA, small, sizeof(small), NULL, 0) == 0);
		CHECK(ferry_conn_queue_ref(a, FM_PUT, small, FERRY_HASH_LEN, big[k],
					   BIG) == 0);
		expect += 2 * FERRY_FRAME_HDR + sizeof(small) + FERRY_HASH_LEN + BIG;
	}
	/* the ring holds FERRY_TXREF_MAX; the rest were copied */
	CHECK(a->txr_n == FERRY_TXREF_MAX);
	CHECK(ferry_conn_backlog(a) == expect);
	CHECK(ferry_conn_refs(a, big[0], BIG) == 1);
	CHECK(ferry_conn_refs(a, big[N - 1], BIG) == 0);
	CHECK(ferry_conn_refs(a, small, sizeof(small)) == 0);
	for (int k = 0; k < N && ok; k++) {
		for (int f = 0; f < 2 && ok; f++) {
			while ((r = ferry_conn_recv(b)) == 0) {
				CHECK(ferry_conn_flush(a) >= 0);
				if (ferry_mono_seconds() > deadline) {
					ok = 0;
					break;
				}
			}
			CHECK(r == 1);
			if (r != 1) {
				fprintf(stderr, "k=%d f=%d r=%d %s\n", k, f, r, ferry_last_error());
				ok = 0;
				break;
			}
			if (f == 0)
				ok = b->rx_type == FM_POINT_DATA && b->rx_len == sizeof(small);
			else
				ok = b->rx_type == FM_PUT &&
				     b->rx_len == FERRY_HASH_LEN + BIG &&
				     !memcmp(b->rx + FERRY_HASH_LEN, big[k], BIG);
			CHECK(ok);
		}
	}
	CHECK(ferry_conn_flush(a) == 0);
	CHECK(a->txr_n == 0 && ferry_conn_backlog(a) == 0);
	CHECK(ferry_conn_refs(a, big[0], BIG) == 0);
	CHECK(a->bytes_out == expect && b->bytes_in == expect);
	/* a small payload is copied, never referenced */
	CHECK(ferry_conn_queue_ref(a, FM_PUT, small, FERRY_HASH_LEN, big[0], 1000) == 0);
	CHECK(a->txr_n == 0 && ferry_conn_refs(a, big[0], BIG) == 0);
	ferry_conn_free(a);
	ferry_conn_free(b);
}

int main(void)
{
	test_chunk_check();
	test_headers();
	test_messages();
	test_batches();
	test_point_info();
	test_states();
	test_urls();
	test_rate();
	test_conn();
	test_conn_refs();
	return unit_done();
}
