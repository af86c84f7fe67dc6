/* srv.h - what the backup server's files share: configuration, the
 * catalog database interface (SQLite or PostgreSQL behind one vtable),
 * the cron parser, the server state and the REST client the CLI and the
 * proxy agent use.  See docs/server.md. */
#ifndef FERRY_SRV_H
#define FERRY_SRV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

/* ---- configuration (conf.c) ------------------------------------------ */
struct srv_conf {
	char listen[256];      /* HOST:PORT */
	char tls_cert[1024];   /* PEM files; both empty: plain HTTP (loopback only) */
	char tls_key[1024];
	char database[1024];   /* sqlite:PATH, PATH, or postgresql://... */
	char state_dir[1024];
	char log[16];          /* "stderr" or "syslog" */
	int proxy_timeout;     /* seconds without a heartbeat: proxy is gone */
	int max_body;          /* bytes of a request body */
	int cache_off;         /* catalog-cache = off */
};
/* Read FILE into C (defaults first).  On error, ERR says file:line why. */
int srv_conf_load(const char *file, struct srv_conf *c, char *err, size_t errlen);
/* The database URL C names (state_dir/catalog.db when none is given). */
void srv_conf_db_url(const struct srv_conf *c, char *out, size_t len);

/* ---- catalog database (db.c, db_pg.c) -------------------------------- */
struct srv_db;
/* One result row: NCOLS text values, NULL for SQL NULL. */
typedef int (*srv_row_cb)(int ncols, char **vals, void *arg);
struct srv_db_ops {
	const char *name;
	/* Run SQL with N text parameters $1..$N; CB per row (may be NULL). */
	int (*exec)(struct srv_db *db, const char *sql, int n,
		    const char *const *params, srv_row_cb cb, void *arg);
	void (*close)(struct srv_db *db);
};
/* Catalog tables, for the write generations the listing cache checks. */
enum { SRV_T_TOKENS, SRV_T_PROXIES, SRV_T_REPOS, SRV_T_JOBS, SRV_T_SESSIONS,
       SRV_T_TASKS, SRV_T_POINTS, SRV_T_SESSION_LOG, SRV_NTABLES };
#define SRV_TBIT(t) (1u << (t))
struct srv_db {
	const struct srv_db_ops *ops;
	void *h;
	char err[512];
	/* Bumped by srv_db_exec for every statement other than a SELECT
	 * that names the table (ROLLBACK: all of them). */
	unsigned long long wgen[SRV_NTABLES];
};
/* "sqlite:PATH", a plain PATH, or "postgresql://..." / "postgres://...". */
int srv_db_open(const char *url, struct srv_db **out, char *err, size_t errlen);
int srv_db_sqlite_open(const char *path, struct srv_db **out, char *err, size_t errlen);
int srv_db_pg_open(const char *url, struct srv_db **out, char *err, size_t errlen);
/* Apply every migration not yet applied (in one transaction each). */
int srv_db_migrate(struct srv_db *db, int *version);
int srv_db_exec(struct srv_db *db, const char *sql, int n,
		const char *const *params, srv_row_cb cb, void *arg);
/* First column of the first row as an integer (DEF when no row). */
int srv_db_int(struct srv_db *db, const char *sql, int n,
	       const char *const *params, long long def, long long *out);
void srv_db_close(struct srv_db *db);
/* Every row of a query, copied (NULL values become ""). */
struct srv_rows {
	int n, ncols, cap;
	char **v;             /* n * ncols strings */
};
int srv_db_rows(struct srv_db *db, const char *sql, int n,
		const char *const *params, struct srv_rows *out);
const char *srv_row(const struct srv_rows *r, int i, int col);
long long srv_row_int(const struct srv_rows *r, int i, int col);
void srv_rows_free(struct srv_rows *r);

/* ---- listing cache (cache.c) ----------------------------------------- */
/* A few rendered GET replies (the full points and jobs listings), kept
 * with the write generations of the tables they read and dropped as soon
 * as any of those tables is written through srv_db_exec.  The server is
 * the only writer of its catalog (docs/server.md). */
