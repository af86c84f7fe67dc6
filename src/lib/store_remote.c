/* store_remote.c - the repository backend for ferry://HOST:PORT/REPO: the
 * store operations (chunks, manifests, listings, totals) as requests to a
 * `ferry mover` over a pool of authenticated connections, each retried on
 * a fresh connection when the link breaks, so restore, points, verify and
 * info work remotely; backups go through the mover's own session. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "remote.h"

static struct rstore *RS(struct ferry_repo *r)
{
	return r->state;
}

double rstore_timeout(const struct rstore *rs)
{
	return rs->o.timeout_seconds > 0 ? rs->o.timeout_seconds : 60;
}

double rstore_retry(const struct rstore *rs)
{
	return rs->o.retry_seconds > 0 ? rs->o.retry_seconds : 600;
}

int rstore_retryable(int e)
{
	return e == FERRY_E_NET || e == FERRY_E_TIMEOUT;
}

void rstore_backoff(int attempt, const atomic_int *stop)
{
	double d = 0.1, until;
	uint8_t j = 128;

	/* A link that broke once is tried again at once; then 0.2 s,
	 * doubling to 5 s. */
	if (attempt == 0)
		return;
	for (int i = 1; i < attempt && d < 5; i++)
		d *= 2;
	if (d > 5)
		d = 5;
	ferry_random(&j, 1);
	d *= 0.8 + 0.4 * j / 255.0; /* jitter: movers restarted together */
	until = ferry_mono_seconds() + d;
	while (ferry_mono_seconds() < until) {
		struct timespec ts = { 0, 20 * 1000000L };

		if ((stop && atomic_load(stop)) || atomic_load(&ferry_cancelled))
			return;
		nanosleep(&ts, NULL);
	}
}

int rstore_connect(struct rstore *rs, struct ferry_conn **out)
{
	double t = rstore_timeout(rs), deadline;
	struct ferry_welcome w;
	struct ferry_conn *c;
	char peer[80];
	uint8_t b[512];
	size_t n;
	int e, fd, loop = 0;
	uint32_t lim;

	deadline = ferry_mono_seconds() + (t < 30 ? t : 30);
	if ((e = ferry_tcp_connect(rs->url.host, rs->url.port, deadline, &fd, peer,
				   sizeof(peer), &loop)) != 0)
		return e;
	if (!rs->ctx && !loop) {
		close(fd);
		return ferry_error(FERRY_E_INVAL,
				   "--insecure (plain TCP) is for loopback only; %s is not",
				   peer);
	}
	if (!(c = ferry_conn_new(fd, peer))) {
		close(fd);
		return FERRY_E_NOMEM;
	}
	c->rate = &rs->rate;
	if (rs->ctx && (e = ferry_tls_connect(c, rs->ctx, rs->url.host, deadline)) != 0)
		goto fail;
	n = ferry_hello_encode(b, sizeof(b), rs->url.repo, "ferry " FERRY_VERSION_STRING);
	if ((e = ferry_conn_call(c, FM_HELLO, b, n, NULL, 0, deadline)) != 0)
		goto fail;
	if (c->rx_type != FM_WELCOME) {
		e = ferry_error(FERRY_E_PROTO, "mover answered HELLO with %s",
				ferry_msg_name(c->rx_type));
		goto fail;
	}
	if ((e = ferry_welcome_parse(c->rx, c->rx_len, &w)) != 0)
		goto fail;
	pthread_mutex_lock(&rs->mu);
	if (rs->w.version && memcmp(rs->w.repo_id, w.repo_id, 32)) {
		pthread_mutex_unlock(&rs->mu);
		e = ferry_error(FERRY_E_NOTREPO,
				"the mover at %s now serves a different repository as %s (id %s, was %s)",
				peer, rs->url.repo, w.repo_id, rs->w.repo_id);
		goto fail;
	}
	rs->w = w;
	pthread_mutex_unlock(&rs->mu);
	c->block_size = w.block_size;
	lim = ferry_msg_limit(FM_CHUNK_DATA, w.block_size);
	c->max_frame = lim > FERRY_FRAME_CTRL ? lim : FERRY_FRAME_CTRL;
	if (c->max_frame < FERRY_PIECE_MAX)
		c->max_frame = FERRY_PIECE_MAX;
	atomic_fetch_add(&rs->connects, 1);
	*out = c;
	return 0;
fail:
	rstore_close(rs, c);
	return e;
}

