/* mover_commit.c - what a backup session on the target-side mover
 * receives and how it becomes a restore point: RECORDS (each entry
 * checked against the chunks held, then appended to the session file),
 * SEALED (an encrypted repository's manifest, uploaded by the source) and
 * COMMIT (the manifest written from the session file, after every chunk
 * it names is durable). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "mover.h"

/* Whether other connections carry chunks of this session. */
static int streams(struct mconn *mc)
{
	int n;

	pthread_mutex_lock(&mc->m->mu);
	n = mc->s->refs > 1;
	pthread_mutex_unlock(&mc->m->mu);
	return n;
}

/* With several streams a block's entry may come before its chunk, which
 * travels on another connection: wait for it, a while. */
static int wait_chunk(struct mconn *mc, const uint8_t *h)
{
	struct ferry_repo *repo = mc->r->repo;
	double until = ferry_mono_seconds() + 30;
	int e = 0;

	while (e == 0 && ferry_mono_seconds() < until &&
	       !atomic_load(&mc->m->stopping) &&
	       mc->s->generation == mc->gen) {
		struct timespec ts = { 0, 2000000L };

		nanosleep(&ts, NULL);
		e = repo->ops->has_chunk(repo, h);
	}
	return e;
}

/* A delta block's record (delta.c) is read and checked here, and its base
 * chunk must be held too: a committed point never names a delta whose
 * base is missing. */
static int delta_base_held(struct mconn *mc, const uint8_t *id,
			   uint64_t block)
{
	struct ferry_repo *repo = mc->r->repo;
	uint8_t base[FERRY_HASH_LEN];
	char hex[65];
	int e;

	/* Sealed: the mover cannot open the record (it checks no sealed
	 * chunk's content either); the delta chunk is held. */
	if (ferry_repo_encrypted(repo))
		return 0;
	e = msess_delta_base(repo, id, base);
	if (e == 0 && (e = repo->ops->has_chunk(repo, base)) == 0 &&
	    streams(mc))
		e = wait_chunk(mc, base);
	if (e == 0) {
		ferry_hash_hex(base, hex);
		e = ferry_error(FERRY_E_MISSING,
				"block %llu: the base chunk %s of its delta is not held by the mover",
				(unsigned long long)block, hex);
	} else if (e == 1) {
		e = 0;
	}
	return e;
}

int msess_records(struct mconn *mc, const uint8_t *p, size_t n)
{
	struct msess *s = mc->s;
	struct ferry_repo *repo = mc->r->repo;
	const uint8_t *ent;
	uint64_t first;
	uint16_t count;
	int e;

	if ((e = ferry_records_parse(p, n, &first, &count, &ent)) != 0)
		return e;
	if (first != s->recorded)
		return ferry_error(FERRY_E_PROTO,
				   "RECORDS start at block %llu, expected %llu",
				   (unsigned long long)first,
				   (unsigned long long)s->recorded);
	if (count > s->p.nblocks - s->recorded)
		return ferry_error(FERRY_E_PROTO,
				   "RECORDS go past the last block (%llu)",
				   (unsigned long long)s->p.nblocks);
	/* A manifest may only name chunks the repository holds. */
	for (uint16_t i = 0; i < count; i++) {
		const uint8_t *en = ent + (size_t)i * FERRY_ENTRY_LEN;
		char hex[65];

		if (en[0] == FERRY_ENTRY_DELTA && !ferry_repo_delta(repo))
			return ferry_error(FERRY_E_PROTO,
					   "block %llu is a delta block (kind 2), and the mover's repository has no feature \"delta\"",
					   (unsigned long long)(first + i));
		if (en[0] != FERRY_ENTRY_DATA && en[0] != FERRY_ENTRY_DELTA)
			continue;
		if ((e = repo->ops->has_chunk(repo, en + 1)) < 0)
			return e;
		if (e == 0 && streams(mc))
			e = wait_chunk(mc, en + 1);
		if (e < 0)
			return e;
		if (e == 0) {
			ferry_hash_hex(en + 1, hex);
			return ferry_error(FERRY_E_MISSING,
					   "block %llu names chunk %s, which the mover does not hold",
					   (unsigned long long)(first + i), hex);
		}
		if (en[0] == FERRY_ENTRY_DELTA &&
		    (e = delta_base_held(mc, en + 1, first + i)) != 0)
			return e;
	}
	if ((e = ferry_pwrite_all(s->fd, ent, (size_t)count * FERRY_ENTRY_LEN,
				  (off_t)(s->entries_off +
					  s->recorded * FERRY_ENTRY_LEN))) != 0)
		return ferry_error(ferry_errno_code(-e, FERRY_E_IO),
				   "write session file: %s", strerror(-e));
	s->recorded += count;
	return 0;
}

