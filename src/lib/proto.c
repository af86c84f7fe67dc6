/* proto.c - the mover protocol's frames and messages: every header and
 * payload is checked against fixed limits through bounded readers before
 * anything is allocated or used, and the server's state machine says which
 * message may come when (docs/protocol.md). */
#include <stdio.h>

#include "proto.h"

static const char *const names[] = {
	[FM_HELLO] = "HELLO", [FM_WELCOME] = "WELCOME", [FM_ERROR] = "ERROR",
	[FM_PING] = "PING", [FM_PONG] = "PONG", [FM_GOODBYE] = "GOODBYE",
	[FM_BEGIN] = "BEGIN", [FM_RESUME] = "RESUME", [FM_ATTACH] = "ATTACH",
	[FM_SESSION] = "SESSION", [FM_HAVE] = "HAVE", [FM_HAVE_R] = "HAVE_R",
	[FM_PUT] = "PUT", [FM_RECORDS] = "RECORDS", [FM_ACK] = "ACK",
	[FM_COMMIT] = "COMMIT", [FM_COMMITTED] = "COMMITTED",
	[FM_ABORT] = "ABORT", [FM_PUT_REST] = "PUT_REST", [FM_INFO] = "INFO", [FM_INFO_R] = "INFO_R",
	[FM_CHUNK_HAS] = "CHUNK_HAS", [FM_CHUNK_HAS_R] = "CHUNK_HAS_R",
	[FM_CHUNK_GET] = "CHUNK_GET", [FM_CHUNK_HEAD] = "CHUNK_HEAD",
	[FM_CHUNK_DATA] = "CHUNK_DATA", [FM_CHUNK_LIST] = "CHUNK_LIST",
	[FM_CHUNK_LIST_R] = "CHUNK_LIST_R", [FM_POINT_LIST] = "POINT_LIST",
	[FM_POINT_LIST_R] = "POINT_LIST_R", [FM_POINT_GET] = "POINT_GET",
	[FM_POINT_DATA] = "POINT_DATA", [FM_END] = "END",
	[FM_POINT_STATS] = "POINT_STATS", [FM_POINT_INFO] = "POINT_INFO",
	[FM_KEYS] = "KEYS", [FM_KEYS_R] = "KEYS_R", [FM_SEALED] = "SEALED",
	[FM_FEATURES] = "FEATURES", [FM_FEATURES_R] = "FEATURES_R",
};

const char *ferry_msg_name(unsigned type)
{
	if (type < FERRY_ARRAY_SIZE(names) && names[type])
		return names[type];
	return "unknown";
}

uint32_t ferry_msg_limit(unsigned type, uint32_t bs)
{
	uint32_t chunk = (uint32_t)ferry_chunk_bound(bs ? bs : FERRY_BLOCK_MAX);

	switch (type) {
	case FM_HELLO: return 8 + 4 + 2 + FERRY_NAME_MAX + 2 + FERRY_AGENT_MAX;
	case FM_WELCOME: return 128;
	case FM_ERROR:
	case FM_GOODBYE: return 4 + 2 + FERRY_MSG_MAX;
	case FM_PING:
	case FM_PONG: return 8;
	case FM_BEGIN: return 2 + FERRY_MANIFEST_HEADER_MAX;
	case FM_RESUME: return FERRY_SID_LEN + FERRY_PID_LEN;
	case FM_ATTACH: return FERRY_SID_LEN;
	case FM_SESSION: return FERRY_SID_LEN + 20 + FERRY_PARTIALS_MAX * (4 + FERRY_HASH_LEN);
	case FM_HAVE: return 6 + FERRY_HAVE_MAX * FERRY_HASH_LEN;
	case FM_HAVE_R: return 6 + FERRY_HAVE_MAX / 8;
	case FM_PUT: return FERRY_HASH_LEN + chunk;
	case FM_PUT_REST: return FERRY_HASH_LEN + 4 + chunk;
	case FM_RECORDS: return 10 + FERRY_RECORDS_MAX * FERRY_ENTRY_LEN;
	case FM_ACK: return 32;
	case FM_COMMIT: return 56; /* 48, + the sealed manifest's length */
	case FM_COMMITTED: return FERRY_PID_LEN;
	case FM_ABORT:
	case FM_INFO:
	case FM_CHUNK_LIST:
	case FM_POINT_LIST: return 0;
	case FM_INFO_R: return 48;
	case FM_CHUNK_HAS: return FERRY_HASH_LEN;
	case FM_CHUNK_HAS_R: return 1;
	case FM_CHUNK_GET:
	case FM_CHUNK_HEAD: return FERRY_HASH_LEN + 4;
	case FM_CHUNK_DATA: return chunk;
	case FM_CHUNK_LIST_R: return 2 + FERRY_LIST_MAX * (FERRY_HASH_LEN + 8);
	case FM_POINT_LIST_R: return 2 + FERRY_LIST_MAX * FERRY_PID_LEN;
	case FM_POINT_GET: return FERRY_PID_LEN;
	case FM_POINT_DATA: return FERRY_PIECE_MAX;
	case FM_END: return 8;
	case FM_POINT_STATS: return 0;
	case FM_POINT_INFO: return 1 + 2 + FERRY_MANIFEST_HEADER_MAX + 48;
	case FM_KEYS: return 0;
	case FM_KEYS_R: return FERRY_KEYS_MAX;
	case FM_SEALED: return 8 + FERRY_PIECE_MAX;
	case FM_FEATURES: return 0;
	case FM_FEATURES_R: return FERRY_FEATURES_MAX;
	default: return 0;
	}
}

