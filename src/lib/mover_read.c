/* mover_read.c - reading a repository through the target-side mover: the
 * requests a connection in READY may make (INFO, CHUNK_HAS, CHUNK_GET,
 * CHUNK_HEAD, CHUNK_LIST, POINT_LIST, POINT_GET, POINT_STATS, KEYS,
 * FEATURES; docs/protocol.md "Reading a repository").  None of them
 * changes anything.  What the repository cannot give is answered with
 * ERROR; a malformed request ends the connection. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mover.h"

static int answer_error(struct mconn *mc, int e)
{
	uint8_t b[8 + FERRY_MSG_MAX];
	size_t n = ferry_error_encode(b, sizeof(b), e, ferry_last_error());

	return ferry_conn_queue(mc->c, FM_ERROR, b, n, NULL, 0);
}

struct lister {
	struct mconn *mc;
	uint8_t *buf;
	size_t n;
	uint64_t total;
	double deadline;
};

static int list_flush(struct lister *l, uint16_t type, size_t entry)
{
	int e;

	l->buf[0] = (uint8_t)l->n;
	l->buf[1] = (uint8_t)(l->n >> 8);
	if ((e = ferry_conn_queue(l->mc->c, type, l->buf, 2 + l->n * entry, NULL,
				  0)) != 0 ||
	    (e = ferry_conn_send_wait(l->mc->c, l->deadline)) != 0)
		return e;
	l->n = 0;
	return 0;
}

static int list_chunk(const uint8_t h[FERRY_HASH_LEN], uint64_t size, void *arg)
{
	struct lister *l = arg;
	uint8_t *e = l->buf + 2 + l->n * (FERRY_HASH_LEN + 8);

	memcpy(e, h, FERRY_HASH_LEN);
	for (int i = 0; i < 8; i++)
		e[FERRY_HASH_LEN + i] = (uint8_t)(size >> (8 * i));
	l->total++;
	if (++l->n == FERRY_LIST_MAX)
		return list_flush(l, FM_CHUNK_LIST_R, FERRY_HASH_LEN + 8);
	return 0;
}

static int list_point(const char *id, void *arg)
{
	struct lister *l = arg;

	ferry_pid_from_hex(id, l->buf + 2 + l->n * FERRY_PID_LEN);
	l->total++;
	if (++l->n == FERRY_LIST_MAX)
		return list_flush(l, FM_POINT_LIST_R, FERRY_PID_LEN);
	return 0;
}

static int point_info(const struct ferry_point *p, void *arg)
{
	struct lister *l = arg;
	uint8_t b[1 + 2 + FERRY_MANIFEST_HEADER_MAX + 48];
	size_t n = ferry_point_info_encode(b, sizeof(b), p);
	int e;

	if (!n)
		return 0; /* nothing a source could use */
	if ((e = ferry_conn_queue(l->mc->c, FM_POINT_INFO, b, n, NULL, 0)) != 0 ||
	    (e = ferry_conn_send_wait(l->mc->c, l->deadline)) != 0)
		return e;
	l->total++;
	return 0;
}

static int end(struct mconn *mc, uint64_t total)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(total >> (8 * i));
	return ferry_conn_queue(mc->c, FM_END, b, 8, NULL, 0);
}

static int send_point(struct mconn *mc, const uint8_t *p, double deadline)
{
	struct ferry_repo *repo = mc->r->repo;
	char id[FERRY_ID_LEN + 1];
	uint8_t *buf;
	uint64_t off = 0;
	int fd, e;

	ferry_pid_to_hex(p, id);
	if ((e = repo->ops->point_open(repo, id, &fd)) != 0)
		return answer_error(mc, e);
	if (!(buf = malloc(FERRY_PIECE_MAX))) {
		close(fd);
		return FERRY_E_NOMEM;
	}
	for (;;) {
		ssize_t n = ferry_pread_full(fd, buf, FERRY_PIECE_MAX, (off_t)off);

		if (n < 0) {
			e = ferry_error(FERRY_E_IO, "read manifest %s: %s", id,
					strerror((int)-n));
			break;
		}
		if (n == 0) {
			e = end(mc, off);
			break;
		}
		off += (uint64_t)n;
		if (off > FERRY_REMOTE_MANIFEST_MAX) {
			e = ferry_error(FERRY_E_INVAL, "manifest %s is too large to send",
					id);
			break;
		}
		if ((e = ferry_conn_queue(mc->c, FM_POINT_DATA, buf, (size_t)n,
					  NULL, 0)) != 0 ||
		    (e = ferry_conn_send_wait(mc->c, deadline)) != 0)
			break;
	}
	free(buf);
	close(fd);
	return e;
}

