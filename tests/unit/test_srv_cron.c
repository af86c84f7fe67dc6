/* test_srv_cron.c - the server's schedule parser and next-run computation
 * (src/server/cron.c) on fixed dates in UTC, and the job request checks
 * (src/server/jobspec.c) that decide the API's 400s. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../src/server/cron.c"
#include "../../src/server/jobspec.c"

/* 2024-01-15 10:07:30 UTC, a Monday */
#define T0 1705313250

static time_t next_of(const char *expr, time_t t)
{
	struct srv_cron c;
	char err[256];

	if (srv_cron_parse(expr, &c, err, sizeof(err))) {
		fprintf(stderr, "parse '%s': %s\n", expr, err);
		return -1;
	}
	return srv_cron_next(&c, t);
}

static int bad(const char *expr, const char *want)
{
	struct srv_cron c;
	char err[256] = "";

	return srv_cron_parse(expr, &c, err, sizeof(err)) != 0 && strstr(err, want) != NULL;
}

static int job_err(const char *json, const char *want)
{
	char err[1024] = "";
	struct srv_job j;
	struct json_object *o = srv_json_parse(json, strlen(json), err, sizeof(err));
	int r;

	if (!o)
		return strstr(err, want) != NULL;
	r = srv_job_from_json(o, &j, err, sizeof(err));
	json_object_put(o);
	if (!want)
		return r == 0;
	if (r == 0 || !strstr(err, want))
		fprintf(stderr, "job %s: got '%s'\n", json, err);
	return r != 0 && strstr(err, want) != NULL;
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	CHECK(next_of("* * * * *", T0) == T0 - 30 + 60);
	CHECK(next_of("*/15 * * * *", T0) == T0 - 7 * 60 - 30 + 15 * 60);
	CHECK(next_of("0 * * * *", T0) == T0 - 7 * 60 - 30 + 3600);
	CHECK(next_of("@daily", T0) == 1705363200);          /* 2024-01-16 00:00 */
	CHECK(next_of("30 2 * * mon-fri", T0) == 1705372200); /* Tue 02:30 */
	CHECK(next_of("0 0 * * 0", T0) == 1705795200);        /* Sun 2024-01-21 */
	CHECK(next_of("0 0 * * 7", T0) == 1705795200);        /* 7 is Sunday too */
	CHECK(next_of("0 0 29 2 *", T0) == 1709164800);       /* 2024-02-29 */
	CHECK(next_of("0 0 1 jan *", T0) == 1735689600);      /* 2025-01-01 */
	/* both day fields restricted: either matches (the 20th, or a Monday) */
	CHECK(next_of("0 12 20 * mon", T0) == T0 - 10 * 3600 - 7 * 60 - 30 + 12 * 3600);
	CHECK(next_of("0 0 30 2 *", T0) == 0);                /* never */
	CHECK(bad("61 * * * *", "minute field '61'"));
	CHECK(bad("* * *", "has 3"));
	CHECK(bad("* * * * * *", "has more"));
	CHECK(bad("*/0 * * * *", "step"));
	CHECK(bad("5-1 * * * *", "upwards"));
	CHECK(bad("* * * foo *", "month name"));
	CHECK(bad("@often", "unknown schedule"));
	CHECK(bad("1,,2 * * * *", "expected a number"));
	CHECK(bad("", "has 0"));

	CHECK(job_err("{\"name\":\"a\",\"repo\":\"r\",\"sources\":[\"/x/d.img\"]}", NULL));
	CHECK(job_err("{\"name\":\"a\",\"repo\":\"r\",\"sources\":[\"/x\"],\"colour\":1}", "unknown field 'colour'"));
	CHECK(job_err("{\"name\":\"a\",\"repo\":\"r\",\"sources\":[\"/x\"],\"schedule\":\"* *\"}", "invalid schedule"));
	CHECK(job_err("{\"name\":\"a\",\"repo\":\"r\",\"sources\":[\"/x\"],\"schedule\":\"after a\"}", "after itself"));
	CHECK(job_err("{\"name\":\"a\",\"repo\":\"r\",\"sources\":[]}", "'sources' is required"));
	CHECK(job_err("{\"name\":\"a\",\"repo\":\"r\",\"sources\":[\"/x\"],\"schedule\":\"0 0 30 2 *\"}", "matches no date"));
	CHECK(job_err("{\"name\":\"a\",\"repo\":\"r\",\"sources\":[\"/x\"],\"retries\":-1}", "0 to 100"));
	CHECK(job_err("{\"name\":\"a\",\"repo\":\"r\",\"sources\":[\"/x\"]", "malformed JSON"));
	CHECK(job_err("{\"name\":\"a\",\"repo\":\"r\",\"sources\":[\"/x\"]} x", "malformed JSON"));
	CHECK(job_err("{\"name\":\"a\\u0000b\",\"repo\":\"r\",\"sources\":[\"/x\"]}", "NUL"));
	return unit_done();
}
