/* copy.c - backup copy: restore points of one repository copied to
 * another of any backend (local, smb://, a mover at ferry://...).
 *
 * Each point goes through the target's own target-side mover
 * (ferry_target_new: in-process for a store, the network pipe for a
 * mover), so a copy keeps every rule of a backup: chunks the target holds
 * are not sent, chunks are durable before the manifest commits, and the
 * manifest commits last.  Chunks travel in their stored form, untouched;
 * each is checked (header, checksum, decompression, SHA-256 against its
 * name) when read from the source.  A point keeps its id, so the target's
 * point list says what is copied already: a second run, or a run after a
 * killed one, copies only the points the target lacks, and only the
 * chunks it lacks.  After each commit the target's manifest is read back
 * and compared entry by entry. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define BATCH 64 /* manifest entries per round of parallel chunk work */

struct cjob {
	uint8_t hash[FERRY_HASH_LEN];
	struct ferry_copy_sent s;
	int kind;          /* FERRY_ENTRY_DELTA: a delta chunk (delta.c) */
	uint8_t full[FERRY_HASH_LEN]; /* flattened delta block: its id */
};

struct cctx {
	struct ferry_repo *from;
	struct ferry_target *t;
	struct ferry_codec_ctx **codec;
	uint8_t **in, **out;
	size_t incap, outcap;
	const char *id;
	/* Delta blocks (delta.c): REC holds a record; FLATTEN when the
	 * target cannot take kind-2 entries (no feature "delta"; through a
	 * mover: its repository's, told by FEATURES), which then gets each
	 * such block whole, as kind 1. */
	uint8_t **rec;
	int flatten;
};

static int copy_delta(struct cctx *c, struct cjob *j, int worker);

int ferry_copy_put(struct ferry_target *t, const uint8_t h[FERRY_HASH_LEN],
		   const void *data, size_t len, size_t raw, struct ferry_copy_sent *s)
{
	int e = t->ops->put(t, h, data, len);

	if (e < 0)
		return e;
	if (e == 0) {
		s->sent = 1;
		s->stored += (uint32_t)len;
		s->raw += (uint32_t)raw;
	}
	return 0;
}

void ferry_copy_tally(const struct ferry_copy_sent *s, struct ferry_backup_result *br,
		      struct ferry_copy_result *res)
{
	if (s->sent) {
		br->blocks_new++;
		br->bytes_new += s->raw;
		br->bytes_stored += s->stored;
	} else {
		res->chunks_present++;
	}
}

int ferry_copy_read(struct ferry_repo *from, struct ferry_codec_ctx *codec, const char *id,
		    const uint8_t h[FERRY_HASH_LEN], uint8_t *in, size_t incap, size_t *len,
		    uint8_t *out, size_t outcap, size_t *plain)
{
	int e;

	if ((e = from->ops->get_chunk(from, h, in, incap, len)) != 0) {
		char why[512];

		snprintf(why, sizeof(why), "%s", ferry_last_error());
		return ferry_error(e, "restore point %s in the source repository: %s",
				   id, why);
	}
	if ((e = ferry_chunk_decode(codec, in, *len, out, outcap, plain, h)) != 0) {
		char why[256], hex[65];

		snprintf(why, sizeof(why), "%s", ferry_last_error());
		ferry_hash_hex(h, hex);
		return ferry_error(e,
				   "restore point %s: chunk %s is damaged in the source repository (%s); nothing of this point was committed on the target",
				   id, hex, why);
	}
	return 0;
}

int ferry_copy_delta_bad(int e, const char *id)
{
	char why[400];

	snprintf(why, sizeof(why), "%s", ferry_last_error());
	return ferry_error(e,
			   "restore point %s: a delta block is damaged in the source repository (%s); nothing of this point was committed on the target",
			   id, why);
}

