/* verify.c - reads and checks every stored byte: each chunk's header,
 * checksum, decompression and SHA-256 identity, then every manifest's
 * references, naming each bad block and the restore points it breaks. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

struct vjob {
	struct ferry_repo *repo;
	const struct ferry_verify_opts *opts;
	struct ferry_verify_result *res;
	struct ferry_codec_ctx **ctx;
	uint8_t **in, **out;
	uint8_t **rec; /* delta records (kind-2 entries, delta.c) */
	/* Delta blocks found good in this run (direct-mapped by id): the
	 * next point naming one does not rebuild it again. */
	uint8_t (*dok)[FERRY_HASH_LEN];
	size_t incap, outcap;
	pthread_mutex_t mu;
	uint8_t (*bad)[FERRY_HASH_LEN]; /* chunks that failed (sorted later) */
	size_t nbad, capbad;
	const char *point_id;
	uint32_t bs;
	double t0, last;
	uint64_t bytes_total;
	uint64_t points_newer; /* manifests of a format this ferry cannot read */
	uint64_t seed[2];      /* sample choice */
	int sample;            /* percent of chunks read */
	uint64_t now_ns;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Whether this run reads chunk H: a random SAMPLE percent of the chunks,
 * the same choice for every point of one run. */
static int sampled(const struct vjob *j, const uint8_t h[FERRY_HASH_LEN])
{
	uint64_t v = 0;

	if (j->sample >= 100)
		return 1;
	for (int i = 0; i < 8; i++)
		v = v << 8 | h[i];
	return mix64(v ^ j->seed[0]) % 10000 < (uint64_t)j->sample * 100;
}

/* Record the outcome for one point; verify is a reader, so a repository
 * it cannot write is still verified. */
static void record(struct vjob *j, const char *id, int bad)
{
	char text[128];
	int n;

	if (!j->repo->ops->record_put)
		return;
	n = snprintf(text, sizeof(text), "time_ns=%llu\nresult=%s\nsample=%d\n",
		     (unsigned long long)j->now_ns, bad ? "damaged" : "ok",
		     j->sample);
	j->repo->ops->record_put(j->repo, "verify", id, text, (size_t)n);
}

struct vitem {
	uint64_t index;
	uint8_t hash[FERRY_HASH_LEN];
	int kind; /* FERRY_ENTRY_DELTA: rebuild the block (delta.c) */
};

static void report_bs(struct vjob *j, const char *point, uint64_t index,
		      uint32_t bs, const uint8_t *hash, int err,
		      const char *detail)
{
	if (j->opts && j->opts->bad) {
		struct ferry_bad_block b = { point, index,
					     index == UINT64_MAX ? 0 : index * bs,
					     hash, err, detail };

		j->opts->bad(&b, j->opts->bad_arg);
	}
}

static void report(struct vjob *j, const char *point, uint64_t index,
		   const uint8_t *hash, int err, const char *detail)
{
	if (j->opts && j->opts->bad) {
		struct ferry_bad_block b = { point, index,
					     index == UINT64_MAX ? 0 : index * j->bs,
					     hash, err, detail };

		j->opts->bad(&b, j->opts->bad_arg);
	}
}

static int check_chunk(void *item, int worker, void *arg)
{
	struct vjob *j = arg;
	struct vitem *it = item;
	size_t len, raw = 0;
	int r;

	if (atomic_load(&ferry_cancelled))
		return ferry_error(FERRY_E_INTERRUPTED, "verify interrupted");
	if (it->kind == FERRY_ENTRY_DELTA) {
		/* A delta block: its chunk, its base, and the rebuilt
		 * block's id are all checked. */
		struct ferry_dbufs b = { j->in[worker], j->rec[worker],
					 j->incap, j->outcap };

		r = ferry_block_read(j->repo, j->ctx[worker], it->kind,
				     it->hash, &b, j->out[worker], j->outcap,
				     &raw);
	} else {
		r = j->repo->ops->get_chunk(j->repo, it->hash, j->in[worker],
					    j->incap, &len);
		if (r == 0)
			r = ferry_chunk_decode(j->ctx[worker], j->in[worker],
					       len, j->out[worker], j->outcap,
					       &raw, it->hash);
	}
	pthread_mutex_lock(&j->mu);
	j->res->chunks_checked++;
	j->res->bytes_checked += raw;
	if (r == FERRY_E_CORRUPT || r == FERRY_E_MISSING) {
		if (r == FERRY_E_MISSING)
			j->res->chunks_missing++;
		else
			j->res->chunks_bad++;
		if (j->nbad == j->capbad) {
			size_t nc = j->capbad ? j->capbad * 2 : 64;
			void *nv = realloc(j->bad, nc * FERRY_HASH_LEN);

			if (!nv) {
				pthread_mutex_unlock(&j->mu);
				return FERRY_E_NOMEM;
			}
			j->bad = nv;
			j->capbad = nc;
		}
		memcpy(j->bad[j->nbad++], it->hash, FERRY_HASH_LEN);
		report(j, j->point_id, it->index, it->hash, r, ferry_last_error());
		r = 0;
	}
	pthread_mutex_unlock(&j->mu);
	return r;
}