#define SRV_CACHE_SLOTS 8
#define SRV_CACHE_MAX_BYTES (64u << 20)
struct srv_cache_ent {
	char key[256];
	char *body;
	size_t len;
	unsigned tables;
	unsigned long long gen[SRV_NTABLES];
	unsigned long long used;
};
struct srv;
struct srv_resp;
/* Under s->mu.  1 and RS filled (status 200, a copy) on a hit. */
int srv_cache_get(struct srv *s, const char *key, unsigned tables, struct srv_resp *rs);
void srv_cache_put(struct srv *s, const char *key, unsigned tables, const char *body,
		   size_t len);
void srv_cache_clear(struct srv *s);

/* ---- cron expressions (cron.c) --------------------------------------- */
struct srv_cron {
	uint64_t minute;   /* bit per value */
	uint32_t hour;
	uint32_t dom;      /* bits 1..31 */
	uint16_t month;    /* bits 1..12 */
	uint8_t dow;       /* bits 0..6, Sunday 0 */
	int dom_star, dow_star;
};
/* "m h dom mon dow" (numbers, names, *, lists, ranges, /steps) or
 * @hourly @daily @weekly @monthly @yearly @annually. */
int srv_cron_parse(const char *s, struct srv_cron *c, char *err, size_t errlen);
/* The first matching minute strictly after T (local time); 0: none
 * within 5 years. */
time_t srv_cron_next(const struct srv_cron *c, time_t t);

/* ---- job specification (jobspec.c) ----------------------------------- */
#define SRV_MAX_DISKS 64
#define FERRY_ID_LEN_SRV 16
struct srv_job {
	char name[65];
	int ndisks;
	char disk_name[SRV_MAX_DISKS][201];
	char disk_source[SRV_MAX_DISKS][1024];
	char repo[65];
	uint64_t block_size;      /* 0: the repository's */
	char compression[32];
	char bitmap[201];
	char schedule[256];       /* "", a cron expression, or "after JOB" */
	char after[65];           /* JOB of "after JOB" */
	int retries, retry_wait;
	int keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly,
		keep_yearly;
	char limit_rate[32];
	char pre_script[1024], post_script[1024];
	int threads;
	int enabled;
};
/* Check a job object (unknown fields, types, ranges, cron) into J. */
int srv_job_from_json(struct json_object *o, struct srv_job *j, char *err,
		      size_t errlen);
struct json_object *srv_job_to_json(const struct srv_job *j);
/* Parse a request body: a JSON object, or NULL with ERR set. */
struct json_object *srv_json_parse(const char *buf, size_t len, char *err,
				   size_t errlen);
/* 0 when every key of O is in KEYS (NULL-terminated); else ERR names it. */
int srv_json_check_keys(struct json_object *o, const char *const *keys,
			char *err, size_t errlen);
int srv_name_valid(const char *s);

/* ---- the server (server.c, api.c, sched.c, http.c) ------------------- */
struct srv_proxy_rt {
	char name[65];
	double last_seen;    /* monotonic seconds; 0: never */
	int online;
	int peak;            /* most tasks seen running at once */
};
struct srv {
	pthread_mutex_t mu;
	struct srv_conf conf;
	char conf_path[1024];
	struct srv_db *db;
	double time_scale;
	time_t t0;           /* real time at start */
	double m0;           /* monotonic time at start */
	struct srv_proxy_rt *proxies;
	int nproxies, cproxies;
	long long next_session, next_task, next_log, next_token;
	/* counters for /metrics */
	uint64_t http_requests, http_unauthorized, http_bad, http_forbidden;
	struct srv_cache_ent cache[SRV_CACHE_SLOTS];
	unsigned long long cache_tick, cache_hits, cache_misses;
	int use_syslog;
	volatile int stop, reload;
};
extern struct srv *srv_g;

void srv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
time_t srv_now(struct srv *s);   /* server clock (scaled for tests) */
double srv_mono(void);           /* real monotonic seconds */

