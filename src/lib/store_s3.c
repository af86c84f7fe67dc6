/* store_s3.c - the repository backend for object storage (s3://BUCKET/
 * PREFIX): chunks under PREFIX/chunks/XX/<sha256>, manifests under
 * PREFIX/points/<id> uploaded last, parallel uploads from a bounded queue,
 * multipart uploads for large objects, lock objects with heartbeats in
 * place of a lock server, and Object Lock retention (docs/backends.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "s3.h"

#define DAY 86400

struct upload {
	uint8_t hash[FERRY_HASH_LEN];
	void *data;
	size_t len;
	int busy;                 /* taken by an uploader */
	struct upload *next;
};

struct s3 {
	struct s3_conf c;
	struct s3_obj o;
	/* Object Lock: days, and the retain-until of manifests written by
	 * this process; chunks get chunk_until (a margin later) */
	int lock_days;
	int64_t point_until, chunk_until, need_until, lock_extra, until_base;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* the upload queue */
	int nthreads, started, stop;
	pthread_t *threads;
	struct upload *queue;     /* waiting and busy uploads */
	size_t queued, queue_cap;
	int up_err;
	char up_msg[512];
	struct ferry_idset ensured; /* chunks whose retention this process made long enough */
	/* the lock object (s3_lock.c) */
	struct s3_lock *lock;
	double stale;
	char tmpdir[512];
};

static struct s3 *S(struct ferry_repo *r)
{
	return r->state;
}

static void key_of(struct s3 *s, const char *rel, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s", s->c.prefix, rel);
}

static void chunk_key(struct s3 *s, const uint8_t h[FERRY_HASH_LEN],
		      char out[600])
{
	char hex[65], rel[80];

	ferry_hash_hex(h, hex);
	snprintf(rel, sizeof(rel), "chunks/%.2s/%s", hex, hex);
	key_of(s, rel, out, 600);
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* ---- the upload queue ----------------------------------------------- */

static void *uploader(void *arg)
{
	struct ferry_repo *r = arg;
	struct s3 *s = S(r);

	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct upload *u = NULL;
		char key[600];
		int e;

		for (struct upload *x = s->queue; x; x = x->next)
			if (!x->busy) {
				u = x;
				break;
			}
		if (!u) {
			if (s->stop)
				break;
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		u->busy = 1;
		pthread_mutex_unlock(&s->mu);
		chunk_key(s, u->hash, key);
		e = s->up_err ? 0 : s3o_put_object(&s->o, key, u->data, u->len, s->chunk_until);
		pthread_mutex_lock(&s->mu);
		if (e && !s->up_err) {
			int code;

			ferry_error_save(&code, s->up_msg, sizeof(s->up_msg));
			s->up_err = e;
		}
		if (e == 0 && s->lock_days)
			ferry_idset_add(&s->ensured, u->hash);
		for (struct upload **pp = &s->queue; *pp; pp = &(*pp)->next)
			if (*pp == u) {
				*pp = u->next;
				break;
			}
		s->queued--;
		free(u->data);
		free(u);
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static int latched(struct s3 *s)
{
	if (!s->up_err)
		return 0;
	return ferry_error(s->up_err, "%s", s->up_msg);
}

static int start_uploaders(struct ferry_repo *r)
{
	struct s3 *s = S(r);
	int e = 0;

	pthread_mutex_lock(&s->mu);
	if (!s->threads &&
	    !(s->threads = calloc((size_t)s->nthreads, sizeof(pthread_t))))
		e = FERRY_E_NOMEM;
	while (e == 0 && s->started < s->nthreads) {
		if (pthread_create(&s->threads[s->started], NULL, uploader, r) != 0) {
			if (!s->started)
				e = ferry_error(FERRY_E_NOMEM, "cannot start an upload thread");
			break;
		}
		s->started++;
	}
	pthread_mutex_unlock(&s->mu);
	return e;
}

/* Wait until every queued chunk is stored (or one failed). */
static int drain(struct s3 *s)
{
	int e;

	pthread_mutex_lock(&s->mu);
	while (s->queued)
		pthread_cond_wait(&s->cv, &s->mu);
	e = latched(s);
	pthread_mutex_unlock(&s->mu);
	return e;
}

/* ---- chunks ------------------------------------------------------------ */

/* Object Lock: make the chunk's retention reach this process's points
 * (never shortened: only raised when it falls short). */
static int ensure_retention(struct s3 *s, const uint8_t h[FERRY_HASH_LEN],
			    int present, int64_t until)
{
	char key[600];
	int e;

	pthread_mutex_lock(&s->mu);
	e = ferry_idset_has(&s->ensured, h);
	pthread_mutex_unlock(&s->mu);
	if (e)
		return 1;
	chunk_key(s, h, key);
	if (!present) {
		if ((e = s3o_head_object(&s->o, key, NULL, &until, NULL, 0)) <= 0)
			return e == 0 ? ferry_error(FERRY_E_MISSING, "chunk %s is missing",
						    key)
				      : e;
	}
	if (until < s->need_until &&
	    (e = s3o_extend_retention(&s->o, key, s->chunk_until)) != 0)
		return e;
	pthread_mutex_lock(&s->mu);
	e = ferry_idset_add(&s->ensured, h);
	pthread_mutex_unlock(&s->mu);
	return e ? e : 1;
}

static int s3_has_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN])
{
	struct s3 *s = S(r);
	char key[600];
	uint64_t size = 0;
	int64_t until = 0;
	int e, pending = 0;

	pthread_mutex_lock(&s->mu);
	for (struct upload *u = s->queue; u && !pending; u = u->next)
		pending = !memcmp(u->hash, h, FERRY_HASH_LEN);
	pthread_mutex_unlock(&s->mu);
	if (pending)
		return 1;
	chunk_key(s, h, key);
	if ((e = s3o_head_object(&s->o, key, &size, &until, NULL, 0)) <= 0)
		return e;
	if (size <= FERRY_CHUNK_HDR)
		return 0;
	if (s->lock_days && (e = ensure_retention(s, h, 1, until)) < 0)
		return e;
	return 1;
}

static int s3_put_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN],
			const void *data, size_t len)
{
	struct s3 *s = S(r);
	struct upload *u;
	int e;

	if ((e = start_uploaders(r)) != 0)
		return e;
	if (!(u = calloc(1, sizeof(*u))) || !(u->data = malloc(len))) {
		free(u);
		return FERRY_E_NOMEM;
	}
	memcpy(u->hash, h, FERRY_HASH_LEN);
	memcpy(u->data, data, len);
	u->len = len;
	pthread_mutex_lock(&s->mu);
	/* Bounded: at most queue_cap chunks wait or travel. */
	while (s->queued >= s->queue_cap && !s->up_err)
		pthread_cond_wait(&s->cv, &s->mu);
	if ((e = latched(s)) != 0) {
		pthread_mutex_unlock(&s->mu);
		free(u->data);
		free(u);
		return e;
	}
	u->next = s->queue;
	s->queue = u;
	s->queued++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static int s3_get_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN],
			void *buf, size_t cap, size_t *len)
{
	char key[600];
	int e;

	chunk_key(S(r), h, key);
	e = s3o_get_small(&S(r)->o, key, buf, cap, len, 0);
	if (e == FERRY_E_NOTFOUND)
		return ferry_error(FERRY_E_MISSING, "chunk %s is missing",
				   key + strlen(key) - 64);
	return e;
}

