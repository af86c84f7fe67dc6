/* backup.c - the source-side data mover: reads the disk block by block,
 * drops zero blocks, hashes, asks the target what it lacks, compresses
 * only that, and hands blocks to the target in disk order.  Memory is a
 * fixed ring of block buffers. */
#define _GNU_SOURCE
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "vmsrc.h"

enum { SLOT_FREE, SLOT_BUSY, SLOT_DONE };
enum { OUT_ZERO, OUT_NEW, OUT_REUSED };

struct slot {
	uint8_t *buf;
	const uint8_t *data; /* the block: BUF, or the source's mapping */
	uint64_t index, off;
	size_t len;
	int state, outcome;
	uint64_t stored;
	uint8_t hash[FERRY_HASH_LEN];
	int has_base, base_kind; /* the base point's entry for this block */
	uint8_t base_hash[FERRY_HASH_LEN];
	int ekind;           /* the manifest entry's kind (delta.c: 2) */
	size_t delta_bytes;  /* kind 2 stored anew: the changed bytes */
};

struct bjob {
	struct ferry_target *t;
	struct ferry_source *src;
	struct slot *slots;
	size_t nslots;
	struct ferry_codec_ctx **ctx;
	uint8_t **out;
	size_t outcap;
	pthread_mutex_t mu;
	pthread_cond_t done;
	int failed;
	/* Sub-block deltas (delta.c): a changed block is compared with its
	 * base chunk page by page; per worker a stored chunk and record
	 * buffer (DB) and the base block's plaintext (BASEBUF). */
	int delta;
	int delta_read; /* only reuse the base point's unchanged delta blocks */
	struct ferry_repo *repo;
	struct ferry_dbufs *db;
	uint8_t **basebuf;
};

/* What touches the block's bytes, inside ferry_map_call() when they
 * are mapped. */
struct touch {
	struct bjob *j;
	struct slot *s;
	int worker;
	size_t clen;
	const uint8_t *base_id; /* touch_delta: the base chunk's id */
};

static int touch_hash(void *arg)
{
	struct touch *t = arg;
	struct slot *s = t->s;

	if (ferry_is_zero(s->data, s->len)) {
		s->outcome = OUT_ZERO;
		return 0;
	}
	/* SHA-256, or the keyed id of an encrypted repository. */
	return ferry_chunk_id(t->j->ctx[t->worker], s->data, s->len, s->hash);
}

static int touch_encode(void *arg)
{
	struct touch *t = arg;

	return ferry_chunk_encode(t->j->ctx[t->worker], t->s->data, t->s->len,
				  t->j->out[t->worker], t->j->outcap, &t->clen);
}

/* Build the delta record of the block against the base in the worker's
 * BASEBUF into its record buffer (t->clen: its length, 0: not worth it). */
static int touch_delta(void *arg)
{
	struct touch *t = arg;
	struct slot *s = t->s;
	struct ferry_dbufs *b = &t->j->db[t->worker];

	/* At most half of the block changed, else a whole chunk: a delta
	 * stores less than the block (the changed pages only), but its
	 * reads fetch the base too, and the base stays while it is used. */
	t->clen = ferry_delta_build(t->j->basebuf[t->worker], s->data, s->len,
				    s->hash, t->base_id, s->len / 2, b->rec,
				    b->reccap);
	return 0;
}

static int touch(struct touch *t, int (*fn)(void *))
{
	struct slot *s = t->s;
	int r;

	if (s->data == s->buf)
		return fn(t);
	if ((r = ferry_map_call(fn, t)) != FERRY_MAP_FAULT)
		return r;
	/* The mapping failed us (the file shrank, a bad sector): read it
	 * for the real error, or the bytes if they are there now. */
	s->data = s->buf;
	if ((r = ferry_source_pread(t->j->src, s->off,
				    s->buf, s->len)) != 0)
		return r;
	return fn(t);
}

/* The chunk a delta of this block would be made against: the base
 * point's entry when it is a whole chunk, the base of its delta when it
 * is a delta (depth stays 1).  1 with BASE_ID set; 0 when there is none;
 * 2 when the block equals the base point's delta block (reuse it). */
