/* cron.c - the schedule language of jobs: five-field cron expressions
 * (minute hour day-of-month month day-of-week, as Vixie cron) and the
 * @hourly family, and the next matching minute after a time. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec",
};
static const char *const dow_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat",
};

/* A number or a name at *P (advanced); -1 when neither. */
static int value(const char **p, int field)
{
	const char *s = *p;
	long v = 0;
	int n = 0;

	if (isdigit((unsigned char)*s)) {
		while (isdigit((unsigned char)*s) && n < 4) {
			v = v * 10 + (*s - '0');
			s++;
			n++;
		}
		if (isdigit((unsigned char)*s))
			return -1;
		*p = s;
		return (int)v;
	}
	if (field == 3 || field == 4) {
		const char *const *names = field == 3 ? month_names : dow_names;
		int cnt = field == 3 ? 12 : 7;

		for (int i = 0; i < cnt; i++)
			if (!strncasecmp(s, names[i], 3) &&
			    !isalpha((unsigned char)s[3])) {
				*p = s + 3;
				return field == 3 ? i + 1 : i;
			}
	}
	return -1;
}

static const struct {
	const char *what;
	int lo, hi;
} fields[5] = {
	{ "minute", 0, 59 }, { "hour", 0, 23 }, { "day of month", 1, 31 },
	{ "month", 1, 12 }, { "day of week", 0, 7 },
};

/* One field (TEXT of length LEN) into a bit set. */
static int field_parse(const char *text, size_t len, int f, uint64_t *bits,
		       int *star, char *err, size_t errlen)
{
	char buf[128];
	const char *p;
	int lo = fields[f].lo, hi = fields[f].hi;

	if (len == 0 || len >= sizeof(buf)) {
		snprintf(err, errlen, "%s field is %s", fields[f].what,
			 len ? "too long" : "empty");
		return -1;
	}
	memcpy(buf, text, len);
	buf[len] = 0;
	*bits = 0;
	*star = buf[0] == '*';
	p = buf;
	for (;;) {
		int a, b, step = 1;

		if (*p == '*') {
			a = lo;
			b = f == 4 ? 6 : hi;
			p++;
		} else {
			if ((a = value(&p, f)) < 0)
				goto bad;
			b = a;
			if (*p == '-') {
				p++;
				if ((b = value(&p, f)) < 0)
					goto bad;
			}
		}
		if (*p == '/') {
			p++;
			if (!isdigit((unsigned char)*p) || (step = value(&p, -1)) < 1 ||
			    step > hi) {
				snprintf(err, errlen, "%s field '%s': a step is 1 to %d",
					 fields[f].what, buf, hi);
				return -1;
			}
			if (a == b && buf[0] != '*')
				b = f == 4 ? 6 : hi;
		}
		if (a < lo || a > hi || b < lo || b > hi || a > b) {
			snprintf(err, errlen, "%s field '%s': values are %d to %d%s",
				 fields[f].what, buf, lo, hi,
				 a > b ? " and a range goes upwards" : "");
			return -1;
		}
		for (int v = a; v <= b; v += step)
			*bits |= 1ull << (f == 4 && v == 7 ? 0 : v);
		if (*p == 0)
			break;
		if (*p != ',')
			goto bad;
		p++;
	}
	return 0;
bad:
	snprintf(err, errlen, "%s field '%s': expected a number%s, '*', a range "
		 "A-B, a step /N or a list A,B", fields[f].what, buf,
		 f == 3 ? " or month name" : f == 4 ? " or day name" : "");
	return -1;
}

int srv_cron_parse(const char *s, struct srv_cron *c, char *err, size_t errlen)
{
	static const struct {
		const char *name, *expr;
	} macros[] = {
		{ "@hourly", "0 * * * *" }, { "@daily", "0 0 * * *" },
		{ "@midnight", "0 0 * * *" }, { "@weekly", "0 0 * * 0" },
		{ "@monthly", "0 0 1 * *" }, { "@yearly", "0 0 1 1 *" },
		{ "@annually", "0 0 1 1 *" },
	};
	const char *p = s;
	uint64_t bits[5];
	int star[5], f = 0;

	memset(c, 0, sizeof(*c));
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '@') {
		for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
			if (!strcmp(p, macros[i].name))
				return srv_cron_parse(macros[i].expr, c, err, errlen);
		snprintf(err, errlen, "unknown schedule '%.40s' (known: @hourly, @daily, "
			 "@weekly, @monthly, @yearly)", p);
		return -1;
	}
	while (*p) {
		const char *e = p;

		while (*e && *e != ' ' && *e != '\t')
			e++;
		if (f == 5) {
			snprintf(err, errlen, "a cron expression has 5 fields (minute hour "
				 "day-of-month month day-of-week), '%.60s' has more", s);
			return -1;
		}
		if (field_parse(p, (size_t)(e - p), f, &bits[f], &star[f], err, errlen))
			return -1;
		f++;
		p = e;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	if (f != 5) {
		snprintf(err, errlen, "a cron expression has 5 fields (minute hour "
			 "day-of-month month day-of-week), '%.60s' has %d", s, f);
		return -1;
	}
	c->minute = bits[0];
	c->hour = (uint32_t)bits[1];
	c->dom = (uint32_t)bits[2];
	c->month = (uint16_t)bits[3];
	c->dow = (uint8_t)bits[4];
	c->dom_star = star[2];
	c->dow_star = star[4];
	return 0;
}

static int day_matches(const struct srv_cron *c, const struct tm *tm)
{
	int d = (c->dom >> tm->tm_mday) & 1, w = (c->dow >> tm->tm_wday) & 1;

	if (c->dom_star || c->dow_star)
		return (c->dom_star || d) && (c->dow_star || w);
	return d || w; /* both restricted: either matches (as cron) */
}

time_t srv_cron_next(const struct srv_cron *c, time_t t)
{
	struct tm tm;
	time_t x = t - t % 60 + 60;
	int last_year;

	if (!localtime_r(&x, &tm))
		return 0;
	last_year = tm.tm_year + 5;

	/* Bounded walk: skip whole months, days and hours that cannot
	 * match, so each step moves at least a minute forward. */
	for (int steps = 0; steps < 100000; steps++) {
		if (!localtime_r(&x, &tm))
			return 0;
		if (tm.tm_year > last_year)
			return 0; /* e.g. 30 February: never */
		if (!((c->month >> (tm.tm_mon + 1)) & 1)) {
			tm.tm_mon++;
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		} else if (!day_matches(c, &tm)) {
			tm.tm_mday++;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		} else if (!((c->hour >> tm.tm_hour) & 1)) {
			tm.tm_hour++;
			tm.tm_min = tm.tm_sec = 0;
		} else if (!((c->minute >> tm.tm_min) & 1)) {
			tm.tm_min++;
			tm.tm_sec = 0;
		} else {
			return x;
		}
		tm.tm_isdst = -1;
		{
			time_t y = mktime(&tm);

			if (y == (time_t)-1)
				return 0;
			x = y > x ? y : x + 60; /* DST folds never go backwards */
			x -= x % 60;
		}
	}
	return 0;
}
