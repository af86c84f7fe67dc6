/* test_srv_conf.c - the server's config file (src/server/conf.c): the
 * example of docs/server.md loads; a line longer than the reader's buffer
 * is refused with file:line, never read as two lines (its tail as a
 * setting of its own: found by fuzz/fuzz_conf_files.c). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "../../src/server/conf.c"

static char file[] = "/tmp/test-srv-conf-XXXXXX";

static int load(const char *text, struct srv_conf *c, char *err, size_t errlen)
{
	FILE *f = fopen(file, "w");

	if (!f || fputs(text, f) < 0 || fclose(f))
		return -2;
	err[0] = 0;
	return srv_conf_load(file, c, err, errlen);
}

int main(void)
{
	static struct srv_conf c;
	char err[512], *big;
	int fd = mkstemp(file);
	size_t n;

	CHECK(fd >= 0);
	close(fd);
	CHECK(load("# /etc/ferry/server.conf\n"
		   "listen = 0.0.0.0:7160\n"
		   "tls-cert = /etc/ferry/server.crt\n"
		   "tls-key = /etc/ferry/server.key\n"
		   "# or postgresql://user@host/db\n"
		   "database = sqlite:/var/lib/ferry-server/catalog.db\n"
		   "state-dir = /var/lib/ferry-server\n"
		   "  # or stderr\n"
		   "log = syslog\n"
		   "proxy-timeout = 30\n"
		   "max-body = 1048576\n"
		   "catalog-cache = off\r\n", &c, err, sizeof(err)) == 0);
	CHECK(!strcmp(c.listen, "0.0.0.0:7160") && !strcmp(c.log, "syslog") &&
	      c.proxy_timeout == 30 && c.max_body == 1048576 && c.cache_off == 1 &&
	      !strcmp(c.database, "sqlite:/var/lib/ferry-server/catalog.db"));

	/* "log = stderr", spaces to fill the reader's buffer, then what
	 * would have been read as a line of its own. */
	n = 8192;
	big = malloc(n);
	CHECK(big != NULL);
	if (!big)
		return unit_done();
	snprintf(big, n, "proxy-timeout = 5\nlog = stderr%4090s listen = 0.0.0.0:80\n", "");
	CHECK(load(big, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, ":2: line longer than 4094 bytes") != NULL);
	/* A long last line without a newline is refused the same way. */
	memset(big, 'x', 5000);
	memcpy(big, "database = ", 11);
	big[5000] = 0;
	CHECK(load(big, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, ":1: line longer than") != NULL);
	/* A line of exactly the limit is read whole (its value is then too
	 * long for the field). */
	memset(big, 'x', 4094);
	memcpy(big, "database = ", 11);
	big[4094] = '\n';
	big[4095] = 0;
	CHECK(strlen(big) == 4095);
	CHECK(load(big, &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "bad value for database") != NULL);
	free(big);
	unlink(file);
	return unit_done();
}
