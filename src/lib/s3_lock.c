/* s3_lock.c - the repository lock of an S3 repository without a lock
 * server: each holder writes a lock object and rewrites it on a heartbeat;
 * others judge it by its LastModified against the server's clock.  The
 * protocol (announce, then look) is in docs/backends.md. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "s3.h"

struct s3_lock {
	struct s3_obj *o;
	char prefix[600];
	char name[48];          /* "s-<32 hex>" or "x-<32 hex>" */
	char key[700];
	char body[320];
	int kind;
	double stale, beat;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t hb;
	int running, stop;
	double beat_ok;         /* monotonic time of the last stored beat */
	/* In a versioned bucket (Object Lock) every beat is a new version:
	 * the previous one is removed after each beat, the last on release. */
	char version[256];
	int64_t beat_fail_since;
};

static int put_self(struct s3_lock *l)
{
	double t = ferry_mono_seconds(), budget = l->beat / 2 < 10 ? l->beat / 2 : 10;
	char ver[256] = "", old[256];
	int e = s3o_put_brief(l->o, l->key, l->body, strlen(l->body), budget,
			      ver, sizeof(ver));

	if (e == 0) {
		pthread_mutex_lock(&l->mu);
		l->beat_ok = t;
		memcpy(old, l->version, sizeof(old));
		snprintf(l->version, sizeof(l->version), "%s", ver);
		pthread_mutex_unlock(&l->mu);
		if (old[0] && ver[0] && strcmp(old, ver))
			s3o_delete_brief(l->o, l->key, old, budget);
	}
	return e;
}

