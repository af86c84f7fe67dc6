/* gc.c - garbage collection: mark every chunk a committed manifest names
 * in a Bloom filter of bounded size (a false positive only keeps garbage),
 * then, under the repository lock taken exclusively (no backup between
 * begin and commit), mark the manifests committed meanwhile and remove
 * every chunk left unmarked.  The protocol is in docs/gc.md. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define BITS_PER_CHUNK 16
#define FILTER_MIN_BITS (1ull << 16)
#define FILTER_MAX_BITS (1ull << 30) /* 128 MiB: gc stays under 256 MiB */
#define FILTER_HASHES 10

struct bloom {
	uint64_t *w;
	uint64_t mask; /* bits - 1 (bits is a power of two) */
	uint64_t seed[2];
};

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finaliser */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t load64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int bloom_init(struct bloom *b, uint64_t chunks)
{
	uint64_t bits = FILTER_MIN_BITS;

	while (bits < chunks * BITS_PER_CHUNK && bits < FILTER_MAX_BITS)
		bits <<= 1;
	b->mask = bits - 1;
	/* A new seed each run: a chunk kept by a false positive now is
	 * judged independently by the next run. */
	if (ferry_random(b->seed, sizeof(b->seed)))
		return FERRY_E_IO;
	b->w = calloc(bits / 64, sizeof(uint64_t));
	return b->w ? 0 : ferry_error(FERRY_E_NOMEM,
				      "no memory for a %llu MiB mark filter",
				      (unsigned long long)(bits >> 23));
}

static void bloom_hashes(const struct bloom *b, const uint8_t h[FERRY_HASH_LEN],
			 uint64_t *h1, uint64_t *h2)
{
	*h1 = mix64(load64(h) ^ b->seed[0]) ^ load64(h + 16);
	*h2 = mix64(load64(h + 8) ^ b->seed[1]) | 1;
}

static void bloom_add(struct bloom *b, const uint8_t h[FERRY_HASH_LEN])
{
	uint64_t h1, h2;

	bloom_hashes(b, h, &h1, &h2);
	for (int i = 0; i < FILTER_HASHES; i++, h1 += h2) {
		uint64_t bit = h1 & b->mask;

		b->w[bit >> 6] |= 1ull << (bit & 63);
	}
}

static int bloom_has(const struct bloom *b, const uint8_t h[FERRY_HASH_LEN])
{
	uint64_t h1, h2;

	bloom_hashes(b, h, &h1, &h2);
	for (int i = 0; i < FILTER_HASHES; i++, h1 += h2) {
		uint64_t bit = h1 & b->mask;

		if (!(b->w[bit >> 6] & (1ull << (bit & 63))))
			return 0;
	}
	return 1;
}

struct gc {
	struct ferry_repo *repo;
	const struct ferry_gc_opts *opts;
	struct ferry_gc_result *res;
	struct bloom bf;
	uint64_t *seen; /* ids of marked manifests (8 bytes each), sorted */
	size_t nseen, capseen;
	int late;       /* second pass: mark only manifests not seen */
	int imm;        /* hardened repository */
	int repair;     /* and not a dry run: set missing attributes */
	/* Parked mover sessions: the earliest start (unix ns), 0 if none,
	 * and REPO/chunks to look at unmarked chunks' times. */
	uint64_t sess_since;
	int chunks_fd;
	double t0, last;
	/* Delta blocks (delta.c): a delta chunk keeps its base chunk; the
	 * base ids of recently read delta chunks, direct-mapped (bounded). */
	struct ferry_codec_ctx *dctx;
	struct ferry_dbufs db;
	struct gc_dslot *dcache;
};

#define GC_DCACHE 4096
struct gc_dslot {
	uint8_t id[FERRY_HASH_LEN], base[FERRY_HASH_LEN];
	int used;
};

