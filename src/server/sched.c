/* sched.c - what the server decides: starting sessions (one task per
 * disk), giving queued tasks to the least loaded proxy within its limit,
 * requeueing the tasks of a proxy that stopped heartbeating, retries,
 * ending sessions, retention after success, cron and "after JOB"
 * triggers, and recovery of sessions a stopped server left behind.
 * Every function here runs with s->mu held. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/ferry.h"
#include "srv.h"

#define NUM(buf, v) snprintf(buf, sizeof(buf), "%lld", (long long)(v))
#define MAX_LOSSES 5

struct srv_proxy_rt *srv_proxy_rt(struct srv *s, const char *name, int create)
{
	for (int i = 0; i < s->nproxies; i++)
		if (!strcmp(s->proxies[i].name, name))
			return &s->proxies[i];
	if (!create)
		return NULL;
	if (s->nproxies == s->cproxies) {
		int nc = s->cproxies ? s->cproxies * 2 : 8;
		struct srv_proxy_rt *np = realloc(s->proxies, (size_t)nc * sizeof(*np));

		if (!np)
			return NULL;
		s->proxies = np;
		s->cproxies = nc;
	}
	memset(&s->proxies[s->nproxies], 0, sizeof(s->proxies[0]));
	snprintf(s->proxies[s->nproxies].name, sizeof(s->proxies[0].name), "%s", name);
	return &s->proxies[s->nproxies++];
}

void srv_session_log(struct srv *s, long long sid, const char *fmt, ...)
{
	char line[1024], id[24], ss[24], t[24];
	const char *p[4] = { id, ss, t, line };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	NUM(id, s->next_log++);
	NUM(ss, sid);
	NUM(t, srv_now(s));
	if (srv_db_exec(s->db, "INSERT INTO session_log (id, session_id, t, line) "
			"VALUES ($1, $2, $3, $4)", 4, p, NULL, NULL))
		srv_log("catalog: %s", s->db->err);
	srv_log("session %lld: %s", sid, line);
}

static int load_spec(const char *text, struct srv_job *j)
{
	char err[256];
	struct json_object *o = srv_json_parse(text, strlen(text), err, sizeof(err));
	int r;

	if (!o)
		return -1;
	r = srv_job_from_json(o, j, err, sizeof(err));
	json_object_put(o);
	return r;
}

void srv_job_schedule_next(struct srv *s, const struct srv_job *j)
{
	struct srv_cron c;
	char err[256], nx[24];
	const char *p[2] = { nx, j->name };
	time_t next = 0;

	if (j->enabled && j->schedule[0] && !j->after[0] &&
	    !srv_cron_parse(j->schedule, &c, err, sizeof(err)))
		next = srv_cron_next(&c, srv_now(s));
	NUM(nx, next);
	srv_db_exec(s->db, "UPDATE jobs SET next_run = $1 WHERE name = $2", 2, p, NULL, NULL);
}

int srv_session_start(struct srv *s, const char *job, const char *trigger,
		      time_t scheduled, long long *sid, char *err, size_t errlen)
{
	struct srv_rows r, rr;
	struct srv_job j;
	const char *p1[1] = { job };
	char id[24], now[24], sch[24];
	int ret = -1;

	if (srv_db_rows(s->db, "SELECT spec FROM jobs WHERE name = $1", 1, p1, &r)) {
		snprintf(err, errlen, "catalog: %s", s->db->err);
		return -1;
	}
	if (r.n == 0) {
		snprintf(err, errlen, "no job named '%s'", job);
		srv_rows_free(&r);
		return -404;
	}
	if (load_spec(srv_row(&r, 0, 0), &j)) {
		snprintf(err, errlen, "job '%s' has an unreadable specification", job);
		srv_rows_free(&r);
		return -1;
	}
	srv_rows_free(&r);
	{
		long long running = 0;

		srv_db_int(s->db, "SELECT COUNT(*) FROM sessions WHERE job = $1 AND "
			   "state = 'running'", 1, p1, 0, &running);
		if (running) {
			snprintf(err, errlen, "job '%s' has a session running; it was not started again", job);
			return -409;
		}
	}
	{
		const char *pr[1] = { j.repo };

		if (srv_db_rows(s->db, "SELECT url FROM repos WHERE name = $1", 1, pr, &rr) ||
		    rr.n == 0) {
			snprintf(err, errlen, "job '%s': repository '%s' is not registered", job, j.repo);
			srv_rows_free(&rr);
			return -1;
		}
		srv_rows_free(&rr);
	}
	*sid = s->next_session++;
	NUM(id, *sid);
	NUM(now, srv_now(s));
	NUM(sch, scheduled);
	if (srv_db_exec(s->db, "BEGIN", 0, NULL, NULL, NULL))
		goto dberr;
	{
		struct json_object *o = srv_job_to_json(&j);
		const char *p[6] = { id, job, trigger,
				     json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
				     now, sch };

		ret = srv_db_exec(s->db, "INSERT INTO sessions (id, job, trigger_by, state, spec, "
				  "created, scheduled, ended, message) VALUES ($1, $2, $3, "
				  "'running', $4, $5, $6, 0, '')", 6, p, NULL, NULL);
		json_object_put(o);
		if (ret)
			goto rollback;
	}
	for (int i = 0; i < j.ndisks; i++) {
		char tid[24], disk[16];
		const char *p[6] = { tid, id, disk, j.disk_name[i], j.disk_source[i], now };

		NUM(tid, s->next_task++);
		NUM(disk, i);
		if (srv_db_exec(s->db, "INSERT INTO tasks (id, session_id, disk, name, source, "
				"state, proxy, last_proxy, attempts, losses, not_before, started, "
				"ended, run_seconds, bytes_done, bytes_total, rate, bytes_read, "
				"bytes_stored, bytes_sent, point_id, message) VALUES ($1, $2, $3, "
				"$4, $5, 'queued', '', '', 0, 0, $6, 0, 0, 0, 0, 0, 0, 0, 0, 0, '', '')",
				6, p, NULL, NULL))
			goto rollback;
	}
	if (srv_db_exec(s->db, "COMMIT", 0, NULL, NULL, NULL))
		goto rollback;
	srv_session_log(s, *sid, "session of job %s started by %s: %d task(s), one per disk, "
			"to repository %s", job, trigger, j.ndisks, j.repo);
	return 0;
rollback:
	snprintf(err, errlen, "catalog: %s", s->db->err);
	srv_db_exec(s->db, "ROLLBACK", 0, NULL, NULL, NULL);
	return -1;
dberr:
	snprintf(err, errlen, "catalog: %s", s->db->err);
	return -1;
}

struct forget_ctx {
	struct srv *s;
	const char *repo;
	long long sid;
	int removed;
};

static int forget_item(const struct ferry_forget_item *it, void *arg)
{
	struct forget_ctx *c = arg;

	if (!it->keep) {
		const char *p[2] = { c->repo, it->point->id };

		srv_db_exec(c->s->db, "UPDATE points SET removed = 1 WHERE repo = $1 AND id = $2",
			    2, p, NULL, NULL);
		c->removed++;
	}
	return 0;
}

static void run_retention(struct srv *s, long long sid, const struct srv_job *j)
{
	struct srv_rows r;
	const char *p[1] = { j->repo };
	struct ferry_repo *repo = NULL;
	int e;

	if (!j->keep_last && !j->keep_hourly && !j->keep_daily && !j->keep_weekly &&
	    !j->keep_monthly && !j->keep_yearly)
		return;
	if (srv_db_rows(s->db, "SELECT path FROM repos WHERE name = $1", 1, p, &r) || r.n == 0) {
		srv_session_log(s, sid, "retention skipped: repository %s is not registered", j->repo);
		srv_rows_free(&r);
		return;
	}
	if (!srv_row(&r, 0, 0)[0]) {
		srv_session_log(s, sid, "retention skipped: repository %s has no path on the "
				"server host (ferry repo add --path), and a mover cannot remove "
				"restore points over the network", j->repo);
		srv_rows_free(&r);
		return;
	}
	if ((e = ferry_repo_open(srv_row(&r, 0, 0), &repo)) != 0) {
		srv_session_log(s, sid, "retention failed: cannot open %s: %s", srv_row(&r, 0, 0),
				ferry_last_error()[0] ? ferry_last_error() : ferry_strerror(e));
		srv_rows_free(&r);
		return;
	}
	for (int i = 0; i < j->ndisks; i++) {
		struct ferry_forget_opts fo = { 0 };
		struct ferry_forget_result res;
		struct forget_ctx c = { s, j->repo, sid, 0 };

		fo.name = j->disk_name[i];
		fo.keep_last = j->keep_last;
		fo.keep_hourly = j->keep_hourly;
		fo.keep_daily = j->keep_daily;
		fo.keep_weekly = j->keep_weekly;
		fo.keep_monthly = j->keep_monthly;
		fo.keep_yearly = j->keep_yearly;
		memset(&res, 0, sizeof(res));
		e = ferry_forget(repo, &fo, forget_item, &c, &res);
		if (e)
			srv_session_log(s, sid, "retention of disk %s failed: %s", fo.name,
					ferry_last_error()[0] ? ferry_last_error() : ferry_strerror(e));
		else
			srv_session_log(s, sid, "retention of disk %s: %llu kept, %llu removed "
					"(space is freed by ferry gc)", fo.name,
					(unsigned long long)res.kept, (unsigned long long)res.removed);
	}
	ferry_repo_free(repo);
	srv_rows_free(&r);
}

static void session_check(struct srv *s, long long sid)
{
	struct srv_rows r, sr;
	char id[24], now[24], msg[256];
	const char *p[1] = { id };
	long long queued = 0, running = 0, ok = 0, failed = 0;
	struct srv_job j;

	NUM(id, sid);
	if (srv_db_rows(s->db, "SELECT state, COUNT(*) FROM tasks WHERE session_id = $1 "
			"GROUP BY state", 1, p, &r))
		return;
	for (int i = 0; i < r.n; i++) {
		const char *st = srv_row(&r, i, 0);
		long long n = srv_row_int(&r, i, 1);

		if (!strcmp(st, "queued"))
			queued = n;
		else if (!strcmp(st, "running"))
			running = n;
		else if (!strcmp(st, "success"))
			ok = n;
		else
			failed += n;
	}
	srv_rows_free(&r);
	if (queued || running)
		return;
	if (srv_db_rows(s->db, "SELECT job, spec, state FROM sessions WHERE id = $1", 1, p, &sr) ||
	    sr.n == 0 || strcmp(srv_row(&sr, 0, 2), "running")) {
		srv_rows_free(&sr);
		return;
	}
	snprintf(msg, sizeof(msg), "%lld of %lld task(s) succeeded", ok, ok + failed);
	NUM(now, srv_now(s));
	{
		const char *pu[4] = { failed ? "failed" : "success", now, msg, id };

		srv_db_exec(s->db, "UPDATE sessions SET state = $1, ended = $2, message = $3 "
			    "WHERE id = $4", 4, pu, NULL, NULL);
	}
	srv_session_log(s, sid, "session %s: %s", failed ? "failed" : "succeeded", msg);
	if (!failed && !load_spec(srv_row(&sr, 0, 1), &j)) {
		struct srv_rows ar;
		const char *pj[1] = { j.name };

		run_retention(s, sid, &j);
		if (!srv_db_rows(s->db, "SELECT name FROM jobs WHERE after_job = $1 AND "
				 "enabled = 1 ORDER BY name", 1, pj, &ar)) {
			for (int i = 0; i < ar.n; i++) {
				char trig[100], err[300];
				long long nsid;

				snprintf(trig, sizeof(trig), "after %s", j.name);
				if (srv_session_start(s, srv_row(&ar, i, 0), trig, srv_now(s), &nsid,
						      err, sizeof(err)))
					srv_log("job %s (after %s) not started: %s",
						srv_row(&ar, i, 0), j.name, err);
			}
			srv_rows_free(&ar);
		}
	}
	srv_rows_free(&sr);
}

/* Back to the queue (proxy lost) or, after too many, failed. */
static void task_requeue(struct srv *s, long long tid, long long sid,
			 const char *proxy, long long losses, const char *why)
{
	char id[24], now[24];
	const char *p[3] = { id, proxy, now };

	NUM(id, tid);
	NUM(now, srv_now(s));
	if (losses + 1 > MAX_LOSSES) {
		const char *pf[3] = { id, now, why };

		srv_db_exec(s->db, "UPDATE tasks SET state = 'failed', ended = $2, message = $3, "
			    "losses = losses + 1 WHERE id = $1", 3, pf, NULL, NULL);
		srv_session_log(s, sid, "task %lld failed: %s, and it was lost %d times", tid,
				why, MAX_LOSSES);
		session_check(s, sid);
		return;
	}
	srv_db_exec(s->db, "UPDATE tasks SET state = 'queued', proxy = '', last_proxy = $2, "
		    "losses = losses + 1, not_before = $3, bytes_done = 0, rate = 0 WHERE id = $1",
		    3, p, NULL, NULL);
	srv_session_log(s, sid, "task %lld requeued for another proxy: %s", tid, why);
}