static int hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, FERRY_HASH_LEN);
}

struct walk {
	struct vjob *j;
	struct ferry_workq *q;
};

static int push_chunk(const uint8_t h[FERRY_HASH_LEN], uint64_t size, void *arg)
{
	struct walk *w = arg;
	struct vitem it = { UINT64_MAX, { 0 }, FERRY_ENTRY_DATA };

	(void)size;
	memcpy(it.hash, h, FERRY_HASH_LEN);
	if (!sampled(w->j, h))
		return 0;
	if (w->j->opts && w->j->opts->progress) {
		double now = ferry_mono_seconds();

		w->j->bytes_total += size;
		if (now - w->j->last >= 0.25) {
			struct ferry_progress pr = { w->j->bytes_total, 0,
						     now - w->j->t0 };

			w->j->opts->progress(&pr, w->j->opts->progress_arg);
			w->j->last = now;
		}
	}
	return ferry_workq_push(w->q, &it);
}

/* Check one point's references against the known-bad set and the store.
 * Runs on the pool (one point per item): shared counters and reports are
 * taken under j->mu. */
static int check_refs(struct vjob *j, const struct ferry_point *pt,
		      int worker)
{
	struct ferry_mreader *m;
	struct ferry_point p;
	uint8_t h[FERRY_HASH_LEN];
	uint32_t bs = pt->block_size;
	uint64_t missing = 0;
	int kind, e, bad = 0;

	if ((e = ferry_mreader_open(j->repo, pt->id, &m, &p)) != 0) {
		const char *why = ferry_last_error();
		char named[FERRY_ID_LEN + 32];

		if (e != FERRY_E_CORRUPT && e != FERRY_E_VERSION)
			return e;
		/* The report names the point already. */
		snprintf(named, sizeof(named), "restore point %s: ", pt->id);
		if (!strncmp(why, named, strlen(named)))
			why += strlen(named);
		pthread_mutex_lock(&j->mu);
		j->res->points_checked++;
		report_bs(j, pt->id, UINT64_MAX, bs, NULL, FERRY_E_CORRUPT, why);
		j->res->points_bad++;
		j->points_newer += e == FERRY_E_VERSION;
		pthread_mutex_unlock(&j->mu);
		if (e == FERRY_E_CORRUPT)
			record(j, pt->id, 1);
		return 0;
	}
	for (uint64_t i = 0; (e = ferry_mreader_next(m, &kind, h)) == 1; i++) {
		if (atomic_load(&ferry_cancelled)) {
			e = ferry_error(FERRY_E_INTERRUPTED, "verify interrupted");
			break;
		}
		if (kind == FERRY_ENTRY_ZERO)
			continue;
		/* j->bad is sorted and no longer changes in this phase. */
		if (j->nbad && bsearch(h, j->bad, j->nbad, FERRY_HASH_LEN, hash_cmp)) {
			pthread_mutex_lock(&j->mu);
			report_bs(j, pt->id, i, bs, h, FERRY_E_CORRUPT,
				  "chunk is damaged");
			pthread_mutex_unlock(&j->mu);
			bad = 1;
			continue;
		}
		e = j->repo->ops->has_chunk(j->repo, h);
		if (e < 0)
			break;
		if (e == 0) {
			char hex[65];

			ferry_hash_hex(h, hex);
			ferry_error(FERRY_E_MISSING, "chunk %s is missing", hex);
			pthread_mutex_lock(&j->mu);
			report_bs(j, pt->id, i, bs, h, FERRY_E_MISSING,
				  ferry_last_error());
			pthread_mutex_unlock(&j->mu);
			missing++;
			bad = 1;
		} else if (kind == FERRY_ENTRY_DELTA) {
			/* Its chunk was checked; its base and the rebuilt
			 * block are checked here (delta.c), once per run. */
			struct ferry_dbufs b = { j->in[worker], j->rec[worker],
						 j->incap, j->outcap };
			size_t raw, slot = ((size_t)h[0] << 8 | h[1]) % 4096;
			int known;

			pthread_mutex_lock(&j->mu);
			known = j->dok && !memcmp(j->dok[slot], h, FERRY_HASH_LEN);
			pthread_mutex_unlock(&j->mu);
			if (known)
				continue;
			e = ferry_block_read(j->repo, j->ctx[worker], kind, h,
					     &b, j->out[worker], j->outcap, &raw);
			if (e == 0 && j->dok) {
				pthread_mutex_lock(&j->mu);
				memcpy(j->dok[slot], h, FERRY_HASH_LEN);
				pthread_mutex_unlock(&j->mu);
			}
			if (e == FERRY_E_CORRUPT || e == FERRY_E_MISSING) {
				pthread_mutex_lock(&j->mu);
				report_bs(j, pt->id, i, bs, h, e,
					  ferry_last_error());
				pthread_mutex_unlock(&j->mu);
				bad = 1;
			} else if (e) {
				break;
			}
		}
	}
	ferry_mreader_free(m);
	if (e < 0)
		return e;
	pthread_mutex_lock(&j->mu);
	j->res->points_checked++;
	j->res->chunks_missing += missing;
	j->res->points_bad += bad;
	pthread_mutex_unlock(&j->mu);
	record(j, pt->id, bad);
	return 0;
}

