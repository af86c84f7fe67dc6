/* api.c - the REST API's endpoints (docs/openapi.yaml): inventory,
 * jobs, sessions, the restore-point catalog, the proxy agents' poll /
 * progress / result calls, and /metrics.  Called by http.c for
 * authenticated requests; takes s->mu for the whole request. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/ferry.h"
#include "srv.h"

#define NUM(buf, v) snprintf(buf, sizeof(buf), "%lld", (long long)(v))

static void reply(struct srv_resp *rs, int status, struct json_object *o)
{
	rs->status = status;
	rs->body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	rs->content_type = "application/json";
	json_object_put(o);
}

static void fail(struct srv_resp *rs, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct srv_resp *rs, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	struct json_object *o = json_object_new_object();

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(msg));
	reply(rs, status, o);
}

static void db_fail(struct srv *s, struct srv_resp *rs)
{
	srv_log("catalog error: %s", s->db->err);
	fail(rs, 500, "catalog error: %s", s->db->err);
}

static struct json_object *jstr(const char *s) { return json_object_new_string(s); }
static struct json_object *jint(long long v) { return json_object_new_int64(v); }

/* Reply {"KEY": V}; V is taken. */
static void reply_one(struct srv_resp *rs, int status, const char *key, struct json_object *v)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, key, v);
	reply(rs, status, o);
}

/* How a catalog column becomes a JSON field. */
enum { COL_STR, COL_INT, COL_INT_OR_NULL /* 0: null */, COL_STR_OR_NULL /* "": null */,
       COL_DOUBLE };
struct col {
	const char *key;
	int col, type;
};

/* Row I of R's columns COLS[0..N) into O's fields. */
static void row_fields(struct json_object *o, const struct srv_rows *r, int i,
		       const struct col *cols, int n)
{
	for (int k = 0; k < n; k++) {
		const char *v = srv_row(r, i, cols[k].col);
		long long x = srv_row_int(r, i, cols[k].col);
		struct json_object *f = NULL;

		switch (cols[k].type) {
		case COL_STR: f = jstr(v); break;
		case COL_INT: f = jint(x); break;
		case COL_INT_OR_NULL: f = x ? jint(x) : NULL; break;
		case COL_STR_OR_NULL: f = v[0] ? jstr(v) : NULL; break;
		case COL_DOUBLE: f = json_object_new_double(strtod(v, NULL)); break;
		}
		json_object_object_add(o, cols[k].key, f);
	}
}

/* Every row of R as an object of the fields COLS[0..N). */
static struct json_object *rows_array(const struct srv_rows *r, const struct col *cols, int n)
{
	struct json_object *a = json_object_new_array();

	for (int i = 0; i < r->n; i++) {
		struct json_object *o = json_object_new_object();

		row_fields(o, r, i, cols, n);
		json_object_array_add(a, o);
	}
	return a;
}

/* The COUNT(*) query SQL with its one parameter ARG (0 when it fails). */
static long long count_of(struct srv *s, const char *sql, const char *arg)
{
	const char *p[1] = { arg };
	long long n = 0;

	srv_db_int(s->db, sql, 1, p, 0, &n);
	return n;
}

/* Integer field KEY of O in [LO, HI]; DEF when absent. */
static int get_i64(struct json_object *o, const char *key, long long lo,
		   long long hi, long long def, long long *out, struct srv_resp *rs)
{
	struct json_object *v;

	*out = def;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int)) {
		fail(rs, 400, "field '%s' must be a whole number", key);
		return -1;
	}
	*out = json_object_get_int64(v);
	if (*out < lo || *out > hi) {
		fail(rs, 400, "field '%s' must be %lld to %lld", key, lo, hi);
		return -1;
	}
	return 0;
}

static const char *get_s(struct json_object *o, const char *key, size_t max,
			 int required, struct srv_resp *rs)
{
	struct json_object *v;
	const char *x;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required) {
			fail(rs, 400, "field '%s' is required", key);
			return NULL;
		}
		return "";
	}
	if (!json_object_is_type(v, json_type_string)) {
		fail(rs, 400, "field '%s' must be a string", key);
		return NULL;
	}
	x = json_object_get_string(v);
	if (strlen(x) > max || (size_t)json_object_get_string_len(v) != strlen(x)) {
		fail(rs, 400, "field '%s' is longer than %zu bytes or holds a NUL", key, max);
		return NULL;
	}
	return x;
}

static struct json_object *body_object(const struct srv_req *rq, struct srv_resp *rs,
				       const char *const *keys)
{
	char err[600];
	struct json_object *o = srv_json_parse(rq->body, rq->body_len, err, sizeof(err));

	if (!o) {
		fail(rs, 400, "%s", err);
		return NULL;
	}
	if (keys && srv_json_check_keys(o, keys, err, sizeof(err))) {
		json_object_put(o);
		fail(rs, 400, "%s", err);
		return NULL;
	}
	return o;
}

/* Register the row P (N values, its name first) with INSERT unless
 * EXISTS counts one of that name (a WHAT): 0, or -1 after the reply. */
static int insert_new(struct srv *s, struct srv_resp *rs, const char *what, const char *exists,
		      const char *insert, int n, const char *const *p)
{
	if (count_of(s, exists, p[0])) {
		fail(rs, 409, "%s '%s' is already registered", what, p[0]);
		return -1;
	}
	if (srv_db_exec(s->db, insert, n, p, NULL, NULL)) {
		db_fail(s, rs);
		return -1;
	}
	return 0;
}