void rstore_close(struct rstore *rs, struct ferry_conn *c)
{
	if (!c)
		return;
	atomic_fetch_add(&rs->bytes_sent, c->bytes_out);
	atomic_fetch_add(&rs->bytes_received, c->bytes_in);
	ferry_conn_free(c);
}

/* ---- a pool of connections for requests -------------------------------- */

static int pool_get(struct rstore *rs, struct ferry_conn **c)
{
	int e;

	pthread_mutex_lock(&rs->mu);
	if (rs->nidle) {
		*c = rs->idle[--rs->nidle];
		pthread_mutex_unlock(&rs->mu);
		return 0;
	}
	rs->nopen++;
	pthread_mutex_unlock(&rs->mu);
	if ((e = rstore_connect(rs, c)) != 0) {
		pthread_mutex_lock(&rs->mu);
		rs->nopen--;
		pthread_mutex_unlock(&rs->mu);
	}
	return e;
}

static void pool_put(struct rstore *rs, struct ferry_conn *c, int ok)
{
	pthread_mutex_lock(&rs->mu);
	if (ok && !c->broken && !ferry_conn_backlog(c) && rs->nidle < RS_POOL_MAX) {
		rs->idle[rs->nidle++] = c;
		pthread_mutex_unlock(&rs->mu);
		return;
	}
	rs->nopen--;
	pthread_mutex_unlock(&rs->mu);
	rstore_close(rs, c);
}

/* What a request's answer is: frames of TYPE, each handed to FRAME (1 for
 * more frames, 0 when complete, < 0 on error); with LIST, frames until an
 * END, which FRAME is handed too.  RESTART, when set, starts over before a
 * retry. */
struct answer {
	uint16_t type;
	int list;
	int (*frame)(struct ferry_conn *c, void *arg);
	int (*restart)(void *arg);
};

static int expect(struct ferry_conn *c, uint16_t type)
{
	if (c->rx_type != type)
		return ferry_error(FERRY_E_PROTO, "mover answered with %s, expected %s",
				   ferry_msg_name(c->rx_type), ferry_msg_name(type));
	return 0;
}

static int rcall(struct rstore *rs, uint16_t type, const void *a, size_t alen,
		 const struct answer *ans, void *arg, int retry)
{
	double lost = 0;
	int attempt = 0, e;

	for (;;) {
		struct ferry_conn *c = NULL;
		int answered = 0;

		e = pool_get(rs, &c);
		if (e == 0) {
			double deadline = ferry_mono_seconds() + rstore_timeout(rs);

			if ((e = ferry_conn_queue(c, type, a, alen, NULL, 0)) == 0)
				e = ferry_conn_send_wait(c, deadline);
			while (e == 0) {
				if ((e = ferry_conn_recv_wait(c, deadline)) != 0)
					break;
				if (c->rx_type == FM_ERROR) {
					e = ferry_conn_peer_error(c);
					answered = 1;
					break;
				}
				if (c->rx_type == FM_GOODBYE) {
					e = ferry_error(FERRY_E_NET,
							"the mover at %s is shutting down",
							c->peer);
					c->broken = 1;
					break;
				}
				if (!(ans->list && c->rx_type == FM_END) &&
				    (e = expect(c, ans->type)) != 0)
					break;
				e = ans->frame(c, arg);
				if (e <= 0) {
					answered = e == 0;
					break;
				}
				e = 0;
				deadline = ferry_mono_seconds() + rstore_timeout(rs);
			}
			pool_put(rs, c, answered);
		}
		if (e == 0 || !retry || !rstore_retryable(e) ||
		    atomic_load(&ferry_cancelled))
			return e;
		if (!lost)
			lost = ferry_mono_seconds();
		else if (ferry_mono_seconds() - lost > rstore_retry(rs))
			return e;
		/* A pooled connection may have gone stale: the first retry
		 * is immediate, the next ones back off. */
		rstore_backoff(attempt++, NULL);
		if (ans->restart)
			ans->restart(arg);
	}
}

/* ---- chunks ----------------------------------------------------------- */