void srv_task_result(struct srv *s, long long tid, const char *proxy, int ok,
		     const char *msg, const struct srv_point_rec *pt)
{
	struct srv_rows r;
	char id[24], now[24];
	const char *p[1] = { id };
	long long sid;
	int current;
	struct srv_job j;

	NUM(id, tid);
	NUM(now, srv_now(s));
	if (srv_db_rows(s->db, "SELECT t.session_id, t.state, t.proxy, t.attempts, s.spec, "
			"s.job, t.name FROM tasks t JOIN sessions s ON s.id = t.session_id "
			"WHERE t.id = $1", 1, p, &r) || r.n == 0) {
		srv_rows_free(&r);
		return;
	}
	sid = srv_row_int(&r, 0, 0);
	current = !strcmp(srv_row(&r, 0, 1), "running") && !strcmp(srv_row(&r, 0, 2), proxy);
	if (ok && pt) {
		/* The point exists in the repository whatever became of the
		 * task meanwhile: the catalog lists it. */
		char sids[24], cr[24], ds[24], br[24], bs[24];
		const char *pp[10] = { pt->id, "", srv_row(&r, 0, 5), sids, id, pt->name, cr, ds, br, bs };

		if (!load_spec(srv_row(&r, 0, 4), &j))
			pp[1] = j.repo;
		NUM(sids, sid);
		NUM(cr, pt->created);
		NUM(ds, pt->disk_size);
		NUM(br, pt->bytes_read);
		NUM(bs, pt->bytes_stored);
		/* An agent that lost the answer reports again: the point is
		 * listed once (both SQLite and PostgreSQL know ON CONFLICT). */
		if (srv_db_exec(s->db, "INSERT INTO points (id, repo, job, session_id, task_id, "
				"name, created, disk_size, bytes_read, bytes_stored, removed) VALUES "
				"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0) "
				"ON CONFLICT (repo, id) DO NOTHING", 10, pp, NULL, NULL))
			srv_log("catalog: point %s: %s", pt->id, s->db->err);
	}
	if (!current) {
		srv_session_log(s, sid, "late report from proxy %s on task %lld (%s%s%s) ignored: "
				"the task moved on", proxy, tid, ok ? "success" : "failure",
				ok && pt ? ", point " : "", ok && pt ? pt->id : "");
		srv_rows_free(&r);
		return;
	}
	if (ok) {
		char rs[24], br[24], bs[24], bt[24], sec[32];
		const char *pu[8] = { id, now, pt ? pt->id : "", br, bs, bt, sec, rs };

		NUM(br, pt ? pt->bytes_read : 0);
		NUM(bs, pt ? pt->bytes_stored : 0);
		NUM(bt, pt ? pt->bytes_sent : 0);
		NUM(rs, pt ? pt->disk_size : 0);
		snprintf(sec, sizeof(sec), "%.3f", pt ? pt->seconds : 0.0);
		srv_db_exec(s->db, "UPDATE tasks SET state = 'success', ended = $2, point_id = $3, "
			    "bytes_read = $4, bytes_stored = $5, bytes_sent = $6, run_seconds = $7, "
			    "bytes_done = $8, bytes_total = $8, message = '' WHERE id = $1",
			    8, pu, NULL, NULL);
		srv_session_log(s, sid, "task %lld (disk %s) succeeded on proxy %s: restore "
				"point %s, %lld bytes read, %lld stored, %.2f s", tid,
				srv_row(&r, 0, 6), proxy, pt ? pt->id : "?",
				pt ? pt->bytes_read : 0, pt ? pt->bytes_stored : 0,
				pt ? pt->seconds : 0.0);
	} else {
		long long attempts = srv_row_int(&r, 0, 3);

		if (!load_spec(srv_row(&r, 0, 4), &j) && attempts <= j.retries) {
			char nb[24];
			const char *pu[4] = { id, nb, msg, proxy };

			NUM(nb, srv_now(s) + j.retry_wait);
			srv_db_exec(s->db, "UPDATE tasks SET state = 'queued', proxy = '', "
				    "last_proxy = $4, not_before = $2, message = $3, bytes_done = 0, "
				    "rate = 0 WHERE id = $1", 4, pu, NULL, NULL);
			srv_session_log(s, sid, "task %lld (disk %s) failed on proxy %s: %s; retry "
					"%lld of %d in %d s", tid, srv_row(&r, 0, 6), proxy, msg,
					attempts, j.retries, j.retry_wait);
		} else {
			const char *pu[3] = { id, now, msg };

			srv_db_exec(s->db, "UPDATE tasks SET state = 'failed', ended = $2, "
				    "message = $3 WHERE id = $1", 3, pu, NULL, NULL);
			srv_session_log(s, sid, "task %lld (disk %s) failed on proxy %s: %s", tid,
					srv_row(&r, 0, 6), proxy, msg);
		}
	}
	srv_rows_free(&r);
	session_check(s, sid);
}