/* ---- proxies ------------------------------------------------------- */
static void proxies_list(struct srv *s, struct srv_resp *rs)
{
	struct srv_rows r;
	struct json_object *a;

	if (srv_db_rows(s->db, "SELECT p.name, p.address, p.max_tasks, (SELECT COUNT(*) FROM "
			"tasks t WHERE t.state = 'running' AND t.proxy = p.name) FROM proxies p "
			"ORDER BY p.name", 0, NULL, &r)) {
		db_fail(s, rs);
		return;
	}
	a = json_object_new_array();
	for (int i = 0; i < r.n; i++) {
		struct json_object *p = json_object_new_object();
		struct srv_proxy_rt *rt = srv_proxy_rt(s, srv_row(&r, i, 0), 0);

		json_object_object_add(p, "name", jstr(srv_row(&r, i, 0)));
		json_object_object_add(p, "address", jstr(srv_row(&r, i, 1)));
		json_object_object_add(p, "max_tasks", jint(srv_row_int(&r, i, 2)));
		json_object_object_add(p, "running", jint(srv_row_int(&r, i, 3)));
		json_object_object_add(p, "online", json_object_new_boolean(rt && rt->online));
		json_object_object_add(p, "peak_tasks", jint(rt ? rt->peak : 0));
		json_object_object_add(p, "seconds_since_contact",
				       rt && rt->last_seen > 0 ? json_object_new_double(srv_mono() - rt->last_seen)
							      : NULL);
		json_object_array_add(a, p);
	}
	srv_rows_free(&r);
	reply_one(rs, 200, "proxies", a);
}

static void proxies_add(struct srv *s, const struct srv_req *rq, struct srv_resp *rs)
{
	static const char *const keys[] = { "name", "address", "max_tasks", NULL };
	struct json_object *o = body_object(rq, rs, keys);
	const char *name, *addr;
	long long max;
	char mx[24], now[24];

	if (!o)
		return;
	if (!(name = get_s(o, "name", 64, 1, rs)) || !(addr = get_s(o, "address", 255, 0, rs)) ||
	    get_i64(o, "max_tasks", 1, 1024, 2, &max, rs))
		goto out;
	if (!srv_name_valid(name)) {
		fail(rs, 400, "proxy name '%s': use 1-64 letters, digits, '.', '_' or '-'", name);
		goto out;
	}
	NUM(mx, max);
	NUM(now, srv_now(s));
	{
		const char *p[4] = { name, addr, mx, now };

		if (insert_new(s, rs, "proxy", "SELECT COUNT(*) FROM proxies WHERE name = $1",
			       "INSERT INTO proxies (name, address, max_tasks, created) "
			       "VALUES ($1, $2, $3, $4)", 4, p))
			goto out;
	}
	srv_log("proxy %s registered (address '%s', up to %lld task(s))", name, addr, max);
	{
		struct json_object *r = json_object_new_object();

		json_object_object_add(r, "name", jstr(name));
		json_object_object_add(r, "address", jstr(addr));
		json_object_object_add(r, "max_tasks", jint(max));
		reply(rs, 201, r);
	}
out:
	json_object_put(o);
}

static void proxies_remove(struct srv *s, const char *name, struct srv_resp *rs)
{
	const char *p[1] = { name };
	long long running;

	if (!count_of(s, "SELECT COUNT(*) FROM proxies WHERE name = $1", name)) {
		fail(rs, 404, "no proxy named '%s'", name);
		return;
	}
	running = count_of(s, "SELECT COUNT(*) FROM tasks WHERE state = 'running' AND proxy = $1",
			   name);
	if (running) {
		fail(rs, 409, "proxy '%s' runs %lld task(s); remove it when they end", name, running);
		return;
	}
	if (srv_db_exec(s->db, "DELETE FROM proxies WHERE name = $1", 1, p, NULL, NULL)) {
		db_fail(s, rs);
		return;
	}
	for (int i = 0; i < s->nproxies; i++)
		if (!strcmp(s->proxies[i].name, name))
			s->proxies[i].online = 0;
	srv_log("proxy %s removed", name);
	reply_one(rs, 200, "removed", jstr(name));
}

/* ---- repositories -------------------------------------------------- */
static void repos_list(struct srv *s, struct srv_resp *rs)
{
	static const struct col cols[] = {
		{ "name", 0, COL_STR }, { "url", 1, COL_STR }, { "path", 2, COL_STR },
		{ "capacity", 3, COL_INT }, { "points", 4, COL_INT }, { "bytes_stored", 5, COL_INT },
	};
	struct srv_rows r;
	struct json_object *a;

	if (srv_db_rows(s->db, "SELECT r.name, r.url, r.path, r.capacity, (SELECT COUNT(*) FROM "
			"points p WHERE p.repo = r.name AND p.removed = 0), (SELECT "
			"COALESCE(SUM(p.bytes_stored), 0) FROM points p WHERE p.repo = r.name) "
			"FROM repos r ORDER BY r.name", 0, NULL, &r)) {
		db_fail(s, rs);
		return;
	}
	a = rows_array(&r, cols, 6);
	srv_rows_free(&r);
	reply_one(rs, 200, "repos", a);
}