struct ans {
	uint8_t *buf;
	size_t cap, len;
	int value;
	ferry_chunk_list_cb ccb;
	ferry_id_list_cb icb;
	void *arg;
	uint64_t total;
	int fd;
	struct ferry_point *pts;
	size_t npts, cappts;
};

static int has_answer(struct ferry_conn *c, void *arg)
{
	struct ans *a = arg;

	if (c->rx_len != 1 || c->rx[0] > 1)
		return ferry_error(FERRY_E_PROTO, "malformed CHUNK_HAS_R message");
	a->value = c->rx[0];
	return 0;
}

static int remote_has_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN])
{
	struct ans a = { 0 };
	static const struct answer ans = { FM_CHUNK_HAS_R, 0, has_answer, NULL };
	int e = rcall(RS(r), FM_CHUNK_HAS, h, FERRY_HASH_LEN, &ans, &a, 1);

	return e ? e : a.value;
}

static int data_answer(struct ferry_conn *c, void *arg)
{
	struct ans *a = arg;

	if (c->rx_len > a->cap)
		return ferry_error(FERRY_E_PROTO, "mover sent a chunk larger than asked");
	memcpy(a->buf, c->rx, c->rx_len);
	a->len = c->rx_len;
	return 0;
}

static int get(struct ferry_repo *r, uint16_t type, const uint8_t *h,
	       void *buf, size_t cap, size_t *len)
{
	static const struct answer ans = { FM_CHUNK_DATA, 0, data_answer, NULL };
	uint8_t req[FERRY_HASH_LEN + 4];
	struct ans a = { 0 };
	int e;

	memcpy(req, h, FERRY_HASH_LEN);
	ferry_put_le32(req + FERRY_HASH_LEN, (uint32_t)(cap > UINT32_MAX ? UINT32_MAX : cap));
	a.buf = buf;
	a.cap = cap;
	if ((e = rcall(RS(r), type, req, sizeof(req), &ans, &a, 1)) != 0)
		return e;
	*len = a.len;
	return 0;
}

static int remote_get_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN],
			    void *buf, size_t cap, size_t *len)
{
	return get(r, FM_CHUNK_GET, h, buf, cap, len);
}

static int remote_get_chunk_head(struct ferry_repo *r,
				 const uint8_t h[FERRY_HASH_LEN], void *buf,
				 size_t n)
{
	size_t len;
	int e;

	if (n == 0 || n > 4096)
		return ferry_error(FERRY_E_INVAL, "chunk head of %zu bytes", n);
	if ((e = get(r, FM_CHUNK_HEAD, h, buf, n, &len)) != 0)
		return e;
	if (len != n)
		return ferry_error(FERRY_E_CORRUPT, "chunk head is short");
	return 0;
}

/* A listing's frame: 1 with *N records of SIZE bytes each left in RD, 0
 * at the listing's END, or an error. */
static int list_frame(const struct ferry_conn *c, size_t size, struct ferry_rd *rd, uint16_t *n)
{
	if (c->rx_type == FM_END)
		return 0;
	ferry_rd_init(rd, c->rx, c->rx_len);
	if (ferry_rd_u16(rd, n) || *n > FERRY_LIST_MAX || rd->left != (size_t)*n * size)
		return ferry_error(FERRY_E_PROTO, "malformed %s message",
				   ferry_msg_name(c->rx_type));
	return 1;
}

static int chunk_list_answer(struct ferry_conn *c, void *arg)
{
	struct ans *a = arg;
	struct ferry_rd rd;
	uint16_t n;
	int e;

	if ((e = list_frame(c, FERRY_HASH_LEN + 8, &rd, &n)) <= 0)
		return e;
	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *h = ferry_rd_ptr(&rd, FERRY_HASH_LEN);
		uint64_t size;

		ferry_rd_u64(&rd, &size);
		if ((e = a->ccb(h, size, a->arg)) != 0)
			return e;
	}
	return 1;
}

static int remote_list_chunks(struct ferry_repo *r, ferry_chunk_list_cb cb,
			      void *arg)
{
	static const struct answer ans = { FM_CHUNK_LIST_R, 1, chunk_list_answer, NULL };
	struct ans a = { 0 };

	a.ccb = cb;
	a.arg = arg;
	/* Not retried: the callback has seen part of the list already. */
	return rcall(RS(r), FM_CHUNK_LIST, NULL, 0, &ans, &a, 0);
}

