/* mover_session.c - backup sessions on the target-side mover: each one is
 * a file REPO/sessions/SID (the restore point's header, then one manifest
 * entry per block received), made durable with the chunks it references
 * before the source hears an acknowledgement, so that a broken link or a
 * restarted mover resumes where the last acknowledgement left off. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mover.h"

/* ---- session objects -------------------------------------------------- */

static void sid_hex(struct msess *s)
{
	for (int i = 0; i < FERRY_SID_LEN; i++)
		snprintf(s->sidhex + 2 * i, 3, "%02x", s->sid[i]);
}

static struct msess *find(struct mover *m, struct mrepo *r, const uint8_t *sid)
{
	for (struct msess *s = m->sessions; s; s = s->next)
		if (s->r == r && !memcmp(s->sid, sid, FERRY_SID_LEN) && !s->dead)
			return s;
	return NULL;
}

static void unlink_session(struct mover *m, struct msess *s)
{
	for (struct msess **pp = &m->sessions; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
}

static void sess_free(struct msess *s)
{
	if (s->fd >= 0)
		close(s->fd);
	for (int i = 0; i < FERRY_PARTIALS_MAX; i++)
		free(s->partial[i].buf);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static struct msess *sess_new(struct mrepo *r)
{
	struct msess *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->r = r;
	s->fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

/* Drop MC's reference (under m->mu). */
static void put_ref(struct mconn *mc)
{
	struct mover *m = mc->m;
	struct msess *s = mc->s;

	if (s->owner == mc)
		s->owner = NULL;
	/* A session parked by a broken link stays in memory a while: a
	 * resume then finds the start of a chunk the link cut short. */
	if (--s->refs == 0) {
		if (s->dead || s->loading) {
			unlink_session(m, s);
			sess_free(s);
		} else {
			s->parked_at = ferry_mono_seconds();
		}
	}
	mc->s = NULL;
	msess_let_go(mc);
	pthread_cond_broadcast(&m->cv);
}

void msess_reap(struct mover *m, double age)
{
	double now = ferry_mono_seconds();

	pthread_mutex_lock(&m->mu);
	for (struct msess **pp = &m->sessions; *pp;) {
		struct msess *s = *pp;

		if (s->refs == 0 && (age < 0 || now - s->parked_at > age)) {
			*pp = s->next;
			sess_free(s);
		} else {
			pp = &s->next;
		}
	}
	pthread_mutex_unlock(&m->mu);
}

static int reply_session(struct mconn *mc)
{
	struct msess *s = mc->s;
	struct ferry_session_msg m;
	uint8_t b[FERRY_SID_LEN + 20 + FERRY_PARTIALS_MAX * (4 + FERRY_HASH_LEN)];
	size_t n;

	memset(&m, 0, sizeof(m));
	memcpy(m.sid, s->sid, FERRY_SID_LEN);
	m.done = s->recorded;
	m.nblocks = s->p.nblocks;
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < FERRY_PARTIALS_MAX; i++)
		if (s->partial[i].buf) {
			m.partial[m.npartial].len = s->partial[i].len;
			memcpy(m.partial[m.npartial].hash, s->partial[i].hash,
			       FERRY_HASH_LEN);
			m.npartial++;
		}
	pthread_mutex_unlock(&s->mu);
	n = ferry_session_encode(b, sizeof(b), &m);
	return ferry_conn_queue(mc->c, FM_SESSION, b, n, NULL, 0);
}

void msess_stash(struct mconn *mc, const uint8_t *hash, uint8_t *take,
		 uint32_t len)
{
	struct msess *s = mc->s;

	int slot = -1;

	pthread_mutex_lock(&s->mu);
	/* The same chunk again replaces its entry; else a free slot; else
	 * the oldest goes. */
	for (int i = 0; i < FERRY_PARTIALS_MAX && slot < 0; i++)
		if (s->partial[i].buf && !memcmp(s->partial[i].hash, hash, FERRY_HASH_LEN))
			slot = i;
	for (int i = 0; i < FERRY_PARTIALS_MAX && slot < 0; i++)
		if (!s->partial[i].buf)
			slot = i;
	if (slot < 0)
		slot = (int)(s->next_partial++ % FERRY_PARTIALS_MAX);
	free(s->partial[slot].buf);
	s->partial[slot].buf = take;
	s->partial[slot].len = len;
	memcpy(s->partial[slot].hash, hash, FERRY_HASH_LEN);
	pthread_mutex_unlock(&s->mu);
}

uint8_t *msess_unstash(struct mconn *mc, const uint8_t *hash, uint32_t *len)
{
	struct msess *s = mc->s;
	uint8_t *b = NULL;

	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < FERRY_PARTIALS_MAX; i++)
		if (s->partial[i].buf &&
		    !memcmp(s->partial[i].hash, hash, FERRY_HASH_LEN)) {
			b = s->partial[i].buf;
			*len = s->partial[i].len;
			s->partial[i].buf = NULL;
			s->partial[i].len = 0;
			break;
		}
	pthread_mutex_unlock(&s->mu);
	return b;
}

int msess_begin(struct mconn *mc, const uint8_t *p, size_t n)
{
	struct mover *m = mc->m;
	struct mrepo *r = mc->r;
	struct ferry_point pt;
	const uint8_t *hdr;
	size_t hl;
	struct msess *s;
	int e, fd;

	if ((e = ferry_begin_parse(p, n, &pt, &hdr, &hl)) != 0)
		return e;
	if (pt.block_size != r->repo->block_size)
		return ferry_error(FERRY_E_INVAL,
				   "restore point block size %u differs from repository %s's %u",
				   pt.block_size, r->name, r->repo->block_size);
	if (r->repo->ops->point_open(r->repo, pt.id, &fd) == 0) {
		close(fd);
		return ferry_error(FERRY_E_EXISTS, "restore point %s exists already",
				   pt.id);
	}
	/* From here until commit, abort or park the session adds data. */
	if ((e = msess_hold(mc)) != 0)
		return e;
	if (!(s = sess_new(r))) {
		msess_let_go(mc);
		return FERRY_E_NOMEM;
	}
	if ((e = ferry_random(s->sid, sizeof(s->sid))) != 0)
		goto fail;
	sid_hex(s);
	s->p = pt;
	memcpy(s->hdr, hdr, hl);
	s->hdr_len = hl;
	snprintf(s->identity, sizeof(s->identity), "%s", mc->c->identity);
	if ((e = msess_create_file(s)) != 0)
		goto fail;
	s->refs = 1;
	s->owner = mc;
	pthread_mutex_lock(&m->mu);
	s->next = m->sessions;
	m->sessions = s;
	pthread_mutex_unlock(&m->mu);
	mc->s = s;
	mc->gen = s->generation;
	mover_log(m, "%s session=%.8s repo=%s begin point %s name=%s blocks=%llu",
		  mc->tag, s->sidhex, r->name, pt.id, pt.name,
		  (unsigned long long)pt.nblocks);
	return reply_session(mc);
fail:
	sess_free(s);
	msess_let_go(mc);
	return e;
}
/* Make what the session holds durable before telling the source. */
static int sync_now(struct msess *s)
{
	int e = s->r->repo->ops->sync_chunks(s->r->repo);

	if (e == 0 && fdatasync(s->fd) < 0)
		e = ferry_error(FERRY_E_IO, "sync session %s: %s", s->sidhex,
				strerror(errno));
	return e;
}

static int reply_committed(struct mconn *mc, const char *id)
{
	uint8_t pid[FERRY_PID_LEN];

	ferry_pid_from_hex(id, pid);
	return ferry_conn_queue(mc->c, FM_COMMITTED, pid, sizeof(pid), NULL, 0);
}

int msess_resume(struct mconn *mc, const uint8_t *p, size_t n)
{
	struct mover *m = mc->m;
	struct mrepo *r = mc->r;
	uint8_t sid[FERRY_SID_LEN], pid[FERRY_PID_LEN];
	char id[FERRY_ID_LEN + 1];
	struct msess *s;
	struct timespec until;
	int e = 0, fd;

	if (n != sizeof(sid) + sizeof(pid))
		return ferry_error(FERRY_E_PROTO, "malformed RESUME message");
	memcpy(sid, p, sizeof(sid));
	memcpy(pid, p + sizeof(sid), sizeof(pid));
	ferry_pid_to_hex(pid, id);
	/* A resumed session adds data again: lock before its file is read
	 * (gc may be running; it marks parked sessions' chunks). */
	if ((e = msess_hold(mc)) != 0)
		return e;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&m->mu);
	s = find(m, r, sid);
	if (s) {
		/* Take it over from the connections of the link that broke
		 * (they may not have noticed yet): they finish the frames
		 * that arrived and let go within a poll interval, so that
		 * what they carried counts before the source asks. */
		s->refs++;
		s->generation++;
		while ((s->owner || s->loading || s->refs > 1) && !s->dead &&
		       pthread_cond_timedwait(&m->cv, &m->mu, &until) == 0)
			;
		if (s->owner || s->loading || s->dead) {
			int dead = s->dead;

			mc->s = s;
			put_ref(mc);
			pthread_mutex_unlock(&m->mu);
			if (dead)
				return ferry_error(FERRY_E_NOTFOUND,
						   "session ended while resuming");
			return ferry_error(FERRY_E_TIMEOUT,
					   "session is still held by another connection");
		}
		s->owner = mc;
		pthread_mutex_unlock(&m->mu);
	} else {
		if (!(s = sess_new(r))) {
			pthread_mutex_unlock(&m->mu);
			msess_let_go(mc);
			return FERRY_E_NOMEM;
		}
		memcpy(s->sid, sid, sizeof(sid));
		sid_hex(s);
		s->refs = 1;
		s->loading = 1;
		s->owner = mc;
		s->next = m->sessions;
		m->sessions = s;
		pthread_mutex_unlock(&m->mu);
		e = msess_load(s);
		pthread_mutex_lock(&m->mu);
		s->loading = 0;
		if (e) {
			s->dead = 1;
			mc->s = s;
			put_ref(mc);
			pthread_mutex_unlock(&m->mu);
			if (e != FERRY_E_NOTFOUND)
				return e;
			/* Gone: committed meanwhile (its answer lost), or
			 * never known here. */
			if (r->repo->ops->point_open(r->repo, id, &fd) == 0) {
				close(fd);
				mover_log(m, "%s repo=%s resume of a committed session: point %s",
					  mc->tag, r->name, id);
				return reply_committed(mc, id);
			}
			return ferry_error(FERRY_E_NOTFOUND,
					   "session %.8s is not known to this mover (expired or aborted): start the backup again",
					   s->sidhex);
		}
		pthread_cond_broadcast(&m->cv);
		pthread_mutex_unlock(&m->mu);
	}
	mc->s = s;
	mc->gen = s->generation;
	if (strcmp(s->identity, mc->c->identity)) {
		pthread_mutex_lock(&m->mu);
		put_ref(mc);
		pthread_mutex_unlock(&m->mu);
		return ferry_error(FERRY_E_AUTH,
				   "session belongs to another client certificate");
	}
	if (strcmp(s->p.id, id)) {
		pthread_mutex_lock(&m->mu);
		put_ref(mc);
		pthread_mutex_unlock(&m->mu);
		return ferry_error(FERRY_E_INVAL,
				   "session is for restore point %s, not %s", s->p.id,
				   id);
	}
	if ((e = sync_now(s)) != 0)
		return e;
	mover_log(m, "%s session=%.8s repo=%s resumed at block %llu of %llu",
		  mc->tag, s->sidhex, r->name, (unsigned long long)s->recorded,
		  (unsigned long long)s->p.nblocks);
	return reply_session(mc);
}

