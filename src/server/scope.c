/* scope.c - API token scopes: their names and the scope each request
 * needs (docs/server.md "API tokens", x-ferry-scope in docs/openapi.yaml).
 * Checked by http.c for every request before the endpoint runs. */
#include <string.h>

#include "srv.h"

static const char *const scope_names[] = { "none", "read", "operate", "admin" };

const char *srv_scope_name(int scope)
{
	return scope >= SRV_SCOPE_READ && scope <= SRV_SCOPE_ADMIN ? scope_names[scope] : "none";
}

int srv_scope_parse(const char *s)
{
	for (int i = SRV_SCOPE_READ; i <= SRV_SCOPE_ADMIN; i++)
		if (!strcmp(s, scope_names[i]))
			return i;
	return SRV_SCOPE_NONE;
}

/* Token scopes (docs/server.md, docs/openapi.yaml): reading needs read;
 * running, enabling and disabling a job and the proxy agents' calls need
 * operate; everything else (inventory, creating and deleting jobs, and
 * whatever a newer endpoint does) needs admin. */
int srv_api_scope(const char *method, const char *path)
{
	char seg[6][72];
	int n = 0;

	if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
		return SRV_SCOPE_READ;
	if (strcmp(method, "POST"))
		return SRV_SCOPE_ADMIN;
	for (const char *p = path; *p && n < 6;) {
		size_t k;

		while (*p == '/')
			p++;
		k = strcspn(p, "/");
		if (!k)
			break;
		if (k >= sizeof(seg[0]))
			return SRV_SCOPE_ADMIN;
		memcpy(seg[n], p, k);
		seg[n++][k] = 0;
		p += k;
	}
	if (n < 3 || strcmp(seg[0], "api") || strcmp(seg[1], "v1"))
		return SRV_SCOPE_ADMIN;
	if (!strcmp(seg[2], "agent"))
		return SRV_SCOPE_OPERATE;
	if (!strcmp(seg[2], "jobs") && n == 5 &&
	    (!strcmp(seg[4], "run") || !strcmp(seg[4], "enable") || !strcmp(seg[4], "disable")))
		return SRV_SCOPE_OPERATE;
	return SRV_SCOPE_ADMIN;
}