static uint64_t id_key(const char *id)
{
	uint8_t b[8];

	ferry_hex_decode(id, b, sizeof(b));
	return load64(b);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void progress(struct gc *g, uint64_t done)
{
	double now = ferry_mono_seconds();

	if (g->opts && g->opts->progress && now - g->last >= 0.25) {
		struct ferry_progress pr = { done, 0, now - g->t0 };

		g->opts->progress(&pr, g->opts->progress_arg);
		g->last = now;
	}
}

static void bloom_add(struct bloom *b, const uint8_t h[FERRY_HASH_LEN]);

/* Mark the base chunk of delta chunk ID.  A delta chunk that is damaged
 * or gone has lost its block already (verify names it): its base is kept
 * only by whatever else names it. */
static int mark_delta(struct gc *g, const uint8_t id[FERRY_HASH_LEN])
{
	struct gc_dslot *s;
	struct ferry_delta d;
	int e;

	if (!g->dcache) {
		g->dctx = ferry_codec_ctx_for(g->repo, FERRY_CODEC_NONE, 0);
		g->dcache = calloc(GC_DCACHE, sizeof(*g->dcache));
		if (!g->dctx || !g->dcache ||
		    ferry_dbufs_init(&g->db, g->repo->block_size))
			return FERRY_E_NOMEM;
	}
	s = &g->dcache[load64(id) % GC_DCACHE];
	if (s->used && !memcmp(s->id, id, FERRY_HASH_LEN)) {
		bloom_add(&g->bf, s->base);
		return 0;
	}
	e = ferry_delta_load(g->repo, g->dctx, id, g->db.in, g->db.incap,
			     g->db.rec, g->db.reccap, &d);
	if (e == FERRY_E_CORRUPT || e == FERRY_E_MISSING)
		return 0;
	if (e) {
		char why[300];

		snprintf(why, sizeof(why), "%s", ferry_last_error());
		return ferry_error(e,
				   "%s; gc cannot tell which base chunks it needs and removes nothing",
				   why);
	}
	bloom_add(&g->bf, d.base);
	memcpy(s->id, id, FERRY_HASH_LEN);
	memcpy(s->base, d.base, FERRY_HASH_LEN);
	s->used = 1;
	return 0;
}

/* Mark one manifest's chunks.  A manifest removed meanwhile (forget) is
 * skipped; one that cannot be read stops gc: what it references is
 * unknown, so nothing may be removed. */
static int mark_point(const char *id, void *arg)
{
	struct gc *g = arg;
	struct ferry_mreader *m;
	struct ferry_point p;
	uint8_t h[FERRY_HASH_LEN];
	uint64_t key = id_key(id);
	int kind, e;

	if (atomic_load(&ferry_cancelled))
		return ferry_error(FERRY_E_INTERRUPTED, "gc interrupted");
	if (g->late) {
		if (g->nseen && bsearch(&key, g->seen, g->nseen, sizeof(key), u64_cmp))
			return 0;
	} else if (g->nseen == g->capseen) {
		size_t nc = g->capseen ? g->capseen * 2 : 1024;
		uint64_t *nv = realloc(g->seen, nc * sizeof(*nv));

		if (!nv)
			return FERRY_E_NOMEM;
		g->seen = nv;
		g->capseen = nc;
	}
	e = ferry_mreader_open(g->repo, id, &m, &p);
	if (e == FERRY_E_NOTFOUND)
		return 0;
	if (e) {
		char why[300];

		snprintf(why, sizeof(why), "%s", ferry_last_error());
		return ferry_error(e,
				   "%s; gc cannot tell which chunks it needs and removes nothing (run ferry verify)",
				   why);
	}
	if (g->imm) {
		uint64_t until;

		/* A hardened repository's unexpired point: its chunks are
		 * marked like any other's, so none of them goes. */
		if ((e = ferry_point_protected(g->repo, id, p.created_ns, &until)) < 0) {
			ferry_mreader_free(m);
			return e;
		}
		if (e && g->repair && g->repo->ops->protect_point) {
			int pe = g->repo->ops->protect_point(g->repo, id);

			if (pe < 0) {
				ferry_mreader_free(m);
				return pe;
			}
			g->res->files_protected += (uint64_t)pe;
		}
		if (e) {
			g->res->points_protected++;
			if (!g->res->protected_until_ns ||
			    until < g->res->protected_until_ns)
				g->res->protected_until_ns = until;
		}
	}
	while ((e = ferry_mreader_next(m, &kind, h)) == 1) {
		if (kind == FERRY_ENTRY_ZERO)
			continue;
		if (kind == FERRY_ENTRY_DELTA && (e = mark_delta(g, h)) != 0)
			break;
		bloom_add(&g->bf, h);
		g->res->references++;
		if ((g->res->references & 0xffff) == 0)
			progress(g, g->res->references);
	}
	ferry_mreader_free(m);
	if (e < 0)
		return e;
	g->res->points++;
	if (g->late)
		g->res->points_late++;
	else
		g->seen[g->nseen++] = key;
	return 0;
}

static int count_chunk(const uint8_t h[FERRY_HASH_LEN], uint64_t size,
		       void *arg)
{
	struct ferry_gc_result *res = arg;

	(void)h;
	res->chunks++;
	res->chunk_bytes += size;
	return 0;
}

static int session_recent(struct gc *g, const uint8_t h[FERRY_HASH_LEN]);

static int sweep_chunk(const uint8_t h[FERRY_HASH_LEN], uint64_t size,
		       void *arg)
{
	struct gc *g = arg;
	int e;

	if (atomic_load(&ferry_cancelled))
		return ferry_error(FERRY_E_INTERRUPTED, "gc interrupted");
	if (bloom_has(&g->bf, h)) {
		/* Kept: in a hardened repository it must carry the
		 * attribute (a false positive's garbage gets it too, and
		 * loses it in a later run that finds it unmarked). */
		if (g->repair && g->repo->ops->protect_chunk) {
			if ((e = g->repo->ops->protect_chunk(g->repo, h)) < 0)
				return e;
			g->res->files_protected += (uint64_t)e;
		}
		return 0;
	}
	if (session_recent(g, h)) {
		g->res->chunks_session++;
		return 0;
	}
	if (!g->opts || !g->opts->dry_run) {
		e = g->repo->ops->delete_chunk(g->repo, h);
		if (e == FERRY_STORE_KEPT) {
			/* Still under an Object Lock retention. */
			g->res->chunks_locked++;
			g->res->bytes_locked += size;
			return 0;
		}
		if (e != 0)
			return e;
	}
	g->res->chunks_removed++;
	g->res->bytes_removed += size;
	return 0;
}

static void mark_session_chunk(const uint8_t *h, void *arg)
{
	bloom_add(&((struct gc *)arg)->bf, h);
}

/* Mark the chunks parked mover sessions name (REPO/sessions/SID,
 * docs/format.md): their acknowledged chunks stay for the resume.  Read
 * under the exclusive lock, when no session adds data, so the files are
 * what a resume finds.  A session file whose header fails its checks is
 * skipped with a warning: a mover refuses to resume it, so the chunks
 * it names are not needed by it. */
static int mark_sessions(struct gc *g)
{
	char dir[4200];
	int dfd;
	DIR *d;
	struct dirent *de;

	if (g->repo->ops != &ferry_store_local_ops)
		return 0;
	snprintf(dir, sizeof(dir), "%s/sessions", g->repo->path);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT)
			return 0;
		return ferry_error(FERRY_E_IO, "open %s: %s", dir, strerror(errno));
	}
	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return ferry_error(FERRY_E_IO, "open %s: %s", dir, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		int e;

		if (de->d_name[0] == '.')
			continue;
		uint64_t created = 0;

		e = ferry_session_file_chunks(dirfd(d), de->d_name,
					      mark_session_chunk, g,
					      &g->res->session_refs, &created);
		if (e == 0) {
			g->res->sessions++;
			if (!g->sess_since || created < g->sess_since)
				g->sess_since = created ? created : 1;
		} else if (e == FERRY_E_CORRUPT) {
			g->res->sessions_damaged++;
			fprintf(stderr, "ferry: gc: warning: %s/%s: %s; skipped (a mover will not resume it)\n",
				dir, de->d_name, ferry_last_error());
		} else if (e != FERRY_E_NOTFOUND) {
			closedir(d);
			return e;
		}
	}
	closedir(d);
	if (g->sess_since) {
		snprintf(dir, sizeof(dir), "%s/chunks", g->repo->path);
		g->chunks_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (g->chunks_fd < 0)
			return ferry_error(FERRY_E_IO, "open %s: %s", dir,
					   strerror(errno));
	}
	return 0;
}

