/* target_remote.c - the pipe from the source-side mover to a remote
 * target mover: a backup session that queues what the pipeline hands it
 * (chunks, then manifest entries in block order) in a bounded log, asks
 * the target in batches which chunks it lacks and sends only those, keeps
 * everything until the target says it is durable, and after a broken link
 * reconnects with backoff and resumes from the last acknowledged block.
 * One I/O thread owns the connections; the pipeline's threads never wait
 * on the network except when the log is full. */
#define _GNU_SOURCE
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "remote.h"

#define LOG_CAP 65536u           /* items (chunks and entries) */
#define CHUNK_BYTES (64u << 20)  /* chunk memory held until durable */
#define QMAX 16                  /* HAVE queries in flight */
#define KNOWN 16384u             /* hashes known to be at the target */
#define STREAMS_MAX 16
#define WINDOW_MIN (256u << 10)  /* bytes in flight beyond one frame */
#define DONE 1

enum { IT_CHUNK = 1, IT_RECORD = 2 };
enum { S_NEW, S_QUERIED, S_SEND, S_SENT, S_SKIP, S_DONE };

struct item {
	uint8_t type, state, kind, stream;
	uint8_t was_sent, resolved;
	uint32_t len, raw;
	uint64_t block, frame;
	uint8_t *buf;
	uint8_t hash[FERRY_HASH_LEN];
};

struct query {
	uint32_t qid;
	uint16_t n;
	uint64_t frame;
	uint64_t seq[FERRY_HAVE_MAX];
};

struct stream {
	struct ferry_conn *c;
	uint64_t frames, bytes; /* queued on this connection */
	struct ferry_ack ack;
	double last_tx;
};

struct tremote {
	struct ferry_repo *repo;
	struct rstore *rs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int efd;
	pthread_t io;
	int io_started;
	atomic_int stop;    /* free() wants the I/O thread gone */
	/* the log: items [head, tail); the I/O thread queries from qcursor
	 * and sends from cursor */
	struct item *log;
	uint64_t head, tail, cursor, qcursor;
	size_t chunk_bytes, bufcap;
	uint8_t **pool;
	size_t npool, pool_cap;
	uint8_t (*known)[FERRY_HASH_LEN];
	uint64_t unresolved;
	/* the session */
	uint8_t hdr[FERRY_MANIFEST_HEADER_MAX];
	size_t hdr_len;
	struct ferry_point p, cp;
	uint8_t sid[FERRY_SID_LEN];
	int have_sid, connected, begun;
	uint64_t next_block, acked_blocks;
	/* chunks the mover holds the start of (from the last SESSION) */
	struct ferry_partial partial[FERRY_PARTIALS_MAX];
	uint32_t npartial;
	int commit_req, commit_sent, committed, abort_req, abort_sent;
	int err;
	char errmsg[1200];
	uint64_t skip_blocks, skip_raw, skip_stored;
	/* the network */
	struct stream st[STREAMS_MAX];
	int nst, rr;
	struct query *q;
	int qhead, qn;
	uint32_t next_qid;
	uint64_t window;
	double lost_since;
	int attempt;
	/* Encrypted repository: the sealed manifest is built here (the
	 * mover has no key) in a memfd, then uploaded before COMMIT. */
	struct ferry_mwriter *mw;
	int sealed_fd;
	uint64_t sealed_len, sealed_queued;
	uint8_t *sealed_buf;
};

static struct item *IT(struct tremote *t, uint64_t seq)
{
	return &t->log[seq % LOG_CAP];
}

static void wake(struct tremote *t)
{
	uint64_t one = 1;

	if (write(t->efd, &one, sizeof(one)) < 0) {
		/* the I/O thread polls on a timer anyway */
	}
}

static int failed(struct tremote *t)
{
	return ferry_error(t->err, "%s", t->errmsg);
}

/* Record a final error for every waiting thread (under t->mu). */
static void fail_locked(struct tremote *t, int e, const char *msg)
{
	if (!t->err) {
		t->err = e ? e : FERRY_E_NET;
		snprintf(t->errmsg, sizeof(t->errmsg), "%s", msg);
	}
	pthread_cond_broadcast(&t->cv);
}

/* Wait for news from the I/O thread (under t->mu); a slow link must not
 * keep an interrupt waiting. */
static int wait_news(struct tremote *t)
{
	struct timespec until;

	if (atomic_load(&ferry_cancelled))
		return ferry_error(FERRY_E_INTERRUPTED, "backup interrupted");
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 100000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&t->cv, &t->mu, &until);
	return 0;
}

/* ---- known hashes ------------------------------------------------------ */

static size_t known_slot(const uint8_t *h)
{
	return (size_t)(ferry_le32(h) % KNOWN);
}

static int known_has(struct tremote *t, const uint8_t *h)
{
	return !memcmp(t->known[known_slot(h)], h, FERRY_HASH_LEN);
}

static void known_add(struct tremote *t, const uint8_t *h)
{
	memcpy(t->known[known_slot(h)], h, FERRY_HASH_LEN);
}

/* ---- chunk buffers -------------------------------------------------- */