static void repos_add(struct srv *s, const struct srv_req *rq, struct srv_resp *rs)
{
	static const char *const keys[] = { "name", "url", "path", "capacity", NULL };
	struct json_object *o = body_object(rq, rs, keys), *v;
	const char *name, *url, *path;
	uint64_t cap = 0;
	char cs[24], now[24];

	if (!o)
		return;
	if (!(name = get_s(o, "name", 64, 1, rs)) || !(url = get_s(o, "url", 1000, 1, rs)) ||
	    !(path = get_s(o, "path", 1000, 0, rs)))
		goto out;
	if (json_object_object_get_ex(o, "capacity", &v) && !json_object_is_type(v, json_type_null)) {
		if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0)
			cap = (uint64_t)json_object_get_int64(v);
		else if (!json_object_is_type(v, json_type_string) ||
			 ferry_size_parse(json_object_get_string(v), &cap)) {
			fail(rs, 400, "field 'capacity': give bytes or a size such as 10T");
			goto out;
		}
	}
	if (!srv_name_valid(name)) {
		fail(rs, 400, "repository name '%s': use 1-64 letters, digits, '.', '_' or '-'", name);
		goto out;
	}
	if (strncmp(url, "ferry://", 8) && url[0] != '/') {
		fail(rs, 400, "repository url '%s': give ferry://HOST:PORT/NAME (a target mover) "
		     "or an absolute path the proxies see", url);
		goto out;
	}
	if (path[0] && path[0] != '/') {
		fail(rs, 400, "repository path '%s' must be absolute", path);
		goto out;
	}
	NUM(cs, cap);
	NUM(now, srv_now(s));
	{
		const char *p[5] = { name, url, path, cs, now };

		if (insert_new(s, rs, "repository", "SELECT COUNT(*) FROM repos WHERE name = $1",
			       "INSERT INTO repos (name, url, path, capacity, created) "
			       "VALUES ($1, $2, $3, $4, $5)", 5, p))
			goto out;
	}
	srv_log("repository %s registered (%s)", name, url);
	{
		struct json_object *r = json_object_new_object();

		json_object_object_add(r, "name", jstr(name));
		json_object_object_add(r, "url", jstr(url));
		json_object_object_add(r, "path", jstr(path));
		json_object_object_add(r, "capacity", jint((long long)cap));
		reply(rs, 201, r);
	}
out:
	json_object_put(o);
}

/* ---- jobs ---------------------------------------------------------- */
struct pts_ctx {
	struct srv_buf *b;
	int n;
};

static void jobs_create(struct srv *s, const struct srv_req *rq, struct srv_resp *rs)
{
	struct json_object *o = body_object(rq, rs, NULL), *spec;
	struct srv_job j;
	char err[600], now[24], en[24];

	if (!o)
		return;
	if (srv_job_from_json(o, &j, err, sizeof(err))) {
		fail(rs, 400, "%s", err);
		json_object_put(o);
		return;
	}
	json_object_put(o);
	if (!count_of(s, "SELECT COUNT(*) FROM repos WHERE name = $1", j.repo)) {
		fail(rs, 400, "job '%s': repository '%s' is not registered (ferry repo add)",
		     j.name, j.repo);
		return;
	}
	if (j.after[0] && !count_of(s, "SELECT COUNT(*) FROM jobs WHERE name = $1", j.after)) {
		fail(rs, 400, "job '%s': schedule 'after %s' names no job", j.name, j.after);
		return;
	}
	if (count_of(s, "SELECT COUNT(*) FROM jobs WHERE name = $1", j.name)) {
		fail(rs, 409, "job '%s' already exists", j.name);
		return;
	}
	spec = srv_job_to_json(&j);
	NUM(now, srv_now(s));
	NUM(en, j.enabled);
	{
		const char *p[7] = { j.name, json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN),
				     j.repo, j.after[0] ? "" : j.schedule, j.after, en, now };

		if (srv_db_exec(s->db, "INSERT INTO jobs (name, spec, repo, cron, after_job, enabled, "
				"next_run, created) VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
				7, p, NULL, NULL)) {
			json_object_put(spec);
			db_fail(s, rs);
			return;
		}
	}
	srv_job_schedule_next(s, &j);
	srv_log("job %s created (%d disk(s) to %s, schedule '%s')", j.name, j.ndisks, j.repo,
		j.schedule);
	reply(rs, 201, spec);
}

static struct json_object *job_row(const struct srv_rows *r, int i)
{
	struct json_object *o = json_object_new_object();
	struct json_object *spec = json_tokener_parse(srv_row(r, i, 1));

	json_object_object_add(o, "name", jstr(srv_row(r, i, 0)));
	json_object_object_add(o, "repo", jstr(srv_row(r, i, 2)));
	json_object_object_add(o, "enabled", json_object_new_boolean(srv_row_int(r, i, 3) != 0));
	json_object_object_add(o, "next_run", srv_row_int(r, i, 4) ? jint(srv_row_int(r, i, 4)) : NULL);
	json_object_object_add(o, "last_session", srv_row(r, i, 5)[0] ? jint(srv_row_int(r, i, 5)) : NULL);
	json_object_object_add(o, "last_state", srv_row(r, i, 6)[0] ? jstr(srv_row(r, i, 6)) : NULL);
	json_object_object_add(o, "spec", spec);
	return o;
}

#define JOB_COLS "j.name, j.spec, j.repo, j.enabled, j.next_run, s.id, s.state " \
	"FROM jobs j LEFT JOIN sessions s ON s.id = (SELECT MAX(x.id) FROM sessions x " \
	"WHERE x.job = j.name)"

/* One job row straight into the reply; SPEC is the canonical JSON the
 * server wrote itself (srv_job_to_json), embedded as it is. */