static int delta_base(struct bjob *j, struct slot *s, int worker,
		      uint8_t base_id[FERRY_HASH_LEN])
{
	struct ferry_dbufs *b = &j->db[worker];
	struct ferry_delta d;
	int r;

	if (!s->has_base)
		return 0;
	if (s->base_kind == FERRY_ENTRY_DATA) {
		memcpy(base_id, s->base_hash, FERRY_HASH_LEN);
		return 1;
	}
	if (s->base_kind != FERRY_ENTRY_DELTA)
		return 0;
	r = ferry_delta_load(j->repo, j->ctx[worker], s->base_hash, b->in,
			     b->incap, b->rec, b->reccap, &d);
	if (r == FERRY_E_CORRUPT || r == FERRY_E_MISSING)
		return 0; /* damaged: this block is stored whole */
	if (r)
		return r;
	if (!memcmp(d.full, s->hash, FERRY_HASH_LEN))
		return 2;
	if (d.block_len != s->len)
		return 0;
	memcpy(base_id, d.base, FERRY_HASH_LEN);
	return 1;
}

/* Store the block as a delta against chunk BASE_ID when at most a
 * half of its pages changed: 1 when done (S says how), 0 when the
 * block is to be stored whole. */
static int try_delta(struct bjob *j, struct slot *s, int worker,
		     const uint8_t base_id[FERRY_HASH_LEN])
{
	struct ferry_dbufs *b = &j->db[worker];
	struct touch t = { j, s, worker, 0, base_id };
	struct ferry_delta d;
	uint8_t did[FERRY_HASH_LEN];
	size_t len, raw;
	int r;

	r = j->repo->ops->get_chunk(j->repo, base_id, b->in, b->incap, &len);
	if (r == 0)
		r = ferry_chunk_decode(j->ctx[worker], b->in, len,
				       j->basebuf[worker], j->repo->block_size,
				       &raw, base_id);
	if (r == FERRY_E_CORRUPT || r == FERRY_E_MISSING)
		return 0; /* a damaged base is no base */
	if (r)
		return r;
	if (raw != s->len)
		return 0;
	if ((r = touch(&t, touch_delta)) != 0)
		return r;
	if (!t.clen)
		return 0;
	/* The record is checked as a reader will (a bug here must not
	 * reach the repository). */
	if ((r = ferry_delta_parse(b->rec, t.clen, &d)) != 0)
		return r;
	if ((r = ferry_chunk_id(j->ctx[worker], b->rec, t.clen, did)) != 0)
		return r;
	s->ekind = FERRY_ENTRY_DELTA;
	memcpy(s->hash, did, FERRY_HASH_LEN);
	s->delta_bytes = d.data_len;
	if ((r = j->t->ops->have(j->t, did)) < 0)
		return r;
	if (r == 1) {
		s->outcome = OUT_REUSED;
		return 1;
	}
	if ((r = ferry_chunk_encode(j->ctx[worker], b->rec, t.clen,
				    j->out[worker], j->outcap, &len)) != 0)
		return r;
	if ((r = j->t->ops->put(j->t, did, j->out[worker], len)) < 0)
		return r;
	s->outcome = r == 1 ? OUT_REUSED : OUT_NEW;
	s->stored = r == 1 ? 0 : len;
	return 1;
}