static double proxy_load(int running, int max)
{
	return max > 0 ? (double)running / max : 1e9;
}

struct json_object *srv_proxy_poll(struct srv *s, const char *proxy,
				   const long long *ids, int n, int want,
				   int max_tasks, int *status, char *err,
				   size_t errlen)
{
	struct srv_rows pr, tr, load, q;
	struct srv_proxy_rt *rt;
	const char *p1[1] = { proxy };
	int max, mine = 0;
	struct json_object *task = NULL;

	*status = 200;
	if (srv_db_rows(s->db, "SELECT max_tasks FROM proxies WHERE name = $1", 1, p1, &pr) ||
	    pr.n == 0) {
		srv_rows_free(&pr);
		*status = 404;
		snprintf(err, errlen, "proxy '%s' is not registered: run ferry proxy add %s first",
			 proxy, proxy);
		return NULL;
	}
	max = (int)srv_row_int(&pr, 0, 0);
	srv_rows_free(&pr);
	if (max_tasks > 0 && max_tasks < max)
		max = max_tasks;
	if (!(rt = srv_proxy_rt(s, proxy, 1))) {
		*status = 500;
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (!rt->online)
		srv_log("proxy %s is online (up to %d task(s))", proxy, max);
	rt->online = 1;
	rt->last_seen = srv_mono();
	/* Tasks this proxy should run but does not report: lost with a
	 * restarted agent. */
	if (srv_db_rows(s->db, "SELECT id, session_id, losses FROM tasks WHERE state = 'running' "
			"AND proxy = $1", 1, p1, &tr) == 0) {
		for (int i = 0; i < tr.n; i++) {
			long long tid = srv_row_int(&tr, i, 0);
			int found = 0;

			for (int k = 0; k < n; k++)
				if (ids[k] == tid)
					found = 1;
			if (found) {
				mine++;
				continue;
			}
			task_requeue(s, tid, srv_row_int(&tr, i, 1), proxy,
				     srv_row_int(&tr, i, 2), "the proxy no longer runs it (agent restarted?)");
		}
		srv_rows_free(&tr);
	}
	if (mine > rt->peak)
		rt->peak = mine;
	if (!want || mine >= max)
		return NULL;
	/* Least loaded first: leave the task to an online proxy with room
	 * and a smaller share of its limit in use. */
	if (srv_db_rows(s->db, "SELECT p.name, p.max_tasks, (SELECT COUNT(*) FROM tasks t WHERE "
			"t.state = 'running' AND t.proxy = p.name) FROM proxies p", 0, NULL, &load))
		return NULL;
	for (int i = 0; i < load.n; i++) {
		struct srv_proxy_rt *o = srv_proxy_rt(s, srv_row(&load, i, 0), 0);
		int om = (int)srv_row_int(&load, i, 1), orun = (int)srv_row_int(&load, i, 2);

		if (!o || !o->online || o == rt || orun >= om)
			continue;
		if (srv_mono() - o->last_seen > 2.0)
			continue; /* not polling right now */
		if (proxy_load(orun, om) < proxy_load(mine, max)) {
			srv_rows_free(&load);
			return NULL;
		}
	}
	srv_rows_free(&load);
	{
		char now[24];
		const char *pq[1] = { now };

		NUM(now, srv_now(s));
		if (srv_db_rows(s->db, "SELECT t.id, t.session_id, t.name, t.source, t.last_proxy, "
				"s.spec, s.job, t.attempts FROM tasks t JOIN sessions s ON "
				"s.id = t.session_id WHERE t.state = 'queued' AND t.not_before <= $1 "
				"ORDER BY t.id LIMIT 64", 1, pq, &q))
			return NULL;
	}
	{
		int pick = -1;
		struct srv_job j;
		struct srv_rows rr;

		for (int i = 0; i < q.n && pick < 0; i++)
			if (strcmp(srv_row(&q, i, 4), proxy))
				pick = i;
		if (pick < 0 && q.n)
			pick = 0; /* only tasks this proxy ran before: still better than waiting */
		if (pick < 0 || load_spec(srv_row(&q, pick, 5), &j)) {
			srv_rows_free(&q);
			return NULL;
		}
		{
			const char *pr2[1] = { j.repo };

			if (srv_db_rows(s->db, "SELECT url FROM repos WHERE name = $1", 1, pr2, &rr) ||
			    rr.n == 0) {
				const char *pf[1] = { srv_row(&q, pick, 0) };
				long long fsid = srv_row_int(&q, pick, 1);

				srv_rows_free(&rr);
				srv_db_exec(s->db, "UPDATE tasks SET state = 'failed', message = "
					    "'the repository is no longer registered' WHERE id = $1",
					    1, pf, NULL, NULL);
				srv_session_log(s, fsid, "task %s failed: repository %s is no longer "
						"registered", pf[0], j.repo);
				srv_rows_free(&q);
				session_check(s, fsid);
				return NULL;
			}
		}
		{
			char now[24];
			const char *pu[3] = { srv_row(&q, pick, 0), proxy, now };

			NUM(now, srv_now(s));
			srv_db_exec(s->db, "UPDATE tasks SET state = 'running', proxy = $2, "
				    "attempts = attempts + 1, started = $3, bytes_done = 0, "
				    "bytes_total = 0, rate = 0 WHERE id = $1", 3, pu, NULL, NULL);
		}
		task = json_object_new_object();
		json_object_object_add(task, "id", json_object_new_int64(srv_row_int(&q, pick, 0)));
		json_object_object_add(task, "session", json_object_new_int64(srv_row_int(&q, pick, 1)));
		json_object_object_add(task, "job", json_object_new_string(srv_row(&q, pick, 6)));
		json_object_object_add(task, "name", json_object_new_string(srv_row(&q, pick, 2)));
		json_object_object_add(task, "source", json_object_new_string(srv_row(&q, pick, 3)));
		json_object_object_add(task, "repo", json_object_new_string(srv_row(&rr, 0, 0)));
		json_object_object_add(task, "attempt", json_object_new_int64(srv_row_int(&q, pick, 7) + 1));
		json_object_object_add(task, "block_size", json_object_new_int64((int64_t)j.block_size));
		json_object_object_add(task, "bitmap", json_object_new_string(j.bitmap));
		json_object_object_add(task, "limit_rate", json_object_new_string(j.limit_rate));
		json_object_object_add(task, "pre_script", json_object_new_string(j.pre_script));
		json_object_object_add(task, "post_script", json_object_new_string(j.post_script));
		json_object_object_add(task, "threads", json_object_new_int(j.threads));
		mine++;
		if (mine > rt->peak)
			rt->peak = mine;
		srv_session_log(s, srv_row_int(&q, pick, 1), "task %lld (disk %s) assigned to proxy "
				"%s (%d of %d task(s) running there)", srv_row_int(&q, pick, 0),
				srv_row(&q, pick, 2), proxy, mine, max);
		srv_rows_free(&rr);
		srv_rows_free(&q);
	}
	return task;
}

/* At start, sessions the previous server left running are resumed, not
 * failed: queued tasks stay queued for the next proxy that polls; a
 * running task stays its proxy's, and that proxy is counted online from
 * now, so the usual reconciliation decides: its agent polls again
 * listing the task (re-adopted; its result report, kept by the agent
 * until the server has it, completes the task), or polls without it
 * (agent restarted: requeued), or never polls within proxy-timeout
 * (requeued for another proxy, srv_sched_tick).  A session whose tasks
 * all ended while the server was down is closed here. */
void srv_recover_on_start(struct srv *s)
{
	struct srv_rows r, pr;

	if (srv_db_rows(s->db, "SELECT id FROM sessions WHERE state = 'running' ORDER BY id",
			0, NULL, &r))
		return;
	if (r.n && srv_db_rows(s->db, "SELECT proxy, COUNT(*) FROM tasks WHERE state = 'running' "
			       "GROUP BY proxy ORDER BY proxy", 0, NULL, &pr) == 0) {
		for (int i = 0; i < pr.n; i++) {
			struct srv_proxy_rt *rt = srv_proxy_rt(s, srv_row(&pr, i, 0), 1);

			if (!rt)
				continue;
			rt->online = 1;
			rt->last_seen = srv_mono();
			srv_log("proxy %s ran %lld task(s) when the server stopped: waiting up to "
				"%d s for it to report them", rt->name, srv_row_int(&pr, i, 1),
				s->conf.proxy_timeout);
		}
		srv_rows_free(&pr);
	}
	for (int i = 0; i < r.n; i++) {
		long long sid = srv_row_int(&r, i, 0);

		srv_session_log(s, sid, "resumed at server start: queued tasks wait for a proxy, "
				"running ones for their proxy to report (or to be requeued after "
				"%d s of silence)", s->conf.proxy_timeout);
		session_check(s, sid);
	}
	srv_rows_free(&r);
}

void srv_sched_tick(struct srv *s)
{
	double mono = srv_mono();
	struct srv_rows r;
	char now[24];
	const char *p[1] = { now };

	/* Heartbeats. */
	for (int i = 0; i < s->nproxies; i++) {
		struct srv_proxy_rt *rt = &s->proxies[i];
		struct srv_rows tr;
		const char *pp[1] = { rt->name };

		if (!rt->online || mono - rt->last_seen <= s->conf.proxy_timeout)
			continue;
		rt->online = 0;
		srv_log("proxy %s stopped heartbeating (silent %.0f s): offline", rt->name,
			mono - rt->last_seen);
		if (srv_db_rows(s->db, "SELECT id, session_id, losses FROM tasks WHERE "
				"state = 'running' AND proxy = $1", 1, pp, &tr))
			continue;
		for (int k = 0; k < tr.n; k++) {
			char why[160];

			snprintf(why, sizeof(why), "proxy %s stopped heartbeating (silent %.0f s)",
				 rt->name, mono - rt->last_seen);
			task_requeue(s, srv_row_int(&tr, k, 0), srv_row_int(&tr, k, 1), rt->name,
				     srv_row_int(&tr, k, 2), why);
		}
		srv_rows_free(&tr);
	}
	/* Cron. */
	NUM(now, srv_now(s));
	if (srv_db_rows(s->db, "SELECT name, next_run FROM jobs WHERE enabled = 1 AND "
			"next_run > 0 AND next_run <= $1 ORDER BY next_run", 1, p, &r))
		return;
	for (int i = 0; i < r.n; i++) {
		struct srv_rows jr;
		const char *pj[1] = { srv_row(&r, i, 0) };
		struct srv_job j;
		char err[300];
		long long sid;

		if (srv_db_rows(s->db, "SELECT spec FROM jobs WHERE name = $1", 1, pj, &jr) ||
		    jr.n == 0 || load_spec(srv_row(&jr, 0, 0), &j)) {
			srv_rows_free(&jr);
			continue;
		}
		srv_rows_free(&jr);
		if (srv_session_start(s, j.name, "schedule", (time_t)srv_row_int(&r, i, 1), &sid,
				      err, sizeof(err)))
			srv_log("scheduled run of job %s skipped: %s", j.name, err);
		srv_job_schedule_next(s, &j);
	}
	srv_rows_free(&r);
}