static void buf_give(struct tremote *t, uint8_t *b)
{
	if (t->npool < t->pool_cap)
		t->pool[t->npool++] = b;
	else
		free(b);
	t->chunk_bytes -= t->bufcap;
}

/* Drop acknowledged items from the head of the log (under t->mu). */
static void trim(struct tremote *t)
{
	uint64_t before = t->head;

	while (t->head < t->cursor) {
		struct item *it = IT(t, t->head);

		if (it->state != S_DONE &&
		    ((it->state != S_SENT && it->state != S_SKIP) ||
		     t->st[it->stream].ack.frames_durable < it->frame))
			break;
		/* The connection may still send from the buffer (an ACK for
		 * a frame not sent yet would be a lie, but a lie must not
		 * free memory a connection reads). */
		if (it->buf && it->state == S_SENT && t->st[it->stream].c &&
		    ferry_conn_refs(t->st[it->stream].c, it->buf, it->len))
			break;
		if (it->buf) {
			buf_give(t, it->buf);
			it->buf = NULL;
		}
		t->head++;
	}
	if (t->head != before)
		pthread_cond_broadcast(&t->cv);
}

/* ---- connecting and resuming ------------------------------------------ */

static void disconnect(struct tremote *t)
{
	/* The healthy streams end with a FIN: the mover then processes the
	 * frames they carried and keeps the start of a PUT cut short. */
	for (int k = 0; k < t->nst; k++)
		if (t->st[k].c)
			ferry_conn_close_soft(t->st[k].c, 500);
	for (int k = 0; k < t->nst; k++) {
		rstore_close(t->rs, t->st[k].c);
		t->st[k].c = NULL;
	}
	t->connected = 0;
}

/* After a (re)connect: what the target holds is durable, what it lacks
 * goes again; chunks are asked about again rather than resent blindly. */
static int reset(struct tremote *t, uint64_t done)
{
	if (done < t->acked_blocks)
		return ferry_error(FERRY_E_CORRUPT,
				   "the mover lost acknowledged blocks (it has %llu, had confirmed %llu)",
				   (unsigned long long)done,
				   (unsigned long long)t->acked_blocks);
	t->acked_blocks = done;
	for (uint64_t s = t->head; s < t->tail; s++) {
		struct item *it = IT(t, s);

		if (it->type == IT_RECORD) {
			it->state = it->block < done ? S_DONE : S_NEW;
		} else if (it->state == S_SKIP) {
			it->stream = 0;
			it->frame = 0; /* the resume synced the target */
		} else if (it->state != S_DONE) {
			it->was_sent |= it->state == S_SENT;
			it->state = S_NEW;
		}
	}
	t->cursor = t->qcursor = t->head;
	t->qn = 0;
	t->commit_sent = 0; /* asked again once everything went again */
	t->sealed_queued = 0; /* a new connection may be a new mover process */
	for (int k = 0; k < t->nst; k++) {
		t->st[k].frames = t->st[k].bytes = 0;
		memset(&t->st[k].ack, 0, sizeof(t->st[k].ack));
		t->st[k].last_tx = ferry_mono_seconds();
	}
	trim(t);
	return 0;
}

