/* retention.c - `forget`: which restore points a keep policy retains (the
 * grandfather-father-son rules of restic's forget, per disk name) and the
 * removal of the others' manifests.  Chunks are left to gc. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

enum { R_LAST, R_HOURLY, R_DAILY, R_WEEKLY, R_MONTHLY, R_YEARLY, R_N };
static const char *const rule_name[R_N] = { "last", "hourly", "daily",
					    "weekly", "monthly", "yearly" };

/* The bucket a point falls in for RULE: points in one bucket compete, the
 * newest wins.  "last" gives every point its own bucket. */
static long long bucket(const struct ferry_point *p, size_t idx, int rule)
{
	time_t t = (time_t)(p->created_ns / 1000000000ull);
	struct tm tm;
	char buf[16];

	if (rule == R_LAST)
		return (long long)idx;
	localtime_r(&t, &tm);
	switch (rule) {
	case R_HOURLY:
		return ((long long)(tm.tm_year + 1900) * 1000 + tm.tm_yday) * 100 +
		       tm.tm_hour;
	case R_DAILY:
		return (long long)(tm.tm_year + 1900) * 1000 + tm.tm_yday;
	case R_WEEKLY:
		/* ISO 8601 week-based year and week, as restic. */
		strftime(buf, sizeof(buf), "%G%V", &tm);
		return strtoll(buf, NULL, 10);
	case R_MONTHLY:
		return (long long)(tm.tm_year + 1900) * 100 + tm.tm_mon;
	default:
		return tm.tm_year + 1900;
	}
}

void ferry_retention_apply(const struct ferry_point *v, size_t n,
			   const struct ferry_forget_opts *o, int *keep,
			   char (*reasons)[FERRY_REASON_MAX])
{
	int count[R_N] = { o->keep_last, o->keep_hourly, o->keep_daily,
			   o->keep_weekly, o->keep_monthly, o->keep_yearly };

	for (size_t i = 0; i < n; i++) {
		keep[i] = 0;
		reasons[i][0] = 0;
	}
	for (int rule = 0; rule < R_N; rule++) {
		long long last = 0;
		int have_last = 0, left = count[rule];

		/* Newest first: the newest point of each of the newest LEFT
		 * buckets stays. */
		for (size_t k = n; k-- > 0 && left > 0;) {
			long long b = bucket(&v[k], k, rule);
			size_t used;

			if (have_last && b == last)
				continue;
			have_last = 1;
			last = b;
			left--;
			keep[k] = 1;
			used = strlen(reasons[k]);
			snprintf(reasons[k] + used, FERRY_REASON_MAX - used, "%s%s",
				 used ? "," : "", rule_name[rule]);
		}
	}
}

struct fctx {
	struct ferry_point *v;
	size_t n, cap;
};

static int collect(const struct ferry_point *p, void *arg)
{
	struct fctx *c = arg;

	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 64;
		struct ferry_point *nv = realloc(c->v, nc * sizeof(*nv));

		if (!nv)
			return FERRY_E_NOMEM;
		c->v = nv;
		c->cap = nc;
	}
	c->v[c->n++] = *p;
	return 0;
}

/* Damaged manifests first (they have no name), then by name, each name's
 * points oldest first. */