static int process(struct bjob *j, struct slot *s, int worker)
{
	struct touch t = { j, s, worker, 0, NULL };
	uint8_t base_id[FERRY_HASH_LEN];
	int r, db = 0;

	if (atomic_load(&ferry_cancelled))
		return ferry_error(FERRY_E_INTERRUPTED, "backup interrupted");
	s->outcome = OUT_NEW;
	s->ekind = FERRY_ENTRY_DATA;
	s->delta_bytes = 0;
	if ((r = touch(&t, touch_hash)) != 0)
		return r;
	if (s->outcome == OUT_ZERO)
		return 0;
	/* The same block as in the base point: stored already. */
	if (s->has_base && s->base_kind == FERRY_ENTRY_DATA &&
	    !memcmp(s->hash, s->base_hash, FERRY_HASH_LEN)) {
		s->outcome = OUT_REUSED;
		return 0;
	}
	if ((j->delta || j->delta_read) &&
	    (db = delta_base(j, s, worker, base_id)) < 0)
		return db;
	if (db == 1 && !j->delta)
		db = 0; /* a new delta is made in-process only */
	if (db == 2) {
		/* The base point's delta block, unchanged: its entry. */
		s->outcome = OUT_REUSED;
		s->ekind = FERRY_ENTRY_DELTA;
		memcpy(s->hash, s->base_hash, FERRY_HASH_LEN);
		return 0;
	}
	if ((r = j->t->ops->have(j->t, s->hash)) < 0)
		return r;
	if (r == 1) {
		s->outcome = OUT_REUSED;
		return 0;
	}
	if (db == 1 && (r = try_delta(j, s, worker, base_id)) != 0)
		return r < 0 ? r : 0;
	if ((r = touch(&t, touch_encode)) != 0)
		return r;
	r = j->t->ops->put_own
		    ? j->t->ops->put_own(j->t, s->hash, &j->out[worker], j->outcap, t.clen)
		    : j->t->ops->put(j->t, s->hash, j->out[worker], t.clen);
	if (r < 0)
		return r;
	s->outcome = r == 1 ? OUT_REUSED : OUT_NEW;
	s->stored = r == 1 ? 0 : t.clen;
	return 0;
}

static int work(void *item, int worker, void *arg)
{
	struct bjob *j = arg;
	struct slot *s = *(struct slot **)item;
	int r = process(j, s, worker);

	/* Unmap the block's pages (they stay in the page cache): mapped
	 * pages count in the RSS, and a disk is larger than memory. */
	if (s->data != s->buf)
		madvise((void *)((uintptr_t)s->data & ~(uintptr_t)4095),
			s->len + ((uintptr_t)s->data & 4095), MADV_DONTNEED);

	pthread_mutex_lock(&j->mu);
	if (r)
		j->failed = 1;
	else
		s->state = SLOT_DONE;
	pthread_cond_broadcast(&j->done);
	pthread_mutex_unlock(&j->mu);
	return r;
}

/* Hand block K to the target once it is done (blocks complete out of
 * order; manifests are written in order). */
static int collect(struct bjob *j, uint64_t k, struct ferry_backup_result *res)
{
	struct slot *s = &j->slots[k % j->nslots];
	int r, kind;

	pthread_mutex_lock(&j->mu);
	while (s->state != SLOT_DONE && !j->failed)
		pthread_cond_wait(&j->done, &j->mu);
	r = j->failed;
	pthread_mutex_unlock(&j->mu);
	if (r)
		return FERRY_E_IO; /* the worker's error is reported */
	kind = s->outcome == OUT_ZERO ? FERRY_ENTRY_ZERO : s->ekind;
	switch (s->outcome) {
	case OUT_ZERO:
		res->bytes_zero += s->len;
		res->blocks_zero++;
		break;
	case OUT_NEW:
		if (kind == FERRY_ENTRY_DELTA) {
			/* Only the changed pages are new. */
			res->bytes_new += s->delta_bytes;
			res->bytes_reused += s->len - s->delta_bytes;
			res->blocks_delta++;
		} else {
			res->bytes_new += s->len;
		}
		res->bytes_stored += s->stored;
		res->blocks_new++;
		break;
	default:
		res->bytes_reused += s->len;
		res->blocks_reused++;
	}
	if ((r = j->t->ops->record(j->t, kind, s->hash)) != 0)
		return r;
	s->state = SLOT_FREE;
	return 0;
}

static int make_point(struct ferry_repo *repo, struct ferry_source *src,
		      const char *source, const char *name,
		      struct ferry_point *p)
{
	char abs[PATH_MAX], tmp[PATH_MAX];
	uint8_t id[FERRY_ID_LEN / 2];
	int e;

