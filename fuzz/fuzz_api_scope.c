/* fuzz_api_scope.c - libFuzzer target for the scope a request needs
 * (src/server/scope.c), fed "METHOD\nPATH" as any bytes: it never reads
 * past the path, always answers read, operate or admin, read exactly for
 * GET and HEAD, and never less than admin for a method other than GET,
 * HEAD or POST. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/server/scope.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *nl, *path;
	int sc;

	if (size > 4096 || !(buf = malloc(size + 1)))
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	nl = strchr(buf, '\n');
	path = nl ? nl + 1 : buf + strlen(buf);
	if (nl)
		*nl = 0;
	sc = srv_api_scope(buf, path);
	if (sc < SRV_SCOPE_READ || sc > SRV_SCOPE_ADMIN)
		abort();
	if ((!strcmp(buf, "GET") || !strcmp(buf, "HEAD")) != (sc == SRV_SCOPE_READ))
		abort();
	if (strcmp(buf, "GET") && strcmp(buf, "HEAD") && strcmp(buf, "POST") &&
	    sc != SRV_SCOPE_ADMIN)
		abort();
	if (strcmp(srv_scope_name(sc), "none") == 0 || srv_scope_parse(srv_scope_name(sc)) != sc)
		abort();
	free(buf);
	return 0;
}
