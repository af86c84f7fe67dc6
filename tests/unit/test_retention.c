/* test_retention.c - the keep rules of `ferry forget` (GFS, as restic's):
 * which points each rule keeps and the reasons reported. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "unit.h"

#define DAY (86400ull * 1000000000ull)
#define HOUR (3600ull * 1000000000ull)

static struct ferry_point pts[2000];
static int keep[2000];
static char why[2000][FERRY_REASON_MAX];

static size_t kept(size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += keep[i] != 0;
	return k;
}

int main(void)
{
	/* 2023-01-02 12:00 UTC, a Monday */
	const uint64_t t0 = 1672660800ull * 1000000000ull;
	struct ferry_forget_opts o;
	size_t n;

	setenv("TZ", "UTC", 1);
	tzset();

	/* Three points a day for ten days. */
	n = 30;
	for (size_t i = 0; i < n; i++)
		pts[i].created_ns = t0 + (i / 3) * DAY + (i % 3) * HOUR;
	memset(&o, 0, sizeof(o));
	o.keep_last = 2;
	ferry_retention_apply(pts, n, &o, keep, why);
	CHECK(kept(n) == 2 && keep[29] && keep[28]);
	CHECK(!strcmp(why[29], "last"));

	memset(&o, 0, sizeof(o));
	o.keep_daily = 5;
	ferry_retention_apply(pts, n, &o, keep, why);
	CHECK(kept(n) == 5);
	/* the newest point of each of the last five days */
	for (int d = 5; d < 10; d++)
		CHECK(keep[d * 3 + 2] && !strcmp(why[d * 3 + 2], "daily"));
	CHECK(!keep[14]);

	memset(&o, 0, sizeof(o));
	o.keep_last = 1;
	o.keep_daily = 2;
	o.keep_hourly = 4;
	ferry_retention_apply(pts, n, &o, keep, why);
	CHECK(!strcmp(why[29], "last,hourly,daily"));
	CHECK(!strcmp(why[26], "hourly,daily"));
	CHECK(!strcmp(why[28], "hourly") && !strcmp(why[27], "hourly"));
	CHECK(kept(n) == 4);

	/* One point a day for 800 days: 7 dailies, 4 weeklies, 6 monthlies,
	 * 3 yearlies. */
	n = 800;
	for (size_t i = 0; i < n; i++)
		pts[i].created_ns = t0 + i * DAY;
	memset(&o, 0, sizeof(o));
	o.keep_weekly = 4;
	ferry_retention_apply(pts, n, &o, keep, why);
	CHECK(kept(n) == 4);
	{
		/* Day 799 is 2025-03-12, a Wednesday: its week's newest point
		 * is itself, then the Sundays before it. */
		CHECK(keep[799] && keep[797] && keep[790] && keep[783]);
	}
	memset(&o, 0, sizeof(o));
	o.keep_monthly = 6;
	ferry_retention_apply(pts, n, &o, keep, why);
	CHECK(kept(n) == 6);
	for (size_t i = 0; i < n; i++)
		if (keep[i] && i != 799) {
			/* the last day of its month */
			time_t a = (time_t)(pts[i].created_ns / 1000000000ull),
			       b = (time_t)(pts[i + 1].created_ns / 1000000000ull);
			struct tm ta, tb;

			gmtime_r(&a, &ta);
			gmtime_r(&b, &tb);
			CHECK(ta.tm_mon != tb.tm_mon);
		}
	memset(&o, 0, sizeof(o));
	o.keep_yearly = 10;
	ferry_retention_apply(pts, n, &o, keep, why);
	/* 2023, 2024, 2025: the last point of each */
	CHECK(kept(n) == 3 && keep[799] && keep[729] && keep[363]);

	memset(&o, 0, sizeof(o));
	o.keep_daily = 7;
	o.keep_weekly = 4;
	o.keep_monthly = 6;
	o.keep_yearly = 3;
	ferry_retention_apply(pts, n, &o, keep, why);
	/* 7 days (Sunday 797 among them), 2 more Sundays (790, 783), 5 more
	 * month ends (Feb 2025 back to Oct 2024), and 2023's last day (2024's
	 * is the December month end already). */
	CHECK(kept(n) == 7 + 2 + 5 + 1);
	CHECK(keep[363] && !strcmp(why[363], "yearly"));
	CHECK(!strcmp(why[729], "monthly,yearly"));
	CHECK(strstr(why[799], "daily") && strstr(why[799], "weekly") &&
	      strstr(why[799], "monthly") && strstr(why[799], "yearly"));

	/* Nothing to keep from: no crash, nothing kept. */
	ferry_retention_apply(pts, 0, &o, keep, why);
	return unit_done();
}