/* ---- restore points ---------------------------------------------------- */

/* Before a retry: the listing starts over. */
static int points_restart(void *arg)
{
	struct ans *a = arg;

	a->npts = 0;
	return 0;
}

/* Room for one more point in A. */
static int points_room(struct ans *a)
{
	if (a->npts == a->cappts) {
		size_t nc = a->cappts ? a->cappts * 2 : 64;
		void *nv;

		if (nc > (4u << 20))
			return ferry_error(FERRY_E_PROTO, "mover lists too many restore points");
		if (!(nv = realloc(a->pts, nc * sizeof(*a->pts))))
			return FERRY_E_NOMEM;
		a->pts = nv;
		a->cappts = nc;
	}
	return 0;
}

static int point_info_answer(struct ferry_conn *c, void *arg)
{
	struct ans *a = arg;
	int e;

	if (c->rx_type == FM_END)
		return 0;
	if ((e = points_room(a)) != 0)
		return e;
	if ((e = ferry_point_info_parse(c->rx, c->rx_len, &a->pts[a->npts])) != 0)
		return e;
	a->npts++;
	return 1;
}

/* Encrypted repository: the mover cannot open the sealed manifests, so
 * it lists ids only (POINT_LIST) and this side fetches and opens each. */
static int point_ids_answer(struct ferry_conn *c, void *arg)
{
	struct ans *a = arg;
	struct ferry_rd rd;
	uint16_t n;
	int e;

	if ((e = list_frame(c, FERRY_PID_LEN, &rd, &n)) <= 0)
		return e;
	for (uint16_t i = 0; i < n; i++) {
		if ((e = points_room(a)) != 0)
			return e;
		memset(&a->pts[a->npts], 0, sizeof(a->pts[a->npts]));
		ferry_pid_to_hex(ferry_rd_ptr(&rd, FERRY_PID_LEN), a->pts[a->npts].id);
		a->npts++;
	}
	return 1;
}

/* One request lists every point with its header, checked by the mover
 * (a listing does not fetch manifests); point_stat answers from it. */
static int remote_point_list(struct ferry_repo *r, ferry_id_list_cb cb, void *arg)
{
	static const struct answer ids_ans = { FM_POINT_LIST_R, 1, point_ids_answer, points_restart };
	static const struct answer info_ans = { FM_POINT_INFO, 1, point_info_answer, points_restart };
	struct rstore *rs = RS(r);
	struct ans a = { 0 };
	char (*ids)[FERRY_ID_LEN + 1] = NULL;
	size_t n;
	int e = r->encrypted
		? rcall(rs, FM_POINT_LIST, NULL, 0, &ids_ans, &a, 1)
		: rcall(rs, FM_POINT_STATS, NULL, 0, &info_ans, &a, 1);

	if (e) {
		free(a.pts);
		return e;
	}
	n = a.npts;
	if (n && !(ids = calloc(n, sizeof(*ids)))) {
		free(a.pts);
		return FERRY_E_NOMEM;
	}
	for (size_t i = 0; i < n; i++)
		memcpy(ids[i], a.pts[i].id, sizeof(ids[i]));
	pthread_mutex_lock(&rs->mu);
	free(rs->listed);
	rs->listed = r->encrypted ? NULL : a.pts; /* ids only: not headers */
	rs->nlisted = r->encrypted ? 0 : n;
	pthread_mutex_unlock(&rs->mu);
	if (r->encrypted)
		free(a.pts);
	for (size_t i = 0; e == 0 && i < n; i++)
		e = cb(ids[i], arg);
	free(ids);
	return e;
}

static int remote_point_stat(struct ferry_repo *r, const char *id,
			     struct ferry_point *p)
{
	struct rstore *rs = RS(r);
	struct ferry_mreader *m;
	int found = 0, e;

	pthread_mutex_lock(&rs->mu);
	for (size_t i = 0; i < rs->nlisted; i++)
		if (!strcmp(rs->listed[i].id, id)) {
			*p = rs->listed[i];
			found = 1;
			break;
		}
	pthread_mutex_unlock(&rs->mu);
	if (found)
		return p->corrupt ? ferry_error(FERRY_E_CORRUPT,
						"manifest of restore point %s is damaged", id)
				  : 0;
	/* Not in the last listing: fetch and check it here. */
	if ((e = ferry_mreader_open(r, id, &m, p)) == 0)
		ferry_mreader_free(m);
	return e;
}

