/* db.c - the catalog database behind one small interface (text
 * parameters $1..$N in, text rows out), the SQLite backend, and the
 * versioned schema migrations both backends share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "srv.h"

/* ---- migrations: append only; a released step never changes -------- */
static const char *const migration1[] = {
	"CREATE TABLE tokens (id BIGINT PRIMARY KEY, name TEXT NOT NULL, "
	"hash TEXT NOT NULL UNIQUE, created BIGINT NOT NULL)",
	"CREATE TABLE proxies (name TEXT PRIMARY KEY, address TEXT NOT NULL, "
	"max_tasks INTEGER NOT NULL, created BIGINT NOT NULL)",
	"CREATE TABLE repos (name TEXT PRIMARY KEY, url TEXT NOT NULL, "
	"path TEXT NOT NULL, capacity BIGINT NOT NULL, created BIGINT NOT NULL)",
	"CREATE TABLE jobs (name TEXT PRIMARY KEY, spec TEXT NOT NULL, "
	"repo TEXT NOT NULL, cron TEXT NOT NULL, after_job TEXT NOT NULL, "
	"enabled INTEGER NOT NULL, next_run BIGINT NOT NULL, created BIGINT NOT NULL)",
	"CREATE INDEX jobs_after ON jobs (after_job)",
	"CREATE TABLE sessions (id BIGINT PRIMARY KEY, job TEXT NOT NULL, "
	"trigger_by TEXT NOT NULL, state TEXT NOT NULL, spec TEXT NOT NULL, "
	"created BIGINT NOT NULL, scheduled BIGINT NOT NULL, ended BIGINT NOT NULL, "
	"message TEXT NOT NULL)",
	"CREATE INDEX sessions_job ON sessions (job, id)",
	"CREATE INDEX sessions_state ON sessions (state)",
	"CREATE TABLE tasks (id BIGINT PRIMARY KEY, session_id BIGINT NOT NULL, "
	"disk INTEGER NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL, "
	"state TEXT NOT NULL, proxy TEXT NOT NULL, last_proxy TEXT NOT NULL, "
	"attempts INTEGER NOT NULL, losses INTEGER NOT NULL, not_before BIGINT NOT NULL, "
	"started BIGINT NOT NULL, ended BIGINT NOT NULL, run_seconds DOUBLE PRECISION NOT NULL, "
	"bytes_done BIGINT NOT NULL, bytes_total BIGINT NOT NULL, rate BIGINT NOT NULL, "
	"bytes_read BIGINT NOT NULL, bytes_stored BIGINT NOT NULL, bytes_sent BIGINT NOT NULL, "
	"point_id TEXT NOT NULL, message TEXT NOT NULL)",
	"CREATE INDEX tasks_session ON tasks (session_id)",
	"CREATE INDEX tasks_state ON tasks (state, id)",
	"CREATE TABLE points (id TEXT NOT NULL, repo TEXT NOT NULL, job TEXT NOT NULL, "
	"session_id BIGINT NOT NULL, task_id BIGINT NOT NULL, name TEXT NOT NULL, "
	"created BIGINT NOT NULL, disk_size BIGINT NOT NULL, bytes_read BIGINT NOT NULL, "
	"bytes_stored BIGINT NOT NULL, removed INTEGER NOT NULL, PRIMARY KEY (repo, id))",
	"CREATE INDEX points_job ON points (job, created)",
	"CREATE INDEX points_created ON points (created)",
	"CREATE TABLE session_log (id BIGINT PRIMARY KEY, session_id BIGINT NOT NULL, "
	"t BIGINT NOT NULL, line TEXT NOT NULL)",
	"CREATE INDEX session_log_session ON session_log (session_id, id)",
	NULL,
};
/* 2: listing one disk's points (ferry catalog --name) without a scan. */
static const char *const migration2[] = {
	"CREATE INDEX points_name ON points (name, created)",
	NULL,
};
/* 3: token scopes (read, operate, admin); tokens made before are admin,
 * which is what every token could do then. */
static const char *const migration3[] = {
	"ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin'",
	NULL,
};
static const char *const *const migrations[] = { migration1, migration2, migration3 };