static int s3_get_chunk_head(struct ferry_repo *r,
			     const uint8_t h[FERRY_HASH_LEN], void *buf, size_t n)
{
	char key[600], range[48];
	struct s3_hdr hd[1] = { { "range", range } };
	int e;

	chunk_key(S(r), h, key);
	snprintf(range, sizeof(range), "bytes=0-%zu", n - 1);
	struct s3_req rq = { .method = "GET", .key = key, .hdrs = hd, .nh = 1,
			     .out = buf, .out_cap = n, .out_trunc = 1,
			     .out_fd = -1, .want_404 = 1 };
	if ((e = s3_request(S(r)->o.pool, &rq)) != 0)
		return e;
	if (rq.status == 404)
		return ferry_error(FERRY_E_MISSING, "chunk %s is missing",
				   key + strlen(key) - 64);
	if (rq.out_len != n)
		return ferry_error(FERRY_E_CORRUPT, "chunk %s is truncated",
				   key + strlen(key) - 64);
	return 0;
}

struct chunk_walk {
	ferry_chunk_list_cb cb;
	void *arg;
	size_t plen;
};

static int chunk_entry(struct s3_obj *s, const char *key, size_t klen,
		       uint64_t size, int64_t mt, void *arg)
{
	struct chunk_walk *w = arg;
	uint8_t h[FERRY_HASH_LEN];

	(void)s;
	(void)mt;
	/* PREFIX chunks/XX/<64 hex> */
	if (klen != w->plen + 3 + 64 ||
	    ferry_hex_decode(key + w->plen + 3, h, FERRY_HASH_LEN) ||
	    memcmp(key + w->plen, key + w->plen + 3, 2))
		return 0;
	return w->cb(h, size, w->arg);
}

static int s3_list_chunks(struct ferry_repo *r, ferry_chunk_list_cb cb,
			  void *arg)
{
	char prefix[600];
	struct chunk_walk w = { cb, arg, 0 };

	key_of(S(r), "chunks/", prefix, sizeof(prefix));
	w.plen = strlen(prefix);
	return s3o_list_prefix(&S(r)->o, prefix, chunk_entry, &w, NULL);
}

