/* db_pg.c - the catalog in PostgreSQL through libpq: the same text
 * parameters and rows as the SQLite backend, the same schema. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "srv.h"

static void pg_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* "relation already exists, skipping" and friends */
}

/* Rows are taken one at a time as they arrive (single-row mode) rather
 * than after the whole result is in memory: the caller writes its reply
 * while PostgreSQL is still sending, and libpq never holds a 10,000-row
 * listing at once (its wall-time gain is within the bench machine's
 * noise, bench/README-server.md).  A CB that stops early still drains
 * the rest so the connection stays usable. */
static int pg_exec(struct srv_db *db, const char *sql, int n,
		   const char *const *params, srv_row_cb cb, void *arg)
{
	PGconn *c = db->h;
	PGresult *r;
	char *vals[64];
	int ret = 0, stop = 0;

	if (PQstatus(c) != CONNECTION_OK) {
		PQreset(c);
		if (PQstatus(c) != CONNECTION_OK) {
			snprintf(db->err, sizeof(db->err), "PostgreSQL connection lost: %s",
				 PQerrorMessage(c));
			db->err[strcspn(db->err, "\n")] = 0;
			return -1;
		}
	}
	if (!PQsendQueryParams(c, sql, n, NULL, params, NULL, NULL, 0)) {
		snprintf(db->err, sizeof(db->err), "%s", PQerrorMessage(c));
		db->err[strcspn(db->err, "\n")] = 0;
		return -1;
	}
	if (cb)
		PQsetSingleRowMode(c); /* fails harmlessly: then one whole result */
	while ((r = PQgetResult(c))) {
		ExecStatusType st = PQresultStatus(r);

		if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
			int rows = PQntuples(r), cols = PQnfields(r);

			if (cols > 64)
				cols = 64;
			for (int i = 0; cb && !stop && i < rows; i++) {
				for (int k = 0; k < cols; k++)
					vals[k] = PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k);
				stop = cb(cols, vals, arg) != 0;
			}
		} else if (st != PGRES_COMMAND_OK && !ret) {
			/* An error can end a result after some rows went to CB;
			 * the caller drops what it built on -1. */
			snprintf(db->err, sizeof(db->err), "%s", PQresultErrorMessage(r));
			db->err[strcspn(db->err, "\n")] = 0;
			ret = -1;
		}
		PQclear(r);
	}
	return ret;
}

static void pg_close(struct srv_db *db)
{
	PQfinish(db->h);
}

static const struct srv_db_ops pg_ops = { "postgresql", pg_exec, pg_close };

int srv_db_pg_open(const char *url, struct srv_db **out, char *err, size_t errlen)
{
	struct srv_db *db = calloc(1, sizeof(*db));
	PGconn *c;

	if (!db) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c = PQconnectdb(url);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
			 c ? PQerrorMessage(c) : "cannot start libpq");
		err[strcspn(err, "\n")] = 0;
		PQfinish(c);
		free(db);
		return -1;
	}
	PQsetNoticeProcessor(c, pg_notice, NULL);
	db->ops = &pg_ops;
	db->h = c;
	*out = db;
	return 0;
}
