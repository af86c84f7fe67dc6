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

static int pg_exec(struct srv_db *db, const char *sql, int n,
		   const char *const *params, srv_row_cb cb, void *arg)
{
	PGconn *c = db->h;
	PGresult *r;
	ExecStatusType st;
	char *vals[64];
	int rows, cols;

	if (PQstatus(c) != CONNECTION_OK) {
		PQreset(c);
		if (PQstatus(c) != CONNECTION_OK) {
			snprintf(db->err, sizeof(db->err), "PostgreSQL connection lost: %s",
				 PQerrorMessage(c));
			return -1;
		}
	}
	r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		snprintf(db->err, sizeof(db->err), "%s", PQresultErrorMessage(r));
		db->err[strcspn(db->err, "\n")] = 0;
		PQclear(r);
		return -1;
	}
	rows = PQntuples(r);
	cols = PQnfields(r);
	if (cols > 64)
		cols = 64;
	for (int i = 0; cb && i < rows; i++) {
		for (int k = 0; k < cols; k++)
			vals[k] = PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k);
		if (cb(cols, vals, arg))
			break;
	}
	PQclear(r);
	return 0;
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
			 c ? PQerrorMessage(c) : "out of memory");
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
