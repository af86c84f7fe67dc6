/* copy_reseal.c - backup copy between repositories whose chunks are named
 * and sealed with different keys (plain -> encrypted, encrypted -> plain,
 * or two encrypted repositories with their own keys).
 *
 * A chunk cannot travel as stored: its name is the source's id of the
 * plaintext (SHA-256, or HMAC-SHA-256 under the source's id key) and its
 * payload is sealed under the source's key.  Each chunk is read from the
 * source and fully checked (framing, tag, id), its target id is computed
 * from the plaintext, and only when the target lacks that id is it
 * encoded (compressed and sealed) for the target, decoded once more to
 * prove the encoding, and sent.  Manifest entries are rewritten with the
 * target's ids; the point keeps its id, name, times and notes, so the
 * target's point list still says what is copied already.
 *
 * Reading every source chunk would make an incremental copy read the
 * whole disk.  When an earlier point of the same name is on both sides
 * (the base), its two manifests give the target id of every block that
 * did not change: the three manifests are walked in step, and a block
 * whose source id equals the base's at the same index takes the base's
 * target id without being read, as long as the target holds it.  Memory
 * stays bounded: three manifest streams and one batch of chunks per
 * worker.
 *
 * After the commit the target's manifest is read back: its header must
 * match the source's and a SHA-256 over its entries must equal the one
 * taken over the entries as recorded. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "seal.h"

#define RBATCH 64 /* manifest entries per round of parallel chunk work */

struct rjob {
	uint8_t src[FERRY_HASH_LEN];   /* the source's id */
	uint8_t dst[FERRY_HASH_LEN];   /* the target's id (result) */
	uint8_t guess[FERRY_HASH_LEN]; /* the base's target id, if known */
	int guessed;
	struct ferry_copy_sent s;
	int read;             /* 1 read from the source */
	int delta;            /* a delta block (delta.c): rebuilt, sent whole */
};

struct rctx {
	struct ferry_repo *from;
	struct ferry_target *t;
	struct ferry_codec_ctx **sc, **tc; /* source, target codec */
	uint8_t **in, **plain, **out, **check;
	size_t incap, outcap, plaincap;
	const char *id;
};

int ferry_copy_reseal_needed(const struct ferry_repo *from,
			     const struct ferry_repo *to)
{
	if (!from->encrypted && !to->encrypted)
		return 0;
	if (from->encrypted != to->encrypted)
		return 1;
	/* Two encrypted repositories: the same keys (one config copied to
	 * make the other) keep chunks valid as stored. */
	if (!from->keys || !to->keys)
		return 1;
	return CRYPTO_memcmp(from->keys, to->keys, sizeof(*from->keys)) != 0;
}

static int reseal_chunk(void *item, int worker, void *arg)
{
	struct rjob *j = *(struct rjob **)item;
	struct rctx *c = arg;
	size_t len, plain, olen, clen;
	char hex[65];
	int e;

	if (j->guessed) {
		if ((e = c->t->ops->have(c->t, j->guess)) < 0)
			return e;
		if (e == 1) {
			memcpy(j->dst, j->guess, FERRY_HASH_LEN);
			return 0;
		}
	}
	if (j->delta) {
		/* A delta block: rebuilt and checked from its delta and base
		 * chunks (the record borrows CHECK), then re-encoded whole. */
		struct ferry_dbufs b = { c->in[worker], c->check[worker],
					 c->incap, c->plaincap };

		e = ferry_block_read(c->from, c->sc[worker], FERRY_ENTRY_DELTA,
				     j->src, &b, c->plain[worker], c->plaincap,
				     &plain);
		j->read = 1;
		if (e)
			return ferry_copy_delta_bad(e, c->id);
		goto encode;
	}
	if ((e = ferry_copy_read(c->from, c->sc[worker], c->id, j->src, c->in[worker], c->incap,
				 &len, c->plain[worker], c->plaincap, &plain)) != 0)
		return e;
	j->read = 1;
encode:
	if ((e = ferry_chunk_id(c->tc[worker], c->plain[worker], plain,
				j->dst)) != 0)
		return e;
	if ((e = c->t->ops->have(c->t, j->dst)) < 0)
		return e;
	if (e == 1)
		return 0;
	if ((e = ferry_chunk_encode(c->tc[worker], c->plain[worker], plain,
				    c->out[worker], c->outcap, &olen)) != 0)
		return e;
	/* Prove the new form before it leaves: it must open under the
	 * target's key to the same plaintext (its id checked). */
	if ((e = ferry_chunk_decode(c->tc[worker], c->out[worker], olen,
				    c->check[worker], c->plaincap, &clen,
				    j->dst)) != 0 ||
	    clen != plain || memcmp(c->check[worker], c->plain[worker], plain)) {
		ferry_hash_hex(j->src, hex);
		return ferry_error(e ? e : FERRY_E_CORRUPT,
				   "restore point %s: chunk %s does not decode after it was encoded for the target",
				   c->id, hex);
	}
	return ferry_copy_put(c->t, j->dst, c->out[worker], olen, plain, &j->s);
}