static void *beat_main(void *arg)
{
	struct s3_lock *l = arg;

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		struct timespec ts;
		double until;

		clock_gettime(CLOCK_REALTIME, &ts);
		until = (double)ts.tv_sec + ts.tv_nsec / 1e9 + l->beat;
		ts.tv_sec = (time_t)until;
		ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
		pthread_cond_timedwait(&l->cv, &l->mu, &ts);
		if (l->stop)
			break;
		pthread_mutex_unlock(&l->mu);
		/* A failed beat is retried at the next one; s3_lock_fresh()
		 * tells the holder when too many failed. */
		{
			int code;
			char msg[256];

			ferry_error_save(&code, msg, sizeof(msg));
			put_self(l);
			ferry_error_restore(code, msg);
		}
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

struct scan {
	struct s3_lock *l;
	int64_t now;
	size_t plen;
	int live_other, live_x_before, live_x;
	int sweep;
	uint64_t swept;
};

static int scan_one(struct s3_obj *o, const char *key, size_t klen,
		    uint64_t size, int64_t mtime, void *arg)
{
	struct scan *sc = arg;
	const char *name = key + sc->plen;
	int live;

	(void)size;
	if (klen <= sc->plen + 2 || name[1] != '-' ||
	    (name[0] != 's' && name[0] != 'x') || !strcmp(name, sc->l->name))
		return 0;
	live = sc->now - mtime < (int64_t)sc->l->stale;
	if (!live) {
		if (sc->sweep && s3o_delete_object(o, key, NULL) == 0)
			sc->swept++;
		return 0;
	}
	sc->live_other++;
	if (name[0] == 'x') {
		sc->live_x++;
		if (strcmp(name, sc->l->name) < 0)
			sc->live_x_before++;
	}
	return 0;
}

static int scan(struct s3_lock *l, struct scan *sc, int sweep)
{
	memset(sc, 0, sizeof(*sc));
	sc->l = l;
	sc->plen = strlen(l->prefix);
	sc->sweep = sweep;
	return s3o_list_prefix(l->o, l->prefix, scan_one, sc, &sc->now);
}

static int withdraw(struct s3_lock *l)
{
	/* Brief: a lock left behind goes stale by itself. */
	char ver[256];
	int e;

	/* Versioned (the bucket answered with version ids): remove the
	 * version itself, leaving no delete marker; else the key. */
	pthread_mutex_lock(&l->mu);
	memcpy(ver, l->version, sizeof(ver));
	l->version[0] = 0;
	pthread_mutex_unlock(&l->mu);
	e = s3o_delete_brief(l->o, l->key, ver[0] ? ver : NULL, 5);
	return e < 0 ? -1 : 0;
}

static int pause_or_cancel(double seconds)
{
	for (double t = 0; t < seconds; t += 0.1) {
		if (atomic_load(&ferry_cancelled))
			return ferry_error(FERRY_E_INTERRUPTED,
					   "interrupted while waiting for the repository lock");
		usleep(100000);
	}
	return 0;
}

int s3_lock_take(struct s3_obj *o, const char *prefix, int kind, double stale,
		 double timeout, struct s3_lock **out)
{
	double t0 = ferry_mono_seconds();
	struct s3_lock *l = calloc(1, sizeof(*l));
	uint8_t rnd[16];
	char host[128] = "?";
	int e, n;

	if (!l)
		return FERRY_E_NOMEM;
	l->o = o;
	l->kind = kind;
	l->stale = stale;
	l->beat = stale / 4 > 0.5 ? stale / 4 : 0.5;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	snprintf(l->prefix, sizeof(l->prefix), "%s", prefix);
	if ((e = ferry_random(rnd, sizeof(rnd))) != 0)
		goto fail;
	n = snprintf(l->name, sizeof(l->name), "%c-", kind);
	for (int i = 0; i < 16; i++)
		n += snprintf(l->name + n, sizeof(l->name) - (size_t)n, "%02x", rnd[i]);
	snprintf(l->key, sizeof(l->key), "%s%s", prefix, l->name);
	gethostname(host, sizeof(host) - 1);
	snprintf(l->body, sizeof(l->body),
		 "kind=%s\nhost=%s\npid=%ld\nstarted=%lld\nstale_seconds=%.0f\n",
		 kind == 'x' ? "exclusive" : "shared", host, (long)getpid(),
		 (long long)time(NULL), stale);
	for (;;) {
		struct scan sc;

		/* Announce, then look: of two that announce at once, at
		 * least one sees the other. */
		if ((e = put_self(l)) != 0)
			goto fail;
		if (!l->running) {
			if (pthread_create(&l->hb, NULL, beat_main, l) != 0) {
				e = ferry_error(FERRY_E_NOMEM, "cannot start a thread");
				goto fail;
			}
			l->running = 1;
		}
		if ((e = scan(l, &sc, 0)) != 0)
			goto fail;
		if (kind == 's') {
			if (!sc.live_x)
				break;
			/* gc is removing chunks: step back and wait. */
			withdraw(l);
			if ((e = pause_or_cancel(l->beat < 2 ? l->beat : 2)) != 0)
				goto fail;
			continue;
		}
		if (sc.live_x_before) {
			/* Another gc came first. */
			withdraw(l);
			if (timeout > 0 && ferry_mono_seconds() - t0 > timeout) {
				e = ferry_error(FERRY_E_TIMEOUT,
						"another gc holds the repository lock after %.0f s: gave up, nothing removed",
						timeout);
				goto fail;
			}
			if ((e = pause_or_cancel(l->beat < 2 ? l->beat : 2)) != 0)
				goto fail;
			continue;
		}
		/* Ours stands: wait until every other holder is gone (our
		 * heartbeat keeps it standing meanwhile). */
		while (sc.live_other) {
			if (timeout > 0 && ferry_mono_seconds() - t0 > timeout) {
				e = ferry_error(FERRY_E_TIMEOUT,
						"%d other process(es) still hold the repository lock after %.0f s (running backups or a mover serving it): gave up, nothing removed",
						sc.live_other, timeout);
				goto fail;
			}
			if ((e = pause_or_cancel(1)) != 0 || (e = scan(l, &sc, 0)) != 0)
				goto fail;
			if (sc.live_x_before)
				break;
		}
		if (!sc.live_other)
			break;
		withdraw(l);
	}
	*out = l;
	return 0;
fail:
	s3_lock_release(l);
	return e;
}

int s3_lock_kind(const struct s3_lock *l)
{
	return l->kind;
}

int s3_lock_fresh(struct s3_lock *l)
{
	double age;

	pthread_mutex_lock(&l->mu);
	age = ferry_mono_seconds() - l->beat_ok;
	pthread_mutex_unlock(&l->mu);
	/* Others call it stale after STALE seconds; keep a beat's margin. */
	if (age > l->stale - l->beat)
		return ferry_error(FERRY_E_NET,
				   "lost the repository lock: its heartbeat has not reached the S3 server for %.0f s (stale after %.0f s)",
				   age, l->stale);
	return 0;
}

int s3_lock_sweep(struct s3_lock *l, uint64_t *n)
{
	struct scan sc;
	int e = scan(l, &sc, 1);

	*n += sc.swept;
	return e;
}

void s3_lock_release(struct s3_lock *l)
{
	if (!l)
		return;
	if (l->running) {
		pthread_mutex_lock(&l->mu);
		l->stop = 1;
		pthread_cond_broadcast(&l->cv);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->hb, NULL);
	}
	if (l->key[0]) {
		int code;
		char msg[256];

		ferry_error_save(&code, msg, sizeof(msg));
		withdraw(l);
		ferry_error_restore(code, msg);
	}
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
}