static int by_name_time(const void *a, const void *b)
{
	const struct ferry_point *x = a, *y = b;
	int c;

	if (x->corrupt != y->corrupt)
		return x->corrupt ? -1 : 1;
	if ((c = strcmp(x->name, y->name)) != 0)
		return c;
	if (x->created_ns != y->created_ns)
		return x->created_ns < y->created_ns ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Hardened repository: 1 when P may not go yet (WHY says until when). */
static int still_protected(struct ferry_repo *repo, const struct ferry_point *p,
			   char why[FERRY_REASON_MAX])
{
	uint64_t until;
	char when[48];
	int e = ferry_point_protected(repo, p->id, p->corrupt ? 0 : p->created_ns,
				      &until);

	if (e == 1) {
		ferry_imm_time(until, when, sizeof(when));
		snprintf(why, FERRY_REASON_MAX, "immutable until %s", when);
	}
	return e;
}

/* 1 when point ID's manifest is of a format version this ferry does not
 * read (not damage), 0 when it fails its checks, < 0 on other errors. */
static int newer_format(struct ferry_repo *repo, const char *id)
{
	struct ferry_mreader *m;
	struct ferry_point p;
	int e = ferry_mreader_open(repo, id, &m, &p);

	if (e == 0) {
		ferry_mreader_free(m);
		return ferry_error(FERRY_E_CORRUPT,
				   "manifest of restore point %s read differently twice",
				   id);
	}
	if (e == FERRY_E_VERSION)
		return 1;
	if (e == FERRY_E_CORRUPT)
		return 0;
	return e;
}

/* forget --damaged: remove the manifests that fail their checks (a
 * listing shows them as damaged, gc and verify stop at them). */
static int forget_damaged(struct ferry_repo *repo,
			  const struct ferry_forget_opts *o, ferry_forget_cb cb,
			  void *arg, struct ferry_forget_result *res)
{
	struct fctx c = { 0 };
	char why[FERRY_REASON_MAX];
	size_t i;
	int e;

	if ((e = ferry_points_list(repo, NULL, collect, &c)) != 0)
		goto out;
	for (i = 0; i < c.n; i++) {
		struct ferry_forget_item it = { &c.v[i], 0, why };

		if (!c.v[i].corrupt) {
			res->kept++;
			continue;
		}
		why[0] = 0;
		/* Listings mark a manifest of a newer format the same way:
		 * only one that fails its checks goes. */
		if ((e = newer_format(repo, c.v[i].id)) != 0) {
			if (e < 0)
				goto out;
			snprintf(why, sizeof(why),
				 "newer format version, not damaged");
			it.keep = 1;
			res->kept++;
			res->damaged_kept++;
			if (cb && (e = cb(&it, arg)) != 0)
				goto out;
			continue;
		}
		if ((e = still_protected(repo, &c.v[i], why)) < 0)
			goto out;
		if (e) {
			it.keep = 1;
			res->kept++;
			res->damaged_kept++;
			res->immutable_kept++;
		} else {
			if (!o->dry_run) {
				if (!repo->ops->delete_point) {
					e = ferry_error(FERRY_E_INVAL,
							"this repository's backend cannot remove restore points; run forget where the repository is");
					goto out;
				}
				if ((e = repo->ops->delete_point(repo, c.v[i].id)) != 0)
					goto out;
				if (repo->ops->record_delete)
					repo->ops->record_delete(repo, "verify", c.v[i].id);
			}
			snprintf(why, sizeof(why), "damaged manifest");
			res->removed++;
		}
		if (cb && (e = cb(&it, arg)) != 0)
			goto out;
	}
	e = 0;
out:
	free(c.v);
	return e;
}

int ferry_forget(struct ferry_repo *repo, const struct ferry_forget_opts *o,
		 ferry_forget_cb cb, void *arg, struct ferry_forget_result *res)
{
	struct fctx c = { 0 };
	int *keep = NULL;
	char (*why)[FERRY_REASON_MAX] = NULL;
	size_t i, j;
	int e;

	memset(res, 0, sizeof(*res));
	if (o->damaged)
		return forget_damaged(repo, o, cb, arg, res);
	if (o->keep_last < 0 || o->keep_hourly < 0 || o->keep_daily < 0 ||
	    o->keep_weekly < 0 || o->keep_monthly < 0 || o->keep_yearly < 0)
		return ferry_error(FERRY_E_INVAL, "keep counts cannot be negative");
	if (!o->keep_last && !o->keep_hourly && !o->keep_daily &&
	    !o->keep_weekly && !o->keep_monthly && !o->keep_yearly)
		return ferry_error(FERRY_E_INVAL,
				   "no keep rule given: forget would remove every restore point (give --keep-last N or another --keep-* rule)");
	if (o->name && !ferry_name_valid(o->name))
		return ferry_error(FERRY_E_INVAL, "bad name '%s'", o->name);
	if ((e = ferry_points_list(repo, o->name, collect, &c)) != 0)
		goto out;
	if (c.n)
		qsort(c.v, c.n, sizeof(*c.v), by_name_time);
	keep = calloc(c.n ? c.n : 1, sizeof(*keep));
	why = calloc(c.n ? c.n : 1, sizeof(*why));
	if (!keep || !why) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	for (i = 0; i < c.n; i = j) {
		for (j = i + 1; j < c.n && !c.v[i].corrupt && !c.v[j].corrupt &&
				!strcmp(c.v[i].name, c.v[j].name);
		     j++)
			;
		if (c.v[i].corrupt) {
			/* Unknown name and time: never removed. */
			keep[i] = 1;
			snprintf(why[i], sizeof(why[i]), "damaged manifest");
			j = i + 1;
			continue;
		}
		ferry_retention_apply(c.v + i, j - i, o, keep + i, why + i);
	}
	for (i = 0; i < c.n; i++) {
		struct ferry_forget_item it = { &c.v[i], keep[i], why[i] };

		if (!keep[i] && (e = still_protected(repo, &c.v[i], why[i])) != 0) {
			if (e < 0)
				goto out;
			it.keep = keep[i] = 1;
			res->immutable_kept++;
		}
		if (!keep[i] && !o->dry_run) {
			if (!repo->ops->delete_point) {
				e = ferry_error(FERRY_E_INVAL,
						"this repository's backend cannot remove restore points; run forget where the repository is");
				goto out;
			}
			e = repo->ops->delete_point(repo, c.v[i].id);
			if (e == FERRY_STORE_KEPT) {
				/* Still under an Object Lock retention. */
				keep[i] = 1;
				it.keep = 1;
				snprintf(why[i], sizeof(why[i]), "object-lock");
				res->locked++;
			} else if (e != 0) {
				goto out;
			} else if (repo->ops->record_delete) {
				repo->ops->record_delete(repo, "verify", c.v[i].id);
			}
		}
		if (keep[i]) {
			res->kept++;
			res->damaged_kept += c.v[i].corrupt ? 1 : 0;
		} else {
			res->removed++;
		}
		if (cb && (e = cb(&it, arg)) != 0)
			goto out;
	}
	e = 0;
out:
	free(c.v);
	free(keep);
	free(why);
	return e;
}