static int job_row_raw(int ncols, char **v, void *arg)
{
	struct pts_ctx *c = arg;
	struct srv_buf *b = c->b;

	if (ncols < 7)
		return 1;
	if (c->n++)
		srv_buf_raw(b, ",", 1);
	srv_buf_raw(b, "{\"name\":", 8);
	srv_buf_str(b, v[0] ? v[0] : "");
	srv_buf_raw(b, ",\"repo\":", 8);
	srv_buf_str(b, v[2] ? v[2] : "");
	srv_buf_printf(b, ",\"enabled\":%s", v[3] && strtoll(v[3], NULL, 10) ? "true" : "false");
	if (v[4] && strtoll(v[4], NULL, 10))
		srv_buf_printf(b, ",\"next_run\":%lld", strtoll(v[4], NULL, 10));
	else
		srv_buf_raw(b, ",\"next_run\":null", 16);
	if (v[5] && v[5][0]) {
		srv_buf_printf(b, ",\"last_session\":%lld,\"last_state\":", strtoll(v[5], NULL, 10));
		srv_buf_str(b, v[6] ? v[6] : "");
	} else {
		srv_buf_raw(b, ",\"last_session\":null,\"last_state\":null", 38);
	}
	srv_buf_raw(b, ",\"spec\":", 8);
	if (v[1] && v[1][0] == '{')
		srv_buf_raw(b, v[1], strlen(v[1]));
	else
		srv_buf_raw(b, "null", 4);
	srv_buf_raw(b, "}", 1);
	return 0;
}

/* Reply {"NAME":[rows]}, each row written by ROW from SQL with its N
 * parameters P; from the listing cache under KEY when the TABLES did not
 * change since, and kept there when KEEP. */
static void raw_listing(struct srv *s, struct srv_resp *rs, const char *name, const char *key,
			int keep, unsigned tables, const char *sql, int n, const char *const *p,
			srv_row_cb row)
{
	struct srv_buf b = { NULL, 0, 0, 0 };
	struct pts_ctx c = { &b, 0 };

	if (srv_cache_get(s, key, tables, rs))
		return;
	srv_buf_printf(&b, "{\"%s\":[", name);
	if (srv_db_exec(s->db, sql, n, p, row, &c)) {
		free(b.p);
		db_fail(s, rs);
		return;
	}
	srv_buf_raw(&b, "]}", 2);
	if (b.oom) {
		free(b.p);
		fail(rs, 500, "out of memory");
		return;
	}
	if (keep)
		srv_cache_put(s, key, tables, b.p, b.len);
	rs->status = 200;
	rs->body = b.p;
}

static void jobs_list(struct srv *s, struct srv_resp *rs)
{
	raw_listing(s, rs, "jobs", "jobs", 1, SRV_TBIT(SRV_T_JOBS) | SRV_TBIT(SRV_T_SESSIONS),
		    "SELECT " JOB_COLS " ORDER BY j.name", 0, NULL, job_row_raw);
}

static void jobs_show(struct srv *s, const char *name, struct srv_resp *rs)
{
	struct srv_rows r;
	const char *p[1] = { name };

	if (srv_db_rows(s->db, "SELECT " JOB_COLS " WHERE j.name = $1", 1, p, &r)) {
		db_fail(s, rs);
		return;
	}
	if (r.n == 0)
		fail(rs, 404, "no job named '%s'", name);
	else
		reply(rs, 200, job_row(&r, 0));
	srv_rows_free(&r);
}

static void jobs_action(struct srv *s, const char *name, const char *action,
			struct srv_resp *rs)
{
	const char *p[1] = { name };
	struct json_object *o;

	if (!count_of(s, "SELECT COUNT(*) FROM jobs WHERE name = $1", name)) {
		fail(rs, 404, "no job named '%s'", name);
		return;
	}
	if (!strcmp(action, "run")) {
		char err[600];
		long long sid;
		int e = srv_session_start(s, name, "manual", srv_now(s), &sid, err, sizeof(err));

		if (e) {
			fail(rs, e == -409 ? 409 : e == -404 ? 404 : 400, "%s", err);
			return;
		}
		o = json_object_new_object();
		json_object_object_add(o, "session", jint(sid));
		json_object_object_add(o, "job", jstr(name));
		reply(rs, 202, o);
		return;
	}
	if (!strcmp(action, "enable") || !strcmp(action, "disable")) {
		struct srv_rows r;
		struct srv_job j;
		char err[600];
		const char *pu[2] = { !strcmp(action, "enable") ? "1" : "0", name };

		if (srv_db_exec(s->db, "UPDATE jobs SET enabled = $1 WHERE name = $2", 2, pu, NULL, NULL) ||
		    srv_db_rows(s->db, "SELECT spec FROM jobs WHERE name = $1", 1, p, &r)) {
			db_fail(s, rs);
			return;
		}
		{
			struct json_object *spec = srv_json_parse(srv_row(&r, 0, 0), strlen(srv_row(&r, 0, 0)),
								  err, sizeof(err));

			if (spec && !srv_job_from_json(spec, &j, err, sizeof(err))) {
				struct json_object *ns;

				j.enabled = pu[0][0] == '1';
				ns = srv_job_to_json(&j);
				{
					const char *pp[2] = { json_object_to_json_string_ext(ns, JSON_C_TO_STRING_PLAIN), name };

					srv_db_exec(s->db, "UPDATE jobs SET spec = $1 WHERE name = $2", 2, pp, NULL, NULL);
				}
				json_object_put(ns);
				srv_job_schedule_next(s, &j);
			}
			json_object_put(spec);
		}
		srv_rows_free(&r);
		srv_log("job %s %sd", name, action);
		jobs_show(s, name, rs);
		return;
	}
	fail(rs, 404, "unknown job action '%s' (run, enable, disable)", action);
}

