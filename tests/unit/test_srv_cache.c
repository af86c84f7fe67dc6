/* test_srv_cache.c - the listing cache (src/server/cache.c) and the write
 * generations it relies on (srv_db_exec in src/server/db.c) on a real
 * in-memory SQLite catalog with every migration, and the token scope each
 * request needs (src/server/scope.c). */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../src/server/db.c"
#include "../../src/server/db_pg.c"
#include "../../src/server/pq_dl.c"
#include "../../src/server/cache.c"
#include "../../src/server/scope.c"

static unsigned long long gen(struct srv_db *db, int t)
{
	return db->wgen[t];
}

static int hit(struct srv *s, const char *key, unsigned tables, const char *want)
{
	struct srv_resp rs = { 0, NULL, NULL };
	int ok;

	if (!srv_cache_get(s, key, tables, &rs))
		return 0;
	ok = rs.status == 200 && rs.body && !strcmp(rs.body, want);
	free(rs.body);
	return ok ? 1 : -1;
}

int main(void)
{
	struct srv s;
	struct srv_db *db = NULL;
	char err[600];
	int ver = 0;
	long long n = 0;
	unsigned long long before[SRV_NTABLES];
	const unsigned PTS = SRV_TBIT(SRV_T_POINTS);
	const unsigned JOBS = SRV_TBIT(SRV_T_JOBS) | SRV_TBIT(SRV_T_SESSIONS);

	memset(&s, 0, sizeof(s));
	CHECK(srv_db_open("sqlite::memory:", &db, err, sizeof(err)) == 0);
	if (!db)
		return unit_done();
	s.db = db;
	CHECK(srv_db_migrate(db, &ver) == 0);
	CHECK(ver == 3);
	/* Migration 3: a token made before scopes is admin. */
	CHECK(srv_db_exec(db, "INSERT INTO tokens (id, name, hash, created) VALUES "
			  "(1, 'old', 'h1', 0)", 0, NULL, NULL, NULL) == 0);
	CHECK(srv_db_int(db, "SELECT COUNT(*) FROM tokens WHERE scope = 'admin'", 0, NULL, 0,
			 &n) == 0 && n == 1);

	/* Write generations: SELECT counts nothing; a write counts the
	 * tables it names, as whole words; ROLLBACK counts all. */
	memcpy(before, db->wgen, sizeof(before));
	CHECK(srv_db_exec(db, "SELECT * FROM points, jobs", 0, NULL, NULL, NULL) == 0);
	CHECK(srv_db_exec(db, "  select 1", 0, NULL, NULL, NULL) == 0);
	CHECK(srv_db_exec(db, "BEGIN", 0, NULL, NULL, NULL) == 0);
	CHECK(srv_db_exec(db, "COMMIT", 0, NULL, NULL, NULL) == 0);
	CHECK(memcmp(before, db->wgen, sizeof(before)) == 0);
	CHECK(srv_db_exec(db, "INSERT INTO session_log (id, session_id, t, line) VALUES "
			  "(1, 1, 0, 'points')", 0, NULL, NULL, NULL) == 0);
	CHECK(gen(db, SRV_T_SESSION_LOG) == before[SRV_T_SESSION_LOG] + 1);
	CHECK(gen(db, SRV_T_SESSIONS) == before[SRV_T_SESSIONS]);
	/* A literal naming a table is an over-count: a miss, never stale. */
	CHECK(gen(db, SRV_T_POINTS) == before[SRV_T_POINTS] + 1);
	CHECK(srv_db_exec(db, "UPDATE tasks SET state = 'x' WHERE session_id = 1", 0, NULL,
			  NULL, NULL) == 0);
	CHECK(gen(db, SRV_T_TASKS) == before[SRV_T_TASKS] + 1);
	CHECK(gen(db, SRV_T_SESSIONS) == before[SRV_T_SESSIONS]);
	memcpy(before, db->wgen, sizeof(before));
	CHECK(srv_db_exec(db, "ROLLBACK", 0, NULL, NULL, NULL) != 0); /* no transaction */
	for (int t = 0; t < SRV_NTABLES; t++)
		CHECK(db->wgen[t] == before[t] + 1);

	/* The cache: a hit is the same bytes; a write to another table
	 * keeps it; a write to its table drops it. */
	CHECK(hit(&s, "points 100000 WHERE removed = 0", PTS, "x") == 0);
	srv_cache_put(&s, "points 100000 WHERE removed = 0", PTS, "{\"points\":[1]}", 14);
	CHECK(hit(&s, "points 100000 WHERE removed = 0", PTS, "{\"points\":[1]}") == 1);
	CHECK(hit(&s, "points 100000 WHERE removed = 0", JOBS, "{\"points\":[1]}") == 0);
	CHECK(hit(&s, "points 10 WHERE removed = 0", PTS, "{\"points\":[1]}") == 0);
	srv_cache_put(&s, "jobs", JOBS, "{\"jobs\":[]}", 11);
	CHECK(srv_db_exec(db, "UPDATE jobs SET enabled = 0", 0, NULL, NULL, NULL) == 0);
	CHECK(hit(&s, "jobs", JOBS, "{\"jobs\":[]}") == 0);
	CHECK(hit(&s, "points 100000 WHERE removed = 0", PTS, "{\"points\":[1]}") == 1);
	CHECK(srv_db_exec(db, "UPDATE points SET removed = 1 WHERE id = 'a'", 0, NULL, NULL,
			  NULL) == 0);
	CHECK(hit(&s, "points 100000 WHERE removed = 0", PTS, "{\"points\":[1]}") == 0);
	/* Replacing a key keeps one entry; more keys than slots evict the
	 * least recently used; an entry over the byte cap is not kept. */
	for (int i = 0; i < SRV_CACHE_SLOTS + 3; i++) {
		char key[32], body[32];

		snprintf(key, sizeof(key), "k%d", i);
		snprintf(body, sizeof(body), "b%d", i);
		srv_cache_put(&s, key, PTS, body, strlen(body));
		srv_cache_put(&s, key, PTS, body, strlen(body));
	}
	CHECK(hit(&s, "k0", PTS, "b0") == 0);
	CHECK(hit(&s, "k10", PTS, "b10") == 1);
	CHECK(hit(&s, "k3", PTS, "b3") == 1);
	srv_cache_put(&s, "huge", PTS, "x", (size_t)SRV_CACHE_MAX_BYTES + 1);
	CHECK(hit(&s, "huge", PTS, "x") == 0);
	s.conf.cache_off = 1;
	CHECK(hit(&s, "k10", PTS, "b10") == 0);
	s.conf.cache_off = 0;
	srv_cache_clear(&s);
	CHECK(hit(&s, "k10", PTS, "b10") == 0);

	/* Scopes. */
	CHECK(srv_scope_parse("read") == SRV_SCOPE_READ);
	CHECK(srv_scope_parse("operate") == SRV_SCOPE_OPERATE);
	CHECK(srv_scope_parse("admin") == SRV_SCOPE_ADMIN);
	CHECK(srv_scope_parse("root") == SRV_SCOPE_NONE);
	CHECK(srv_scope_parse("") == SRV_SCOPE_NONE);
	CHECK(!strcmp(srv_scope_name(SRV_SCOPE_OPERATE), "operate"));
	CHECK(!strcmp(srv_scope_name(99), "none"));
	CHECK(srv_api_scope("GET", "/api/v1/points") == SRV_SCOPE_READ);
	CHECK(srv_api_scope("GET", "/metrics") == SRV_SCOPE_READ);
	CHECK(srv_api_scope("POST", "/api/v1/jobs") == SRV_SCOPE_ADMIN);
	CHECK(srv_api_scope("POST", "/api/v1/jobs/j/run") == SRV_SCOPE_OPERATE);
	CHECK(srv_api_scope("POST", "//api/v1//jobs/j/disable/") == SRV_SCOPE_OPERATE);
	CHECK(srv_api_scope("POST", "/api/v1/jobs/j/delete") == SRV_SCOPE_ADMIN);
	CHECK(srv_api_scope("POST", "/api/v1/jobs/j/run/x") == SRV_SCOPE_ADMIN);
	CHECK(srv_api_scope("POST", "/api/v1/agent/poll") == SRV_SCOPE_OPERATE);
	CHECK(srv_api_scope("POST", "/api/v1/agent/tasks/7/result") == SRV_SCOPE_OPERATE);
	CHECK(srv_api_scope("POST", "/api/v2/agent/poll") == SRV_SCOPE_ADMIN);
	CHECK(srv_api_scope("DELETE", "/api/v1/jobs/j") == SRV_SCOPE_ADMIN);
	CHECK(srv_api_scope("PUT", "/api/v1/jobs/j/run") == SRV_SCOPE_ADMIN);
	CHECK(srv_api_scope("POST", "") == SRV_SCOPE_ADMIN);
	srv_db_close(db);
	return unit_done();
}