int ferry_copy_next(struct ferry_mreader *m, const struct ferry_point *p, int *kind,
		    uint8_t h[FERRY_HASH_LEN])
{
	int e;

	if (atomic_load(&ferry_cancelled))
		return ferry_error(FERRY_E_INTERRUPTED, "copy interrupted");
	if ((e = ferry_mreader_next(m, kind, h)) < 0)
		return e;
	if (e == 0)
		return ferry_error(FERRY_E_CORRUPT, "manifest %s ended early", p->id);
	return 0;
}

int ferry_copy_begin(struct ferry_repo *to, struct ferry_point *p, struct ferry_target **t)
{
	int e;

	if ((e = ferry_target_new(to, t)) != 0)
		return e;
	if ((e = (*t)->ops->begin(*t, p)) != 0) {
		(*t)->ops->free(*t);
		*t = NULL;
	}
	return e;
}

int ferry_copy_read_back(struct ferry_repo *to, const char *id, struct ferry_mreader **m,
			 struct ferry_point *p)
{
	int e = ferry_mreader_open(to, id, m, p);

	if (e) {
		char why[256];

		snprintf(why, sizeof(why), "%s", ferry_last_error());
		return ferry_error(e == FERRY_E_NOTFOUND ? FERRY_E_CORRUPT : e,
				   "restore point %s: the copy on the target does not read back: %s",
				   id, why);
	}
	return 0;
}

uint8_t **ferry_copy_bufs_new(int threads, size_t size)
{
	uint8_t **b = calloc((size_t)threads, sizeof(*b));

	for (int k = 0; b && k < threads; k++)
		if (!(b[k] = malloc(size))) {
			ferry_copy_bufs_free(b, k);
			return NULL;
		}
	return b;
}

void ferry_copy_bufs_free(uint8_t **b, int threads)
{
	for (int k = 0; b && k < threads; k++)
		free(b[k]);
	free(b);
}

struct ferry_codec_ctx **ferry_copy_codecs_new(const struct ferry_repo *r, int threads)
{
	struct ferry_codec_ctx **c = calloc((size_t)threads, sizeof(*c));

	for (int k = 0; c && k < threads; k++)
		if (!(c[k] = ferry_codec_ctx_for(r, r->codec, r->level))) {
			ferry_copy_codecs_free(c, k);
			return NULL;
		}
	return c;
}

void ferry_copy_codecs_free(struct ferry_codec_ctx **c, int threads)
{
	for (int k = 0; c && k < threads; k++)
		ferry_codec_ctx_free(c[k]);
	free(c);
}

/* One chunk: skip it when the target holds it; else read it, check it
 * fully, and hand its stored form to the target. */
static int copy_chunk(void *item, int worker, void *arg)
{
	struct cjob *j = *(struct cjob **)item;
	struct cctx *c = arg;
	size_t len, plain;
	int e;

	if (j->kind == FERRY_ENTRY_DELTA)
		return copy_delta(c, j, worker);
	if ((e = c->t->ops->have(c->t, j->hash)) < 0)
		return e;
	if (e == 1)
		return 0;
	if ((e = ferry_copy_read(c->from, c->codec[worker], c->id, j->hash, c->in[worker],
				 c->incap, &len, c->out[worker], c->outcap, &plain)) != 0)
		return e;
	return ferry_copy_put(c->t, j->hash, c->in[worker], len, plain, &j->s);
}

/* Chunk H of the source into the target when it lacks it (read into
 * IN, checked by decoding into OUT); adds to J's counts. */
static int copy_one(struct cctx *c, struct cjob *j, int worker,
		    const uint8_t h[FERRY_HASH_LEN])
{
	size_t len, plain;
	int e;

	if ((e = c->t->ops->have(c->t, h)) != 0)
		return e < 0 ? e : 0;
	if ((e = c->from->ops->get_chunk(c->from, h, c->in[worker], c->incap,
					 &len)) == 0)
		e = ferry_chunk_decode(c->codec[worker], c->in[worker], len,
				       c->out[worker], c->outcap, &plain, h);
	if (e)
		return e;
	return ferry_copy_put(c->t, h, c->in[worker], len, plain, &j->s);
}