static int known(unsigned type)
{
	return type < FERRY_ARRAY_SIZE(names) && names[type];
}

int ferry_frame_header_parse(const uint8_t hdr[FERRY_FRAME_HDR], uint32_t limit,
			     uint32_t bs, uint32_t *len, uint16_t *type)
{
	struct ferry_rd r;
	uint16_t zero;

	ferry_rd_init(&r, hdr, FERRY_FRAME_HDR);
	ferry_rd_u32(&r, len);
	ferry_rd_u16(&r, type);
	ferry_rd_u16(&r, &zero);
	if (zero)
		return ferry_error(FERRY_E_PROTO,
				   "frame header has reserved bits set (not a ferry mover peer?)");
	if (!known(*type))
		return ferry_error(FERRY_E_PROTO, "unknown frame type %u",
				   (unsigned)*type);
	if (*len > ferry_msg_limit(*type, bs))
		return ferry_error(FERRY_E_PROTO,
				   "%s frame of %lu bytes exceeds its limit of %lu",
				   ferry_msg_name(*type), (unsigned long)*len,
				   (unsigned long)ferry_msg_limit(*type, bs));
	if (*len > limit)
		return ferry_error(FERRY_E_PROTO,
				   "%s frame of %lu bytes exceeds the limit of %lu in this state",
				   ferry_msg_name(*type), (unsigned long)*len,
				   (unsigned long)limit);
	return 0;
}

void ferry_frame_header_encode(uint8_t hdr[FERRY_FRAME_HDR], uint16_t type,
			       uint32_t len)
{
	struct ferry_wr w;

	ferry_wr_init(&w, hdr, FERRY_FRAME_HDR);
	ferry_wr_u32(&w, len);
	ferry_wr_u16(&w, type);
	ferry_wr_u16(&w, 0);
}

static int bad(const char *what)
{
	return ferry_error(FERRY_E_PROTO, "malformed %s message", what);
}

/* A u16-prefixed string of at most MAX bytes, without NUL or control
 * characters, into OUT (MAX + 1 bytes). */
static int rd_str(struct ferry_rd *r, char *out, size_t max)
{
	uint16_t n;

	if (ferry_rd_u16(r, &n) || n > max || ferry_rd_bytes(r, out, n))
		return -1;
	out[n] = 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			return -1;
	return 0;
}

static void wr_str(struct ferry_wr *w, const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		n = max;
	ferry_wr_u16(w, (uint16_t)n);
	ferry_wr_bytes(w, s, n);
}

int ferry_hello_parse(const uint8_t *p, size_t n, struct ferry_hello *h)
{
	struct ferry_rd r;
	uint8_t magic[8];

	memset(h, 0, sizeof(*h));
	ferry_rd_init(&r, p, n);
	if (ferry_rd_bytes(&r, magic, 8) || memcmp(magic, FERRY_PROTO_MAGIC, 8))
		return ferry_error(FERRY_E_PROTO,
				   "HELLO does not start with %s (not a ferry mover client?)",
				   FERRY_PROTO_MAGIC);
	ferry_rd_u16(&r, &h->min_version);
	ferry_rd_u16(&r, &h->max_version);
	if (r.bad || rd_str(&r, h->repo, FERRY_NAME_MAX) ||
	    rd_str(&r, h->agent, FERRY_AGENT_MAX) || r.left ||
	    h->min_version > h->max_version || !ferry_name_valid(h->repo))
		return bad("HELLO");
	return 0;
}

