/* metrics.c - GET /metrics in Prometheus text format: sessions and tasks
 * by state, bytes read, stored and sent, task durations, repository
 * points, usage and capacity, proxies online, API request counters.
 * The catalog's part goes through the listing cache (cache.c): a
 * scrape of an unchanged catalog (10,000 points: a count and a sum over
 * the points table per repository) does not query it again; the live
 * counters after it are always current.  Called with s->mu held. */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

/* The part read from the catalog's tables. */
static int catalog_part(struct srv *s, struct srv_buf *b)
{
	struct srv_rows r;
	int bad = 0;

	srv_buf_printf(b, "# HELP ferry_sessions Backup sessions by state.\n# TYPE ferry_sessions gauge\n");
	if (!srv_db_rows(s->db, "SELECT state, COUNT(*) FROM sessions GROUP BY state ORDER BY state",
			 0, NULL, &r)) {
		for (int i = 0; i < r.n; i++)
			srv_buf_printf(b, "ferry_sessions{state=\"%s\"} %lld\n", srv_row(&r, i, 0),
				srv_row_int(&r, i, 1));
		srv_rows_free(&r);
	} else {
		bad = 1;
	}
	srv_buf_printf(b, "# HELP ferry_tasks Tasks by state.\n# TYPE ferry_tasks gauge\n");
	if (!srv_db_rows(s->db, "SELECT state, COUNT(*) FROM tasks GROUP BY state ORDER BY state",
			 0, NULL, &r)) {
		for (int i = 0; i < r.n; i++)
			srv_buf_printf(b, "ferry_tasks{state=\"%s\"} %lld\n", srv_row(&r, i, 0),
				srv_row_int(&r, i, 1));
		srv_rows_free(&r);
	} else {
		bad = 1;
	}
	if (!srv_db_rows(s->db, "SELECT COALESCE(SUM(bytes_read), 0), COALESCE(SUM(bytes_stored), 0), "
			 "COALESCE(SUM(bytes_sent), 0), COUNT(*), COALESCE(SUM(run_seconds), 0) "
			 "FROM tasks WHERE state = 'success'", 0, NULL, &r)) {
		srv_buf_printf(b, "# HELP ferry_bytes_read_total Bytes read from sources by successful tasks.\n"
			"# TYPE ferry_bytes_read_total counter\nferry_bytes_read_total %lld\n",
			srv_row_int(&r, 0, 0));
		srv_buf_printf(b, "# HELP ferry_bytes_stored_total Bytes of new chunks stored.\n"
			"# TYPE ferry_bytes_stored_total counter\nferry_bytes_stored_total %lld\n",
			srv_row_int(&r, 0, 1));
		srv_buf_printf(b, "# HELP ferry_bytes_transferred_total Bytes sent to target movers.\n"
			"# TYPE ferry_bytes_transferred_total counter\nferry_bytes_transferred_total %lld\n",
			srv_row_int(&r, 0, 2));
		srv_buf_printf(b, "# HELP ferry_task_duration_seconds Run time of successful tasks.\n"
			"# TYPE ferry_task_duration_seconds summary\n"
			"ferry_task_duration_seconds_count %lld\nferry_task_duration_seconds_sum %s\n",
			srv_row_int(&r, 0, 3), srv_row(&r, 0, 4)[0] ? srv_row(&r, 0, 4) : "0");
		srv_rows_free(&r);
	} else {
		bad = 1;
	}
	srv_buf_printf(b, "# HELP ferry_repository_points Restore points in the catalog per repository.\n"
		"# TYPE ferry_repository_points gauge\n");
	if (!srv_db_rows(s->db, "SELECT r.name, r.capacity, (SELECT COUNT(*) FROM points p WHERE "
			 "p.repo = r.name AND p.removed = 0), (SELECT COALESCE(SUM(p.bytes_stored), 0) "
			 "FROM points p WHERE p.repo = r.name) FROM repos r ORDER BY r.name", 0, NULL, &r)) {
		for (int i = 0; i < r.n; i++)
			srv_buf_printf(b, "ferry_repository_points{repo=\"%s\"} %lld\n", srv_row(&r, i, 0),
				srv_row_int(&r, i, 2));
		srv_buf_printf(b, "# HELP ferry_repository_stored_bytes Bytes the catalog's points added "
			"to each repository.\n# TYPE ferry_repository_stored_bytes gauge\n");
		for (int i = 0; i < r.n; i++)
			srv_buf_printf(b, "ferry_repository_stored_bytes{repo=\"%s\"} %lld\n",
				srv_row(&r, i, 0), srv_row_int(&r, i, 3));
		srv_buf_printf(b, "# HELP ferry_repository_capacity_bytes Registered capacity.\n"
			"# TYPE ferry_repository_capacity_bytes gauge\n");
		for (int i = 0; i < r.n; i++)
			srv_buf_printf(b, "ferry_repository_capacity_bytes{repo=\"%s\"} %lld\n",
				srv_row(&r, i, 0), srv_row_int(&r, i, 1));
		srv_rows_free(&r);
	} else {
		bad = 1;
	}
	return bad;
}

void srv_api_metrics(struct srv *s, struct srv_resp *rs)
{
	const unsigned tables = SRV_TBIT(SRV_T_SESSIONS) | SRV_TBIT(SRV_T_TASKS) |
				SRV_TBIT(SRV_T_POINTS) | SRV_TBIT(SRV_T_REPOS);
	struct srv_buf b = { NULL, 0, 0, 0 };
	struct srv_resp part;

	memset(&part, 0, sizeof(part));
	if (srv_cache_get(s, "metrics", tables, &part)) {
		srv_buf_raw(&b, part.body, strlen(part.body));
		free(part.body);
	} else {
		/* (a failed query is not kept: the next scrape retries) */
		if (!catalog_part(s, &b) && b.p && !b.oom)
			srv_cache_put(s, "metrics", tables, b.p, b.len);
	}
	srv_buf_printf(&b, "# HELP ferry_proxy_online 1 when the proxy heartbeats.\n# TYPE ferry_proxy_online gauge\n");
	for (int i = 0; i < s->nproxies; i++)
		srv_buf_printf(&b, "ferry_proxy_online{proxy=\"%s\"} %d\n", s->proxies[i].name,
			s->proxies[i].online);
	srv_buf_printf(&b, "# HELP ferry_http_requests_total API requests.\n# TYPE ferry_http_requests_total counter\n"
		"ferry_http_requests_total %llu\n"
		"# HELP ferry_http_unauthorized_total Requests refused for a missing or wrong token.\n"
		"# TYPE ferry_http_unauthorized_total counter\nferry_http_unauthorized_total %llu\n",
		(unsigned long long)s->http_requests, (unsigned long long)s->http_unauthorized);
	srv_buf_printf(&b, "# HELP ferry_catalog_cache_hits_total Listings served from the listing cache.\n"
		"# TYPE ferry_catalog_cache_hits_total counter\nferry_catalog_cache_hits_total %llu\n"
		"# HELP ferry_catalog_cache_misses_total Listings read from the catalog database.\n"
		"# TYPE ferry_catalog_cache_misses_total counter\nferry_catalog_cache_misses_total %llu\n",
		s->cache_hits, s->cache_misses);
	srv_buf_printf(&b, "# HELP ferry_http_forbidden_total Requests refused for a token whose scope is too small.\n"
		"# TYPE ferry_http_forbidden_total counter\nferry_http_forbidden_total %llu\n",
		(unsigned long long)s->http_forbidden);
	rs->status = 200;
	rs->body = b.p ? b.p : strdup("");
	rs->content_type = "text/plain; version=0.0.4";
}