/* A delta block: its delta chunk and its base chunk, each when the
 * target lacks it; or (FLATTEN) the block rebuilt, checked and stored
 * whole under its own id. */
static int copy_delta(struct cctx *c, struct cjob *j, int worker)
{
	struct ferry_dbufs b = { c->in[worker], c->rec[worker], c->incap,
				 c->outcap };
	struct ferry_delta d;
	uint8_t base[FERRY_HASH_LEN];
	size_t raw, len;
	int e;

	if (c->flatten) {
		e = ferry_block_read(c->from, c->codec[worker], j->kind, j->hash,
				     &b, c->out[worker], c->outcap, &raw);
		if (e == 0)
			e = ferry_chunk_id(c->codec[worker], c->out[worker], raw,
					   j->full);
		if (e)
			goto bad;
		if ((e = c->t->ops->have(c->t, j->full)) != 0)
			return e < 0 ? e : 0;
		if ((e = ferry_chunk_encode(c->codec[worker], c->out[worker], raw,
					    c->in[worker], c->incap, &len)) != 0)
			return e;
		return ferry_copy_put(c->t, j->full, c->in[worker], len, raw, &j->s);
	}
	/* The base first: a delta chunk on the target always has its
	 * base there. */
	if ((e = ferry_delta_load(c->from, c->codec[worker], j->hash, b.in,
				  b.incap, b.rec, b.reccap, &d)) != 0)
		goto bad;
	memcpy(base, d.base, FERRY_HASH_LEN);
	if ((e = copy_one(c, j, worker, base)) != 0)
		goto bad;
	if ((e = copy_one(c, j, worker, j->hash)) != 0)
		goto bad;
	return 0;
bad:
	if (e == FERRY_E_CORRUPT || e == FERRY_E_MISSING)
		return ferry_copy_delta_bad(e, c->id);
	return e;
}

/* Read the committed manifest back from the target and compare it with
 * the source's, entry by entry. */
static int check_target(struct ferry_repo *from, struct ferry_repo *to,
			const char *id, struct cctx *c)
{
	struct ferry_mreader *a = NULL, *b = NULL;
	struct ferry_point pa, pb;
	int e, ka, kb, ra, rb;
	uint8_t ha[FERRY_HASH_LEN], hb[FERRY_HASH_LEN];

	if ((e = ferry_copy_read_back(to, id, &b, &pb)) != 0)
		return e;
	if ((e = ferry_mreader_open(from, id, &a, &pa)) != 0)
		goto out;
	if (pa.nblocks != pb.nblocks || pa.disk_size != pb.disk_size ||
	    pa.created_ns != pb.created_ns || strcmp(pa.name, pb.name)) {
		e = ferry_error(FERRY_E_CORRUPT,
				"restore point %s: the copy's header differs from the source's",
				id);
		goto out;
	}
	for (;;) {
		memset(ha, 0, sizeof(ha));
		memset(hb, 0, sizeof(hb));
		ra = ferry_mreader_next(a, &ka, ha);
		rb = ferry_mreader_next(b, &kb, hb);
		if (ra < 0 || rb < 0) {
			e = ra < 0 ? ra : rb;
			goto out;
		}
		/* A flattened delta block: the whole block's id. */
		if (ra == 1 && rb == 1 && c->flatten && ka == FERRY_ENTRY_DELTA &&
		    kb == FERRY_ENTRY_DATA) {
			struct ferry_dbufs db = { c->in[0], c->rec[0], c->incap,
						  c->outcap };

			if ((e = ferry_entry_block_id(from, c->codec[0], ka, ha,
						      &db, ha)) != 0)
				goto out;
			ka = FERRY_ENTRY_DATA;
		}
		if (ra != rb || (ra && (ka != kb || (ka != FERRY_ENTRY_ZERO &&
						     memcmp(ha, hb, FERRY_HASH_LEN))))) {
			e = ferry_error(FERRY_E_CORRUPT,
					"restore point %s: the copy's manifest differs from the source's",
					id);
			goto out;
		}
		if (!ra)
			break;
	}
	e = 0;
out:
	ferry_mreader_free(a);
	ferry_mreader_free(b);
	return e;
}