/* Before a retry: the manifest starts over. */
static int point_data_restart(void *arg)
{
	struct ans *a = arg;

	a->total = 0;
	return ftruncate(a->fd, 0) < 0 ? FERRY_E_IO : 0;
}

static int point_data_answer(struct ferry_conn *c, void *arg)
{
	struct ans *a = arg;
	uint64_t total;
	int e;

	if (c->rx_type == FM_END) {
		struct ferry_rd rd;

		ferry_rd_init(&rd, c->rx, c->rx_len);
		if (ferry_rd_u64(&rd, &total) || total != a->total)
			return ferry_error(FERRY_E_PROTO,
					   "manifest transfer ended at %llu bytes, mover says %llu",
					   (unsigned long long)a->total,
					   (unsigned long long)total);
		return 0;
	}
	if (a->total + c->rx_len > FERRY_REMOTE_MANIFEST_MAX)
		return ferry_error(FERRY_E_INVAL, "remote manifest is larger than %llu bytes",
				   (unsigned long long)FERRY_REMOTE_MANIFEST_MAX);
	if ((e = ferry_pwrite_all(a->fd, c->rx, c->rx_len, (off_t)a->total)) != 0)
		return ferry_error(ferry_errno_code(-e, FERRY_E_IO),
				   "keep remote manifest in memory: %s", strerror(-e));
	a->total += c->rx_len;
	return 1;
}

static int remote_point_open(struct ferry_repo *r, const char *id, int *fd)
{
	static const struct answer ans = { FM_POINT_DATA, 1, point_data_answer, point_data_restart };
	struct rstore *rs = RS(r);
	uint8_t pid[FERRY_PID_LEN];
	struct ans a = { 0 };
	int e, slot;

	if (ferry_pid_from_hex(id, pid))
		return ferry_error(FERRY_E_NOTFOUND, "restore point %s not found", id);
	pthread_mutex_lock(&rs->mu);
	for (int i = 0; i < RS_CACHE; i++)
		if (rs->cache[i].fd >= 0 && !strcmp(rs->cache[i].id, id)) {
			*fd = dup(rs->cache[i].fd);
			pthread_mutex_unlock(&rs->mu);
			return *fd < 0 ? FERRY_E_IO : 0;
		}
	pthread_mutex_unlock(&rs->mu);
	a.fd = memfd_create("ferry-manifest", MFD_CLOEXEC);
	if (a.fd < 0)
		return ferry_error(FERRY_E_NOMEM, "memfd: %s", strerror(errno));
	if ((e = rcall(rs, FM_POINT_GET, pid, sizeof(pid), &ans, &a, 1)) != 0) {
		close(a.fd);
		return e;
	}
	/* Committed manifests never change: keep a few for the next look. */
	pthread_mutex_lock(&rs->mu);
	slot = rs->cache_next++ % RS_CACHE;
	if (rs->cache[slot].fd >= 0)
		close(rs->cache[slot].fd);
	rs->cache[slot].fd = dup(a.fd);
	snprintf(rs->cache[slot].id, sizeof(rs->cache[slot].id), "%s", id);
	pthread_mutex_unlock(&rs->mu);
	*fd = a.fd;
	return 0;
}

/* ---- totals and the rest ---------------------------------------------- */

static int info_answer(struct ferry_conn *c, void *arg)
{
	struct ferry_repo_info *i = arg;
	struct ferry_rd rd;

	ferry_rd_init(&rd, c->rx, c->rx_len);
	ferry_rd_u64(&rd, &i->chunk_count);
	ferry_rd_u64(&rd, &i->stored_bytes);
	ferry_rd_u64(&rd, &i->chunk_raw_bytes);
	ferry_rd_u64(&rd, &i->point_count);
	ferry_rd_u64(&rd, &i->logical_bytes);
	ferry_rd_u64(&rd, &i->referenced_bytes);
	if (rd.bad || rd.left)
		return ferry_error(FERRY_E_PROTO, "malformed INFO_R message");
	return 0;
}