int msess_attach(struct mconn *mc, const uint8_t *p, size_t n)
{
	struct mover *m = mc->m;
	struct msess *s;
	int e;

	if (n != FERRY_SID_LEN)
		return ferry_error(FERRY_E_PROTO, "malformed ATTACH message");
	if ((e = msess_hold(mc)) != 0)
		return e;
	pthread_mutex_lock(&m->mu);
	s = find(m, mc->r, p);
	if (!s || !s->owner || s->loading ||
	    strcmp(s->identity, mc->c->identity)) {
		pthread_mutex_unlock(&m->mu);
		msess_let_go(mc);
		return ferry_error(FERRY_E_NOTFOUND,
				   "no running session to attach a stream to");
	}
	s->refs++;
	mc->s = s;
	mc->gen = s->generation;
	pthread_mutex_unlock(&m->mu);
	return reply_session(mc);
}

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
static int wait_chunk(struct mconn *mc, const uint8_t *h);

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
	uint8_t *buf = malloc(MSESS_IOBUF - MSESS_IOBUF % FERRY_ENTRY_LEN);
	uint64_t done = 0;
	int e;

	if (!buf)
		return FERRY_E_NOMEM;
	if ((e = ferry_mwriter_begin(repo, p, &w)) != 0)
		goto out;
	while (done < s->recorded) {
		size_t want = MSESS_IOBUF - MSESS_IOBUF % FERRY_ENTRY_LEN;
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

static void drop(struct mconn *mc)
{
	struct msess *s = mc->s;

	unlinkat(s->r->ses_fd, s->sidhex, 0);
	fsync(s->r->ses_fd);
	pthread_mutex_lock(&mc->m->mu);
	s->dead = 1;
	put_ref(mc);
	pthread_mutex_unlock(&mc->m->mu);
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
	drop(mc);
	return reply_committed(mc, p.id);
}

void msess_abort(struct mconn *mc)
{
	mover_log(mc->m, "%s session=%.8s repo=%s aborted by the source at block %llu",
		  mc->tag, mc->s->sidhex, mc->r->name,
		  (unsigned long long)mc->s->recorded);
	msess_sync_forget(mc);
	drop(mc);
}

void msess_release(struct mconn *mc)
{
	struct msess *s = mc->s;

	if (!s)
		return;
	msess_sync_forget(mc);
	if (s->owner == mc && !s->dead) {
		int e = sync_now(s);

		mover_log(mc->m, "%s session=%.8s repo=%s parked at block %llu of %llu%s%s",
			  mc->tag, s->sidhex, mc->r->name,
			  (unsigned long long)s->recorded,
			  (unsigned long long)s->p.nblocks, e ? ": sync failed: " : "",
			  e ? ferry_last_error() : "");
	}
	pthread_mutex_lock(&mc->m->mu);
	put_ref(mc);
	pthread_mutex_unlock(&mc->m->mu);
}