/* Reports a point copy's progress (at most 4 times a second, and at its
 * last block): DONE of P's blocks are copied, after WALKED of TOTAL bytes
 * of the earlier points. */
void ferry_copy_progress(const struct ferry_copy_opts *o,
			 const struct ferry_point *p, uint64_t done,
			 uint64_t walked, uint64_t total, double t0,
			 double *last)
{
	double now;
	uint64_t bytes = done * p->block_size;
	struct ferry_progress pr;

	if (!o || !o->progress)
		return;
	now = ferry_mono_seconds();
	if (now - *last < 0.25 && done != p->nblocks)
		return;
	if (bytes > p->disk_size)
		bytes = p->disk_size;
	pr.done = walked + bytes;
	pr.total = total;
	pr.seconds = now - t0;
	o->progress(&pr, o->progress_arg);
	*last = now;
}

/* Ends a point copy into *T: settles the counts (a remote target learns
 * late which chunks it had), commits P, frees the target (*T = NULL) and
 * adds what was sent to RES. */
int ferry_copy_commit(struct ferry_target **t, struct ferry_backup_result *br,
		      struct ferry_point *p, struct ferry_copy_result *res)
{
	int e;

	if ((*t)->ops->settle && (e = (*t)->ops->settle(*t, br)) != 0)
		return e;
	res->chunks_present += br->blocks_reused;
	if ((e = (*t)->ops->commit(*t, p)) != 0)
		return e;
	(*t)->ops->free(*t);
	*t = NULL;
	res->chunks_sent += br->blocks_new;
	res->bytes_sent += br->bytes_stored;
	res->bytes_raw_sent += br->bytes_new;
	return 0;
}

