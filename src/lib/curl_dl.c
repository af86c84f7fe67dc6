/*
 * curl_dl.c - libcurl, loaded when S3 or the server's REST client first
 * needs it (src/lib/common/dl.h says why).
 *
 * curl_global_init() and curl_easy_init() are the entry points: without
 * the library they fail (CURLE_FAILED_INIT, NULL), and the callers report
 * that like any other libcurl failure.  curl_easy_setopt() and
 * curl_easy_getinfo() are variadic; the option's number says the type of
 * its argument (curl.h's CURLOPTTYPE_* ranges), which is passed on as it
 * came.
 */
#define CURL_DISABLE_TYPECHECK 1 /* the macros would rename our definitions */
#include <stdarg.h>

#include <curl/curl.h>

#include "common/dl.h"

static struct ferry_dl curl_lib = FERRY_DL_INIT("libcurl.so.4", "libcurl4");

FERRY_DL_ENTRY(curl_lib, CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)
FERRY_DL_ENTRY(curl_lib, CURL *, curl_easy_init, (void), (), NULL)
FERRY_DL_ENTRY(curl_lib, const char *, curl_easy_strerror, (CURLcode c), (c),
	       "libcurl is not installed")
FERRY_DL_ENTRY(curl_lib, struct curl_slist *, curl_slist_append,
	       (struct curl_slist *list, const char *s), (list, s), NULL)
FERRY_DL_RELEASE(curl_lib, curl_slist_free_all, struct curl_slist *)

CURLcode curl_easy_setopt(CURL *h, CURLoption o, ...)
{
	va_list ap;
	CURLcode r;

	FERRY_DL_LOOKUP(curl_lib, curl_easy_setopt, fn_);
	va_start(ap, o);
	if (o < CURLOPTTYPE_OBJECTPOINT)
		r = fn_(h, o, va_arg(ap, long));
	else if (o < CURLOPTTYPE_FUNCTIONPOINT)
		r = fn_(h, o, va_arg(ap, void *));
	else if (o < CURLOPTTYPE_OFF_T)
		r = fn_(h, o, va_arg(ap, void (*)(void)));
	else if (o < CURLOPTTYPE_BLOB)
		r = fn_(h, o, va_arg(ap, curl_off_t));
	else
		r = fn_(h, o, va_arg(ap, void *));
	va_end(ap);
	return r;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO i, ...)
{
	va_list ap;
	CURLcode r;

	FERRY_DL_LOOKUP(curl_lib, curl_easy_getinfo, fn_);
	va_start(ap, i);
	r = fn_(h, i, va_arg(ap, void *)); /* every CURLINFO takes a pointer */
	va_end(ap);
	return r;
}

FERRY_DL_FN(curl_lib, CURLcode, curl_easy_perform, (CURL *h), (h))
FERRY_DL_VOID(curl_lib, curl_easy_reset, (CURL *h), (h))
FERRY_DL_VOID(curl_lib, curl_easy_cleanup, (CURL *h), (h))
