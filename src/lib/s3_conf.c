/* s3_conf.c - the S3 backend's settings: the s3://BUCKET/PREFIX URL, the
 * endpoint and addressing style, and numeric settings read through
 * ferry_backend_opt() (command line, else FERRY_S3_* environment). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "s3.h"

int s3_opt_size(const char *key, uint64_t def, uint64_t min, uint64_t max,
		uint64_t *out)
{
	const char *v = ferry_backend_opt(key);

	*out = def;
	if (!v || !*v)
		return 0;
	if (ferry_size_parse(v, out) || *out < min || *out > max)
		return ferry_error(FERRY_E_INVAL,
				   "%s %s: give a size from %llu to %llu bytes (K, M, G suffixes)",
				   key, v, (unsigned long long)min,
				   (unsigned long long)max);
	return 0;
}

int s3_opt_num(const char *key, double def, double min, double max,
	       double *out)
{
	const char *v = ferry_backend_opt(key);
	char *end;

	*out = def;
	if (!v || !*v)
		return 0;
	*out = strtod(v, &end);
	if (*end || *out < min || *out > max)
		return ferry_error(FERRY_E_INVAL, "%s %s: give a number from %g to %g",
				   key, v, min, max);
	return 0;
}

int s3_conf_parse_url(const char *url, struct s3_conf *c)
{
	const char *p = url + 5, *slash = strchr(p, '/');
	const char *ep = ferry_backend_opt("s3-endpoint");
	const char *region = ferry_backend_opt("s3-region");
	const char *addr = ferry_backend_opt("s3-addressing");
	char buf[1024];
	size_t bl = slash ? (size_t)(slash - p) : strlen(p), n;

	if (bl < 3 || bl > 63 || strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789.-") < bl)
		return ferry_error(FERRY_E_INVAL,
				   "%s: give s3://BUCKET[/PREFIX] with a bucket name of 3-63 lower-case letters, digits, '.' or '-'",
				   url);
	if (!(c->bucket = strndup(p, bl)))
		return FERRY_E_NOMEM;
	p = slash ? slash + 1 : "";
	while (*p == '/')
		p++;
	n = strlen(p);
	while (n && p[n - 1] == '/')
		n--;
	snprintf(buf, sizeof(buf), "%.*s%s", (int)n, p, n ? "/" : "");
	if (!(c->prefix = strdup(buf)))
		return FERRY_E_NOMEM;
	snprintf(c->region, sizeof(c->region), "%s",
		 region && *region ? region : "us-east-1");
	if (!ep || !*ep) {
		snprintf(buf, sizeof(buf), "https://s3.%s.amazonaws.com", c->region);
		ep = buf;
		c->virtual_host = 1;
	}
	{
		const char *hs = strstr(ep, "://");
		size_t hl;

		if (!hs || (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8)))
			return ferry_error(FERRY_E_INVAL,
					   "s3-endpoint %s: give http://HOST[:PORT] or https://HOST[:PORT]",
					   ep);
		hs += 3;
		hl = strcspn(hs, "/");
		if (!hl)
			return ferry_error(FERRY_E_INVAL, "s3-endpoint %s: no host", ep);
		if (!(c->endpoint = strdup(ep)) || !(c->host = strndup(hs, hl)) ||
		    !(c->scheme = strndup(ep, (size_t)(hs - 3 - ep))))
			return FERRY_E_NOMEM;
	}
	if (addr && *addr) {
		if (!strcmp(addr, "path"))
			c->virtual_host = 0;
		else if (!strcmp(addr, "virtual"))
			c->virtual_host = 1;
		else
			return ferry_error(FERRY_E_INVAL,
					   "s3-addressing %s: give path or virtual", addr);
	}
	return 0;
}