size_t ferry_hello_encode(uint8_t *out, size_t cap, const char *repo,
			  const char *agent)
{
	struct ferry_wr w;

	ferry_wr_init(&w, out, cap);
	ferry_wr_bytes(&w, FERRY_PROTO_MAGIC, 8);
	ferry_wr_u16(&w, FERRY_PROTO_VERSION);
	ferry_wr_u16(&w, FERRY_PROTO_VERSION);
	wr_str(&w, repo, FERRY_NAME_MAX);
	wr_str(&w, agent, FERRY_AGENT_MAX);
	return w.bad ? 0 : cap - w.left;
}

int ferry_welcome_parse(const uint8_t *p, size_t n, struct ferry_welcome *w)
{
	struct ferry_rd r;
	uint16_t zero, zero2;

	memset(w, 0, sizeof(*w));
	ferry_rd_init(&r, p, n);
	ferry_rd_u16(&r, &w->version);
	ferry_rd_u16(&r, &zero);
	ferry_rd_u32(&r, &w->format_version);
	ferry_rd_u32(&r, &w->block_size);
	ferry_rd_u8(&r, &w->codec);
	ferry_rd_u8(&r, &w->level);
	ferry_rd_u16(&r, &zero2);
	ferry_rd_bytes(&r, w->repo_id, 32);
	ferry_rd_u32(&r, &w->max_frame);
	ferry_rd_u16(&r, &w->max_have);
	ferry_rd_u16(&r, &w->max_records);
	if (r.bad || r.left || zero || zero2)
		return bad("WELCOME");
	w->repo_id[32] = 0;
	for (int i = 0; i < 32; i++)
		if (!((w->repo_id[i] >= '0' && w->repo_id[i] <= '9') ||
		      (w->repo_id[i] >= 'a' && w->repo_id[i] <= 'f')))
			return bad("WELCOME");
	if (w->version != FERRY_PROTO_VERSION ||
	    w->block_size < FERRY_BLOCK_MIN || w->block_size > FERRY_BLOCK_MAX ||
	    (w->block_size & (w->block_size - 1)) || w->codec > FERRY_CODEC_LZ4 ||
	    w->level > 22 || w->max_have == 0 || w->max_have > FERRY_HAVE_MAX ||
	    w->max_records == 0 || w->max_records > FERRY_RECORDS_MAX ||
	    w->max_frame < FERRY_HASH_LEN + ferry_chunk_bound(w->block_size))
		return ferry_error(FERRY_E_PROTO,
				   "WELCOME has impossible values (protocol version %u, block size %u)",
				   w->version, w->block_size);
	return 0;
}

size_t ferry_welcome_encode(uint8_t *out, size_t cap,
			    const struct ferry_welcome *x)
{
	struct ferry_wr w;

	ferry_wr_init(&w, out, cap);
	ferry_wr_u16(&w, x->version);
	ferry_wr_u16(&w, 0);
	ferry_wr_u32(&w, x->format_version);
	ferry_wr_u32(&w, x->block_size);
	ferry_wr_u8(&w, x->codec);
	ferry_wr_u8(&w, x->level);
	ferry_wr_u16(&w, 0);
	ferry_wr_bytes(&w, x->repo_id, 32);
	ferry_wr_u32(&w, x->max_frame);
	ferry_wr_u16(&w, x->max_have);
	ferry_wr_u16(&w, x->max_records);
	return w.bad ? 0 : cap - w.left;
}

int ferry_error_parse(const uint8_t *p, size_t n, int *code, char *msg,
		      size_t cap)
{
	struct ferry_rd r;
	uint32_t c;
	char text[FERRY_MSG_MAX + 1];

	ferry_rd_init(&r, p, n);
	ferry_rd_u32(&r, &c);
	if (r.bad || rd_str(&r, text, FERRY_MSG_MAX) || r.left || c == 0 ||
	    c > 1000)
		return bad("ERROR");
	*code = -(int)c;
	snprintf(msg, cap, "%s", text);
	return 0;
}

size_t ferry_error_encode(uint8_t *out, size_t cap, int code, const char *msg)
{
	struct ferry_wr w;

	ferry_wr_init(&w, out, cap);
	ferry_wr_u32(&w, (uint32_t)(code < 0 ? -code : FERRY_E_IO * -1));
	wr_str(&w, msg, FERRY_MSG_MAX);
	return w.bad ? 0 : cap - w.left;
}