static int s3_sync_chunks(struct ferry_repo *r)
{
	/* An object is durable once its PUT was answered: wait for them. */
	return drain(S(r));
}


/* Object Lock dates for the points started from now on: a manifest kept
 * LOCK_DAYS from the start of its backup, chunks LOCK_EXTRA longer.  A
 * long-running process (a gateway mover) moves them forward; the set of
 * chunks already checked is dropped once the margin no longer covers the
 * move. */
static void renew_until(struct s3 *s)
{
	int64_t now = now_s();

	if (!s->lock_days)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->until_base < 0 || now - s->until_base > 0) {
		if (s->until_base < 0 || (now - s->until_base) * 2 >= s->lock_extra) {
			ferry_idset_clear(&s->ensured);
			s->until_base = now;
		}
		s->point_until = now + (int64_t)s->lock_days * DAY;
		s->chunk_until = s->until_base + (int64_t)s->lock_days * DAY + s->lock_extra;
		/* the latest point_until before the next reset: what a
		 * chunk in the checked set must reach */
		s->need_until = s->until_base + (int64_t)s->lock_days * DAY +
				s->lock_extra / 2;
		if (s->chunk_until < s->need_until)
			s->chunk_until = s->need_until;
	}
	pthread_mutex_unlock(&s->mu);
}

/* ---- manifests --------------------------------------------------------- */

static int tmp_file(struct s3 *s, int *fd)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/ferry-s3-XXXXXX", s->tmpdir);
	*fd = mkostemp(path, O_CLOEXEC);
	if (*fd < 0)
		return ferry_error(ferry_errno_code(errno, FERRY_E_IO),
				   "s3: create a temporary in %s (TMPDIR): %s",
				   s->tmpdir, strerror(errno));
	unlink(path);
	return 0;
}

static int s3_point_create(struct ferry_repo *r, const char *id, int *fd,
			   char **tmp)
{
	int e;

	(void)id;
	renew_until(S(r));
	if ((e = tmp_file(S(r), fd)) != 0)
		return e;
	if (!(*tmp = strdup(""))) {
		close(*fd);
		return FERRY_E_NOMEM;
	}
	return 0;
}

struct rwalk {
	struct s3 *s;
	int fd, nthreads, index;
	uint64_t first, count;
	atomic_int err;
	pthread_mutex_t mu;
	int code;
	char msg[512];
};

/* One of several threads raising the retention of the manifest's chunks:
 * entries INDEX, INDEX + N, ... */