static int session_connect(struct tremote *t)
{
	struct rstore *rs = t->rs;
	uint8_t b[2 + FERRY_MANIFEST_HEADER_MAX];
	struct ferry_session_msg sm;
	size_t n;
	double t0;
	int e, resume = t->have_sid;

	uint8_t nonce[8] = { 0 };
	double rtt;

	for (int k = 0; k < t->nst; k++)
		if ((e = rstore_connect(rs, &t->st[k].c)) != 0)
			goto fail;
	/* The round trip sizes the window (the session counts frames only
	 * from BEGIN or RESUME on). */
	t0 = ferry_mono_seconds();
	if ((e = ferry_conn_call(t->st[0].c, FM_PING, nonce, 8, NULL, 0,
				 t0 + rstore_timeout(rs))) != 0)
		goto fail;
	rtt = ferry_mono_seconds() - t0;
	t0 = ferry_mono_seconds();
	if (!resume) {
		b[0] = (uint8_t)t->hdr_len;
		b[1] = (uint8_t)(t->hdr_len >> 8);
		memcpy(b + 2, t->hdr, t->hdr_len);
		n = 2 + t->hdr_len;
		e = ferry_conn_call(t->st[0].c, FM_BEGIN, b, n, NULL, 0,
				    t0 + rstore_timeout(rs));
	} else {
		memcpy(b, t->sid, FERRY_SID_LEN);
		ferry_pid_from_hex(t->p.id, b + FERRY_SID_LEN);
		e = ferry_conn_call(t->st[0].c, FM_RESUME, b,
				    FERRY_SID_LEN + FERRY_PID_LEN, NULL, 0,
				    t0 + rstore_timeout(rs));
	}
	if (e)
		goto fail;
	if (t->st[0].c->rx_type == FM_COMMITTED && resume && t->commit_req) {
		char id[FERRY_ID_LEN + 1];

		if (t->st[0].c->rx_len == FERRY_PID_LEN)
			ferry_pid_to_hex(t->st[0].c->rx, id);
		if (t->st[0].c->rx_len != FERRY_PID_LEN || strcmp(id, t->p.id)) {
			e = ferry_error(FERRY_E_PROTO, "malformed COMMITTED message");
			goto fail;
		}
		pthread_mutex_lock(&t->mu);
		t->committed = 1;
		t->connected = 1;
		pthread_cond_broadcast(&t->cv);
		pthread_mutex_unlock(&t->mu);
		return 0;
	}
	if (t->st[0].c->rx_type != FM_SESSION) {
		e = ferry_error(FERRY_E_PROTO, "mover answered %s with %s",
				resume ? "RESUME" : "BEGIN",
				ferry_msg_name(t->st[0].c->rx_type));
		goto fail;
	}
	if ((e = ferry_session_parse(t->st[0].c->rx, t->st[0].c->rx_len, &sm)) != 0)
		goto fail;
	if (sm.nblocks != t->p.nblocks ||
	    (resume && memcmp(sm.sid, t->sid, sizeof(sm.sid)))) {
		e = ferry_error(FERRY_E_PROTO, "mover answered with another session");
		goto fail;
	}
	/* The window covers twice the round trip at the expected rate. */
	{
		double rate = rs->o.limit_rate ? (double)rs->o.limit_rate : 125e6;
		uint64_t frame = ferry_msg_limit(FM_PUT, t->repo->block_size) + FERRY_FRAME_HDR;

		t->window = (uint64_t)(2 * rate * rtt);
		/* In flight is what a broken link loses: keep it near the
		 * bandwidth-delay product, one frame at least. */
		if (t->window < frame + WINDOW_MIN)
			t->window = frame + WINDOW_MIN;
		if (t->window > CHUNK_BYTES / 2)
			t->window = CHUNK_BYTES / 2;
	}
	for (int k = 1; k < t->nst; k++) {
		e = ferry_conn_call(t->st[k].c, FM_ATTACH, sm.sid, sizeof(sm.sid), NULL, 0,
				    ferry_mono_seconds() + rstore_timeout(rs));
		if (e == 0 && t->st[k].c->rx_type != FM_SESSION)
			e = ferry_error(FERRY_E_PROTO, "mover answered ATTACH with %s",
					ferry_msg_name(t->st[k].c->rx_type));
		if (e)
			goto fail;
	}
	pthread_mutex_lock(&t->mu);
	memcpy(t->sid, sm.sid, sizeof(sm.sid));
	t->npartial = sm.npartial;
	memcpy(t->partial, sm.partial, sizeof(t->partial));
	e = reset(t, sm.done);
	if (e == 0) {
		t->have_sid = 1;
		t->connected = 1;
		t->begun = 1;
		pthread_cond_broadcast(&t->cv);
	}
	pthread_mutex_unlock(&t->mu);
	if (e)
		goto fail;
	if (resume) {
		atomic_fetch_add(&rs->resumes, 1);
		atomic_store(&rs->blocks_resumed_at, sm.done);
	}
	t->lost_since = 0;
	t->attempt = 0;
	return 0;
fail:
	disconnect(t);
	return e;
}

/* ---- sending ----------------------------------------------------------- */

static int queue_on(struct tremote *t, int k, uint16_t type, const void *a,
		    size_t alen, const void *b, size_t blen)
{
	/* A chunk goes from its log buffer, which stays until the target
	 * acknowledged it (trim), without a copy into the send buffer. */
	int e = type == FM_PUT || type == FM_PUT_REST
			? ferry_conn_queue_ref(t->st[k].c, type, a, alen, b, blen)
			: ferry_conn_queue(t->st[k].c, type, a, alen, b, blen);

	if (e)
		return e;
	t->st[k].frames++;
	t->st[k].bytes += FERRY_FRAME_HDR + alen + blen;
	t->st[k].last_tx = ferry_mono_seconds();
	return 0;
}

static int queue_queries(struct tremote *t)
{
	static _Thread_local uint8_t b[6 + FERRY_HAVE_MAX * FERRY_HASH_LEN];
	int e;

	while (t->qn < QMAX) {
		struct query *q = &t->q[(t->qhead + t->qn) % QMAX];

		q->n = 0;
		while (t->qcursor < t->tail && q->n < FERRY_HAVE_MAX) {
			struct item *it = IT(t, t->qcursor);

			if (it->type == IT_CHUNK && it->state == S_NEW) {
				memcpy(b + 6 + (size_t)q->n * FERRY_HASH_LEN, it->hash,
				       FERRY_HASH_LEN);
				q->seq[q->n++] = t->qcursor;
				it->state = S_QUERIED;
			}
			t->qcursor++;
		}
		if (!q->n)
			return 0;
		q->qid = ++t->next_qid;
		ferry_put_le32(b, q->qid);
		b[4] = (uint8_t)q->n;
		b[5] = (uint8_t)(q->n >> 8);
		if ((e = queue_on(t, 0, FM_HAVE, b, 6 + (size_t)q->n * FERRY_HASH_LEN,
				  NULL, 0)) != 0)
			return e;
		q->frame = t->st[0].frames;
		t->qn++;
	}
	return 0;
}