static int info_point(const struct ferry_point *p, void *arg)
{
	struct ferry_repo_info *i = arg;

	if (p->corrupt)
		return 0;
	i->point_count++;
	i->logical_bytes += p->disk_size;
	i->referenced_bytes += p->disk_size - p->bytes_zero;
	return 0;
}

static int remote_get_info(struct ferry_repo *r, struct ferry_repo_info *info)
{
	static const struct answer ans = { FM_INFO_R, 0, info_answer, NULL };
	int e;

	ferry_repo_info_start(r, info);
	if ((e = rcall(RS(r), FM_INFO, NULL, 0, &ans, info, 1)) != 0 ||
	    !r->encrypted)
		return e;
	/* The mover counts chunks; the point totals need the sealed
	 * manifests opened here. */
	info->point_count = info->logical_bytes = info->referenced_bytes = 0;
	return ferry_points_list(r, NULL, info_point, info);
}

/* KEYS_R: the repository's key lines (empty: not encrypted). */
static int keys_answer(struct ferry_conn *c, void *arg)
{
	struct ferry_repo *r = arg;

	return ferry_repo_key_text_take(r, (const char *)c->rx, c->rx_len);
}

/* FEATURES_R: "delta" when the mover's repository has the feature. */
static int features_answer(struct ferry_conn *c, void *arg)
{
	struct ferry_repo *r = arg;

	for (size_t i = 0; i < c->rx_len;) {
		const char *l = (const char *)c->rx + i;
		size_t k = 0;

		while (i + k < c->rx_len && l[k] != '\n')
			k++;
		if (k == sizeof(FERRY_FEATURE_DELTA) - 1 &&
		    !memcmp(l, FERRY_FEATURE_DELTA, k))
			r->delta = 1;
		i += k + 1;
	}
	return 0;
}

static int remote_net_stats(struct ferry_repo *r, struct ferry_net_stats *st)
{
	struct rstore *rs = RS(r);

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&rs->mu);
	for (int i = 0; i < rs->nidle; i++) {
		st->bytes_sent += rs->idle[i]->bytes_out;
		st->bytes_received += rs->idle[i]->bytes_in;
	}
	pthread_mutex_unlock(&rs->mu);
	st->bytes_sent += atomic_load(&rs->bytes_sent);
	st->bytes_received += atomic_load(&rs->bytes_received);
	st->connects = atomic_load(&rs->connects);
	st->resumes = atomic_load(&rs->resumes);
	st->blocks_resumed_at = atomic_load(&rs->blocks_resumed_at);
	st->chunks_resent = atomic_load(&rs->chunks_resent);
	return 0;
}

int ferry_repo_net_stats(struct ferry_repo *repo, struct ferry_net_stats *st)
{
	/* A question, not a failure: leave the last error alone. */
	if (!repo->ops->net_stats)
		return FERRY_E_INVAL;
	return repo->ops->net_stats(repo, st);
}

static int unsupported(struct ferry_repo *r)
{
	return ferry_error(FERRY_E_INVAL,
			   "%s: a remote repository takes new data only through a mover session",
			   r->path);
}

static int remote_put_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN],
			    const void *data, size_t len)
{
	(void)h;
	(void)data;
	(void)len;
	return unsupported(r);
}

static int remote_sync_chunks(struct ferry_repo *r)
{
	return unsupported(r);
}

static int remote_point_create(struct ferry_repo *r, const char *id, int *fd,
			       char **tmp)
{
	(void)id;
	(void)fd;
	(void)tmp;
	return unsupported(r);
}

static int remote_point_commit(struct ferry_repo *r, const char *id, int fd,
			       const char *tmp)
{
	(void)id;
	(void)fd;
	(void)tmp;
	return unsupported(r);
}

static void remote_point_abort(struct ferry_repo *r, int fd, const char *tmp)
{
	(void)r;
	(void)tmp;
	if (fd >= 0)
		close(fd);
}

static int remote_lock_shared(struct ferry_repo *r)
{
	(void)r;
	return 0; /* the mover holds the repository's lock */
}