int ferry_ack_parse(const uint8_t *p, size_t n, struct ferry_ack *a)
{
	struct ferry_rd r;

	ferry_rd_init(&r, p, n);
	ferry_rd_u64(&r, &a->frames);
	ferry_rd_u64(&r, &a->bytes);
	ferry_rd_u64(&r, &a->frames_durable);
	ferry_rd_u64(&r, &a->blocks_durable);
	if (r.bad || r.left || a->frames_durable > a->frames)
		return bad("ACK");
	return 0;
}

size_t ferry_ack_encode(uint8_t *out, size_t cap, const struct ferry_ack *a)
{
	struct ferry_wr w;

	ferry_wr_init(&w, out, cap);
	ferry_wr_u64(&w, a->frames);
	ferry_wr_u64(&w, a->bytes);
	ferry_wr_u64(&w, a->frames_durable);
	ferry_wr_u64(&w, a->blocks_durable);
	return w.bad ? 0 : cap - w.left;
}

int ferry_have_parse(const uint8_t *p, size_t n, uint32_t *qid,
		     uint16_t *count, const uint8_t **hashes)
{
	struct ferry_rd r;

	ferry_rd_init(&r, p, n);
	ferry_rd_u32(&r, qid);
	ferry_rd_u16(&r, count);
	if (r.bad || *count == 0 || *count > FERRY_HAVE_MAX ||
	    r.left != (size_t)*count * FERRY_HASH_LEN)
		return bad("HAVE");
	*hashes = ferry_rd_ptr(&r, r.left);
	return 0;
}

int ferry_have_r_parse(const uint8_t *p, size_t n, uint32_t *qid,
		       uint16_t *count, const uint8_t **bitmap)
{
	struct ferry_rd r;

	ferry_rd_init(&r, p, n);
	ferry_rd_u32(&r, qid);
	ferry_rd_u16(&r, count);
	if (r.bad || *count == 0 || *count > FERRY_HAVE_MAX ||
	    r.left != ((size_t)*count + 7) / 8)
		return bad("HAVE_R");
	*bitmap = ferry_rd_ptr(&r, r.left);
	return 0;
}

int ferry_records_parse(const uint8_t *p, size_t n, uint64_t *first,
			uint16_t *count, const uint8_t **entries)
{
	struct ferry_rd r;

	ferry_rd_init(&r, p, n);
	ferry_rd_u64(&r, first);
	ferry_rd_u16(&r, count);
	if (r.bad || *count == 0 || *count > FERRY_RECORDS_MAX ||
	    r.left != (size_t)*count * FERRY_ENTRY_LEN ||
	    *first > (UINT64_MAX >> 1))
		return bad("RECORDS");
	*entries = ferry_rd_ptr(&r, r.left);
	for (uint16_t i = 0; i < *count; i++) {
		const uint8_t *e = *entries + (size_t)i * FERRY_ENTRY_LEN;

		/* Kind 2 (delta.c): the mover checks its repository allows it. */
		if (e[0] == FERRY_ENTRY_DATA || e[0] == FERRY_ENTRY_DELTA)
			continue;
		if (e[0] != FERRY_ENTRY_ZERO || !ferry_is_zero(e + 1, FERRY_HASH_LEN))
			return ferry_error(FERRY_E_PROTO,
					   "RECORDS entry %llu has an invalid kind",
					   (unsigned long long)(*first + i));
	}
	return 0;
}

int ferry_put_parse(const uint8_t *p, size_t n, const uint8_t **hash,
		    const uint8_t **chunk, size_t *len)
{
	if (n < FERRY_HASH_LEN + FERRY_CHUNK_HDR + 1)
		return bad("PUT");
	*hash = p;
	*chunk = p + FERRY_HASH_LEN;
	*len = n - FERRY_HASH_LEN;
	return 0;
}

int ferry_begin_parse(const uint8_t *p, size_t n, struct ferry_point *pt,
		      const uint8_t **hdr, size_t *hdr_len)
{
	struct ferry_rd r;
	uint16_t hl;
	size_t used = 0;

	ferry_rd_init(&r, p, n);
	if (ferry_rd_u16(&r, &hl) || hl > FERRY_MANIFEST_HEADER_MAX ||
	    r.left != hl)
		return bad("BEGIN");
	*hdr = ferry_rd_ptr(&r, hl);
	memset(pt, 0, sizeof(*pt));
	if (ferry_manifest_header_parse(*hdr, hl, pt, &used) != 0 || used != hl)
		return ferry_error(FERRY_E_PROTO,
				   "BEGIN carries an invalid restore point header: %s",
				   ferry_last_error());
	*hdr_len = hl;
	return 0;
}