static int write_manifest(struct msess *s, const struct ferry_point *p)
{
	struct ferry_repo *repo = s->r->repo;
	struct ferry_mwriter *w = NULL;
	uint8_t *buf = malloc(MSESS_ENTRY_IOBUF);
	uint64_t done = 0;
	int e;

	if (!buf)
		return FERRY_E_NOMEM;
	if ((e = ferry_mwriter_begin(repo, p, &w)) != 0)
		goto out;
	while (done < s->recorded) {
		size_t want = MSESS_ENTRY_IOBUF;
		uint64_t left = (s->recorded - done) * FERRY_ENTRY_LEN;
		ssize_t got;

		if (want > left)
			want = (size_t)left;
		got = ferry_pread_full(s->fd, buf, want,
				       (off_t)(s->entries_off + done * FERRY_ENTRY_LEN));
		if (got != (ssize_t)want) {
			e = ferry_error(FERRY_E_IO, "read session file %s",
					s->sidhex);
			goto out;
		}
		for (size_t i = 0; i < want; i += FERRY_ENTRY_LEN)
			if ((e = ferry_mwriter_add(w, buf[i], buf + i + 1)) != 0)
				goto out;
		done += want / FERRY_ENTRY_LEN;
	}
	e = ferry_mwriter_commit(w, p);
out:
	ferry_mwriter_free(w);
	free(buf);
	return e;
}

/* Encrypted repository: the sealed manifest the source uploaded, after
 * the entries in the session file, becomes the point's manifest.  The
 * mover cannot open it; it checks the framing (header, point id, a
 * length that fits the block count) and commits it as it commits its
 * own manifests. */
static uint64_t sealed_off(const struct msess *s)
{
	return s->entries_off + s->p.nblocks * FERRY_ENTRY_LEN;
}

/* The largest sealed manifest a point of this many blocks can have: the
 * file header, the plaintext (header, entries, footer) and one tag per
 * 64 KiB segment.  Nothing larger is stored. */
static uint64_t sealed_max(const struct msess *s)
{
	uint64_t plain = FERRY_MANIFEST_HEADER_MAX + s->p.nblocks * FERRY_ENTRY_LEN +
			 FERRY_MANIFEST_FOOTER;

	return 32 + plain + (plain / (64u << 10) + 1) * 16;
}

int msess_sealed(struct mconn *mc, const uint8_t *pl, size_t n)
{
	struct msess *s = mc->s;
	struct ferry_rd rd;
	uint64_t off;
	int e;

	if (!ferry_repo_encrypted(mc->r->repo))
		return ferry_error(FERRY_E_PROTO,
				   "SEALED for repository %s, which is not encrypted",
				   mc->r->name);
	ferry_rd_init(&rd, pl, n);
	if (ferry_rd_u64(&rd, &off) || !rd.left)
		return ferry_error(FERRY_E_PROTO, "malformed SEALED message");
	if (off > sealed_max(s) || rd.left > sealed_max(s) - off)
		return ferry_error(FERRY_E_PROTO,
				   "sealed manifest larger than %llu bytes, the most %llu blocks need",
				   (unsigned long long)sealed_max(s),
				   (unsigned long long)s->p.nblocks);
	if ((e = ferry_pwrite_all(s->fd, rd.p, rd.left,
				  (off_t)(sealed_off(s) + off))) != 0)
		return ferry_error(ferry_errno_code(-e, FERRY_E_IO),
				   "write session file: %s", strerror(-e));
	if (off + rd.left > s->sealed_len)
		s->sealed_len = off + rd.left;
	return 0;
}