static void jobs_delete(struct srv *s, const char *name, struct srv_resp *rs)
{
	const char *p[1] = { name };
	long long n;

	if (!count_of(s, "SELECT COUNT(*) FROM jobs WHERE name = $1", name)) {
		fail(rs, 404, "no job named '%s'", name);
		return;
	}
	if (count_of(s, "SELECT COUNT(*) FROM sessions WHERE job = $1 AND state = 'running'", name)) {
		fail(rs, 409, "job '%s' has a session running; delete it when the session ends", name);
		return;
	}
	if ((n = count_of(s, "SELECT COUNT(*) FROM jobs WHERE after_job = $1", name)) != 0) {
		fail(rs, 409, "%lld job(s) run after '%s'; change or delete them first", n, name);
		return;
	}
	if (srv_db_exec(s->db, "DELETE FROM jobs WHERE name = $1", 1, p, NULL, NULL)) {
		db_fail(s, rs);
		return;
	}
	srv_log("job %s deleted (its sessions and restore points stay in the catalog)", name);
	reply_one(rs, 200, "deleted", jstr(name));
}

/* ---- sessions ------------------------------------------------------ */
static int parse_limit(const struct srv_req *rq, int def, int max, struct srv_resp *rs)
{
	const char *l = rq->arg(rq->arg_cls, "limit");
	char *end;
	long v;

	if (!l)
		return def;
	v = strtol(l, &end, 10);
	if (*end || end == l || v < 1 || v > max) {
		fail(rs, 400, "limit must be 1 to %d", max);
		return -1;
	}
	return (int)v;
}

#define SESSION_COLS "id, job, trigger_by, state, created, scheduled, ended, message"
static const struct col session_cols[] = {
	{ "id", 0, COL_INT }, { "job", 1, COL_STR }, { "trigger", 2, COL_STR },
	{ "state", 3, COL_STR }, { "created", 4, COL_INT }, { "scheduled", 5, COL_INT },
	{ "ended", 6, COL_INT_OR_NULL }, { "message", 7, COL_STR },
};

static void sessions_list(struct srv *s, const struct srv_req *rq, struct srv_resp *rs)
{
	struct srv_rows r;
	const char *job = rq->arg(rq->arg_cls, "job");
	int limit = parse_limit(rq, 100, 10000, rs);
	char sql[300];
	struct json_object *a;
	const char *p[1] = { job };

	if (limit < 0)
		return;
	snprintf(sql, sizeof(sql), "SELECT " SESSION_COLS " FROM sessions %s ORDER BY id DESC "
		 "LIMIT %d", job ? "WHERE job = $1" : "", limit);
	if (srv_db_rows(s->db, sql, job ? 1 : 0, p, &r)) {
		db_fail(s, rs);
		return;
	}
	a = rows_array(&r, session_cols, 8);
	srv_rows_free(&r);
	reply_one(rs, 200, "sessions", a);
}

static int parse_id(const char *s, long long *out)
{
	char *end;

	if (!*s || *s == '-')
		return -1;
	*out = strtoll(s, &end, 10);
	return *end ? -1 : 0;
}

static void sessions_show(struct srv *s, const char *ids, struct srv_resp *rs)
{
	/* then eta_seconds, then from bytes_read on */
	static const struct col task_cols[19] = {
		{ "id", 0, COL_INT }, { "disk", 1, COL_INT }, { "name", 2, COL_STR },
		{ "source", 3, COL_STR }, { "state", 4, COL_STR }, { "proxy", 5, COL_STR },
		{ "attempts", 6, COL_INT }, { "proxy_losses", 7, COL_INT },
		{ "started", 8, COL_INT_OR_NULL }, { "ended", 9, COL_INT_OR_NULL },
		{ "bytes_done", 10, COL_INT }, { "bytes_total", 11, COL_INT }, { "rate", 12, COL_INT },
		{ "bytes_read", 13, COL_INT }, { "bytes_stored", 14, COL_INT },
		{ "bytes_sent", 15, COL_INT }, { "point", 16, COL_STR_OR_NULL },
		{ "message", 17, COL_STR }, { "seconds", 18, COL_DOUBLE },
	};
	struct srv_rows r, t;
	const char *p[1] = { ids };
	long long id;
	struct json_object *o, *a;
	uint64_t done = 0, total = 0, rate = 0;

	if (parse_id(ids, &id)) {
		fail(rs, 400, "session id '%s' is not a number", ids);
		return;
	}
	if (srv_db_rows(s->db, "SELECT " SESSION_COLS " FROM sessions WHERE id = $1", 1, p, &r)) {
		db_fail(s, rs);
		return;
	}
	if (r.n == 0) {
		srv_rows_free(&r);
		fail(rs, 404, "no session %s", ids);
		return;
	}
	o = json_object_new_object();
	row_fields(o, &r, 0, session_cols, 8);
	srv_rows_free(&r);
	if (srv_db_rows(s->db, "SELECT id, disk, name, source, state, proxy, attempts, losses, "
			"started, ended, bytes_done, bytes_total, rate, bytes_read, bytes_stored, "
			"bytes_sent, point_id, message, run_seconds FROM tasks WHERE session_id = $1 "
			"ORDER BY disk", 1, p, &t)) {
		json_object_put(o);
		db_fail(s, rs);
		return;
	}
	a = json_object_new_array();
	for (int i = 0; i < t.n; i++) {
		struct json_object *x = json_object_new_object();
		long long bd = srv_row_int(&t, i, 10), bt = srv_row_int(&t, i, 11),
			  rt = srv_row_int(&t, i, 12);
		const char *st = srv_row(&t, i, 4);

		row_fields(x, &t, i, task_cols, 13);
		json_object_object_add(x, "eta_seconds", !strcmp(st, "running") && rt > 0 && bt >= bd
				       ? jint((bt - bd) / rt) : NULL);
		row_fields(x, &t, i, task_cols + 13, 6);
		json_object_array_add(a, x);
		done += (uint64_t)bd;
		total += (uint64_t)bt;
		if (!strcmp(st, "running"))
			rate += (uint64_t)rt;
	}
	srv_rows_free(&t);
	json_object_object_add(o, "tasks", a);
	{
		struct json_object *pg = json_object_new_object();

		json_object_object_add(pg, "bytes_done", jint((long long)done));
		json_object_object_add(pg, "bytes_total", jint((long long)total));
		json_object_object_add(pg, "rate", jint((long long)rate));
		json_object_object_add(pg, "eta_seconds", rate && total >= done
				       ? jint((long long)((total - done) / rate)) : NULL);
		json_object_object_add(o, "progress", pg);
	}
	reply(rs, 200, o);
}