int ferry_session_parse(const uint8_t *p, size_t n, struct ferry_session_msg *m)
{
	struct ferry_rd r;

	memset(m, 0, sizeof(*m));
	ferry_rd_init(&r, p, n);
	ferry_rd_bytes(&r, m->sid, FERRY_SID_LEN);
	ferry_rd_u64(&r, &m->done);
	ferry_rd_u64(&r, &m->nblocks);
	if (ferry_rd_u32(&r, &m->npartial) || m->npartial > FERRY_PARTIALS_MAX)
		return bad("SESSION");
	for (uint32_t i = 0; i < m->npartial; i++) {
		ferry_rd_u32(&r, &m->partial[i].len);
		ferry_rd_bytes(&r, m->partial[i].hash, FERRY_HASH_LEN);
		if (m->partial[i].len == 0 ||
		    m->partial[i].len > ferry_chunk_bound(FERRY_BLOCK_MAX))
			return bad("SESSION");
	}
	if (r.bad || r.left || m->done > m->nblocks)
		return bad("SESSION");
	return 0;
}

size_t ferry_session_encode(uint8_t *out, size_t cap,
			    const struct ferry_session_msg *m)
{
	struct ferry_wr w;

	ferry_wr_init(&w, out, cap);
	ferry_wr_bytes(&w, m->sid, FERRY_SID_LEN);
	ferry_wr_u64(&w, m->done);
	ferry_wr_u64(&w, m->nblocks);
	ferry_wr_u32(&w, m->npartial);
	for (uint32_t i = 0; i < m->npartial && i < FERRY_PARTIALS_MAX; i++) {
		ferry_wr_u32(&w, m->partial[i].len);
		ferry_wr_bytes(&w, m->partial[i].hash, FERRY_HASH_LEN);
	}
	return w.bad ? 0 : cap - w.left;
}

int ferry_put_rest_parse(const uint8_t *p, size_t n, const uint8_t **hash,
			 uint32_t *offset, const uint8_t **rest, size_t *len)
{
	if (n < FERRY_HASH_LEN + 4 + 1)
		return bad("PUT_REST");
	*hash = p;
	*offset = ferry_le32(p + FERRY_HASH_LEN);
	*rest = p + FERRY_HASH_LEN + 4;
	*len = n - FERRY_HASH_LEN - 4;
	if (*offset == 0 || *offset > ferry_chunk_bound(FERRY_BLOCK_MAX))
		return bad("PUT_REST");
	return 0;
}

int ferry_stats6_parse(const uint8_t *p, size_t n, struct ferry_stats6 *s)
{
	struct ferry_rd r;

	ferry_rd_init(&r, p, n);
	ferry_rd_u64(&r, &s->bytes_read);
	ferry_rd_u64(&r, &s->bytes_zero);
	ferry_rd_u64(&r, &s->bytes_new);
	ferry_rd_u64(&r, &s->bytes_reused);
	ferry_rd_u64(&r, &s->bytes_stored);
	ferry_rd_u64(&r, &s->duration_us);
	if (r.bad || r.left)
		return bad("COMMIT");
	return 0;
}

size_t ferry_stats6_encode(uint8_t *out, size_t cap, const struct ferry_point *p)
{
	struct ferry_wr w;

	ferry_wr_init(&w, out, cap);
	ferry_wr_u64(&w, p->bytes_read);
	ferry_wr_u64(&w, p->bytes_zero);
	ferry_wr_u64(&w, p->bytes_new);
	ferry_wr_u64(&w, p->bytes_reused);
	ferry_wr_u64(&w, p->bytes_stored);
	ferry_wr_u64(&w, p->duration_us);
	return w.bad ? 0 : cap - w.left;
}

size_t ferry_point_info_encode(uint8_t *out, size_t cap, const struct ferry_point *p)
{
	uint8_t hdr[FERRY_MANIFEST_HEADER_MAX], pid[FERRY_PID_LEN];
	size_t hl = 0, n;
	struct ferry_wr w;

	ferry_wr_init(&w, out, cap);
	if (p->corrupt) {
		if (ferry_pid_from_hex(p->id, pid))
			return 0;
		ferry_wr_u8(&w, 1);
		ferry_wr_bytes(&w, pid, sizeof(pid));
		return w.bad ? 0 : cap - w.left;
	}
	if (ferry_manifest_header_encode(p, hdr, sizeof(hdr), &hl))
		return 0;
	ferry_wr_u8(&w, 0);
	ferry_wr_u16(&w, (uint16_t)hl);
	ferry_wr_bytes(&w, hdr, hl);
	n = cap - w.left;
	if (w.bad || ferry_stats6_encode(out + n, cap - n, p) != 48)
		return 0;
	return n + 48;
}