/* ---- write generations (the listing cache, cache.c) ----------------- */
static const char *const table_names[SRV_NTABLES] = {
	[SRV_T_TOKENS] = "tokens", [SRV_T_PROXIES] = "proxies", [SRV_T_REPOS] = "repos",
	[SRV_T_JOBS] = "jobs", [SRV_T_SESSIONS] = "sessions", [SRV_T_TASKS] = "tasks",
	[SRV_T_POINTS] = "points", [SRV_T_SESSION_LOG] = "session_log",
};

static int word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

static int has_word(const char *sql, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = sql; (p = strstr(p, w)); p += n)
		if ((p == sql || !word_char(p[-1])) && !word_char(p[n]))
			return 1;
	return 0;
}

/* Every statement but a SELECT counts as a write of each table it names
 * (an over-count only costs a cache miss); ROLLBACK may undo anything. */
static void note_writes(struct srv_db *db, const char *sql)
{
	while (*sql == ' ' || *sql == '\t' || *sql == '\n')
		sql++;
	if (!strncasecmp(sql, "SELECT", 6) || !strncasecmp(sql, "BEGIN", 5) ||
	    !strncasecmp(sql, "COMMIT", 6))
		return;
	for (int t = 0; t < SRV_NTABLES; t++)
		if (!strncasecmp(sql, "ROLLBACK", 8) || has_word(sql, table_names[t]))
			db->wgen[t]++;
}

int srv_db_exec(struct srv_db *db, const char *sql, int n,
		const char *const *params, srv_row_cb cb, void *arg)
{
	note_writes(db, sql);
	return db->ops->exec(db, sql, n, params, cb, arg);
}

struct int_ctx {
	long long v;
	int got;
};

static int int_row(int ncols, char **vals, void *arg)
{
	struct int_ctx *c = arg;

	if (!c->got && ncols > 0 && vals[0])
		c->v = strtoll(vals[0], NULL, 10);
	c->got = 1;
	return 0;
}

int srv_db_int(struct srv_db *db, const char *sql, int n,
	       const char *const *params, long long def, long long *out)
{
	struct int_ctx c = { def, 0 };
	int r = srv_db_exec(db, sql, n, params, int_row, &c);

	*out = c.v;
	return r;
}

int srv_db_migrate(struct srv_db *db, int *version)
{
	long long v = 0;
	int nmig = (int)(sizeof(migrations) / sizeof(migrations[0]));

	if (srv_db_exec(db, "CREATE TABLE IF NOT EXISTS schema_version "
			"(version INTEGER NOT NULL)", 0, NULL, NULL, NULL))
		return -1;
	if (srv_db_int(db, "SELECT MAX(version) FROM schema_version", 0, NULL, 0, &v))
		return -1;
	if (v > nmig) {
		snprintf(db->err, sizeof(db->err),
			 "the catalog has schema version %lld, this ferry knows up to %d: "
			 "use a newer ferry", v, nmig);
		return -1;
	}
	for (int m = (int)v; m < nmig; m++) {
		char ver[16];
		const char *p[1] = { ver };

		if (srv_db_exec(db, "BEGIN", 0, NULL, NULL, NULL))
			return -1;
		for (const char *const *s = migrations[m]; *s; s++)
			if (srv_db_exec(db, *s, 0, NULL, NULL, NULL))
				goto fail;
		snprintf(ver, sizeof(ver), "%d", m + 1);
		if (srv_db_exec(db, "INSERT INTO schema_version (version) VALUES ($1)",
				1, p, NULL, NULL) ||
		    srv_db_exec(db, "COMMIT", 0, NULL, NULL, NULL))
			goto fail;
		continue;
fail:
		{
			char keep[512];

			memcpy(keep, db->err, sizeof(keep));
			srv_db_exec(db, "ROLLBACK", 0, NULL, NULL, NULL);
			snprintf(db->err, sizeof(db->err), "migration %d: %.480s", m + 1, keep);
		}
		return -1;
	}
	if (version)
		*version = nmig;
	return 0;
}