static void sessions_log(struct srv *s, const char *ids, struct srv_resp *rs)
{
	static const struct col log_cols[] = { { "t", 0, COL_INT }, { "line", 1, COL_STR } };
	struct srv_rows r;
	const char *p[1] = { ids };
	long long id;
	struct json_object *a, *o;

	if (parse_id(ids, &id)) {
		fail(rs, 400, "session id '%s' is not a number", ids);
		return;
	}
	if (!count_of(s, "SELECT COUNT(*) FROM sessions WHERE id = $1", ids)) {
		fail(rs, 404, "no session %s", ids);
		return;
	}
	if (srv_db_rows(s->db, "SELECT t, line FROM session_log WHERE session_id = $1 ORDER BY id",
			1, p, &r)) {
		db_fail(s, rs);
		return;
	}
	a = rows_array(&r, log_cols, 2);
	srv_rows_free(&r);
	o = json_object_new_object();
	json_object_object_add(o, "session", jint(id));
	json_object_object_add(o, "log", a);
	reply(rs, 200, o);
}

/* ---- restore-point catalog ----------------------------------------- */
/* One point row straight into the reply (10,000 rows in well under
 * 100 ms; a json-c object per row costs several times more). */
static int point_row(int ncols, char **v, void *arg)
{
#define F(key, num) { key, sizeof(key) - 1, num }
	static const struct { const char *key; size_t len; int num; } fields[10] = {
		F("{\"id\":", 0), F(",\"repo\":", 0), F(",\"job\":", 0), F(",\"session\":", 1),
		F(",\"task\":", 1), F(",\"name\":", 0), F(",\"created\":", 1),
		F(",\"disk_size\":", 1), F(",\"bytes_read\":", 1), F(",\"bytes_stored\":", 1),
	};
#undef F
	struct pts_ctx *c = arg;
	struct srv_buf *b = c->b;

	if (ncols < 11)
		return 1;
	for (int i = 0; i < 11; i++)
		if (!v[i])
			v[i] = (char *)"0";
	if (c->n++)
		srv_buf_raw(b, ",", 1);
	for (int i = 0; i < 10; i++) {
		srv_buf_raw(b, fields[i].key, fields[i].len);
		if (fields[i].num)
			srv_buf_num(b, v[i]);
		else
			srv_buf_str(b, v[i]);
	}
	if (strcmp(v[10], "0"))
		srv_buf_raw(b, ",\"removed\":true}", 16);
	else
		srv_buf_raw(b, ",\"removed\":false}", 17);
	return 0;
}

static void points_list(struct srv *s, const struct srv_req *rq, struct srv_resp *rs)
{
	const char *job = rq->arg(rq->arg_cls, "job"), *repo = rq->arg(rq->arg_cls, "repo"),
		   *name = rq->arg(rq->arg_cls, "name"), *all = rq->arg(rq->arg_cls, "all");
	int limit = parse_limit(rq, 100000, 1000000, rs), np = 0;
	const char *p[3];
	char sql[600], where[300] = "";
	size_t w = 0;

	if (limit < 0)
		return;
#define COND(val, col) if (val) { p[np++] = val; w += (size_t)snprintf(where + w, sizeof(where) - w, "%s" col " = $%d", w ? " AND " : " WHERE ", np); }
	COND(job, "job");
	COND(repo, "repo");
	COND(name, "name");
#undef COND
	if (!all || strcmp(all, "1"))
		snprintf(where + w, sizeof(where) - w, "%sremoved = 0", w ? " AND " : " WHERE ");
	snprintf(sql, sizeof(sql), "SELECT id, repo, job, session_id, task_id, name, created, "
		 "disk_size, bytes_read, bytes_stored, removed FROM points%s ORDER BY created, id "
		 "LIMIT %d", where, limit);
	{
		char key[256];
		int k = snprintf(key, sizeof(key), "points %d %s", limit, where);

		/* WHERE names the parameters by number; their values complete
		 * the key (cache.c refuses a key that does not fit). */
		for (int i = 0; i < np && k > 0 && (size_t)k < sizeof(key); i++)
			k += snprintf(key + k, sizeof(key) - (size_t)k, "\n%s", p[i]);
		raw_listing(s, rs, "points", key, (size_t)k < sizeof(key), SRV_TBIT(SRV_T_POINTS),
			    sql, np, p, point_row);
	}
}