static int window_open(struct tremote *t, int k, uint64_t size)
{
	struct stream *s = &t->st[k];

	return s->bytes == s->ack.bytes || s->bytes - s->ack.bytes + size <= t->window;
}

static int queue_records(struct tremote *t)
{
	static _Thread_local uint8_t b[10 + FERRY_RECORDS_MAX * FERRY_ENTRY_LEN];
	uint64_t first = IT(t, t->cursor)->block, s = t->cursor;
	uint16_t n = 0;
	int e;

	if (!window_open(t, 0, 64))
		return 1;
	while (s < t->tail && n < FERRY_RECORDS_MAX) {
		struct item *it = IT(t, s);

		if (it->type != IT_RECORD || it->state != S_NEW ||
		    it->block != first + n)
			break;
		b[10 + (size_t)n * FERRY_ENTRY_LEN] = it->kind;
		memcpy(b + 11 + (size_t)n * FERRY_ENTRY_LEN, it->hash, FERRY_HASH_LEN);
		n++;
		s++;
	}
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(first >> (8 * i));
	b[8] = (uint8_t)n;
	b[9] = (uint8_t)(n >> 8);
	if ((e = queue_on(t, 0, FM_RECORDS, b, 10 + (size_t)n * FERRY_ENTRY_LEN,
			  NULL, 0)) != 0)
		return e;
	for (uint64_t x = t->cursor; x < s; x++) {
		IT(t, x)->state = S_SENT;
		IT(t, x)->stream = 0;
		IT(t, x)->frame = t->st[0].frames;
	}
	t->cursor = s;
	return 0;
}

static int queue_sends(struct tremote *t)
{
	int e;

	while (t->cursor < t->tail) {
		struct item *it = IT(t, t->cursor);

		if (it->type == IT_RECORD) {
			if (it->state != S_NEW) {
				t->cursor++;
				continue;
			}
			if ((e = queue_records(t)) != 0)
				return e < 0 ? e : 0;
			continue;
		}
		if (it->state == S_NEW || it->state == S_QUERIED)
			return 0; /* the target has not said yet */
		if (it->state == S_SEND) {
			uint64_t size = FERRY_FRAME_HDR + FERRY_HASH_LEN + it->len;
			uint32_t p;
			int k = -1;

			for (int i = 0; i < t->nst; i++) {
				int c = (t->rr + i) % t->nst;

				if (window_open(t, c, size)) {
					k = c;
					break;
				}
			}
			if (k < 0)
				return 0;
			t->rr = k + 1;
			for (p = 0; p < t->npartial; p++)
				if (t->partial[p].len &&
				    !memcmp(it->hash, t->partial[p].hash, FERRY_HASH_LEN))
					break;
			if (p < t->npartial && t->partial[p].len < it->len) {
				/* The mover kept the start of this chunk when
				 * the link broke: send only the rest. */
				uint8_t a[FERRY_HASH_LEN + 4];
				uint32_t have = t->partial[p].len;

				memcpy(a, it->hash, FERRY_HASH_LEN);
				ferry_put_le32(a + FERRY_HASH_LEN, have);
				e = queue_on(t, k, FM_PUT_REST, a, sizeof(a),
					     it->buf + have, it->len - have);
				t->partial[p].len = 0;
			} else {
				e = queue_on(t, k, FM_PUT, it->hash, FERRY_HASH_LEN,
					     it->buf, it->len);
			}
			if (e)
				return e;
			if (it->was_sent)
				atomic_fetch_add(&t->rs->chunks_resent, 1);
			it->state = S_SENT;
			it->stream = (uint8_t)k;
			it->frame = t->st[k].frames;
		}
		t->cursor++;
	}
	return 0;
}

/* ---- receiving --------------------------------------------------------- */

static int on_have_r(struct tremote *t, const uint8_t *p, size_t n)
{
	const uint8_t *bits;
	struct query *q;
	uint32_t qid;
	uint16_t count;
	int e;

	if ((e = ferry_have_r_parse(p, n, &qid, &count, &bits)) != 0)
		return e;
	q = &t->q[t->qhead % QMAX];
	if (!t->qn || qid != q->qid || count != q->n)
		return ferry_error(FERRY_E_PROTO, "HAVE_R answers no question asked");
	for (uint16_t i = 0; i < count; i++) {
		struct item *it = IT(t, q->seq[i]);
		int has = bits[i / 8] >> (i % 8) & 1;

		if (has) {
			it->state = S_SKIP;
			it->stream = 0;
			it->frame = q->frame;
			known_add(t, it->hash);
			if (it->buf) {
				buf_give(t, it->buf);
				it->buf = NULL;
			}
			/* Counted as new when put: the target had it. */
			if (!it->resolved && !it->was_sent) {
				t->skip_blocks++;
				t->skip_raw += it->raw;
				t->skip_stored += it->len;
			}
		} else {
			it->state = S_SEND;
		}
		if (!it->resolved) {
			it->resolved = 1;
			t->unresolved--;
		}
	}
	t->qhead = (t->qhead + 1) % QMAX;
	t->qn--;
	pthread_cond_broadcast(&t->cv);
	return 0;
}

