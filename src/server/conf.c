/* conf.c - the server's configuration file: one "name = value" per line,
 * '#' comments; unknown names are refused with file:line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "srv.h"

static int set_str(char *dst, size_t cap, const char *v)
{
	if (strlen(v) >= cap)
		return -1;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int set_int(int *dst, const char *v, int lo, int hi)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi)
		return -1;
	*dst = (int)x;
	return 0;
}

int srv_conf_load(const char *file, struct srv_conf *c, char *err, size_t errlen)
{
	FILE *f;
	char line[4096];
	int no = 0;

	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:7160");
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/ferry-server");
	snprintf(c->log, sizeof(c->log), "stderr");
	c->proxy_timeout = 30;
	c->max_body = 1 << 20;
	if (!(f = fopen(file, "r"))) {
		snprintf(err, errlen, "cannot read config %s: %s", file, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *k, *v;
		int bad = 0, r;

		no++;
		/* A long line is refused, never read as two. */
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line longer than %zu bytes", file, no,
				 sizeof(line) - 2);
			fclose(f);
			return -1;
		}
		if ((r = ferry_conf_line(line, &k, &v)) == 0)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s:%d: expected 'name = value'", file, no);
			fclose(f);
			return -1;
		}
		if (!strcmp(k, "listen"))
			bad = set_str(c->listen, sizeof(c->listen), v) || !strchr(v, ':');
		else if (!strcmp(k, "tls-cert"))
			bad = set_str(c->tls_cert, sizeof(c->tls_cert), v);
		else if (!strcmp(k, "tls-key"))
			bad = set_str(c->tls_key, sizeof(c->tls_key), v);
		else if (!strcmp(k, "database"))
			bad = set_str(c->database, sizeof(c->database), v);
		else if (!strcmp(k, "state-dir"))
			bad = set_str(c->state_dir, sizeof(c->state_dir), v);
		else if (!strcmp(k, "log"))
			bad = set_str(c->log, sizeof(c->log), v) ||
			      (strcmp(v, "stderr") && strcmp(v, "syslog"));
		else if (!strcmp(k, "proxy-timeout"))
			bad = set_int(&c->proxy_timeout, v, 1, 86400);
		else if (!strcmp(k, "max-body"))
			bad = set_int(&c->max_body, v, 1024, 64 << 20);
		else if (!strcmp(k, "catalog-cache"))
		{
			c->cache_off = !strcmp(v, "off");
			bad = strcmp(v, "on") && strcmp(v, "off");
		}
		else {
			snprintf(err, errlen, "%s:%d: unknown setting '%s' (known: listen, "
				 "tls-cert, tls-key, database, state-dir, log, proxy-timeout, "
				 "max-body, catalog-cache)", file, no, k);
			fclose(f);
			return -1;
		}
		if (bad) {
			snprintf(err, errlen, "%s:%d: bad value for %s: '%s'", file, no, k, v);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	if (!c->tls_cert[0] != !c->tls_key[0]) {
		snprintf(err, errlen, "%s: give both tls-cert and tls-key (or neither, "
			 "for plain HTTP on loopback)", file);
		return -1;
	}
	return 0;
}

void srv_conf_db_url(const struct srv_conf *c, char *out, size_t len)
{
	if (c->database[0])
		snprintf(out, len, "%s", c->database);
	else
		snprintf(out, len, "sqlite:%s/catalog.db", c->state_dir);
}