int mover_read_request(struct mconn *mc, unsigned type, const uint8_t *p,
		       size_t n)
{
	struct ferry_repo *repo = mc->r->repo;
	double deadline = ferry_mono_seconds() +
			  (mc->m->o->idle_timeout > 0 ? mc->m->o->idle_timeout : 120);
	struct lister l = { mc, NULL, 0, 0, deadline };
	uint8_t b[64];
	size_t len;
	uint32_t max;
	int e;

	switch (type) {
	case FM_INFO: {
		struct ferry_repo_info i;
		struct ferry_wr w;

		if (n)
			return ferry_error(FERRY_E_PROTO, "malformed INFO message");
		if ((e = ferry_repo_get_info(repo, &i)) != 0)
			return answer_error(mc, e);
		ferry_wr_init(&w, b, sizeof(b));
		ferry_wr_u64(&w, i.chunk_count);
		ferry_wr_u64(&w, i.stored_bytes);
		ferry_wr_u64(&w, i.chunk_raw_bytes);
		ferry_wr_u64(&w, i.point_count);
		ferry_wr_u64(&w, i.logical_bytes);
		ferry_wr_u64(&w, i.referenced_bytes);
		return ferry_conn_queue(mc->c, FM_INFO_R, b, 48, NULL, 0);
	}
	case FM_CHUNK_HAS:
		if (n != FERRY_HASH_LEN)
			return ferry_error(FERRY_E_PROTO, "malformed CHUNK_HAS message");
		if ((e = repo->ops->has_chunk(repo, p)) < 0)
			return answer_error(mc, e);
		b[0] = (uint8_t)e;
		return ferry_conn_queue(mc->c, FM_CHUNK_HAS_R, b, 1, NULL, 0);
	case FM_CHUNK_GET:
	case FM_CHUNK_HEAD: {
		size_t cap = ferry_chunk_bound(repo->block_size);
		uint8_t *buf;

		if (n != FERRY_HASH_LEN + 4)
			return ferry_error(FERRY_E_PROTO, "malformed %s message",
					   ferry_msg_name(type));
		max = ferry_le32(p + FERRY_HASH_LEN);
		if (type == FM_CHUNK_HEAD && (max == 0 || max > 4096))
			return ferry_error(FERRY_E_PROTO, "CHUNK_HEAD of %u bytes", max);
		if (!(buf = malloc(cap)))
			return FERRY_E_NOMEM;
		if (type == FM_CHUNK_HEAD) {
			e = repo->ops->get_chunk_head(repo, p, buf, max);
			len = max;
		} else {
			e = repo->ops->get_chunk(repo, p, buf, cap, &len);
			if (e == 0 && len > max)
				e = ferry_error(FERRY_E_INVAL,
						"chunk is larger than the %u bytes asked for",
						max);
		}
		e = e ? answer_error(mc, e)
		      : ferry_conn_queue(mc->c, FM_CHUNK_DATA, buf, len, NULL, 0);
		free(buf);
		return e;
	}
	case FM_CHUNK_LIST:
	case FM_POINT_LIST:
		if (n)
			return ferry_error(FERRY_E_PROTO, "malformed %s message",
					   ferry_msg_name(type));
		if (!(l.buf = malloc(2 + FERRY_LIST_MAX * (FERRY_HASH_LEN + 8))))
			return FERRY_E_NOMEM;
		if (type == FM_CHUNK_LIST) {
			e = repo->ops->list_chunks(repo, list_chunk, &l);
			if (e == 0 && l.n)
				e = list_flush(&l, FM_CHUNK_LIST_R, FERRY_HASH_LEN + 8);
		} else {
			e = repo->ops->point_list(repo, list_point, &l);
			if (e == 0 && l.n)
				e = list_flush(&l, FM_POINT_LIST_R, FERRY_PID_LEN);
		}
		free(l.buf);
		if (e == FERRY_E_NET || e == FERRY_E_TIMEOUT)
			return e;
		return e ? answer_error(mc, e) : end(mc, l.total);
	case FM_POINT_STATS:
		if (n)
			return ferry_error(FERRY_E_PROTO, "malformed POINT_STATS message");
		/* Each manifest is checked here, and only what a listing
		 * needs travels. */
		e = ferry_points_list(repo, NULL, point_info, &l);
		if (e == FERRY_E_NET || e == FERRY_E_TIMEOUT)
			return e;
		return e ? answer_error(mc, e) : end(mc, l.total);
	case FM_POINT_GET:
		if (n != FERRY_PID_LEN)
			return ferry_error(FERRY_E_PROTO, "malformed POINT_GET message");
		return send_point(mc, p, deadline);
	case FM_KEYS: {
		/* The wrapped key (useless without the passphrase) so that
		 * the source can seal; empty for a plain repository. */
		char text[FERRY_KEYS_MAX];
		size_t tl = 0;

		if (n)
			return ferry_error(FERRY_E_PROTO, "malformed KEYS message");
		if ((e = ferry_repo_key_text(repo, text, sizeof(text), &tl)) != 0)
			return answer_error(mc, e);
		return ferry_conn_queue(mc->c, FM_KEYS_R, text, tl, NULL, 0);
	}
	case FM_FEATURES: {
		/* What a client must know of to read or write kind-2 entries
		 * (a mover without FEATURES: none of them). */
		static const char delta[] = FERRY_FEATURE_DELTA "\n";

		if (n)
			return ferry_error(FERRY_E_PROTO, "malformed FEATURES message");
		return ferry_conn_queue(mc->c, FM_FEATURES_R, delta,
					ferry_repo_delta(repo) ? sizeof(delta) - 1 : 0,
					NULL, 0);
	}
	default:
		return ferry_error(FERRY_E_PROTO, "unexpected %s", ferry_msg_name(type));
	}
}