static int on_frame(struct tremote *t, int k)
{
	struct ferry_conn *c = t->st[k].c;
	struct ferry_ack a;
	char msg[FERRY_MSG_MAX + 1], id[FERRY_ID_LEN + 1];
	int e = 0, code;

	switch (c->rx_type) {
	case FM_ACK:
		if ((e = ferry_ack_parse(c->rx, c->rx_len, &a)) != 0)
			return e;
		if (a.frames > t->st[k].frames || a.bytes > t->st[k].bytes ||
		    a.frames_durable < t->st[k].ack.frames_durable ||
		    (k == 0 && a.blocks_durable > t->next_block))
			return ferry_error(FERRY_E_PROTO, "ACK for more than was sent");
		pthread_mutex_lock(&t->mu);
		t->st[k].ack = a;
		if (k == 0 && a.blocks_durable > t->acked_blocks)
			t->acked_blocks = a.blocks_durable;
		trim(t);
		pthread_mutex_unlock(&t->mu);
		return 0;
	case FM_HAVE_R:
		if (k != 0)
			return ferry_error(FERRY_E_PROTO, "HAVE_R on a data stream");
		pthread_mutex_lock(&t->mu);
		e = on_have_r(t, c->rx, c->rx_len);
		pthread_mutex_unlock(&t->mu);
		return e;
	case FM_COMMITTED:
		if (k != 0 || !t->commit_sent || c->rx_len != FERRY_PID_LEN)
			return ferry_error(FERRY_E_PROTO, "unexpected COMMITTED");
		ferry_pid_to_hex(c->rx, id);
		if (strcmp(id, t->p.id))
			return ferry_error(FERRY_E_PROTO, "COMMITTED names point %s", id);
		pthread_mutex_lock(&t->mu);
		t->committed = 1;
		pthread_cond_broadcast(&t->cv);
		pthread_mutex_unlock(&t->mu);
		return DONE;
	case FM_PONG:
		return 0;
	case FM_ERROR:
		return ferry_conn_peer_error(c);
	case FM_GOODBYE:
		if (ferry_error_parse(c->rx, c->rx_len, &code, msg, sizeof(msg)))
			snprintf(msg, sizeof(msg), "(no reason)");
		c->broken = 1;
		return ferry_error(FERRY_E_NET, "the mover at %s went away: %s",
				   c->peer, msg);
	default:
		return ferry_error(FERRY_E_PROTO, "unexpected %s from the mover",
				   ferry_msg_name(c->rx_type));
	}
}

/* One turn of the I/O loop: queue, send, wait, receive. */
static int pump(struct tremote *t)
{
	struct pollfd pf[STREAMS_MAX + 1];
	double now, timeout = rstore_timeout(t->rs);
	int e = 0, ms = 200;

	pthread_mutex_lock(&t->mu);
	if (t->abort_req && !t->abort_sent) {
		e = queue_on(t, 0, FM_ABORT, NULL, 0, NULL, 0);
		t->abort_sent = 1;
	}
	if (!t->abort_sent) {
		trim(t);
		if (!e)
			e = queue_queries(t);
		if (!e)
			e = queue_sends(t);
		if (!e && t->commit_req && !t->commit_sent && t->cursor == t->tail &&
		    t->sealed_fd >= 0 && t->sealed_queued < t->sealed_len &&
		    ferry_conn_backlog(t->st[0].c) < (2u << 20)) {
			/* One piece of the sealed manifest per turn. */
			uint64_t left = t->sealed_len - t->sealed_queued;
			size_t want = left < FERRY_PIECE_MAX ? (size_t)left : FERRY_PIECE_MAX;
			ssize_t got = ferry_pread_full(t->sealed_fd, t->sealed_buf, want,
						       (off_t)t->sealed_queued);
			uint8_t off[8];

			for (int i = 0; i < 8; i++)
				off[i] = (uint8_t)(t->sealed_queued >> (8 * i));
			if (got != (ssize_t)want)
				e = ferry_error(FERRY_E_IO, "read the sealed manifest");
			else
				e = queue_on(t, 0, FM_SEALED, off, 8, t->sealed_buf, want);
			if (!e)
				t->sealed_queued += want;
		}
		if (!e && t->commit_req && !t->commit_sent && t->cursor == t->tail &&
		    (t->sealed_fd < 0 || t->sealed_queued == t->sealed_len)) {
			uint8_t b[56];
			size_t bl = 48;

			ferry_stats6_encode(b, 48, &t->cp);
			if (t->sealed_fd >= 0) {
				for (int i = 0; i < 8; i++)
					b[48 + i] = (uint8_t)(t->sealed_len >> (8 * i));
				bl = 56;
			}
			e = queue_on(t, 0, FM_COMMIT, b, bl, NULL, 0);
			t->commit_sent = 1;
		}
	}
	pthread_mutex_unlock(&t->mu);
	if (e)
		return e;
	for (int k = 0; k < t->nst; k++) {
		if ((e = ferry_conn_flush(t->st[k].c)) < 0)
			return e;
		if (t->st[k].c->rate_wait_ms && t->st[k].c->rate_wait_ms < ms)
			ms = t->st[k].c->rate_wait_ms;
		if (ferry_conn_pending(t->st[k].c))
			ms = 0;
		pf[k].fd = t->st[k].c->fd;
		pf[k].events = ferry_conn_events(t->st[k].c);
	}
	if (t->abort_sent) {
		ferry_conn_send_wait(t->st[0].c, ferry_mono_seconds() + 2);
		return DONE;
	}
	pf[t->nst].fd = t->efd;
	pf[t->nst].events = POLLIN;
	if (poll(pf, (nfds_t)t->nst + 1, ms) < 0 && errno != EINTR)
		return ferry_error(FERRY_E_NET, "poll: %s", strerror(errno));
	if (pf[t->nst].revents & POLLIN) {
		uint64_t v;

		if (read(t->efd, &v, sizeof(v)) < 0) {
			/* only a wake-up */
		}
	}
	for (int k = 0; k < t->nst; k++) {
		while ((e = ferry_conn_recv(t->st[k].c)) == 1)
			if ((e = on_frame(t, k)) != 0)
				return e;
		if (e < 0)
			return e;
	}
	now = ferry_mono_seconds();
	for (int k = 0; k < t->nst; k++) {
		struct stream *s = &t->st[k];
		int waiting = s->bytes != s->ack.bytes ||
			      (k == 0 && (t->qn || t->commit_sent));

		if (waiting && now - s->c->last_rx > timeout)
			return ferry_error(FERRY_E_TIMEOUT,
					   "no answer from the mover at %s for %.0f s",
					   s->c->peer, now - s->c->last_rx);
		if (now - s->last_tx > (timeout / 3 < 20 ? timeout / 3 : 20)) {
			uint8_t nonce[8] = { 0 };

			if ((e = queue_on(t, k, FM_PING, nonce, 8, NULL, 0)) != 0)
				return e;
		}
	}
	return 0;
}