static void *rwalk_main(void *arg)
{
	struct rwalk *w = arg;
	int me;
	uint8_t ent[FERRY_ENTRY_LEN];

	pthread_mutex_lock(&w->mu);
	me = w->index++;
	pthread_mutex_unlock(&w->mu);
	for (uint64_t i = (uint64_t)me; i < w->count && !atomic_load(&w->err);
	     i += (uint64_t)w->nthreads) {
		int e;

		if (ferry_pread_full(w->fd, ent, sizeof(ent),
				     (off_t)(w->first + i * FERRY_ENTRY_LEN)) !=
		    (ssize_t)sizeof(ent)) {
			e = ferry_error(FERRY_E_IO, "s3: reread the manifest");
		} else if (ent[0] != FERRY_ENTRY_DATA) {
			continue;
		} else if ((e = ensure_retention(w->s, ent + 1, 0, 0)) > 0) {
			continue;
		}
		pthread_mutex_lock(&w->mu);
		if (!atomic_load(&w->err)) {
			ferry_error_save(&w->code, w->msg, sizeof(w->msg));
			atomic_store(&w->err, e);
		}
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

/* Object Lock: every chunk the manifest in FD names must stay at least as
 * long as the manifest. */
static int retain_entries(struct s3 *s, int fd, uint64_t size)
{
	uint8_t hdr[FERRY_MANIFEST_HEADER_MAX];
	struct ferry_point p;
	size_t hl, n;
	ssize_t got;
	pthread_t th[16];
	struct rwalk w;
	int nt = 0, e;

	got = ferry_pread_full(fd, hdr, sizeof(hdr), 0);
	if (got < 0)
		return ferry_error(FERRY_E_IO, "s3: reread the manifest");
	n = (size_t)got;
	if ((e = ferry_manifest_header_parse(hdr, n, &p, &hl)) != 0)
		return e;
	if (size < hl + FERRY_MANIFEST_FOOTER)
		return ferry_error(FERRY_E_CORRUPT, "s3: manifest too short");
	memset(&w, 0, sizeof(w));
	w.s = s;
	w.fd = fd;
	w.first = hl;
	w.count = (size - hl - FERRY_MANIFEST_FOOTER) / FERRY_ENTRY_LEN;
	w.nthreads = s->nthreads < 16 ? s->nthreads : 16;
	pthread_mutex_init(&w.mu, NULL);
	for (; nt < w.nthreads; nt++)
		if (pthread_create(&th[nt], NULL, rwalk_main, &w) != 0) {
			/* Entries of the threads not started would be
			 * skipped: stop the others and fail. */
			atomic_store(&w.err, FERRY_E_NOMEM);
			snprintf(w.msg, sizeof(w.msg), "cannot start a thread");
			break;
		}
	for (int i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&w.mu);
	if ((e = atomic_load(&w.err)) != 0)
		return ferry_error(e, "%s", w.msg);
	return 0;
}

static int put_file(struct s3 *s, const char *key, int fd, uint64_t size,
		    int64_t until)
{
	void *buf;
	int e;

	if (size > s->o.mp_threshold)
		return s3o_put_multipart(&s->o, key, size, s3o_fd_read, &fd, until);
	if (!(buf = malloc(size ? size : 1)))
		return FERRY_E_NOMEM;
	if ((e = s3o_fd_read(&fd, 0, buf, (size_t)size)) == 0)
		e = s3o_put_single(&s->o, key, buf, (size_t)size, until);
	free(buf);
	return e;
}

/* The manifest this thread is committing, opened by s3_point_open()
 * from its local file (an encrypted repository's sealed manifest is read
 * through the manifest reader, which authenticates and opens it). */
static __thread int pending_fd = -1;
static __thread char pending_id[FERRY_ID_LEN + 1];

static int retain_sealed(struct ferry_repo *r, const char *id, int fd)
{
	struct ferry_mreader *m;
	struct ferry_point p;
	uint8_t h[FERRY_HASH_LEN];
	int kind, e;

	pending_fd = fd;
	snprintf(pending_id, sizeof(pending_id), "%s", id);
	e = ferry_mreader_open(r, id, &m, &p);
	pending_fd = -1;
	if (e)
		return e;
	while ((e = ferry_mreader_next(m, &kind, h)) == 1)
		if (kind == FERRY_ENTRY_DATA &&
		    (e = ensure_retention(S(r), h, 0, 0)) < 0)
			break;
	ferry_mreader_free(m);
	return e < 0 ? e : 0;
}

static int s3_point_commit(struct ferry_repo *r, const char *id, int fd,
			   const char *tmp)
{
	struct s3 *s = S(r);
	char rel[64], key[600];
	struct stat st;
	int e;

	(void)tmp;
	if ((e = drain(s)) != 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		e = ferry_error(FERRY_E_IO, "s3: stat the manifest: %s", strerror(errno));
		goto out;
	}
	if (s->lock_days &&
	    (e = r->encrypted ? retain_sealed(r, id, fd)
			      : retain_entries(s, fd, (uint64_t)st.st_size)) != 0)
		goto out;
	/* A backup whose lock went stale may have lost chunks to a gc that
	 * no longer saw it: then it must not commit. */
	if (s->lock && (e = s3_lock_fresh(s->lock)) != 0)
		goto out;
	snprintf(rel, sizeof(rel), "points/%s", id);
	key_of(s, rel, key, sizeof(key));
	e = put_file(s, key, fd, (uint64_t)st.st_size,
		     s->lock_days ? s->point_until : 0);
out:
	close(fd);
	return e;
}

static void s3_point_abort(struct ferry_repo *r, int fd, const char *tmp)
{
	(void)r;
	(void)tmp;
	close(fd);
}

static int s3_point_open(struct ferry_repo *r, const char *id, int *fd)
{
	struct s3 *s = S(r);
	char rel[64], key[600];
	int e;

	if (!ferry_point_id_valid(id))
		return ferry_error(FERRY_E_NOTFOUND, "restore point %s not found", id);
	if (pending_fd >= 0 && !strcmp(id, pending_id)) {
		if ((*fd = dup(pending_fd)) < 0)
			return ferry_error(FERRY_E_IO, "s3: dup: %s", strerror(errno));
		return 0;
	}
	if ((e = tmp_file(s, fd)) != 0)
		return e;
	snprintf(rel, sizeof(rel), "points/%s", id);
	key_of(s, rel, key, sizeof(key));
	struct s3_req rq = { .method = "GET", .key = key, .out_fd = *fd,
			     .want_404 = 1 };
	if ((e = s3_request(s->o.pool, &rq)) == 0 && rq.status == 404)
		e = ferry_error(FERRY_E_NOTFOUND, "restore point %s not found", id);
	if (e) {
		close(*fd);
		*fd = -1;
	}
	return e;
}

struct id_walk {
	ferry_id_list_cb cb;
	void *arg;
	size_t plen;
};

static int id_entry(struct s3_obj *s, const char *key, size_t klen, uint64_t size,
		    int64_t mt, void *arg)
{
	struct id_walk *w = arg;

	(void)s;
	(void)size;
	(void)mt;
	if (klen != w->plen + FERRY_ID_LEN || !ferry_point_id_valid(key + w->plen))
		return 0;
	return w->cb(key + w->plen, w->arg);
}

static int s3_point_list(struct ferry_repo *r, ferry_id_list_cb cb, void *arg)
{
	char prefix[600];
	struct id_walk w = { cb, arg, 0 };

	key_of(S(r), "points/", prefix, sizeof(prefix));
	w.plen = strlen(prefix);
	return s3o_list_prefix(&S(r)->o, prefix, id_entry, &w, NULL);
}

/* BYTES of KEY starting at OFF (a suffix of N bytes when OFF < 0) into
 * BUF; *TOTAL gets the object's size. */
static int get_range(struct s3 *s, const char *key, int64_t off, size_t n,
		     void *buf, size_t *got, uint64_t *total)
{
	char range[64];
	struct s3_hdr h[1] = { { "range", range } };
	int e;

	if (off < 0)
		snprintf(range, sizeof(range), "bytes=-%zu", n);
	else
		snprintf(range, sizeof(range), "bytes=%lld-%lld", (long long)off,
			 (long long)off + (long long)n - 1);
	struct s3_req rq = { .method = "GET", .key = key, .hdrs = h, .nh = 1,
			     .out = buf, .out_cap = n, .out_trunc = 1,
			     .out_fd = -1, .want_404 = 1 };
	if ((e = s3_request(s->o.pool, &rq)) != 0)
		return e;
	if (rq.status == 404)
		return FERRY_E_NOTFOUND;
	*got = rq.out_len;
	*total = rq.total_size ? rq.total_size : rq.out_len;
	return 0;
}

/* A listing reads a manifest's header and footer only (two ranged GETs,
 * not the whole object, which is 33 bytes per block): its structure is
 * checked here, its SHA-256 whenever it is opened (restore, verify, gc). */
static int s3_point_stat(struct ferry_repo *r, const char *id,
			 struct ferry_point *p)
{
	struct s3 *s = S(r);
	uint8_t *hdr = malloc(FERRY_MANIFEST_HEADER_MAX), foot[FERRY_MANIFEST_FOOTER];
	char rel[64], key[600];
	size_t got, hl;
	uint64_t total, total2;
	int e;

	if (!hdr)
		return FERRY_E_NOMEM;
	if (r->encrypted) {
		/* Sealed: only the reader (with the key) can read the header. */
		struct ferry_mreader *m;

		free(hdr);
		if ((e = ferry_mreader_open(r, id, &m, p)) == 0)
			ferry_mreader_free(m);
		return e;
	}
	snprintf(rel, sizeof(rel), "points/%s", id);
	key_of(s, rel, key, sizeof(key));
	if ((e = get_range(s, key, 0, FERRY_MANIFEST_HEADER_MAX, hdr, &got, &total)) != 0)
		goto out;
	if ((e = ferry_manifest_header_parse(hdr, got, p, &hl)) != 0)
		goto out;
	if (strcmp(p->id, id)) {
		e = ferry_error(FERRY_E_CORRUPT, "manifest %s names itself %s", id, p->id);
		goto out;
	}
	if (total != hl + p->nblocks * FERRY_ENTRY_LEN + FERRY_MANIFEST_FOOTER) {
		e = ferry_error(FERRY_E_CORRUPT, "manifest %s has the wrong size", id);
		goto out;
	}
	if ((e = get_range(s, key, -1, sizeof(foot), foot, &got, &total2)) != 0)
		goto out;
	if (got != sizeof(foot) || total2 != total) {
		e = ferry_error(FERRY_E_CORRUPT, "manifest %s changed while read", id);
		goto out;
	}
	e = ferry_manifest_footer_parse(foot, p);
out:
	free(hdr);
	if (e == FERRY_E_NOTFOUND)
		e = ferry_error(FERRY_E_NOTFOUND, "restore point %s not found", id);
	return e;
}

/* ---- removal ------------------------------------------------------------ */

/* Remove KEY; with Object Lock, FERRY_STORE_KEPT while its retention
 * runs, else every version of it (a plain DELETE in a versioned bucket
 * would only hide it behind a delete marker). */
static int remove_key(struct s3 *s, const char *key)
{
	char *buf, k[1024], ver[512];
	int64_t until = 0;
	int e, kept = 0;

	if (!s->lock_days)
		return s3o_delete_object(&s->o, key, NULL);
	if ((e = s3o_head_object(&s->o, key, NULL, &until, NULL, 0)) < 0)
		return e;
	if (e == 1 && until > now_s())
		return FERRY_STORE_KEPT;
	if (!(buf = malloc(S3_LIST_MAX)))
		return FERRY_E_NOMEM;
	struct s3_hdr q[2] = { { "prefix", key }, { "versions", NULL } };
	struct s3_req rq = { .method = "GET", .query = q, .nq = 2, .out = buf,
			     .out_cap = S3_LIST_MAX, .out_fd = -1 };
	if ((e = s3_request(s->o.pool, &rq)) == 0) {
		static const char *const kinds[] = { "Version", "DeleteMarker" };

		for (int t = 0; t < 2 && e >= 0; t++) {
			const char *v;
			size_t vl, pos = 0;

			while (e >= 0 && s3_xml_next(buf, rq.out_len, &pos, kinds[t], &v, &vl)) {
				if (!s3_xml_get(v, vl, "Key", k, sizeof(k)) ||
				    strcmp(k, key) ||
				    !s3_xml_get(v, vl, "VersionId", ver, sizeof(ver)))
					continue;
				e = s3o_delete_object(&s->o, key, ver);
				if (e == FERRY_STORE_KEPT)
					kept = 1;
			}
		}
	}
	free(buf);
	if (e < 0)
		return e;
	return kept ? FERRY_STORE_KEPT : 0;
}

static int s3_delete_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN])
{
	struct s3 *s = S(r);
	char key[600];
	int e;

	if (s->lock && (e = s3_lock_fresh(s->lock)) != 0)
		return e;
	chunk_key(s, h, key);
	return remove_key(s, key);
}

