/* smb_locks.c - the repository lock of an SMB repository: lock files in
 * locks/ ("s-HOST-PID-N" per shared holder, "x" for the exclusive one),
 * refreshed by a thread while held; stale ones are removed by whoever
 * waits on them (docs/format.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store_smb.h"

/* ---- locks -------------------------------------------------------------- */

static void *refresher_main(void *arg)
{
	struct ferry_repo *r = arg;
	struct smb *s = S(r);

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		struct timespec ts;
		char names[2][220];
		int nn = 0;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += REFRESH;
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		if (s->stop)
			break;
		if (s->shared_name[0])
			snprintf(names[nn++], sizeof(names[0]), "locks/%s", s->shared_name);
		if (s->have_excl)
			snprintf(names[nn++], sizeof(names[0]), "locks/x");
		pthread_mutex_unlock(&s->mu);
		for (int i = 0; i < nn; i++) {
			char url[4400];
			SMBCCTX *c = smbfs_get_ctx(s);

			if (!c)
				continue;
			smbfs_url_of(s, names[i], url, sizeof(url));
			errno = 0;
			smbfs_put_ctx(s, c, LOCKED(int, smbc_getFunctionUtimes(c)(c, url, NULL)) < 0 ? errno : 0);
		}
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void refresher_start(struct ferry_repo *r)
{
	struct smb *s = S(r);

	if (!s->refresher_on && pthread_create(&s->refresher, NULL, refresher_main, r) == 0)
		s->refresher_on = 1;
}

/* Is lock file NAME (in locks/) held by a live holder?  Stale ones are
 * removed. */
static int lock_live(struct smb *s, const struct sdirent *d)
{
	const char *rest = d->name[0] == 'x' ? NULL : d->name + 2;
	char rel[300];

	snprintf(rel, sizeof(rel), "locks/%s", d->name);
	if (rest) {
		if (!smbfs_owner_gone(s, rest, d->mtime, LEASE))
			return 1;
	} else {
		char text[300];
		size_t len = 0;

		/* "x" holds "HOST-PID\n". */
		if (smbfs_read(s, rel, text, sizeof(text) - 1, &len, -1, 0) != 0)
			return 0;
		text[len] = 0;
		text[strcspn(text, "\n")] = 0;
		if (!smbfs_owner_gone(s, text, d->mtime, LEASE))
			return 1;
	}
	smbfs_unlink(s, rel);
	return 0;
}

static int excl_present(struct smb *s, int *live)
{
	struct sdirent d;
	struct stat st;
	int e = smbfs_stat(s, "locks/x", &st);

	*live = 0;
	if (e == -ENOENT)
		return 0;
	if (e)
		return smbfs_err(s, -e, "stat", "locks/x");
	snprintf(d.name, sizeof(d.name), "x");
	d.mtime = st.st_mtime;
	d.size = (uint64_t)st.st_size;
	*live = lock_live(s, &d);
	return 0;
}

static int wait_a_bit(void)
{
	struct timespec ts = { 0, 500 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	if (atomic_load(&ferry_cancelled))
		return ferry_error(FERRY_E_INTERRUPTED,
				   "interrupted while waiting for the repository lock");
	return 0;
}

int smb_lock_shared(struct ferry_repo *r)
{
	struct smb *s = S(r);
	char name[200], rel[220];
	int e, live;

	if (s->shared_name[0] || s->have_excl)
		return 0;
	snprintf(name, sizeof(name), "s-%s-%ld-%u", s->me, (long)getpid(),
		 atomic_fetch_add(&s->seq, 1));
	snprintf(rel, sizeof(rel), "locks/%s", name);
	for (;;) {
		if ((e = smbfs_write_new(s, rel, "", 0, -1)) != 0)
			return smbfs_err(s, -e, "create lock", rel);
		/* Announced first, then checked: an exclusive holder that
		 * came first is waited for (gc is removing chunks). */
		if ((e = excl_present(s, &live)) != 0) {
			smbfs_unlink(s, rel);
			return e;
		}
		if (!live)
			break;
		smbfs_unlink(s, rel);
		if ((e = wait_a_bit()) != 0)
			return e;
	}
	pthread_mutex_lock(&s->mu);
	snprintf(s->shared_name, sizeof(s->shared_name), "%s", name);
	pthread_mutex_unlock(&s->mu);
	refresher_start(r);
	return 0;
}

/* Past the deadline END (0: none)?  Then the error saying so. */
static int timed_out(struct ferry_repo *r, double end, double timeout)
{
	if (end <= 0 || ferry_mono_seconds() < end)
		return 0;
	return ferry_error(FERRY_E_TIMEOUT,
			   "running backups held the lock of %s for %.0f s (--lock-timeout); gave up, nothing removed",
			   r->path, timeout);
}

int smb_lock_exclusive_wait(struct ferry_repo *r, double timeout)
{
	struct smb *s = S(r);
	double end = timeout > 0 ? ferry_mono_seconds() + timeout : 0;
	char text[200];
	int e, live;

	if (s->have_excl)
		return 0;
	snprintf(text, sizeof(text), "%s-%ld\n", s->me, (long)getpid());
	for (;;) {
		e = smbfs_write_new(s, "locks/x", text, strlen(text), -1);
		if (e == 0)
			break;
		if (e != -EEXIST)
			return smbfs_err(s, -e, "create lock", "locks/x");
		{
			/* Ours already (a retry after a lost answer)? */
			char have[200];
			size_t hl = 0;

			if (smbfs_read(s, "locks/x", have, sizeof(have) - 1, &hl,
				       -1, 0) == 0) {
				have[hl] = 0;
				if (!strcmp(have, text))
					break;
			}
		}
		if ((e = excl_present(s, &live)) != 0)
			return e;
		if (live && ((e = timed_out(r, end, timeout)) != 0 ||
			     (e = wait_a_bit()) != 0))
			return e;
	}
	pthread_mutex_lock(&s->mu);
	s->have_excl = 1;
	pthread_mutex_unlock(&s->mu);
	refresher_start(r);
	/* Then wait until no session that adds data holds the shared lock. */
	for (;;) {
		struct sdirent *v;
		size_t n;
		int busy = 0;

		if ((e = smbfs_list(s, "locks", &v, &n)) != 0) {
			e = smbfs_err(s, -e, "list", "locks");
			goto fail;
		}
		for (size_t k = 0; k < n; k++)
			if (!strncmp(v[k].name, "s-", 2) &&
			    strcmp(v[k].name, s->shared_name) && lock_live(s, &v[k]))
				busy = 1;
		free(v);
		if (!busy)
			return 0;
		if ((e = timed_out(r, end, timeout)) != 0)
			goto fail;
		if ((e = wait_a_bit()) != 0) {
			if (e == FERRY_E_INTERRUPTED)
				ferry_error(e, "interrupted while waiting for running backups");
			goto fail;
		}
	}
fail:
	smbfs_unlink(s, "locks/x");
	pthread_mutex_lock(&s->mu);
	s->have_excl = 0;
	pthread_mutex_unlock(&s->mu);
	return e;
}

void smb_unlock(struct ferry_repo *r)
{
	struct smb *s = S(r);
	char rel[220];

	pthread_mutex_lock(&s->mu);
	rel[0] = 0;
	if (s->shared_name[0])
		snprintf(rel, sizeof(rel), "locks/%s", s->shared_name);
	s->shared_name[0] = 0;
	if (s->have_excl) {
		s->have_excl = 0;
		pthread_mutex_unlock(&s->mu);
		smbfs_unlink(s, "locks/x");
	} else {
		pthread_mutex_unlock(&s->mu);
	}
	if (rel[0])
		smbfs_unlink(s, rel);
}

int smb_lock_exclusive(struct ferry_repo *r)
{
	return smb_lock_exclusive_wait(r, 0);
}
