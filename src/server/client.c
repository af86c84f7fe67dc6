/* client.c - the REST client of the CLI and the proxy agent: libcurl,
 * bearer token, the server's CA, a bounded reply parsed with json-c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "srv.h"

#define REPLY_MAX (64u << 20)

struct buf {
	char *p;
	size_t len, cap;
	int too_big;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;

	if (b->len + len + 1 > REPLY_MAX) {
		b->too_big = 1;
		return 0;
	}
	if (b->len + len + 1 > b->cap) {
		size_t nc = (b->len + len + 1) * 2;
		char *np = realloc(b->p, nc);

		if (!np)
			return 0;
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, ptr, len);
	b->len += len;
	b->p[b->len] = 0;
	return len;
}

int srv_client_call(const struct srv_client *c, const char *method,
		    const char *path, const char *body, long *status,
		    struct json_object **reply, char **raw, char *err,
		    size_t errlen)
{
	static int inited;
	CURL *h;
	CURLcode rc;
	struct curl_slist *hdr = NULL;
	struct buf b = { NULL, 0, 0, 0 };
	char url[2048], auth[600], cerr[CURL_ERROR_SIZE] = "";

	if (!inited) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		inited = 1;
	}
	*status = 0;
	if (reply)
		*reply = NULL;
	if (raw)
		*raw = NULL;
	if (!(h = curl_easy_init())) { /* no memory, or no libcurl (curl_dl.c) */
		snprintf(err, errlen, "cannot start libcurl");
		return -1;
	}
	snprintf(url, sizeof(url), "%s%s", c->url, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token ? c->token : "");
	hdr = curl_slist_append(hdr, auth);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)(c->timeout > 0 ? c->timeout : 60));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->cacert && *c->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", c->url,
			 b.too_big ? "reply too large" : cerr[0] ? cerr : curl_easy_strerror(rc));
		curl_slist_free_all(hdr);
		curl_easy_cleanup(h);
		free(b.p);
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	if (reply && b.p)
		*reply = json_tokener_parse(b.p);
	if (raw)
		*raw = b.p ? b.p : strdup("");
	else
		free(b.p);
	return 0;
}