struct srv_http;
int srv_http_start(struct srv *s, struct srv_http **out, char *err, size_t errlen);
void srv_http_stop(struct srv_http *h);
int srv_http_port(struct srv_http *h);

/* Handle one authenticated request; *STATUS and a JSON (or text) body. */
struct srv_req {
	const char *method, *path;
	const char *(*arg)(void *cls, const char *key);
	void *arg_cls;
	const char *body;
	size_t body_len;
};
struct srv_resp {
	int status;
	char *body;            /* malloc'd */
	const char *content_type;
};
void srv_api_handle(struct srv *s, const struct srv_req *rq, struct srv_resp *rs);
void srv_api_metrics(struct srv *s, struct srv_resp *rs);   /* metrics.c */
/* Token scopes, each allowing what the one before allows and more:
 * read (GET), operate (run, enable and disable jobs; the proxy agents'
 * endpoints), admin (everything: inventory, jobs, tokens). */
enum { SRV_SCOPE_NONE, SRV_SCOPE_READ, SRV_SCOPE_OPERATE, SRV_SCOPE_ADMIN };
const char *srv_scope_name(int scope);
int srv_scope_parse(const char *s);   /* SRV_SCOPE_NONE when unknown */
/* The scope of the token (by its SHA-256), SRV_SCOPE_NONE when no token
 * has that hash; NAME (may be NULL) gets the token's label. */
int srv_token_check(struct srv *s, const char *token, char *name, size_t namelen);
/* The scope METHOD PATH needs (api.c). */
int srv_api_scope(const char *method, const char *path);
void srv_sha256_hex(const char *s, char out[65]);

/* sched.c: under s->mu */
void srv_sched_tick(struct srv *s);
int srv_session_start(struct srv *s, const char *job, const char *trigger,
		      time_t scheduled, long long *sid, char *err, size_t errlen);
void srv_session_log(struct srv *s, long long sid, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
struct srv_point_rec {
	char id[FERRY_ID_LEN_SRV + 1];
	char name[201];
	long long created, disk_size, bytes_read, bytes_stored, bytes_sent;
	double seconds;
};
/* A proxy's report on task TID: OK with POINT, or failed with MSG. */
void srv_task_result(struct srv *s, long long tid, const char *proxy, int ok,
		     const char *msg, const struct srv_point_rec *point);
/* A proxy polls: heartbeat, reconcile the tasks it runs (IDS), and give
 * it a task when WANT and it is the least loaded; NULL when none. */
struct json_object *srv_proxy_poll(struct srv *s, const char *proxy,
				   const long long *ids, int n, int want,
				   int max_tasks, int *status, char *err,
				   size_t errlen);
void srv_recover_on_start(struct srv *s);
struct srv_proxy_rt *srv_proxy_rt(struct srv *s, const char *name, int create);
void srv_job_schedule_next(struct srv *s, const struct srv_job *j);

/* ---- output buffer (jsonw.c) ----------------------------------------- */
struct srv_buf {
	char *p;
	size_t len, cap;
	int oom;
};
void srv_buf_raw(struct srv_buf *b, const char *s, size_t n);
void srv_buf_printf(struct srv_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* V (text from the catalog) as a JSON integer; "0" unless it is one. */
void srv_buf_num(struct srv_buf *b, const char *v);
/* S as a JSON string (quoted, escaped; bytes >= 0x80 pass through). */
void srv_buf_str(struct srv_buf *b, const char *s);

/* ---- REST client for the CLI and the proxy agent (client.c) ---------- */
struct srv_client {
	const char *url;     /* https://HOST:PORT */
	const char *token;
	const char *cacert;  /* PEM CA of the server's certificate */
	int timeout;         /* seconds */
};
/* METHOD PATH with BODY (NULL: none); *STATUS and the parsed JSON reply
 * (NULL when not JSON).  Returns 0, or -1 when no reply came (ERR). */
int srv_client_call(const struct srv_client *c, const char *method,
		    const char *path, const char *body, long *status,
		    struct json_object **reply, char **raw, char *err,
		    size_t errlen);

#endif