#define DIGEST_LEN 32

static void digest_entry(EVP_MD_CTX *s, int kind, const uint8_t h[FERRY_HASH_LEN])
{
	uint8_t k = (uint8_t)kind;

	EVP_DigestUpdate(s, &k, 1);
	if (kind == FERRY_ENTRY_DATA)
		EVP_DigestUpdate(s, h, FERRY_HASH_LEN);
}

/* The committed copy read back: header as the source's, entries as
 * recorded (their digest WANT). */
static int reseal_check(struct ferry_repo *to, const struct ferry_point *sp,
			const uint8_t want[DIGEST_LEN])
{
	struct ferry_mreader *b = NULL;
	struct ferry_point pb;
	EVP_MD_CTX *s = EVP_MD_CTX_new();
	uint8_t h[FERRY_HASH_LEN], got[DIGEST_LEN];
	unsigned int gl = 0;
	uint64_t n = 0;
	int e, k;

	if (!s || !EVP_DigestInit_ex(s, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(s);
		return ferry_error(FERRY_E_NOMEM, "no SHA-256 context");
	}
	if ((e = ferry_copy_read_back(to, sp->id, &b, &pb)) != 0)
		goto out;
	if (sp->nblocks != pb.nblocks || sp->disk_size != pb.disk_size ||
	    sp->created_ns != pb.created_ns || strcmp(sp->name, pb.name) ||
	    strcmp(sp->source, pb.source) || strcmp(sp->extra, pb.extra)) {
		e = ferry_error(FERRY_E_CORRUPT,
				"restore point %s: the copy's header differs from the source's",
				sp->id);
		goto out;
	}
	while ((e = ferry_mreader_next(b, &k, h)) == 1) {
		digest_entry(s, k, h);
		n++;
	}
	if (e < 0)
		goto out;
	EVP_DigestFinal_ex(s, got, &gl);
	if (n != sp->nblocks || gl != DIGEST_LEN || memcmp(got, want, sizeof(got))) {
		e = ferry_error(FERRY_E_CORRUPT,
				"restore point %s: the copy's manifest differs from what was recorded",
				sp->id);
		goto out;
	}
	e = 0;
out:
	EVP_MD_CTX_free(s);
	ferry_mreader_free(b);
	return e;
}

static void rctx_free(struct rctx *c, int threads)
{
	ferry_copy_codecs_free(c->sc, threads);
	ferry_copy_codecs_free(c->tc, threads);
	ferry_copy_bufs_free(c->in, threads);
	ferry_copy_bufs_free(c->plain, threads);
	ferry_copy_bufs_free(c->out, threads);
	ferry_copy_bufs_free(c->check, threads);
}

static int rctx_init(struct rctx *c, struct ferry_repo *from,
		     struct ferry_repo *to, int threads)
{
	c->from = from;
	c->incap = ferry_chunk_bound(from->block_size);
	c->outcap = ferry_chunk_bound(to->block_size);
	c->plaincap = from->block_size;
	if (!(c->sc = ferry_copy_codecs_new(from, threads)) ||
	    !(c->tc = ferry_copy_codecs_new(to, threads)))
		return from->encrypted && !from->keys ? ferry_repo_need_key(from)
		       : to->encrypted && !to->keys ? ferry_repo_need_key(to)
		       : FERRY_E_NOMEM;
	c->in = ferry_copy_bufs_new(threads, c->incap);
	c->plain = ferry_copy_bufs_new(threads, c->plaincap);
	c->out = ferry_copy_bufs_new(threads, c->outcap);
	c->check = ferry_copy_bufs_new(threads, c->plaincap);
	if (!c->in || !c->plain || !c->out || !c->check)
		return FERRY_E_NOMEM;
	return 0;
}

/* The batch's job for source chunk H: *K its index in JOBS (UNIQ[k] is
 * &JOBS[k]); 1 when it is a new one (cleared), 0 when H had one. */
static int rjob_for(struct rjob *jobs, struct rjob **uniq, size_t *nu,
		    const uint8_t h[FERRY_HASH_LEN], size_t *k)
{
	for (*k = 0; *k < *nu; (*k)++)
		if (!memcmp(jobs[*k].src, h, FERRY_HASH_LEN))
			return 0;
	memset(&jobs[*k], 0, sizeof(jobs[*k]));
	memcpy(jobs[*k].src, h, FERRY_HASH_LEN);
	uniq[*k] = &jobs[*k];
	(*nu)++;
	return 1;
}

/* The next entry of a base manifest, or none past its end. */
static int base_next(struct ferry_mreader *m, int *kind,
		     uint8_t h[FERRY_HASH_LEN])
{
	int e;

	*kind = -1;
	if (!m)
		return 0;
	if ((e = ferry_mreader_next(m, kind, h)) <= 0)
		*kind = -1;
	return e < 0 ? e : 0;
}

int ferry_copy_point_reseal(struct ferry_repo *from, struct ferry_repo *to,
			    const struct ferry_point *sp, const char *base_id,
			    int threads, const struct ferry_copy_opts *o,
			    uint64_t walked, uint64_t total, double t0,
			    struct ferry_copy_result *res)
{
	struct ferry_mreader *m = NULL, *bs = NULL, *bd = NULL;
	struct ferry_target *t = NULL;
	struct ferry_backup_result br;
	struct ferry_point p, bp;
	struct rctx c;
	struct rjob jobs[RBATCH], *uniq[RBATCH];
	int kinds[RBATCH], slot[RBATCH], e;
	uint8_t hashes[RBATCH][FERRY_HASH_LEN];
	uint8_t digest[DIGEST_LEN];
	uint64_t done = 0, nread = 0;
	EVP_MD_CTX *dg = EVP_MD_CTX_new();
	unsigned int dl = 0;
	double last = 0;

	memset(&c, 0, sizeof(c));
	memset(&br, 0, sizeof(br));
	c.id = sp->id;
	if (!dg || !EVP_DigestInit_ex(dg, EVP_sha256(), NULL)) {
		e = ferry_error(FERRY_E_NOMEM, "no SHA-256 context");
		goto out;
	}
	if ((e = rctx_init(&c, from, to, threads)) != 0)
		goto out;
	/* The source manifest, checked whole before anything is sent. */
	if ((e = ferry_mreader_open(from, sp->id, &m, &p)) != 0)
		goto out;
	/* The base on both sides; without it every chunk is read. */
	if (base_id && ferry_mreader_open(from, base_id, &bs, &bp) == 0 &&
	    ferry_mreader_open(to, base_id, &bd, &bp) == 0) {
		/* both open */
	} else {
		ferry_mreader_free(bs);
		ferry_mreader_free(bd);
		bs = bd = NULL;
	}
	if ((e = ferry_copy_begin(to, &p, &t)) != 0)
		goto out;
	c.t = t;
	while (done < p.nblocks) {
		size_t n = 0, nu = 0;

		while (n < RBATCH && done + n < p.nblocks) {
			uint8_t hs[FERRY_HASH_LEN], hd[FERRY_HASH_LEN];
			int ks, kd;
			size_t k;

			if ((e = ferry_copy_next(m, &p, &kinds[n], hashes[n])) != 0)
				goto out;
			if ((e = base_next(bs, &ks, hs)) != 0 ||
			    (e = base_next(bd, &kd, hd)) != 0)
				goto out;
			slot[n] = -1;
			if (kinds[n] == FERRY_ENTRY_DELTA) {
				/* Rebuilt and re-encoded as a whole block. */
				if (rjob_for(jobs, uniq, &nu, hashes[n], &k))
					jobs[k].delta = 1;
				slot[n] = (int)k;
				kinds[n] = FERRY_ENTRY_DATA;
				n++;
				continue;
			}
			if (kinds[n] != FERRY_ENTRY_ZERO && kinds[n] != FERRY_ENTRY_DATA) {
				e = ferry_error(FERRY_E_INVAL,
						"restore point %s: block %llu is stored as manifest entry kind %d, which a copy between repositories with different keys cannot re-encode yet (only whole-block chunks, kinds 0 and 1); nothing of this point was committed on the target",
						p.id, (unsigned long long)(done + n), kinds[n]);
				goto out;
			}
			if (kinds[n] == FERRY_ENTRY_DATA) {
				if (rjob_for(jobs, uniq, &nu, hashes[n], &k) &&
				    ks == FERRY_ENTRY_DATA && kd == FERRY_ENTRY_DATA &&
				    !memcmp(hs, hashes[n], FERRY_HASH_LEN)) {
					memcpy(jobs[k].guess, hd, FERRY_HASH_LEN);
					jobs[k].guessed = 1;
				}
				slot[n] = (int)k;
			}
			n++;
		}
		if ((e = ferry_workq_run(threads, uniq, sizeof(uniq[0]), nu,
					 reseal_chunk, &c)) != 0)
			goto out;
		/* Records follow their chunks, with the target's ids. */
		for (size_t k = 0; k < n; k++) {
			const uint8_t *h = slot[k] >= 0 ? jobs[slot[k]].dst : hashes[k];

			if ((e = t->ops->record(t, kinds[k], h)) != 0)
				goto out;
			digest_entry(dg, kinds[k], h);
		}
		for (size_t k = 0; k < nu; k++) {
			nread += jobs[k].read;
			ferry_copy_tally(&jobs[k].s, &br, res);
		}
		done += n;
		ferry_copy_progress(o, &p, done, walked, total, t0, &last);
	}
	if ((e = ferry_copy_commit(&t, &br, &p, res)) != 0)
		goto out;
	res->chunks_read += nread;
	EVP_DigestFinal_ex(dg, digest, &dl);
	e = reseal_check(to, &p, digest);
out:
	if (t)
		t->ops->free(t);
	ferry_mreader_free(m);
	ferry_mreader_free(bs);
	ferry_mreader_free(bd);
	EVP_MD_CTX_free(dg);
	rctx_free(&c, threads);
	return e;
}