static int copy_point(struct ferry_repo *from, struct ferry_repo *to,
		      const struct ferry_point *sp, int threads,
		      const struct ferry_copy_opts *o, uint64_t walked,
		      uint64_t total, double t0, struct ferry_copy_result *res)
{
	struct ferry_mreader *m = NULL;
	struct ferry_target *t = NULL;
	struct ferry_backup_result br;
	struct ferry_point p;
	struct cctx c;
	struct cjob jobs[BATCH], *uniq[BATCH];
	int kinds[BATCH], e;
	uint8_t hashes[BATCH][FERRY_HASH_LEN];
	uint64_t done = 0;
	double last = 0;

	memset(&c, 0, sizeof(c));
	memset(&br, 0, sizeof(br));
	c.from = from;
	c.id = sp->id;
	c.incap = ferry_chunk_bound(from->block_size);
	c.outcap = from->block_size;
	/* Same keys on both sides (or none): the source's codec opens its
	 * chunks; they travel as they are. */
	c.codec = ferry_copy_codecs_new(from, threads);
	c.in = ferry_copy_bufs_new(threads, c.incap);
	c.out = ferry_copy_bufs_new(threads, c.outcap);
	c.rec = ferry_copy_bufs_new(threads, c.outcap);
	c.flatten = !to->delta;
	if (!c.codec || !c.in || !c.out || !c.rec) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	/* The source manifest, checked whole before anything is sent. */
	if ((e = ferry_mreader_open(from, sp->id, &m, &p)) != 0)
		goto out;
	if ((e = ferry_copy_begin(to, &p, &t)) != 0)
		goto out;
	c.t = t;
	while (done < p.nblocks) {
		size_t n = 0, nu = 0;

		while (n < BATCH && done + n < p.nblocks) {
			if ((e = ferry_copy_next(m, &p, &kinds[n], hashes[n])) != 0)
				goto out;
			if (kinds[n] != FERRY_ENTRY_ZERO) {
				size_t k;

				for (k = 0; k < nu; k++)
					if (!memcmp(uniq[k]->hash, hashes[n], FERRY_HASH_LEN))
						break;
				if (k == nu) {
					memset(&jobs[nu], 0, sizeof(jobs[nu]));
					memcpy(jobs[nu].hash, hashes[n], FERRY_HASH_LEN);
					jobs[nu].kind = kinds[n];
					uniq[nu] = &jobs[nu];
					nu++;
				}
			}
			n++;
		}
		if ((e = ferry_workq_run(threads, uniq, sizeof(uniq[0]), nu,
					 copy_chunk, &c)) != 0)
			goto out;
		/* Records follow their chunks: a remote target has every chunk
		 * of the batch queued before the entries that name it. */
		for (size_t k = 0; k < n; k++) {
			if (c.flatten && kinds[k] == FERRY_ENTRY_DELTA) {
				/* The whole block, under its own id. */
				for (size_t u = 0; u < nu; u++)
					if (!memcmp(jobs[u].hash, hashes[k],
						    FERRY_HASH_LEN))
						memcpy(hashes[k], jobs[u].full,
						       FERRY_HASH_LEN);
				kinds[k] = FERRY_ENTRY_DATA;
			}
			if ((e = t->ops->record(t, kinds[k], hashes[k])) != 0)
				goto out;
		}
		for (size_t k = 0; k < nu; k++)
			ferry_copy_tally(&jobs[k].s, &br, res);
		done += n;
		ferry_copy_progress(o, &p, done, walked, total, t0, &last);
	}
	if ((e = ferry_copy_commit(&t, &br, &p, res)) != 0)
		goto out;
	e = check_target(from, to, p.id, &c);
out:
	if (t)
		t->ops->free(t);
	ferry_mreader_free(m);
	ferry_copy_codecs_free(c.codec, threads);
	ferry_copy_bufs_free(c.in, threads);
	ferry_copy_bufs_free(c.out, threads);
	ferry_copy_bufs_free(c.rec, threads);
	return e;
}

struct idset {
	char (*v)[FERRY_ID_LEN + 1];
	size_t n, cap;
};

static int ids_add(struct idset *s, const char *id)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 32;
		void *nv = realloc(s->v, nc * sizeof(*s->v));

		if (!nv)
			return FERRY_E_NOMEM;
		s->v = nv;
		s->cap = nc;
	}
	snprintf(s->v[s->n++], FERRY_ID_LEN + 1, "%s", id);
	return 0;
}

static int ids_has(const struct idset *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], id))
			return 1;
	return 0;
}

static int target_point(const struct ferry_point *p, void *arg)
{
	/* A corrupt manifest on the target is not a copy: copied again. */
	return p->corrupt ? 0 : ids_add(arg, p->id);
}

struct plist {
	struct ferry_point *v;
	size_t n, cap;
};

static int plist_add(const struct ferry_point *p, void *arg)
{
	struct plist *l = arg;

	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		void *nv = realloc(l->v, nc * sizeof(*l->v));

		if (!nv)
			return FERRY_E_NOMEM;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = *p;
	return 0;
}

/* A re-encoding copy's base for point I: the latest earlier point of
 * the same name that both sides hold (the list is oldest first). */
static const char *reseal_base(const struct plist *pl, const struct idset *have,
			       size_t i)
{
	const char *best = NULL;

	for (size_t k = 0; k < pl->n; k++)
		if (k != i && !strcmp(pl->v[k].name, pl->v[i].name) &&
		    pl->v[k].created_ns <= pl->v[i].created_ns &&
		    ids_has(have, pl->v[k].id))
			best = pl->v[k].id;
	return best;
}