/* ---- proxy agents -------------------------------------------------- */
static void agent_poll(struct srv *s, const struct srv_req *rq, struct srv_resp *rs)
{
	static const char *const keys[] = { "proxy", "running", "want", "max_tasks", NULL };
	struct json_object *o = body_object(rq, rs, keys), *v, *task;
	const char *proxy;
	long long ids[1024], max;
	int n = 0, want = 1, status;
	char err[400];

	if (!o)
		return;
	if (!(proxy = get_s(o, "proxy", 64, 1, rs)) ||
	    get_i64(o, "max_tasks", 0, 1024, 0, &max, rs))
		goto out;
	if (json_object_object_get_ex(o, "want", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			fail(rs, 400, "field 'want' must be true or false");
			goto out;
		}
		want = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(o, "running", &v)) {
		size_t len;

		if (!json_object_is_type(v, json_type_array) ||
		    (len = json_object_array_length(v)) > 1024) {
			fail(rs, 400, "field 'running' must be an array of at most 1024 task ids");
			goto out;
		}
		for (size_t i = 0; i < len; i++) {
			struct json_object *x = json_object_array_get_idx(v, i);

			if (!json_object_is_type(x, json_type_int)) {
				fail(rs, 400, "field 'running' must hold task ids (numbers)");
				goto out;
			}
			ids[n++] = json_object_get_int64(x);
		}
	}
	task = srv_proxy_poll(s, proxy, ids, n, want, (int)max, &status, err, sizeof(err));
	if (status != 200) {
		fail(rs, status, "%s", err);
		goto out;
	}
	reply_one(rs, 200, "task", task);
out:
	json_object_put(o);
}

static void agent_task(struct srv *s, const char *ids, const char *what,
		       const struct srv_req *rq, struct srv_resp *rs)
{
	static const char *const pkeys[] = { "proxy", "done", "total", "seconds", NULL };
	static const char *const rkeys[] = { "proxy", "ok", "error", "point", NULL };
	static const char *const ptkeys[] = { "id", "name", "created", "disk_size", "bytes_read",
					      "bytes_stored", "bytes_sent", "seconds", NULL };
	int progress = !strcmp(what, "progress");
	struct json_object *o, *v;
	const char *proxy;
	long long tid;
	struct srv_rows r;
	char err[600];

	if (parse_id(ids, &tid)) {
		fail(rs, 400, "task id '%s' is not a number", ids);
		return;
	}
	if (!progress && strcmp(what, "result")) {
		fail(rs, 404, "unknown task call '%s' (progress, result)", what);
		return;
	}
	if (!(o = body_object(rq, rs, progress ? pkeys : rkeys)))
		return;
	if (!(proxy = get_s(o, "proxy", 64, 1, rs)))
		goto out;
	{
		const char *p[1] = { ids };

		if (srv_db_rows(s->db, "SELECT state, proxy, started FROM tasks WHERE id = $1", 1, p, &r)) {
			db_fail(s, rs);
			goto out;
		}
	}
	if (r.n == 0) {
		srv_rows_free(&r);
		fail(rs, 404, "no task %s", ids);
		goto out;
	}
	{
		struct srv_proxy_rt *rt = srv_proxy_rt(s, proxy, 0);

		if (rt) {
			rt->last_seen = srv_mono();
			rt->online = 1;
		}
	}
	if (progress) {
		long long done, total;
		double secs = 0;
		int mine = !strcmp(srv_row(&r, 0, 0), "running") && !strcmp(srv_row(&r, 0, 1), proxy);

		srv_rows_free(&r);
		if (get_i64(o, "done", 0, INT64_MAX, 0, &done, rs) ||
		    get_i64(o, "total", 0, INT64_MAX, 0, &total, rs))
			goto out;
		if (json_object_object_get_ex(o, "seconds", &v)) {
			if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
				fail(rs, 400, "field 'seconds' must be a number");
				goto out;
			}
			secs = json_object_get_double(v);
		}
		if (!mine) {
			fail(rs, 409, "task %s is not running on proxy %s (it was requeued or ended)", ids, proxy);
			goto out;
		}
		{
			char d[24], t[24], rt[24];
			const char *p[4] = { ids, d, t, rt };

			NUM(d, done);
			NUM(t, total);
			NUM(rt, secs > 0 ? (long long)((double)done / secs) : 0);
			srv_db_exec(s->db, "UPDATE tasks SET bytes_done = $2, bytes_total = $3, rate = $4 "
				    "WHERE id = $1", 4, p, NULL, NULL);
		}
		reply(rs, 200, json_object_new_object());
		goto out;
	}
	srv_rows_free(&r);
	{
		struct srv_point_rec pt;
		int ok;
		const char *msg;

		memset(&pt, 0, sizeof(pt));
		if (!json_object_object_get_ex(o, "ok", &v) || !json_object_is_type(v, json_type_boolean)) {
			fail(rs, 400, "field 'ok' (true or false) is required");
			goto out;
		}
		ok = json_object_get_boolean(v);
		if (!(msg = get_s(o, "error", 900, 0, rs)))
			goto out;
		if (ok) {
			struct json_object *po;
			const char *id, *nm;
			long long x;

			if (!json_object_object_get_ex(o, "point", &po) ||
			    !json_object_is_type(po, json_type_object)) {
				fail(rs, 400, "a successful result needs 'point' (an object)");
				goto out;
			}
			if (srv_json_check_keys(po, ptkeys, err, sizeof(err))) {
				fail(rs, 400, "point: %s", err);
				goto out;
			}
			if (!(id = get_s(po, "id", 16, 1, rs)) || !(nm = get_s(po, "name", 200, 1, rs)))
				goto out;
			if (strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16) {
				fail(rs, 400, "point id '%s' is not 16 hex digits", id);
				goto out;
			}
			memcpy(pt.id, id, 17);
			snprintf(pt.name, sizeof(pt.name), "%s", nm);
			if (get_i64(po, "created", 0, INT64_MAX, 0, &pt.created, rs) ||
			    get_i64(po, "disk_size", 0, INT64_MAX, 0, &pt.disk_size, rs) ||
			    get_i64(po, "bytes_read", 0, INT64_MAX, 0, &pt.bytes_read, rs) ||
			    get_i64(po, "bytes_stored", 0, INT64_MAX, 0, &pt.bytes_stored, rs) ||
			    get_i64(po, "bytes_sent", 0, INT64_MAX, 0, &pt.bytes_sent, rs) ||
			    get_i64(po, "seconds", 0, 100000000, 0, &x, rs))
				goto out;
			pt.seconds = (double)x / 1000.0; /* milliseconds on the wire */
		}
		srv_task_result(s, tid, proxy, ok, msg[0] ? msg : "failed (no reason given)",
				ok ? &pt : NULL);
		reply(rs, 200, json_object_new_object());
	}