static int s3_delete_point(struct ferry_repo *r, const char *id)
{
	char rel[64], key[600];

	if (!ferry_point_id_valid(id))
		return ferry_error(FERRY_E_INVAL, "bad restore point id %s", id);
	snprintf(rel, sizeof(rel), "points/%s", id);
	key_of(S(r), rel, key, sizeof(key));
	return remove_key(S(r), key);
}

/* Multipart uploads left by processes that died, older than the lock's
 * stale time (a live one is younger or belongs to a live lock holder). */
static int s3_remove_stale(struct ferry_repo *r, uint64_t *files,
			   uint64_t *bytes)
{
	struct s3 *s = S(r);
	char *buf = malloc(S3_LIST_MAX), k[1024], id[512], when[64], pfx[600];
	const char *v;
	size_t vl, pos = 0;
	int e;

	(void)bytes;
	if (!buf)
		return FERRY_E_NOMEM;
	key_of(s, "", pfx, sizeof(pfx));
	struct s3_hdr q[2] = { { "uploads", NULL }, { "prefix", pfx } };
	struct s3_req rq = { .method = "GET", .query = q, .nq = pfx[0] ? 2 : 1,
			     .out = buf, .out_cap = S3_LIST_MAX, .out_fd = -1 };
	if ((e = s3_request(s->o.pool, &rq)) == 0) {
		int64_t now = rq.date[0] ? s3_time_parse(rq.date) : now_s();

		while (s3_xml_next(buf, rq.out_len, &pos, "Upload", &v, &vl)) {
			if (!s3_xml_get(v, vl, "Key", k, sizeof(k)) ||
			    !s3_xml_get(v, vl, "UploadId", id, sizeof(id)) ||
			    !s3_xml_get(v, vl, "Initiated", when, sizeof(when)))
				continue;
			if (now - s3_time_parse(when) < (int64_t)s->stale)
				continue;
			s3o_abort_upload(&s->o, k, id);
			(*files)++;
		}
	}
	free(buf);
	if (e == 0 && s->lock)
		e = s3_lock_sweep(s->lock, files);
	return e;
}