	memset(p, 0, sizeof(*p));
	if (!name) {
		/* qcow2:PATH names the image file; a URI its export. */
		snprintf(tmp, sizeof(tmp), "%s",
			 !strncmp(source, "qcow2:", 6) ? source + 6 : source);
		if (strstr(tmp, "://"))
			tmp[strcspn(tmp, "?")] = 0;
		name = basename(tmp);
	}
	if (!ferry_name_valid(name))
		return ferry_error(FERRY_E_INVAL,
				   "invalid name '%s': 1-%d characters, no '/' or control characters",
				   name, FERRY_NAME_MAX);
	snprintf(p->name, sizeof(p->name), "%s", name);
	if (!realpath(source, abs) || strlen(abs) >= sizeof(p->source))
		abs[0] = 0;
	/* Not a path (an NBD URI, qcow2:PATH): the transport's own
	 * canonical form of it. */
	if (!abs[0] && strlen(src->spec) < sizeof(p->source))
		memcpy(abs, src->spec, strlen(src->spec) + 1);
	memcpy(p->source, abs, strlen(abs) + 1);
	if ((e = ferry_random(id, sizeof(id))) != 0)
		return e;
	for (int i = 0; i < 8; i++)
		snprintf(p->id + 2 * i, 3, "%02x", id[i]);
	p->block_size = repo->block_size;
	p->disk_size = src->size;
	p->nblocks = (src->size + repo->block_size - 1) / repo->block_size;
	p->created_ns = ferry_now_ns();
	return 0;
}

struct base_find {
	const struct ferry_point *want;
	struct ferry_point *found;
	int ok;
};

static int base_cb(const struct ferry_point *p, void *arg)
{
	struct base_find *b = arg;

	/* Points come oldest first: the last match is the latest. */
	if (!p->corrupt && p->block_size == b->want->block_size) {
		*b->found = *p;
		b->ok = 1;
	}
	return 0;
}

/* The latest point of the same name, if any: its entries let unchanged
 * blocks skip the dedup query, or (with change tracking) the read. */
static int find_base(struct ferry_repo *repo, const struct ferry_point *p,
		     struct ferry_point *base, int *found)
{
	struct base_find b = { p, base, 0 };
	int e = ferry_points_list(repo, p->name, base_cb, &b);

	*found = b.ok;
	return e;
}

static void add_extra(char *extra, const char *key, const char *val)
{
	size_t n = strlen(extra);

	if (n + strlen(key) + strlen(val) + 2 < FERRY_EXTRA_MAX)
		snprintf(extra + n, FERRY_EXTRA_MAX + 1 - n, "%s=%s\n", key, val);
}

int ferry_backup(struct ferry_repo *repo, const char *source,
		 const struct ferry_backup_opts *opts,
		 struct ferry_backup_result *res)
{
	struct ferry_source *src = NULL;
	struct ferry_target *t = NULL;
	struct ferry_workq *q = NULL;
	struct bjob j;
	struct ferry_point p, base;
	struct ferry_mreader *bm = NULL;
	struct ferry_guest *guest = NULL;
	int threads = opts && opts->threads > 0 ? opts->threads : ferry_cpu_count();
	uint32_t bs = repo->block_size;
	double t0 = ferry_mono_seconds(), last = 0;
	uint64_t i, collected = 0;
	int e, qe, have_base = 0, use_unchanged = 0;