out:
	json_object_put(o);
}

/* ---- routing ------------------------------------------------------- */
void srv_api_handle(struct srv *s, const struct srv_req *rq, struct srv_resp *rs)
{
	char path[512], *seg[8];
	int nseg = 0, get = !strcmp(rq->method, "GET"), post = !strcmp(rq->method, "POST"),
	    del = !strcmp(rq->method, "DELETE");
	char *save = NULL;

	rs->status = 500;
	rs->body = NULL;
	rs->content_type = "application/json";
	if (strlen(rq->path) >= sizeof(path)) {
		fail(rs, 414, "path too long");
		return;
	}
	memcpy(path, rq->path, strlen(rq->path) + 1);
	for (char *t = strtok_r(path, "/", &save); t && nseg < 8; t = strtok_r(NULL, "/", &save))
		seg[nseg++] = t;
	pthread_mutex_lock(&s->mu);
	if (nseg == 1 && !strcmp(seg[0], "metrics")) {
		if (get)
			srv_api_metrics(s, rs);
		else
			fail(rs, 405, "use GET");
		goto out;
	}
	if (nseg < 3 || strcmp(seg[0], "api") || strcmp(seg[1], "v1")) {
		fail(rs, 404, "no such endpoint %s (the API is under /api/v1, see docs/openapi.yaml)",
		     rq->path);
		goto out;
	}
#define IS(i, w) (nseg > (i) && !strcmp(seg[i], w))
	if (IS(2, "proxies")) {
		if (nseg == 3 && get)
			proxies_list(s, rs);
		else if (nseg == 3 && post)
			proxies_add(s, rq, rs);
		else if (nseg == 4 && del)
			proxies_remove(s, seg[3], rs);
		else
			fail(rs, 405, "proxies: GET or POST /api/v1/proxies, DELETE /api/v1/proxies/NAME");
	} else if (IS(2, "repos")) {
		if (nseg == 3 && get)
			repos_list(s, rs);
		else if (nseg == 3 && post)
			repos_add(s, rq, rs);
		else
			fail(rs, 405, "repos: GET or POST /api/v1/repos");
	} else if (IS(2, "jobs")) {
		if (nseg == 3 && get)
			jobs_list(s, rs);
		else if (nseg == 3 && post)
			jobs_create(s, rq, rs);
		else if (nseg == 4 && get)
			jobs_show(s, seg[3], rs);
		else if (nseg == 4 && del)
			jobs_delete(s, seg[3], rs);
		else if (nseg == 5 && post)
			jobs_action(s, seg[3], seg[4], rs);
		else
			fail(rs, 405, "jobs: GET/POST /api/v1/jobs, GET/DELETE /api/v1/jobs/NAME, "
			     "POST /api/v1/jobs/NAME/run|enable|disable");
	} else if (IS(2, "sessions") && get) {
		if (nseg == 3)
			sessions_list(s, rq, rs);
		else if (nseg == 4)
			sessions_show(s, seg[3], rs);
		else if (nseg == 5 && IS(4, "log"))
			sessions_log(s, seg[3], rs);
		else
			fail(rs, 404, "sessions: /api/v1/sessions[/ID[/log]]");
	} else if (IS(2, "points") && get && nseg == 3) {
		points_list(s, rq, rs);
	} else if (IS(2, "agent") && post) {
		if (nseg == 4 && IS(3, "poll"))
			agent_poll(s, rq, rs);
		else if (nseg == 6 && IS(3, "tasks"))
			agent_task(s, seg[4], seg[5], rq, rs);
		else
			fail(rs, 404, "agent: POST /api/v1/agent/poll, /api/v1/agent/tasks/ID/progress|result");
	} else {
		fail(rs, 404, "no such endpoint %s %s (see docs/openapi.yaml)", rq->method, rq->path);
	}
#undef IS
out:
	pthread_mutex_unlock(&s->mu);
}