struct plist_v {
	struct ferry_point *v;
	size_t n, cap;
};

static int collect_point(const struct ferry_point *p, void *arg)
{
	struct plist_v *l = arg;

	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		struct ferry_point *nv = realloc(l->v, nc * sizeof(*nv));

		if (!nv)
			return FERRY_E_NOMEM;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = *p;
	return 0;
}

static int refs_item(void *item, int worker, void *arg)
{
	/* A damaged manifest is opened again there, for its reason. */
	return check_refs(arg, *(const struct ferry_point **)item, worker);
}

/* Every point's references, one point per pool thread, points in the
 * listing's order (oldest first). */
static int check_all_refs(struct vjob *j, int threads)
{
	struct plist_v l = { 0 };
	struct ferry_workq *q = NULL;
	int e, qe;

	if ((e = ferry_points_list(j->repo, NULL, collect_point, &l)) != 0)
		goto out;
	if (l.n < 2)
		threads = 1;
	if ((e = ferry_workq_new(threads, sizeof(struct ferry_point *),
				 (size_t)threads * 2, refs_item, j, &q)) != 0)
		goto out;
	for (size_t i = 0; i < l.n && e == 0; i++) {
		const struct ferry_point *pp = &l.v[i];

		e = ferry_workq_push(q, &pp);
	}
	qe = ferry_workq_finish(q);
	if (qe)
		e = qe;
out:
	free(l.v);
	return e;
}

int ferry_verify(struct ferry_repo *repo, const char *spec,
		 const struct ferry_verify_opts *opts,
		 struct ferry_verify_result *res)
{
	struct vjob j;
	struct ferry_workq *q = NULL;
	struct ferry_point p;
	struct ferry_mreader *m = NULL;
	int threads = opts && opts->threads > 0 ? opts->threads : ferry_cpu_count();
	int e, qe;