	memset(res, 0, sizeof(*res));
	memset(&j, 0, sizeof(j));
	pthread_mutex_init(&j.mu, NULL);
	pthread_cond_init(&j.done, NULL);
	/* An encrypted repository without its key: refused before the guest
	 * is touched or anything is read. */
	if ((e = ferry_repo_need_key(repo)) != 0)
		goto out;
	/* Pre-script, freeze, snapshot script, thaw (guest.c): undone by
	 * itself when it fails, by ferry_guest_end() below otherwise. */
	if ((e = ferry_guest_begin(opts, source, &guest)) != 0)
		goto out;
	if ((e = ferry_source_open(source, opts, &src)) != 0)
		goto out;
	if ((e = make_point(repo, src, source, opts ? opts->name : NULL, &p)) != 0)
		goto out;
	/* The shared lock is taken before the base point is read: its
	 * entries are reused without asking the store, so gc must not run
	 * between reading them and the commit (docs/gc.md). */
	if (repo->ops->lock_shared && (e = repo->ops->lock_shared(repo)) != 0)
		goto out;
	if ((e = find_base(repo, &p, &base, &have_base)) != 0)
		goto out;
	if (src->ops->prepare) {
		if ((e = src->ops->prepare(src, have_base ? &base : NULL)) < 0)
			goto out;
		use_unchanged = e == 1 && have_base;
		e = 0;
	}
	if (have_base && (e = ferry_mreader_open(repo, base.id, &bm, &base)) != 0)
		goto out;
	if (use_unchanged) {
		add_extra(src->extra, "base", base.id);
		memcpy(res->base_id, base.id, sizeof(res->base_id));
	}
	memcpy(p.extra, src->extra, sizeof(p.extra));
	/* A ring of 3 blocks per thread keeps every core busy while the
	 * reader runs ahead; it is all the block memory a backup uses. */
	j.nslots = (size_t)threads * 3 + 2;
	j.outcap = ferry_chunk_bound(bs);
	j.slots = calloc(j.nslots, sizeof(*j.slots));
	j.ctx = calloc((size_t)threads, sizeof(*j.ctx));
	j.out = calloc((size_t)threads, sizeof(*j.out));
	if (!j.slots || !j.ctx || !j.out) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	for (size_t k = 0; k < j.nslots; k++)
		if (!(j.slots[k].buf = malloc(bs))) {
			e = FERRY_E_NOMEM;
			goto out;
		}
	for (int k = 0; k < threads; k++) {
		j.ctx[k] = ferry_codec_ctx_for(repo, repo->codec, repo->level);
		j.out[k] = malloc(j.outcap);
		if (!j.ctx[k] || !j.out[k]) {
			e = FERRY_E_NOMEM;
			goto out;
		}
	}
	/* Sub-block deltas: where the repository has the feature and the
	 * base chunks are read in-process (a ferry:// mover's repository
	 * gets whole blocks: docs/format.md "Delta blocks"); not beside an
	 * S3 Object Lock, which would not cover the bases. */
	j.repo = repo;
	j.delta = repo->delta && bm && !repo->ops->target_new &&
		  !ferry_repo_config(repo, "object_lock_days", (char[16]){ 0 }, 16);
	/* Through a mover: a block equal to the base point's delta block
	 * keeps that entry (its record is one small CHUNK_GET), rather than
	 * being sent whole. */
	j.delta_read = !j.delta && repo->delta && bm;
	if (j.delta || j.delta_read) {
		j.db = calloc((size_t)threads, sizeof(*j.db));
		j.basebuf = calloc((size_t)threads, sizeof(*j.basebuf));
		if (!j.db || !j.basebuf) {
			e = FERRY_E_NOMEM;
			goto out;
		}
		for (int k = 0; k < threads; k++) {
			if ((e = ferry_dbufs_init(&j.db[k], bs)) != 0)
				goto out;
			if (j.delta && !(j.basebuf[k] = malloc(bs))) {
				e = FERRY_E_NOMEM;
				goto out;
			}
		}
	}
	if ((e = ferry_target_new(repo, &t)) != 0)
		goto out;
	j.t = t;
	j.src = src;
	if ((e = t->ops->begin(t, &p)) != 0)
		goto out;
	if ((e = ferry_workq_new(threads, sizeof(struct slot *), j.nslots, work,
				 &j, &q)) != 0)
		goto out;
	for (i = 0; i < p.nblocks; i++) {
		struct slot *s = &j.slots[i % j.nslots];
		uint64_t off = i * bs;
		int kind = FERRY_BLK_DATA;

		if (atomic_load(&ferry_cancelled)) {
			e = ferry_error(FERRY_E_INTERRUPTED, "backup interrupted");
			break;
		}
		if (s->state != SLOT_FREE) {
			if ((e = collect(&j, collected, res)) != 0)
				break;
			collected++;
		}
		s->index = i;
		s->off = off;
		s->len = p.disk_size - off < bs ? (size_t)(p.disk_size - off) : bs;
		s->stored = 0;
		s->has_base = 0;
		s->ekind = FERRY_ENTRY_DATA;
		if (bm && i < base.nblocks) {
			if ((e = ferry_mreader_next(bm, &s->base_kind,
						    s->base_hash)) < 0)
				break;
			/* A short last block of the base is not this one. */
			s->has_base = base.disk_size - off >= s->len;
		}
		s->data = s->buf;
		if (src->ops->map) {
			const uint8_t *mp;

			if ((e = src->ops->map(src, off, s->len, &mp, &kind)) != 0)
				break;
			if (mp)
				s->data = mp;
			else if (kind == FERRY_BLK_DATA &&
				 (e = src->ops->read(src, off, s->buf, s->len,
						     &kind)) != 0)
				break;
		} else if ((e = src->ops->read(src, off, s->buf, s->len,
					       &kind)) != 0) {
			break;
		}
		if (kind == FERRY_BLK_UNCHANGED && !(use_unchanged && s->has_base)) {
			e = ferry_error(FERRY_E_SOURCE,
					"source reported block %llu unchanged without a base point",
					(unsigned long long)i);
			break;
		}
		if (kind == FERRY_BLK_ZERO) {
			s->outcome = OUT_ZERO;
			s->state = SLOT_DONE;
		} else if (kind == FERRY_BLK_UNCHANGED) {
			res->bytes_unchanged += s->len;
			s->outcome = s->base_kind == FERRY_ENTRY_ZERO ? OUT_ZERO
								      : OUT_REUSED;
			s->ekind = s->base_kind; /* a delta block stays one */
			memcpy(s->hash, s->base_hash, FERRY_HASH_LEN);
			s->state = SLOT_DONE;
		} else {
			res->bytes_read += s->len;
			s->state = SLOT_BUSY;
			if ((e = ferry_workq_push(q, &s)) != 0)
				break;
		}
		if (opts && opts->progress) {
			double now = ferry_mono_seconds();

			if (now - last >= 0.25) {
				struct ferry_progress pr = { off + s->len,
							     p.disk_size,
							     now - t0 };

				opts->progress(&pr, opts->progress_arg);
				last = now;
			}
		}
	}
	while (e == 0 && collected < p.nblocks) {
		if ((e = collect(&j, collected, res)) != 0)
			break;
		collected++;
	}
	qe = ferry_workq_finish(q);
	q = NULL;
	if (qe)
		e = qe; /* the worker's error, with its message */
	/* The disk is read: a guest frozen through the read is thawed. */
	if (!e)
		e = ferry_guest_read_done(guest);
	if (e)
		goto out;
	res->bytes_total = p.disk_size;
	res->blocks_total = p.nblocks;
	res->bytes_skipped_swap = src->skipped[FERRY_SKIP_SWAP];
	res->bytes_skipped_free = src->skipped[FERRY_SKIP_FREE];
	res->bytes_skipped_excluded = src->skipped[FERRY_SKIP_EXCLUDED];
	/* A remote target resolves its dedup queries after put returned. */
	if (t->ops->settle && (e = t->ops->settle(t, res)) != 0)
		goto out;