int ferry_point_info_parse(const uint8_t *p, size_t n, struct ferry_point *pt)
{
	struct ferry_stats6 st;
	struct ferry_rd r;
	uint8_t bad8;
	uint16_t hl;
	size_t used = 0;

	memset(pt, 0, sizeof(*pt));
	ferry_rd_init(&r, p, n);
	if (ferry_rd_u8(&r, &bad8) || bad8 > 1)
		return bad("POINT_INFO");
	if (bad8) {
		const uint8_t *pid = ferry_rd_ptr(&r, FERRY_PID_LEN);

		if (!pid || r.left)
			return bad("POINT_INFO");
		ferry_pid_to_hex(pid, pt->id);
		pt->corrupt = 1;
		return 0;
	}
	if (ferry_rd_u16(&r, &hl) || hl > FERRY_MANIFEST_HEADER_MAX || r.left != hl + 48u ||
	    ferry_manifest_header_parse(ferry_rd_ptr(&r, hl), hl, pt, &used) || used != hl ||
	    ferry_stats6_parse(ferry_rd_ptr(&r, 48), 48, &st))
		return bad("POINT_INFO");
	pt->bytes_read = st.bytes_read;
	pt->bytes_zero = st.bytes_zero;
	pt->bytes_new = st.bytes_new;
	pt->bytes_reused = st.bytes_reused;
	pt->bytes_stored = st.bytes_stored;
	pt->duration_us = st.duration_us;
	return 0;
}

int ferry_pid_from_hex(const char *id, uint8_t out[FERRY_PID_LEN])
{
	if (!ferry_point_id_valid(id))
		return FERRY_E_INVAL;
	return ferry_hex_decode(id, out, FERRY_PID_LEN);
}

void ferry_pid_to_hex(const uint8_t in[FERRY_PID_LEN], char out[FERRY_ID_LEN + 1])
{
	for (int i = 0; i < FERRY_PID_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* ---- the server's state machine ------------------------------------- */

static int is_read_request(unsigned t)
{
	return t == FM_INFO || t == FM_CHUNK_HAS || t == FM_CHUNK_GET ||
	       t == FM_CHUNK_HEAD || t == FM_CHUNK_LIST ||
	       t == FM_POINT_LIST || t == FM_POINT_GET || t == FM_POINT_STATS ||
	       t == FM_KEYS || t == FM_FEATURES;
}

int ferry_server_accepts(enum ferry_sstate st, unsigned t)
{
	int ok = 0;

	switch (st) {
	case FS_HELLO:
		ok = t == FM_HELLO;
		break;
	case FS_READY:
		ok = t == FM_BEGIN || t == FM_RESUME || t == FM_ATTACH ||
		     t == FM_PING || is_read_request(t);
		break;
	case FS_SESSION:
		ok = t == FM_HAVE || t == FM_PUT || t == FM_PUT_REST ||
		     t == FM_RECORDS || t == FM_COMMIT || t == FM_ABORT ||
		     t == FM_PING || t == FM_SEALED;
		break;
	case FS_STREAM:
		ok = t == FM_PUT || t == FM_PUT_REST || t == FM_PING;
		break;
	default:
		ok = 0;
	}
	if (ok)
		return 0;
	return ferry_error(FERRY_E_PROTO, "%s (type %u) is not allowed %s",
			   ferry_msg_name(t), t,
			   st == FS_HELLO ? "before HELLO"
			   : st == FS_READY ? "outside a backup session"
			   : st == FS_SESSION ? "in a backup session"
			   : st == FS_STREAM ? "on an extra stream"
					     : "now");
}

enum ferry_sstate ferry_server_next(enum ferry_sstate st, unsigned t)
{
	switch (t) {
	case FM_HELLO:
		return FS_READY;
	case FM_BEGIN:
	case FM_RESUME:
		return FS_SESSION;
	case FM_ATTACH:
		return FS_STREAM;
	case FM_COMMIT:
	case FM_ABORT:
		return FS_READY;
	default:
		return st;
	}
}