static void remote_close(struct ferry_repo *r)
{
	struct rstore *rs = RS(r);

	if (!rs)
		return;
	for (int i = 0; i < rs->nidle; i++)
		ferry_conn_free(rs->idle[i]);
	for (int i = 0; i < RS_CACHE; i++)
		if (rs->cache[i].fd >= 0)
			close(rs->cache[i].fd);
	SSL_CTX_free(rs->ctx);
	free(rs->listed);
	ferry_rate_release(&rs->rate);
	pthread_mutex_destroy(&rs->mu);
	pthread_cond_destroy(&rs->cv);
	free(rs->cert);
	free(rs->key);
	free(rs->ca);
	free(rs);
	r->state = NULL;
}

const struct ferry_store_ops ferry_store_remote_ops = {
	.name = "remote",
	.has_chunk = remote_has_chunk,
	.put_chunk = remote_put_chunk,
	.get_chunk = remote_get_chunk,
	.get_chunk_head = remote_get_chunk_head,
	.list_chunks = remote_list_chunks,
	.sync_chunks = remote_sync_chunks,
	.point_create = remote_point_create,
	.point_commit = remote_point_commit,
	.point_abort = remote_point_abort,
	.point_open = remote_point_open,
	.point_list = remote_point_list,
	.point_stat = remote_point_stat,
	.target_new = ferry_target_remote_new,
	.get_info = remote_get_info,
	.net_stats = remote_net_stats,
	.lock_shared = remote_lock_shared,
	.close = remote_close,
};

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int ferry_repo_open_remote(const char *url, const struct ferry_remote_opts *o,
			   struct ferry_repo **out)
{
	struct ferry_repo *r = calloc(1, sizeof(*r));
	static const struct answer keys_ans = { FM_KEYS_R, 0, keys_answer, NULL };
	static const struct answer features_ans = { FM_FEATURES_R, 0, features_answer, NULL };
	struct rstore *rs = calloc(1, sizeof(*rs));
	struct ferry_conn *c = NULL;
	int e;

	if (!r || !rs || !(r->path = strdup(url))) {
		free(r);
		free(rs);
		return FERRY_E_NOMEM;
	}
	pthread_mutex_init(&rs->mu, NULL);
	pthread_cond_init(&rs->cv, NULL);
	for (int i = 0; i < RS_CACHE; i++)
		rs->cache[i].fd = -1;
	if (o)
		rs->o = *o;
	rs->cert = dup_or_null(rs->o.cert);
	rs->key = dup_or_null(rs->o.key);
	rs->ca = dup_or_null(rs->o.ca);
	rs->o.cert = rs->cert;
	rs->o.key = rs->key;
	rs->o.ca = rs->ca;
	ferry_rate_init(&rs->rate, rs->o.limit_rate);
	r->ops = &ferry_store_remote_ops;
	r->state = rs;
	if ((e = ferry_url_parse(url, &rs->url)) != 0)
		goto fail;
	if (!rs->o.insecure &&
	    !(rs->ctx = ferry_tls_client_ctx(rs->cert, rs->key, rs->ca))) {
		e = FERRY_E_INVAL;
		if (rs->cert && rs->key && rs->ca)
			e = FERRY_E_AUTH;
		goto fail;
	}
	if ((e = pool_get(rs, &c)) != 0) {
		ferry_error(e, "cannot use mover at %s:%s: %s", rs->url.host,
			    rs->url.port, ferry_last_error());
		goto fail;
	}
	r->format_version = rs->w.format_version;
	r->block_size = rs->w.block_size;
	r->codec = rs->w.codec;
	r->level = rs->w.level;
	memcpy(r->repo_id, rs->w.repo_id, sizeof(r->repo_id));
	pool_put(rs, c, 1);
	/* An encrypted repository's key lines: the source seals (a mover
	 * that predates KEYS serves no encrypted repository: it refuses
	 * the feature). */
	e = rcall(rs, FM_KEYS, NULL, 0, &keys_ans, r, 1);
	if (e && e != FERRY_E_PROTO && !r->encrypted)
		goto fail;
	/* A mover without KEYS (PROTO) serves plain repositories only. */
	/* Kind-2 entries (delta.c): valid when the mover's repository has
	 * feature "delta" (a mover without FEATURES predates it: PROTO). */
	e = rcall(rs, FM_FEATURES, NULL, 0, &features_ans, r, 1);
	if (e && e != FERRY_E_PROTO)
		goto fail;
	*out = r;
	return 0;
fail:
	ferry_repo_free(r);
	return e;
}