static void *io_main(void *arg)
{
	struct tremote *t = arg;
	double retry = rstore_retry(t->rs);

	for (;;) {
		int e, stop;

		pthread_mutex_lock(&t->mu);
		stop = t->err || t->committed || (t->abort_req && !t->connected);
		pthread_mutex_unlock(&t->mu);
		if (stop)
			break;
		if (!t->connected)
			e = session_connect(t);
		else
			e = pump(t);
		if (e == DONE)
			break;
		if (e == 0)
			continue;
		disconnect(t);
		if (!t->lost_since)
			t->lost_since = ferry_mono_seconds();
		if (!rstore_retryable(e) || atomic_load(&ferry_cancelled) ||
		    ferry_mono_seconds() - t->lost_since > retry) {
			char msg[1100];

			if (rstore_retryable(e) && !atomic_load(&ferry_cancelled))
				snprintf(msg, sizeof(msg),
					 "gave up after %.0f s without the mover: %s",
					 ferry_mono_seconds() - t->lost_since,
					 ferry_last_error());
			else
				snprintf(msg, sizeof(msg), "%s", ferry_last_error());
			pthread_mutex_lock(&t->mu);
			fail_locked(t, atomic_load(&ferry_cancelled) ? FERRY_E_INTERRUPTED
								   : e, msg);
			pthread_mutex_unlock(&t->mu);
			break;
		}
		pthread_mutex_lock(&t->mu);
		stop = t->abort_req;
		pthread_mutex_unlock(&t->mu);
		if (stop)
			break;
		rstore_backoff(t->attempt++, &t->stop);
	}
	disconnect(t);
	return NULL;
}

/* ---- the target operations -------------------------------------------- */

static int tr_begin(struct ferry_target *tg, const struct ferry_point *p)
{
	struct tremote *t = tg->state;
	int e;

	if (t->repo->encrypted) {
		/* The mover keeps BEGIN's header in its session file: give it
		 * the sizes it checks against, not the name, source or notes
		 * (those travel sealed). */
		struct ferry_point blank;

		if ((e = ferry_repo_need_key(t->repo)) != 0)
			return e;
		blank = *p;
		snprintf(blank.name, sizeof(blank.name), "sealed");
		blank.source[0] = blank.extra[0] = 0;
		blank.created_ns = 0;
		t->sealed_fd = memfd_create("ferry-sealed-manifest", MFD_CLOEXEC);
		t->sealed_buf = malloc(FERRY_PIECE_MAX);
		if (t->sealed_fd < 0 || !t->sealed_buf)
			return ferry_error(FERRY_E_NOMEM, "no memory for the sealed manifest");
		if ((e = ferry_mwriter_begin_fd(t->repo, p, t->sealed_fd, &t->mw)) != 0)
			return e;
		e = ferry_manifest_header_encode(&blank, t->hdr, sizeof(t->hdr),
						 &t->hdr_len);
	} else {
		e = ferry_manifest_header_encode(p, t->hdr, sizeof(t->hdr),
						 &t->hdr_len);
	}
	if (e)
		return e;
	t->p = *p;
	if (pthread_create(&t->io, NULL, io_main, t) != 0)
		return ferry_error(FERRY_E_NOMEM, "cannot start a thread");
	t->io_started = 1;
	pthread_mutex_lock(&t->mu);
	e = 0;
	while (!t->begun && !t->err && e == 0)
		e = wait_news(t);
	if (!e)
		e = t->err ? failed(t) : 0;
	pthread_mutex_unlock(&t->mu);
	return e;
}