int ferry_copy(struct ferry_repo *from, struct ferry_repo *to,
	       const struct ferry_copy_opts *o, struct ferry_copy_result *res)
{
	struct idset have = { 0 };
	struct plist pl = { 0 };
	uint64_t total = 0, walked = 0;
	double t0 = ferry_mono_seconds();
	int threads = o && o->threads > 0 ? o->threads : ferry_cpu_count();
	int e = 0, reseal;

	memset(res, 0, sizeof(*res));
	/* Chunk I/O waits on a network as often as on the CPU. */
	if (!(o && o->threads > 0) && threads < 4)
		threads = 4;
	if (threads > 64)
		threads = 64;
	if (from->block_size != to->block_size)
		return ferry_error(FERRY_E_INVAL,
				   "block sizes differ: %s has %u KiB blocks, %s %u KiB; a copy keeps chunks as they are stored, so the target must use the source's block size (ferry init --block-size %uK)",
				   from->path, from->block_size >> 10, to->path,
				   to->block_size >> 10, from->block_size >> 10);
	/* Sealed chunks are named and sealed with their repository's keys:
	 * between different keys each is re-encoded (copy_reseal.c).  Both
	 * keys are needed before anything is written. */
	if ((e = ferry_repo_need_key(from)) != 0 ||
	    (e = ferry_repo_need_key(to)) != 0)
		return e;
	reseal = ferry_copy_reseal_needed(from, to);
	if (from->repo_id[0] && !strcmp(from->repo_id, to->repo_id))
		return ferry_error(FERRY_E_INVAL,
				   "%s and %s are the same repository (id %s)",
				   from->path, to->path, from->repo_id);
	if (o && o->npoints) {
		for (int i = 0; i < o->npoints && e == 0; i++) {
			struct ferry_point p;

			if ((e = ferry_point_resolve(from, o->points[i], &p)) == 0) {
				int dup = 0;

				for (size_t k = 0; k < pl.n; k++)
					dup |= !strcmp(pl.v[k].id, p.id);
				if (!dup)
					e = plist_add(&p, &pl);
			}
		}
	} else {
		e = ferry_points_list(from, o ? o->name : NULL, plist_add, &pl);
	}
	if (e)
		goto out;
	for (size_t i = 0; i < pl.n; i++)
		if (pl.v[i].corrupt) {
			e = ferry_error(FERRY_E_CORRUPT,
					"restore point %s: its manifest in %s is damaged; nothing copied (name the points to copy to leave it out)",
					pl.v[i].id, from->path);
			goto out;
		}
	if ((e = ferry_points_list(to, NULL, target_point, &have)) != 0)
		goto out;
	for (size_t i = 0; i < pl.n; i++)
		if (!ids_has(&have, pl.v[i].id))
			total += pl.v[i].disk_size;
	for (size_t i = 0; i < pl.n && e == 0; i++) {
		if (ids_has(&have, pl.v[i].id)) {
			res->points_present++;
			if (o && o->point_done)
				o->point_done(&pl.v[i], 0, o->point_done_arg);
			continue;
		}
		if (reseal)
			e = ferry_copy_point_reseal(from, to, &pl.v[i],
						    reseal_base(&pl, &have, i),
						    threads, o, walked, total,
						    t0, res);
		else
			e = copy_point(from, to, &pl.v[i], threads, o, walked,
				       total, t0, res);
		if (e == 0) {
			if (reseal && (e = ids_add(&have, pl.v[i].id)) != 0)
				break;
			walked += pl.v[i].disk_size;
			res->points_copied++;
			if (o && o->point_done)
				o->point_done(&pl.v[i], 1, o->point_done_arg);
		}
	}
out:
	res->seconds = ferry_mono_seconds() - t0;
	free(have.v);
	free(pl.v);
	return e;
}