	res->seconds = ferry_mono_seconds() - t0;
	p.bytes_read = res->bytes_read;
	p.bytes_zero = res->bytes_zero;
	p.bytes_new = res->bytes_new;
	p.bytes_reused = res->bytes_reused;
	p.bytes_stored = res->bytes_stored;
	p.duration_us = (uint64_t)(res->seconds * 1e6);
	if ((e = t->ops->commit(t, &p)) != 0)
		goto out;
	res->seconds = ferry_mono_seconds() - t0;
	res->point = p;
out:
	if (q) {
		pthread_mutex_lock(&j.mu);
		j.failed = 1;
		pthread_mutex_unlock(&j.mu);
		qe = ferry_workq_finish(q);
		if (qe && e == FERRY_E_IO)
			e = qe;
	}
	if (t)
		t->ops->free(t);
	ferry_mreader_free(bm);
	ferry_source_free(src);
	/* After the source is closed (a qcow2 image is unlocked): thaw if
	 * still frozen, then the post-script, whatever happened. */
	qe = ferry_guest_end(guest, e, e ? NULL : p.id);
	if (!e && qe) {
		e = qe;
		memset(&res->point, 0, sizeof(res->point));
	}
	for (size_t k = 0; j.slots && k < j.nslots; k++)
		free(j.slots[k].buf);
	for (int k = 0; j.ctx && k < threads; k++)
		ferry_codec_ctx_free(j.ctx[k]);
	for (int k = 0; j.out && k < threads; k++)
		free(j.out[k]);
	for (int k = 0; j.db && k < threads; k++)
		ferry_dbufs_free(&j.db[k]);
	for (int k = 0; j.basebuf && k < threads; k++)
		free(j.basebuf[k]);
	free(j.db);
	free(j.basebuf);
	free(j.slots);
	free(j.ctx);
	free(j.out);
	pthread_mutex_destroy(&j.mu);
	pthread_cond_destroy(&j.done);
	return e;
}