static int tr_have(struct ferry_target *tg, const uint8_t h[FERRY_HASH_LEN])
{
	struct tremote *t = tg->state;
	int r;

	/* No round trip here: the I/O thread asks in batches after put. */
	pthread_mutex_lock(&t->mu);
	r = t->err ? failed(t) : known_has(t, h);
	pthread_mutex_unlock(&t->mu);
	return r;
}

/* Wait for room for one more item, and CHUNK more bytes (under t->mu). */
static int room(struct tremote *t, size_t chunk)
{
	int e;

	while (!t->err && (t->tail - t->head >= LOG_CAP ||
			   t->chunk_bytes + chunk > CHUNK_BYTES))
		if ((e = wait_news(t)) != 0)
			return e;
	return t->err ? failed(t) : 0;
}

static int tr_put(struct ferry_target *tg, const uint8_t h[FERRY_HASH_LEN],
		  const void *chunk, size_t len)
{
	struct tremote *t = tg->state;
	struct item *it;
	uint8_t *b;
	int e;

	if (len > t->bufcap || len < FERRY_CHUNK_HDR)
		return ferry_error(FERRY_E_INVAL, "chunk of %zu bytes", len);
	pthread_mutex_lock(&t->mu);
	if ((e = room(t, t->bufcap)) != 0 || known_has(t, h)) {
		pthread_mutex_unlock(&t->mu);
		return e ? e : 1;
	}
	b = t->npool ? t->pool[--t->npool] : NULL;
	t->chunk_bytes += t->bufcap;
	pthread_mutex_unlock(&t->mu);
	if (!b && !(b = malloc(t->bufcap))) {
		pthread_mutex_lock(&t->mu);
		t->chunk_bytes -= t->bufcap;
		pthread_mutex_unlock(&t->mu);
		return FERRY_E_NOMEM;
	}
	memcpy(b, chunk, len);
	pthread_mutex_lock(&t->mu);
	if ((e = room(t, 0)) != 0 || known_has(t, h)) {
		/* Another thread put the same block meanwhile. */
		buf_give(t, b);
		pthread_mutex_unlock(&t->mu);
		return e ? e : 1;
	}
	it = IT(t, t->tail);
	memset(it, 0, sizeof(*it));
	it->type = IT_CHUNK;
	it->state = S_NEW;
	memcpy(it->hash, h, FERRY_HASH_LEN);
	it->buf = b;
	it->len = (uint32_t)len;
	it->raw = ferry_le32(b + 8);
	t->tail++;
	t->unresolved++;
	known_add(t, h);
	pthread_mutex_unlock(&t->mu);
	wake(t);
	return 0;
}

/* put, taking the pipeline's buffer for the log and giving it one from
 * the pool in exchange: no copy of the chunk on the way to the wire. */
static int tr_put_own(struct ferry_target *tg, const uint8_t h[FERRY_HASH_LEN],
		      uint8_t **buf, size_t cap, size_t len)
{
	struct tremote *t = tg->state;
	struct item *it;
	uint8_t *b;
	int e;

	if (cap != t->bufcap)
		return tr_put(tg, h, *buf, len);
	if (len > t->bufcap || len < FERRY_CHUNK_HDR)
		return ferry_error(FERRY_E_INVAL, "chunk of %zu bytes", len);
	pthread_mutex_lock(&t->mu);
	if ((e = room(t, t->bufcap)) != 0 || known_has(t, h)) {
		pthread_mutex_unlock(&t->mu);
		return e ? e : 1;
	}
	b = t->npool ? t->pool[--t->npool] : NULL;
	if (!b) {
		pthread_mutex_unlock(&t->mu);
		if (!(b = malloc(t->bufcap)))
			return FERRY_E_NOMEM;
		pthread_mutex_lock(&t->mu);
		if ((e = room(t, t->bufcap)) != 0 || known_has(t, h)) {
			/* Another thread put the same block meanwhile. */
			pthread_mutex_unlock(&t->mu);
			free(b);
			return e ? e : 1;
		}
	}
	t->chunk_bytes += t->bufcap;
	it = IT(t, t->tail);
	memset(it, 0, sizeof(*it));
	it->type = IT_CHUNK;
	it->state = S_NEW;
	memcpy(it->hash, h, FERRY_HASH_LEN);
	it->buf = *buf;
	it->len = (uint32_t)len;
	it->raw = ferry_le32(it->buf + 8);
	*buf = b;
	t->tail++;
	t->unresolved++;
	known_add(t, h);
	pthread_mutex_unlock(&t->mu);
	wake(t);
	return 0;
}