	memset(res, 0, sizeof(*res));
	memset(&j, 0, sizeof(j));
	pthread_mutex_init(&j.mu, NULL);
	if ((e = ferry_repo_need_key(repo)) != 0)
		return e;
	j.repo = repo;
	j.opts = opts;
	j.res = res;
	j.t0 = ferry_mono_seconds();
	j.now_ns = ferry_now_ns();
	j.sample = opts && opts->sample > 0 && opts->sample < 100 ? opts->sample : 100;
	if (opts && (opts->sample < 0 || opts->sample > 100))
		return ferry_error(FERRY_E_INVAL, "--sample takes a percent from 1 to 100");
	if ((e = ferry_random(j.seed, sizeof(j.seed))) != 0)
		return e;
	j.bs = repo->block_size;
	/* Every chunk of a repository is at most its block size. */
	j.incap = ferry_chunk_bound(repo->block_size);
	j.outcap = repo->block_size;
	if (spec) {
		if ((e = ferry_point_resolve(repo, spec, &p)) != 0)
			goto out;
		if ((e = ferry_mreader_open(repo, p.id, &m, &p)) != 0)
			goto out;
		j.point_id = p.id;
		j.bs = p.block_size;
		j.incap = ferry_chunk_bound(p.block_size);
		j.outcap = p.block_size;
	}
	j.ctx = calloc((size_t)threads, sizeof(*j.ctx));
	j.in = calloc((size_t)threads, sizeof(*j.in));
	j.out = calloc((size_t)threads, sizeof(*j.out));
	j.rec = calloc((size_t)threads, sizeof(*j.rec));
	if (repo->delta)
		j.dok = calloc(4096, sizeof(*j.dok));
	if (!j.ctx || !j.in || !j.out || !j.rec || (repo->delta && !j.dok)) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	for (int k = 0; k < threads; k++) {
		j.ctx[k] = ferry_codec_ctx_for(repo, FERRY_CODEC_NONE, 0);
		j.in[k] = malloc(j.incap);
		j.out[k] = malloc(j.outcap);
		if (repo->delta)
			j.rec[k] = malloc(j.outcap);
		if (!j.ctx[k] || !j.in[k] || !j.out[k] ||
		    (repo->delta && !j.rec[k])) {
			e = FERRY_E_NOMEM;
			goto out;
		}
	}
	if ((e = ferry_workq_new(threads, sizeof(struct vitem), (size_t)threads * 4,
				 check_chunk, &j, &q)) != 0)
		goto out;
	if (spec) {
		/* One point: check each chunk it references, in block order. */
		struct vitem it;
		int kind;

		res->points_checked = 1;
		for (it.index = 0; (e = ferry_mreader_next(m, &kind, it.hash)) == 1;
		     it.index++) {
			if (kind == FERRY_ENTRY_ZERO)
				continue;
			it.kind = kind;
			if (sampled(&j, it.hash)) {
				if ((e = ferry_workq_push(q, &it)) != 0)
					break;
				continue;
			}
			/* Not read this time, but it must be there. */
			if ((e = repo->ops->has_chunk(repo, it.hash)) < 0)
				break;
			if (e == 0) {
				char hex[65];

				ferry_hash_hex(it.hash, hex);
				pthread_mutex_lock(&j.mu);
				res->chunks_missing++;
				ferry_error(FERRY_E_MISSING, "chunk %s is missing", hex);
				report(&j, p.id, it.index, it.hash, FERRY_E_MISSING,
				       ferry_last_error());
				pthread_mutex_unlock(&j.mu);
			}
		}
	} else {
		struct walk w = { &j, q };

		e = repo->ops->list_chunks(repo, push_chunk, &w);
	}
	qe = ferry_workq_finish(q);
	q = NULL;
	if (qe)
		e = qe;
	if (e < 0)
		goto out;
	e = 0;
	if (spec) {
		res->points_bad = j.nbad || res->chunks_missing ? 1 : 0;
		record(&j, p.id, res->points_bad != 0);
	} else {
		/* Then every manifest: name the points each bad or missing
		 * chunk breaks. */
		if (j.nbad)
			qsort(j.bad, j.nbad, FERRY_HASH_LEN, hash_cmp);
		if ((e = check_all_refs(&j, threads)) != 0)
			goto out;
	}
	if (!res->chunks_bad && !res->chunks_missing && res->points_bad &&
	    j.points_newer == res->points_bad)
		/* Not damage: manifests this ferry is too old to read. */
		e = ferry_error(FERRY_E_VERSION,
				"no damage found, but %llu restore point(s) have a manifest format version this ferry does not read",
				(unsigned long long)res->points_bad);
	else if (res->points_bad || res->chunks_bad || res->chunks_missing)
		e = ferry_error(res->chunks_bad || res->points_bad ? FERRY_E_CORRUPT
								  : FERRY_E_MISSING,
				"verify found %llu bad and %llu missing chunk(s); %llu restore point(s) damaged",
				(unsigned long long)res->chunks_bad,
				(unsigned long long)res->chunks_missing,
				(unsigned long long)res->points_bad);
out:
	if (q)
		ferry_workq_finish(q);
	res->seconds = ferry_mono_seconds() - j.t0;
	ferry_mreader_free(m);
	for (int k = 0; j.ctx && k < threads; k++)
		ferry_codec_ctx_free(j.ctx[k]);
	for (int k = 0; j.in && k < threads; k++)
		free(j.in[k]);
	for (int k = 0; j.out && k < threads; k++)
		free(j.out[k]);
	for (int k = 0; j.rec && k < threads; k++)
		free(j.rec[k]);
	free(j.rec);
	free(j.dok);
	free(j.ctx);
	free(j.in);
	free(j.out);
	free(j.bad);
	pthread_mutex_destroy(&j.mu);
	return e;
}