/* ---- SQLite ------------------------------------------------------- */
static int sq_exec(struct srv_db *db, const char *sql, int n,
		   const char *const *params, srv_row_cb cb, void *arg)
{
	sqlite3 *h = db->h;
	sqlite3_stmt *st = NULL;
	int rc, np, ret = 0;
	char *vals[64];

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(db->err, sizeof(db->err), "%s", sqlite3_errmsg(h));
		return -1;
	}
	np = sqlite3_bind_parameter_count(st);
	for (int i = 1; i <= np; i++) {
		const char *nm = sqlite3_bind_parameter_name(st, i);
		long k = nm && nm[0] == '$' ? strtol(nm + 1, NULL, 10) : 0;

		if (k < 1 || k > n) {
			snprintf(db->err, sizeof(db->err), "parameter %s not given", nm ? nm : "?");
			sqlite3_finalize(st);
			return -1;
		}
		if (params[k - 1])
			sqlite3_bind_text(st, i, params[k - 1], -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(st, i);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int nc = sqlite3_column_count(st);

		if (nc > 64)
			nc = 64;
		for (int i = 0; i < nc; i++)
			vals[i] = (char *)sqlite3_column_text(st, i);
		if (cb && !ret && cb(nc, vals, arg))
			ret = 1;
	}
	if (rc != SQLITE_DONE) {
		snprintf(db->err, sizeof(db->err), "%s", sqlite3_errmsg(h));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

static void sq_close(struct srv_db *db)
{
	sqlite3_close(db->h);
}

static const struct srv_db_ops sqlite_ops = { "sqlite", sq_exec, sq_close };

int srv_db_sqlite_open(const char *path, struct srv_db **out, char *err, size_t errlen)
{
	struct srv_db *db = calloc(1, sizeof(*db));
	sqlite3 *h = NULL;

	if (!db) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open catalog %s: %s", path,
			 h ? sqlite3_errmsg(h) : "out of memory");
		sqlite3_close(h);
		free(db);
		return -1;
	}
	sqlite3_busy_timeout(h, 10000);
	db->ops = &sqlite_ops;
	db->h = h;
	if (sq_exec(db, "PRAGMA journal_mode=WAL", 0, NULL, NULL, NULL) ||
	    sq_exec(db, "PRAGMA synchronous=FULL", 0, NULL, NULL, NULL)) {
		snprintf(err, errlen, "catalog %s: %s", path, db->err);
		srv_db_close(db);
		return -1;
	}
	*out = db;
	return 0;
}

int srv_db_open(const char *url, struct srv_db **out, char *err, size_t errlen)
{
	if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11))
		return srv_db_pg_open(url, out, err, errlen);
	if (!strncmp(url, "sqlite:", 7))
		url += 7;
	if (!*url) {
		snprintf(err, errlen, "empty database path");
		return -1;
	}
	return srv_db_sqlite_open(url, out, err, errlen);
}

void srv_db_close(struct srv_db *db)
{
	if (!db)
		return;
	db->ops->close(db);
	free(db);
}

static int rows_cb(int ncols, char **vals, void *arg)
{
	struct srv_rows *r = arg;

	if (r->n == 0 && r->cap == 0)
		r->ncols = ncols;
	if (r->n >= r->cap) {
		int nc = r->cap ? r->cap * 2 : 16;
		char **nv = realloc(r->v, (size_t)nc * (size_t)r->ncols * sizeof(char *));

		if (!nv)
			return 1;
		r->v = nv;
		r->cap = nc;
	}
	for (int i = 0; i < r->ncols; i++) {
		char *c = strdup(i < ncols && vals[i] ? vals[i] : "");

		if (!c)
			return 1;
		r->v[r->n * r->ncols + i] = c;
	}
	r->n++;
	return 0;
}

int srv_db_rows(struct srv_db *db, const char *sql, int n,
		const char *const *params, struct srv_rows *out)
{
	memset(out, 0, sizeof(*out));
	if (srv_db_exec(db, sql, n, params, rows_cb, out)) {
		srv_rows_free(out);
		return -1;
	}
	return 0;
}

const char *srv_row(const struct srv_rows *r, int i, int col)
{
	if (i < 0 || i >= r->n || col < 0 || col >= r->ncols)
		return "";
	return r->v[i * r->ncols + col];
}

long long srv_row_int(const struct srv_rows *r, int i, int col)
{
	return strtoll(srv_row(r, i, col), NULL, 10);
}

void srv_rows_free(struct srv_rows *r)
{
	for (int i = 0; i < r->n * r->ncols; i++)
		free(r->v[i]);
	free(r->v);
	memset(r, 0, sizeof(*r));
}
