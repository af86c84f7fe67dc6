/* mover_repo.c - a repository the target-side mover serves: its sessions
 * directory opened and swept at start, the shared lock held while
 * sessions add data (so that gc can run on this host between backups),
 * and the syncer thread that makes the chunks and session files of every
 * connection durable with one syncfs (group commit) before an ACK. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "mover.h"

/* ---- the syncer: one thread per repository ---------------------------- */

static void *syncer_main(void *arg)
{
	struct mrepo *r = arg;
	struct mconn **batch = NULL;
	uint64_t *frames = NULL, *blocks = NULL;
	size_t cap = 0;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		size_t n;
		int e, fe = 0;

		while (!r->nreq && !r->stop)
			pthread_cond_wait(&r->cv, &r->mu);
		if (!r->nreq)
			break;
		n = r->nreq;
		if (n > cap) {
			struct mconn **nb = realloc(batch, n * sizeof(*nb));
			uint64_t *nf = realloc(frames, n * sizeof(*nf));
			uint64_t *nbl = nf ? realloc(blocks, n * sizeof(*nbl)) : NULL;

			if (nb)
				batch = nb;
			if (nf)
				frames = nf;
			if (nbl)
				blocks = nbl;
			if (!nb || !nf || !nbl) {
				pthread_mutex_unlock(&r->mu);
				sleep(1); /* out of memory: try again */
				pthread_mutex_lock(&r->mu);
				continue;
			}
			cap = n;
		}
		for (size_t i = 0; i < n; i++) {
			batch[i] = r->req[i];
			batch[i]->sync_state = 2;
			frames[i] = batch[i]->req_frames;
			blocks[i] = batch[i]->req_blocks;
		}
		r->nreq = 0;
		pthread_mutex_unlock(&r->mu);
		/* One syncfs for every connection's chunks, then each
		 * session file (the entries acknowledged). */
		e = r->repo->ops->sync_chunks(r->repo);
		for (size_t i = 0; e == 0 && i < n; i++)
			if (batch[i]->s && fdatasync(batch[i]->s->fd) < 0)
				fe = errno;
		pthread_mutex_lock(&r->mu);
		for (size_t i = 0; i < n; i++) {
			uint64_t one = 1;

			if (e == 0 && fe == 0) {
				batch[i]->durable_frames = frames[i];
				batch[i]->durable_blocks = blocks[i];
			} else {
				batch[i]->sync_err = e ? e : ferry_errno_code(fe, FERRY_E_IO);
				mover_log(r->m, "repo=%s sync failed: %s", r->name,
					  e ? ferry_last_error() : strerror(fe));
			}
			batch[i]->sync_state = 0;
			if (write(batch[i]->efd, &one, sizeof(one)) < 0) {
				/* the connection polls on a timer anyway */
			}
		}
		pthread_cond_broadcast(&r->done_cv);
	}
	pthread_mutex_unlock(&r->mu);
	free(batch);
	free(frames);
	free(blocks);
	return NULL;
}

void msess_sync_request(struct mconn *mc)
{
	struct mrepo *r = mc->r;

	pthread_mutex_lock(&r->mu);
	if (mc->sync_state == 2) {
		pthread_mutex_unlock(&r->mu);
		return; /* asked again once this one is done */
	}
	mc->req_frames = mc->frames;
	mc->req_blocks = mc->s && mc->st == FS_SESSION ? mc->s->recorded : 0;
	if (mc->sync_state == 0) {
		if (r->nreq == r->capreq) {
			size_t nc = r->capreq ? r->capreq * 2 : 16;
			struct mconn **n = realloc(r->req, nc * sizeof(*n));

			if (!n) {
				pthread_mutex_unlock(&r->mu);
				return;
			}
			r->req = n;
			r->capreq = nc;
		}
		r->req[r->nreq++] = mc;
		mc->sync_state = 1;
		pthread_cond_signal(&r->cv);
	}
	mc->unsynced_bytes = mc->unsynced_frames = 0;
	mc->unsynced_since = 0;
	pthread_mutex_unlock(&r->mu);
}

void msess_sync_forget(struct mconn *mc)
{
	struct mrepo *r = mc->r;

	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	if (mc->sync_state == 1) {
		for (size_t i = 0; i < r->nreq; i++)
			if (r->req[i] == mc) {
				r->req[i] = r->req[--r->nreq];
				break;
			}
		mc->sync_state = 0;
	}
	while (mc->sync_state == 2)
		pthread_cond_wait(&r->done_cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

/* ---- the repository: open and close -------------------------------- */

int msess_repo_open(struct mrepo *r)
{
	int e;

	if ((e = msess_dir_open(r)) != 0)
		return e;
	/* The shared lock is taken per session (msess_hold), so that gc
	 * can run on this host while no session adds data. */
	pthread_mutex_init(&r->hold_mu, NULL);
	r->hold_init = 1;
	/* A gateway's session files are in --state-dir, where a gc on the
	 * share cannot read them: it keeps the lock as long as it runs (one
	 * hold that is never let go), so gc there waits for it to stop. */
	if (r->repo->ops != &ferry_store_local_ops) {
		if ((e = r->repo->ops->lock_shared(r->repo)) != 0)
			return e;
		r->holds = 1;
	}
	msess_sweep(r);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	pthread_cond_init(&r->done_cv, NULL);
	if (pthread_create(&r->syncer, NULL, syncer_main, r) != 0)
		return ferry_error(FERRY_E_NOMEM, "cannot start a thread");
	r->syncer_started = 1;
	return 0;
}

void msess_repo_close(struct mrepo *r)
{
	if (r->syncer_started) {
		pthread_mutex_lock(&r->mu);
		r->stop = 1;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->syncer, NULL);
		pthread_mutex_destroy(&r->mu);
		pthread_cond_destroy(&r->cv);
		pthread_cond_destroy(&r->done_cv);
		r->syncer_started = 0;
	}
	free(r->req);
	r->req = NULL;
	if (r->ses_fd >= 0)
		close(r->ses_fd);
	r->ses_fd = -1;
	if (r->hold_init) {
		pthread_mutex_destroy(&r->hold_mu);
		r->hold_init = 0;
	}
}

/* ---- the repository's shared lock, while sessions run ---------------- */

/* Count MC among the connections using a session of its repository; the
 * first one takes the shared lock (waiting while gc holds it exclusively:
 * gc removes nothing a session can name). */
int msess_hold(struct mconn *mc)
{
	struct mrepo *r = mc->r;
	int e = 0;

	if (mc->held)
		return 0;
	pthread_mutex_lock(&r->hold_mu);
	if (r->holds == 0) {
		if (r->repo->ops->lock_shared)
			e = r->repo->ops->lock_shared(r->repo);
	}
	if (e == 0) {
		r->holds++;
		mc->held = 1;
	}
	pthread_mutex_unlock(&r->hold_mu);
	return e;
}

/* The last connection using a session lets the lock go (no session adds
 * data now; parked sessions are marked by gc from their files). */
void msess_let_go(struct mconn *mc)
{
	struct mrepo *r = mc->r;

	if (!mc->held)
		return;
	pthread_mutex_lock(&r->hold_mu);
	mc->held = 0;
	if (--r->holds == 0 && r->repo->ops->unlock)
		r->repo->ops->unlock(r->repo);
	pthread_mutex_unlock(&r->hold_mu);
}