/* ---- records and config ------------------------------------------------- */

static int record_key(struct s3 *s, const char *kind, const char *id,
		      char key[600])
{
	char rel[64];

	if (strcmp(kind, "verify") || !ferry_point_id_valid(id))
		return ferry_error(FERRY_E_INVAL, "bad record %s/%s", kind, id);
	snprintf(rel, sizeof(rel), "%s/%s", kind, id);
	key_of(s, rel, key, 600);
	return 0;
}

static int s3_record_put(struct ferry_repo *r, const char *kind,
			 const char *id, const void *data, size_t len)
{
	char key[600];
	int e;

	if ((e = record_key(S(r), kind, id, key)) != 0)
		return e;
	return s3o_put_single(&S(r)->o, key, data, len, 0);
}

static int s3_record_get(struct ferry_repo *r, const char *kind,
			 const char *id, void *buf, size_t cap, size_t *len)
{
	char key[600];
	int e;

	if ((e = record_key(S(r), kind, id, key)) != 0)
		return e;
	return s3o_get_small(&S(r)->o, key, buf, cap, len, 1);
}

static int s3_record_delete(struct ferry_repo *r, const char *kind,
			    const char *id)
{
	char key[600];
	int e;

	if ((e = record_key(S(r), kind, id, key)) != 0)
		return e;
	e = s3o_delete_object(&S(r)->o, key, NULL);
	return e < 0 ? e : 0;
}

