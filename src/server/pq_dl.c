/*
 * pq_dl.c - libpq, loaded when the server first opens a PostgreSQL
 * catalog (src/lib/common/dl.h says why: libpq brings Kerberos and LDAP).
 *
 * PQconnectdb() is the entry point: without the library it returns NULL,
 * which db_pg.c reports as a failed connection.
 */
#include <libpq-fe.h>

#include "common/dl.h"

static struct ferry_dl pq_lib = FERRY_DL_INIT("libpq.so.5", "libpq5");

FERRY_DL_ENTRY(pq_lib, PGconn *, PQconnectdb, (const char *conninfo), (conninfo), NULL)
FERRY_DL_RELEASE(pq_lib, PQfinish, PGconn *)
FERRY_DL_RELEASE(pq_lib, PQclear, PGresult *)

FERRY_DL_FN(pq_lib, char *, PQerrorMessage, (const PGconn *c), (c))
FERRY_DL_FN(pq_lib, PGresult *, PQgetResult, (PGconn *c), (c))
FERRY_DL_FN(pq_lib, int, PQgetisnull, (const PGresult *r, int t, int f), (r, t, f))
FERRY_DL_FN(pq_lib, char *, PQgetvalue, (const PGresult *r, int t, int f), (r, t, f))
FERRY_DL_FN(pq_lib, int, PQnfields, (const PGresult *r), (r))
FERRY_DL_FN(pq_lib, int, PQntuples, (const PGresult *r), (r))
FERRY_DL_VOID(pq_lib, PQreset, (PGconn *c), (c))
FERRY_DL_FN(pq_lib, char *, PQresultErrorMessage, (const PGresult *r), (r))
FERRY_DL_FN(pq_lib, ExecStatusType, PQresultStatus, (const PGresult *r), (r))
FERRY_DL_FN(pq_lib, int, PQsendQueryParams,
	    (PGconn *c, const char *command, int n, const Oid *types,
	     const char *const *values, const int *lengths, const int *formats,
	     int result_format),
	    (c, command, n, types, values, lengths, formats, result_format))
FERRY_DL_FN(pq_lib, PQnoticeProcessor, PQsetNoticeProcessor,
	    (PGconn *c, PQnoticeProcessor proc, void *arg), (c, proc, arg))
FERRY_DL_FN(pq_lib, int, PQsetSingleRowMode, (PGconn *c), (c))
FERRY_DL_FN(pq_lib, ConnStatusType, PQstatus, (const PGconn *c), (c))