static int write_sealed(struct msess *s, const struct ferry_point *p,
			uint64_t len)
{
	struct ferry_repo *repo = s->r->repo;
	uint8_t *buf = malloc(MSESS_IOBUF);
	uint64_t done = 0;
	char *tmp = NULL;
	int e, fd = -1;
	ssize_t got;

	if (!buf)
		return FERRY_E_NOMEM;
	if (len != s->sealed_len || len < FERRY_MANIFEST_FOOTER) {
		e = ferry_error(FERRY_E_PROTO,
				"COMMIT says the sealed manifest has %llu bytes, %llu arrived",
				(unsigned long long)len,
				(unsigned long long)s->sealed_len);
		goto out;
	}
	got = ferry_pread_full(s->fd, buf, 64, (off_t)sealed_off(s));
	if (got != 64) {
		e = ferry_error(FERRY_E_IO, "read session file %s", s->sidhex);
		goto out;
	}
	if ((e = ferry_sealed_manifest_check(buf, len, p->id, p->nblocks)) != 0)
		goto out;
	if ((e = repo->ops->point_create(repo, p->id, &fd, &tmp)) != 0)
		goto out;
	while (done < len) {
		size_t want = len - done < MSESS_IOBUF ? (size_t)(len - done) : MSESS_IOBUF;

		got = ferry_pread_full(s->fd, buf, want, (off_t)(sealed_off(s) + done));
		if (got != (ssize_t)want) {
			e = ferry_error(FERRY_E_IO, "read session file %s", s->sidhex);
			goto out;
		}
		if ((e = ferry_write_all(fd, buf, want)) != 0) {
			e = ferry_error(ferry_errno_code(-e, FERRY_E_IO),
					"write manifest %s: %s", p->id, strerror(-e));
			goto out;
		}
		done += want;
	}
	/* Invariant 1: every chunk the manifest names is durable first. */
	if ((e = repo->ops->sync_chunks(repo)) != 0)
		goto out;
	e = repo->ops->point_commit(repo, p->id, fd, tmp);
	fd = -1;
out:
	if (fd >= 0)
		repo->ops->point_abort(repo, fd, tmp);
	free(tmp);
	free(buf);
	return e;
}

int msess_commit(struct mconn *mc, const uint8_t *pl, size_t n)
{
	struct msess *s = mc->s;
	struct ferry_repo *repo = mc->r->repo;
	struct ferry_stats6 st;
	struct ferry_point p;
	int e, fd;

	uint64_t sealed = 0;

	/* An encrypted repository's COMMIT adds the sealed manifest's
	 * length (u64) to the statistics. */
	if (n == 56)
		sealed = (uint64_t)ferry_le32(pl + 48) |
			 (uint64_t)ferry_le32(pl + 52) << 32;
	if (ferry_repo_encrypted(repo) != (n == 56))
		return ferry_error(FERRY_E_PROTO,
				   "COMMIT %s a sealed manifest, and repository %s is %s",
				   n == 56 ? "announces" : "lacks", mc->r->name,
				   ferry_repo_encrypted(repo) ? "encrypted" : "not encrypted");
	if ((e = ferry_stats6_parse(pl, 48, &st)) != 0)
		return e;
	if (s->recorded != s->p.nblocks)
		return ferry_error(FERRY_E_PROTO,
				   "COMMIT with %llu of %llu blocks recorded",
				   (unsigned long long)s->recorded,
				   (unsigned long long)s->p.nblocks);
	p = s->p;
	p.bytes_read = st.bytes_read;
	p.bytes_zero = st.bytes_zero;
	p.bytes_new = st.bytes_new;
	p.bytes_reused = st.bytes_reused;
	p.bytes_stored = st.bytes_stored;
	p.duration_us = st.duration_us;
	msess_sync_forget(mc);
	/* Committed already by an earlier try whose answer was lost? */
	if (repo->ops->point_open(repo, p.id, &fd) == 0)
		close(fd);
	else if ((e = ferry_repo_encrypted(repo) ? write_sealed(s, &p, sealed)
						 : write_manifest(s, &p)) != 0)
		return e;
	mover_log(mc->m, "%s session=%.8s repo=%s committed point %s: %llu blocks, %llu new chunks (%llu bytes), %llu already held",
		  mc->tag, s->sidhex, mc->r->name, p.id,
		  (unsigned long long)p.nblocks, (unsigned long long)s->chunks_new,
		  (unsigned long long)s->bytes_new,
		  (unsigned long long)s->chunks_dup);
	msess_drop(mc);
	return msess_reply_committed(mc, p.id);
}