static int s3_config_get(struct ferry_repo *r, char *buf, size_t cap,
			 size_t *len)
{
	char key[600];
	int e;

	key_of(S(r), "config", key, sizeof(key));
	e = s3o_get_small(&S(r)->o, key, buf, cap, len, 0);
	if (e == FERRY_E_NOTFOUND)
		return ferry_error(FERRY_E_NOTREPO,
				   "%s is not a ferry repository (no config object)",
				   r->path);
	return e;
}

static int s3_config_put(struct ferry_repo *r, const char *text, size_t len)
{
	char key[600];

	key_of(S(r), "config", key, sizeof(key));
	return s3o_put_single(&S(r)->o, key, text, len, 0);
}

static int s3_ready(struct ferry_repo *r)
{
	struct s3 *s = S(r);
	char v[32];

	if (ferry_repo_config(r, "object_lock_days", v, sizeof(v))) {
		char *end;
		long d = strtol(v, &end, 10);

		if (*end || d < 1 || d > 36500)
			return ferry_error(FERRY_E_NOTREPO,
					   "%s: bad object_lock_days '%s' in its config",
					   r->path, v);
		s->lock_days = (int)d;
		/* Manifests written now are kept LOCK_DAYS from the start of
		 * this process; chunks a quarter longer (at least a day), so
		 * that the next backups need not raise them again. */
		double extra;
		int e;

		if ((e = s3_opt_num("s3-object-lock-extra", d >= 4 ? (double)d * DAY / 4 : DAY,
				 0, 36500.0 * DAY, &extra)) != 0)
			return e;
		s->lock_extra = (int64_t)extra;
		s->until_base = -1;
		renew_until(s);
	}
	return 0;
}

/* ---- locks ---------------------------------------------------------------- */

static int take_lock(struct ferry_repo *r, int kind, double timeout)
{
	struct s3 *s = S(r);
	char pfx[600];

	if (s->lock && s3_lock_kind(s->lock) == kind)
		return 0;
	if (s->lock) {
		s3_lock_release(s->lock);
		s->lock = NULL;
	}
	key_of(s, "locks/", pfx, sizeof(pfx));
	return s3_lock_take(&s->o, pfx, kind, s->stale, timeout, &s->lock);
}

static int s3_lock_shared(struct ferry_repo *r)
{
	return take_lock(r, 's', 0);
}

static int s3_lock_exclusive(struct ferry_repo *r)
{
	return take_lock(r, 'x', 0);
}

static int s3_lock_exclusive_wait(struct ferry_repo *r, double timeout)
{
	return take_lock(r, 'x', timeout);
}

static void s3_unlock(struct ferry_repo *r)
{
	struct s3 *s = S(r);

	s3_lock_release(s->lock);
	s->lock = NULL;
}

static void conf_free(struct s3_conf *c)
{
	free(c->endpoint);
	free(c->host);
	free(c->scheme);
	free(c->bucket);
	free(c->prefix);
	explicit_bzero(&c->creds, sizeof(c->creds));
}

static void s3_close(struct ferry_repo *r)
{
	struct s3 *s = S(r);

	if (!s)
		return;
	if (s->started) {
		drain(s);
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		for (int i = 0; i < s->started; i++)
			pthread_join(s->threads[i], NULL);
	}
	free(s->threads);
	s3_lock_release(s->lock);
	s3_pool_free(s->o.pool);
	conf_free(&s->c);
	ferry_idset_free(&s->ensured);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	r->state = NULL;
}

const struct ferry_store_ops ferry_store_s3_ops = {
	.name = "s3",
	.has_chunk = s3_has_chunk,
	.put_chunk = s3_put_chunk,
	.get_chunk = s3_get_chunk,
	.get_chunk_head = s3_get_chunk_head,
	.list_chunks = s3_list_chunks,
	.sync_chunks = s3_sync_chunks,
	.point_create = s3_point_create,
	.point_commit = s3_point_commit,
	.point_abort = s3_point_abort,
	.point_open = s3_point_open,
	.point_list = s3_point_list,
	.point_stat = s3_point_stat,
	.lock_shared = s3_lock_shared,
	.lock_exclusive = s3_lock_exclusive,
	.unlock = s3_unlock,
	.delete_chunk = s3_delete_chunk,
	.delete_point = s3_delete_point,
	.remove_stale = s3_remove_stale,
	.record_put = s3_record_put,
	.record_get = s3_record_get,
	.record_delete = s3_record_delete,
	.config_get = s3_config_get,
	.config_put = s3_config_put,
	.ready = s3_ready,
	.close = s3_close,
	.lock_exclusive_wait = s3_lock_exclusive_wait,
};

/* ---- settings, attach, create --------------------------------------------- */