/* Whether an unmarked chunk was written or found present by a parked
 * session: the source counts on chunks the mover acknowledged (a PUT made
 * durable, a HAVE answered present) beyond the entries in the session
 * file, and the mover stamps those (mover_parked.c), so every chunk changed
 * since the earliest parked session began stays (2 s of slack). */
static int session_recent(struct gc *g, const uint8_t h[FERRY_HASH_LEN])
{
	char hex[2 * FERRY_HASH_LEN + 1], rel[2 * FERRY_HASH_LEN + 4];
	struct stat st;
	uint64_t t;

	if (!g->sess_since)
		return 0;
	ferry_hash_hex(h, hex);
	snprintf(rel, sizeof(rel), "%.2s/%s", hex, hex);
	if (fstatat(g->chunks_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno != ENOENT; /* unknown: keep it */
	t = (uint64_t)st.st_mtim.tv_sec * 1000000000ull +
	    (uint64_t)st.st_mtim.tv_nsec;
	return t + 2000000000ull >= g->sess_since;
}

int ferry_gc(struct ferry_repo *repo, const struct ferry_gc_opts *opts,
	     struct ferry_gc_result *res)
{
	struct gc g;
	int dry = opts && opts->dry_run, locked = 0, e;
	double tw;

	memset(res, 0, sizeof(*res));
	memset(&g, 0, sizeof(g));
	g.chunks_fd = -1;
	/* gc reads every manifest to mark: it needs the key. */
	if ((e = ferry_repo_need_key(repo)) != 0)
		return e;
	g.repo = repo;
	g.opts = opts;
	g.res = res;
	g.t0 = ferry_mono_seconds();
	g.imm = ferry_imm_days(repo) > 0;
	g.repair = g.imm && !(opts && opts->dry_run);
	if (!repo->ops->delete_chunk || !repo->ops->lock_exclusive)
		return ferry_error(FERRY_E_INVAL,
				   "the %s backend cannot remove chunks; run ferry gc on the repository's own host",
				   repo->ops->name);
	/* Size the filter from the store: chunks written later by running
	 * backups only raise its false-positive rate (keep more). */
	if ((e = repo->ops->list_chunks(repo, count_chunk, res)) != 0)
		goto out;
	if ((e = bloom_init(&g.bf, res->chunks)) != 0)
		goto out;
	res->filter_bytes = (g.bf.mask + 1) / 8;
	/* Mark, beside running backups. */
	if ((e = repo->ops->point_list(repo, mark_point, &g)) != 0)
		goto out;
	if (g.nseen)
		qsort(g.seen, g.nseen, sizeof(*g.seen), u64_cmp);
	/* No backup is between begin and commit while this is held, so a
	 * chunk is live exactly when a committed manifest names it. */
	tw = ferry_mono_seconds();
	if (!dry) {
		if (opts && opts->lock_timeout > 0 && repo->ops->lock_exclusive_wait)
			e = repo->ops->lock_exclusive_wait(repo, opts->lock_timeout);
		else
			e = repo->ops->lock_exclusive(repo);
		if (e)
			goto out;
		locked = 1;
	}
	res->wait_seconds = ferry_mono_seconds() - tw;
	g.late = 1;
	if ((e = repo->ops->point_list(repo, mark_point, &g)) != 0)
		goto out;
	if ((e = mark_sessions(&g)) != 0)
		goto out;
	if ((e = repo->ops->list_chunks(repo, sweep_chunk, &g)) != 0)
		goto out;
	if (!dry && repo->ops->remove_stale &&
	    (e = repo->ops->remove_stale(repo, &res->stale_files,
					 &res->stale_bytes)) != 0)
		goto out;
	e = 0;
out:
	if (locked)
		repo->ops->unlock(repo);
	res->seconds = ferry_mono_seconds() - g.t0;
	free(g.bf.w);
	free(g.seen);
	ferry_codec_ctx_free(g.dctx);
	ferry_dbufs_free(&g.db);
	free(g.dcache);
	if (g.chunks_fd >= 0)
		close(g.chunks_fd);
	return e;
}