static int tr_record(struct ferry_target *tg, int kind,
		     const uint8_t h[FERRY_HASH_LEN])
{
	struct tremote *t = tg->state;
	struct item *it;
	int e;

	if (t->mw && (e = ferry_mwriter_add(t->mw, kind, h)) != 0)
		return e;
	pthread_mutex_lock(&t->mu);
	if ((e = room(t, 0)) != 0) {
		pthread_mutex_unlock(&t->mu);
		return e;
	}
	it = IT(t, t->tail);
	memset(it, 0, sizeof(*it));
	it->type = IT_RECORD;
	it->state = S_NEW;
	it->kind = (uint8_t)kind;
	if (kind == FERRY_ENTRY_DATA || kind == FERRY_ENTRY_DELTA)
		memcpy(it->hash, h, FERRY_HASH_LEN);
	it->block = t->next_block++;
	t->tail++;
	pthread_mutex_unlock(&t->mu);
	wake(t);
	return 0;
}

static int tr_settle(struct ferry_target *tg, struct ferry_backup_result *res)
{
	struct tremote *t = tg->state;
	int e;

	pthread_mutex_lock(&t->mu);
	e = 0;
	while (!t->err && t->unresolved && e == 0)
		e = wait_news(t);
	if (!e)
		e = t->err ? failed(t) : 0;
	if (e == 0) {
		res->blocks_new -= t->skip_blocks;
		res->blocks_reused += t->skip_blocks;
		res->bytes_new -= t->skip_raw;
		res->bytes_reused += t->skip_raw;
		res->bytes_stored -= t->skip_stored;
	}
	pthread_mutex_unlock(&t->mu);
	return e;
}

static int tr_commit(struct ferry_target *tg, const struct ferry_point *p)
{
	struct tremote *t = tg->state;
	int e;

	if (t->mw) {
		struct stat st;

		if ((e = ferry_mwriter_commit(t->mw, p)) != 0)
			return e;
		if (fstat(t->sealed_fd, &st) < 0)
			return ferry_error(FERRY_E_IO, "stat the sealed manifest");
		pthread_mutex_lock(&t->mu);
		t->sealed_len = (uint64_t)st.st_size;
		pthread_mutex_unlock(&t->mu);
	}
	pthread_mutex_lock(&t->mu);
	t->cp = *p;
	t->commit_req = 1;
	pthread_mutex_unlock(&t->mu);
	wake(t);
	pthread_mutex_lock(&t->mu);
	e = 0;
	while (!t->err && !t->committed && e == 0)
		e = wait_news(t);
	if (t->committed)
		e = 0; /* done, even if interrupted meanwhile */
	else if (!e)
		e = failed(t);
	pthread_mutex_unlock(&t->mu);
	return e;
}

static void tr_free(struct ferry_target *tg)
{
	struct tremote *t;

	if (!tg)
		return;
	t = tg->state;
	if (t->io_started) {
		pthread_mutex_lock(&t->mu);
		if (!t->committed)
			t->abort_req = 1; /* the mover drops the session */
		pthread_mutex_unlock(&t->mu);
		atomic_store(&t->stop, 1);
		wake(t);
		pthread_join(t->io, NULL);
	}
	for (uint64_t s = t->head; s < t->tail; s++)
		free(IT(t, s)->buf);
	for (size_t i = 0; i < t->npool; i++)
		free(t->pool[i]);
	free(t->pool);
	free(t->log);
	free(t->known);
	free(t->q);
	ferry_mwriter_free(t->mw);
	if (t->sealed_fd >= 0)
		close(t->sealed_fd);
	free(t->sealed_buf);
	if (t->efd >= 0)
		close(t->efd);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
	free(tg);
}

static const struct ferry_target_ops tremote_ops = {
	.begin = tr_begin,
	.have = tr_have,
	.put = tr_put,
	.put_own = tr_put_own,
	.record = tr_record,
	.settle = tr_settle,
	.commit = tr_commit,
	.free = tr_free,
};

int ferry_target_remote_new(struct ferry_repo *r, struct ferry_target **out)
{
	struct ferry_target *tg = calloc(1, sizeof(*tg));
	struct tremote *t = calloc(1, sizeof(*t));

	if (!tg || !t)
		goto nomem;
	t->repo = r;
	t->rs = r->state;
	t->efd = -1;
	t->sealed_fd = -1;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	t->nst = t->rs->o.streams > 0 ? t->rs->o.streams : 1;
	if (t->nst > STREAMS_MAX)
		t->nst = STREAMS_MAX;
	t->bufcap = ferry_chunk_bound(r->block_size);
	t->pool_cap = CHUNK_BYTES / t->bufcap + 1;
	t->log = calloc(LOG_CAP, sizeof(*t->log));
	t->known = calloc(KNOWN, FERRY_HASH_LEN);
	t->q = calloc(QMAX, sizeof(*t->q));
	t->pool = calloc(t->pool_cap, sizeof(*t->pool));
	t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!t->log || !t->known || !t->q || !t->pool || t->efd < 0) {
		tg->state = t;
		tr_free(tg);
		return FERRY_E_NOMEM;
	}
	tg->ops = &tremote_ops;
	tg->state = t;
	*out = tg;
	return 0;
nomem:
	free(tg);
	free(t);
	return FERRY_E_NOMEM;
}