static int s3_attach(struct ferry_repo *r)
{
	struct s3 *s = calloc(1, sizeof(*s));
	const char *tmp = getenv("TMPDIR");
	double thr, retry, timeout;
	int e;

	if (!s)
		return FERRY_E_NOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	r->state = s;
	r->ops = &ferry_store_s3_ops;
	snprintf(s->tmpdir, sizeof(s->tmpdir), "%s", tmp && *tmp ? tmp : "/tmp");
	if ((e = s3_conf_parse_url(r->path, &s->c)) != 0 ||
	    (e = s3_opt_size("s3-multipart-threshold", 64u << 20, 5u << 10,
			  5ull << 30, &s->o.mp_threshold)) != 0 ||
	    (e = s3_opt_size("s3-part-size", 16u << 20, 5u << 10, 5ull << 30,
			  &s->o.part_size)) != 0 ||
	    (e = s3_opt_num("s3-uploads", 8, 1, 64, &thr)) != 0 ||
	    (e = s3_opt_num("s3-retry-time", 120, 0, 86400, &retry)) != 0 ||
	    (e = s3_opt_num("s3-timeout", 30, 1, 3600, &timeout)) != 0 ||
	    (e = s3_opt_num("s3-lock-stale", 300, 2, 86400, &s->stale)) != 0 ||
	    (e = s3_creds_load(&s->c.creds)) != 0 ||
	    (e = s3_pool_new(&s->c, &s->o.pool)) != 0)
		goto fail;
	{
		double lk;

		if ((e = s3_opt_num("s3-list-keys", 1000, 1, 1000, &lk)) != 0)
			goto fail;
		snprintf(s->o.list_keys, sizeof(s->o.list_keys), "%d", (int)lk);
	}
	s->nthreads = (int)thr;
	s->queue_cap = (size_t)s->nthreads * 2;
	s->c.retry_seconds = retry;
	s->c.timeout = (long)timeout;
	return 0;
fail:
	s3_close(r);
	r->ops = NULL;
	return e;
}

/* The bucket (made when missing, with Object Lock when init asks for
 * it), then no repository in it yet. */
static int s3_create(struct ferry_repo *r)
{
	const char *days = ferry_backend_opt("s3-object-lock-days");
	int lock = days && *days && strcmp(days, "0");
	char body[256], resp[4096], key[600];
	struct s3_hdr h[1] = { { "x-amz-bucket-object-lock-enabled", "true" } };
	struct s3 *s;
	int e, n = 0;

	if ((e = s3_attach(r)) != 0)
		return e;
	s = S(r);
	if (strcmp(s->c.region, "us-east-1"))
		n = snprintf(body, sizeof(body),
			     "<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>",
			     s->c.region);
	struct s3_req rq = { .method = "PUT", .hdrs = h, .nh = lock,
			     .body = n ? body : NULL, .body_len = (size_t)n,
			     .out_fd = -1, .want_refusal = 1 };
	if ((e = s3_request(s->o.pool, &rq)) != 0)
		goto fail;
	if (rq.status == 409 && strcmp(rq.err.code, "BucketAlreadyOwnedByYou") &&
	    strcmp(rq.err.code, "BucketAlreadyExists")) {
		e = ferry_error(FERRY_E_IO, "s3://%s: cannot create the bucket: %s %s",
				s->c.bucket, rq.err.code, rq.err.message);
		goto fail;
	}
	if (rq.status == 403) {
		e = ferry_error(FERRY_E_AUTH, "s3://%s: cannot create the bucket: %s %s",
				s->c.bucket, rq.err.code, rq.err.message);
		goto fail;
	}
	if (lock) {
		/* A bucket that existed must have Object Lock already: it
		 * cannot be switched on later for the objects we write. */
		struct s3_hdr q[1] = { { "object-lock", NULL } };
		struct s3_req lq = { .method = "GET", .query = q, .nq = 1,
				     .out = resp, .out_cap = sizeof(resp) - 1,
				     .out_fd = -1, .want_404 = 1 };
		char en[32] = "";

		if ((e = s3_request(s->o.pool, &lq)) != 0)
			goto fail;
		if (lq.status == 200)
			s3_xml_get(resp, lq.out_len, "ObjectLockEnabled", en, sizeof(en));
		if (strcmp(en, "Enabled")) {
			e = ferry_error(FERRY_E_INVAL,
					"s3://%s: the bucket has no Object Lock; --object-lock-days needs a bucket created with it (give a new bucket name and ferry creates it so)",
					s->c.bucket);
			goto fail;
		}
	}
	key_of(s, "config", key, sizeof(key));
	if ((e = s3o_head_object(&s->o, key, NULL, NULL, NULL, 0)) < 0)
		goto fail;
	if (e == 1) {
		e = ferry_error(FERRY_E_EXISTS, "%s is already a ferry repository",
				r->path);
		goto fail;
	}
	return 0;
fail:
	s3_close(r);
	r->ops = NULL;
	return e;
}

const struct ferry_backend ferry_backend_s3 = {
	.prefix = "s3://",
	.create = s3_create,
	.attach = s3_attach,
};
