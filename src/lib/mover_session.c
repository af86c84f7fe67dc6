/* mover_session.c - backup sessions on the target-side mover: each one is
 * a file REPO/sessions/SID (the restore point's header, then one manifest
 * entry per block received; mover_parked.c), made durable with the chunks
 * it references before the source hears an acknowledgement, so that a
 * broken link or a restarted mover resumes where the last acknowledgement
 * left off.  Here: the sessions in memory and their references, BEGIN,
 * RESUME (taking a session over from a broken link, or loading its file),
 * ATTACH of extra streams, parking, ABORT, and the starts of chunks a
 * broken PUT cut short.  RECORDS, SEALED and COMMIT: mover_commit.c. */
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

int msess_reply_committed(struct mconn *mc, const char *id)
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
				return msess_reply_committed(mc, id);
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

void msess_drop(struct mconn *mc)
{
	struct msess *s = mc->s;

	unlinkat(s->r->ses_fd, s->sidhex, 0);
	fsync(s->r->ses_fd);
	pthread_mutex_lock(&mc->m->mu);
	s->dead = 1;
	put_ref(mc);
	pthread_mutex_unlock(&mc->m->mu);
}

void msess_abort(struct mconn *mc)
{
	mover_log(mc->m, "%s session=%.8s repo=%s aborted by the source at block %llu",
		  mc->tag, mc->s->sidhex, mc->r->name,
		  (unsigned long long)mc->s->recorded);
	msess_sync_forget(mc);
	msess_drop(mc);
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
