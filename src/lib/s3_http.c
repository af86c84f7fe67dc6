/* s3_http.c - sending signed S3 requests with libcurl: a small pool of
 * easy handles (one per concurrent caller, connections kept alive),
 * retries with exponential backoff on 5xx, 429, timeouts and connection
 * errors within a bounded time, clear errors for refusals (wrong secret,
 * unknown key), and where credentials come from. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "s3.h"

#define POOL_MAX 64
#define ERRBODY_MAX 8192

struct s3_pool {
	const struct s3_conf *c;
	pthread_mutex_t mu;
	CURL *free[POOL_MAX];
	int nfree;
	atomic_uint_least64_t requests, retries, bytes_up;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int s3_pool_new(const struct s3_conf *c, struct s3_pool **out)
{
	struct s3_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return FERRY_E_NOMEM;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) { /* libcurl missing (curl_dl.c) */
		free(p);
		return ferry_error(FERRY_E_IO, "cannot start libcurl: %s",
				   curl_easy_strerror(curl_init_rc));
	}
	p->c = c;
	pthread_mutex_init(&p->mu, NULL);
	*out = p;
	return 0;
}

void s3_pool_free(struct s3_pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nfree; i++)
		curl_easy_cleanup(p->free[i]);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

uint64_t s3_pool_requests(struct s3_pool *p) { return atomic_load(&p->requests); }
uint64_t s3_pool_retries(struct s3_pool *p) { return atomic_load(&p->retries); }
uint64_t s3_pool_bytes_up(struct s3_pool *p) { return atomic_load(&p->bytes_up); }

static CURL *take(struct s3_pool *p)
{
	CURL *h = NULL;

	pthread_mutex_lock(&p->mu);
	if (p->nfree)
		h = p->free[--p->nfree];
	pthread_mutex_unlock(&p->mu);
	return h ? h : curl_easy_init();
}

static void give(struct s3_pool *p, CURL *h)
{
	pthread_mutex_lock(&p->mu);
	if (p->nfree < POOL_MAX) {
		p->free[p->nfree++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	if (h)
		curl_easy_cleanup(h);
}

/* ---- one attempt ------------------------------------------------------ */

struct xfer {
	struct s3_req *req;
	long status;
	char errbody[ERRBODY_MAX];
	size_t errlen;
	int overflow, io_err;
};

static void hdr_copy(const char *v, size_t n, char *out, size_t cap)
{
	while (n && (*v == ' ' || *v == '"')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' ||
		     v[n - 1] == '"'))
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, v, n);
	out[n] = 0;
}

static size_t on_header(char *b, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	const char *colon = memchr(b, ':', n);

	if (n > 5 && !memcmp(b, "HTTP/", 5)) {
		const char *sp = memchr(b, ' ', n);

		if (sp)
			x->status = strtol(sp + 1, NULL, 10);
		return n;
	}
	if (!colon)
		return n;
	size_t kl = (size_t)(colon - b);
	const char *v = colon + 1;
	size_t vl = n - kl - 1;
	struct s3_req *r = x->req;

#define IS(name) (kl == strlen(name) && !strncasecmp(b, name, kl))
	if (IS("etag"))
		hdr_copy(v, vl, r->etag, sizeof(r->etag));
	else if (IS("x-amz-version-id"))
		hdr_copy(v, vl, r->version_id, sizeof(r->version_id));
	else if (IS("x-amz-object-lock-retain-until-date"))
		hdr_copy(v, vl, r->retain_until, sizeof(r->retain_until));
	else if (IS("date"))
		hdr_copy(v, vl, r->date, sizeof(r->date));
	else if (IS("content-range")) {
		char cr[96];
		const char *slash;

		hdr_copy(v, vl, cr, sizeof(cr));
		if ((slash = strchr(cr, '/')) != NULL)
			r->total_size = strtoull(slash + 1, NULL, 10);
	} else if (IS("content-length")) {
		char num[32];

		hdr_copy(v, vl, num, sizeof(num));
		r->content_length = strtoull(num, NULL, 10);
	}
#undef IS
	return n;
}

static size_t on_body(char *b, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct s3_req *r = x->req;
	size_t n = size * nmemb;

	if (x->status < 200 || x->status >= 300) {
		/* An error document: keep its start for the reason. */
		size_t k = n < ERRBODY_MAX - 1 - x->errlen ? n : ERRBODY_MAX - 1 - x->errlen;

		memcpy(x->errbody + x->errlen, b, k);
		x->errlen += k;
		return n;
	}
	if (r->out_fd >= 0) {
		if (ferry_write_all(r->out_fd, b, n) != 0) {
			x->io_err = 1;
			return 0;
		}
		r->out_len += n;
		return n;
	}
	if (r->out_len + n > r->out_cap) {
		size_t k = r->out_cap - r->out_len;

		if (r->out) /* NULL: the caller wants no body */
			memcpy((char *)r->out + r->out_len, b, k);
		r->out_len += k;
		x->overflow = 1;
		return r->out_trunc ? n : 0;
	}
	if (r->out)
		memcpy((char *)r->out + r->out_len, b, n);
	r->out_len += n;
	return n;
}

static int build_url(const struct s3_conf *c, const struct s3_req *r,
		     char *path, size_t pcap, char *host, size_t hcap)
{
	int n;

	if (c->virtual_host) {
		n = snprintf(host, hcap, "%s.%s", c->bucket, c->host);
		if (n < 0 || (size_t)n >= hcap)
			return -1;
		n = snprintf(path, pcap, "/%s", r->key ? r->key : "");
	} else {
		snprintf(host, hcap, "%s", c->host);
		n = snprintf(path, pcap, "/%s%s%s", c->bucket, r->key ? "/" : "",
			     r->key ? r->key : "");
	}
	return n < 0 || (size_t)n >= pcap ? -1 : 0;
}

static CURLcode attempt(struct s3_pool *p, CURL *h, struct xfer *x)
{
	const struct s3_conf *c = p->c;
	struct s3_req *r = x->req;
	char path[2048], host[512], auth[1024], query[4096], url[16384];
	char epath[6144], hash[65], amz_date[20], line[2300];
	struct curl_slist *hl = NULL;
	struct s3_hdr hdrs[20];
	int nh = 0;
	time_t now = time(NULL);
	struct tm tm;
	CURLcode cc;
	int e;

	if (build_url(c, r, path, sizeof(path), host, sizeof(host)) ||
	    s3_uri_encode(path, 1, epath, sizeof(epath)) < 0)
		return CURLE_URL_MALFORMAT;
	gmtime_r(&now, &tm);
	strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
	s3_sha256_hex(r->body ? r->body : "", r->body ? r->body_len : 0, hash);
	for (int i = 0; i < r->nh && nh < 18; i++)
		hdrs[nh++] = r->hdrs[i];
	if (c->creds.token[0])
		hdrs[nh++] = (struct s3_hdr){ "x-amz-security-token", c->creds.token };
	struct s3_sign_in si = {
		.method = r->method, .host = host, .path = path,
		.query = r->query, .nq = r->nq, .hdrs = hdrs, .nh = nh,
		.payload_hash = hash, .region = c->region,
		.amz_date = amz_date, .creds = &c->creds,
	};
	if ((e = s3_sign(&si, auth, sizeof(auth), query, sizeof(query))) != 0)
		return CURLE_URL_MALFORMAT;
	if (snprintf(url, sizeof(url), "%s://%s%s%s%s", c->scheme, host, epath,
		     query[0] ? "?" : "", query) >= (int)sizeof(url))
		return CURLE_URL_MALFORMAT;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->timeout);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	if (c->insecure_tls) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	snprintf(line, sizeof(line), "Authorization: %s", auth);
	hl = curl_slist_append(hl, line);
	snprintf(line, sizeof(line), "x-amz-date: %s", amz_date);
	hl = curl_slist_append(hl, line);
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", hash);
	hl = curl_slist_append(hl, line);
	for (int i = 0; i < nh; i++) {
		snprintf(line, sizeof(line), "%s: %s", hdrs[i].name, hdrs[i].value);
		hl = curl_slist_append(hl, line);
	}
	hl = curl_slist_append(hl, "Expect:");
	hl = curl_slist_append(hl, "Content-Type:");
	if (!strcmp(r->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (r->body || !strcmp(r->method, "PUT") ||
		   !strcmp(r->method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(r->body ? r->body_len : 0));
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "");
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		if (strcmp(r->method, "GET"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	atomic_fetch_add(&p->requests, 1);
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK && r->body && x->status >= 200 && x->status < 300)
		atomic_fetch_add(&p->bytes_up, r->body_len);
	curl_slist_free_all(hl);
	return cc;
}

static int retryable_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

static int retryable_status(long st, const struct s3_error *err)
{
	return st >= 500 || st == 429 ||
	       (st == 400 && !strcmp(err->code, "RequestTimeout"));
}

/* The one line an operator reads when S3 says no. */
static int refusal(const struct s3_conf *c, struct s3_req *r, long st)
{
	const struct s3_error *er = &r->err;
	const char *what = r->key ? r->key : "(bucket)";

	if (!strcmp(er->code, "SignatureDoesNotMatch"))
		return ferry_error(FERRY_E_AUTH,
				   "s3://%s: wrong secret key for access key %s: the server computed another signature (SignatureDoesNotMatch)",
				   c->bucket, c->creds.access_key);
	if (!strcmp(er->code, "InvalidAccessKeyId"))
		return ferry_error(FERRY_E_AUTH,
				   "s3://%s: unknown access key %s: the server has no such key (InvalidAccessKeyId)",
				   c->bucket, c->creds.access_key);
	if (!strcmp(er->code, "RequestTimeTooSkewed"))
		return ferry_error(FERRY_E_AUTH,
				   "s3://%s: this host's clock differs too much from the server's (RequestTimeTooSkewed): fix the time",
				   c->bucket);
	if (!strcmp(er->code, "ExpiredToken") || !strcmp(er->code, "InvalidToken"))
		return ferry_error(FERRY_E_AUTH,
				   "s3://%s: the session token (AWS_SESSION_TOKEN) is expired or invalid (%s)",
				   c->bucket, er->code);
	if (!strcmp(er->code, "AccessDenied"))
		return ferry_error(FERRY_E_AUTH,
				   "s3://%s: access denied to %s %s for access key %s (AccessDenied)",
				   c->bucket, r->method, what, c->creds.access_key);
	if (!strcmp(er->code, "NoSuchBucket"))
		return ferry_error(FERRY_E_NOTREPO, "s3://%s: no such bucket (NoSuchBucket)",
				   c->bucket);
	if (st == 404)
		return ferry_error(FERRY_E_NOTFOUND, "s3://%s: %s not found",
				   c->bucket, what);
	if (st == 403 && !er->code[0])
		return ferry_error(FERRY_E_AUTH,
				   "s3://%s: %s %s refused (HTTP 403 without a reason): check the access key and secret key",
				   c->bucket, r->method, what);
	return ferry_error(st == 403 ? FERRY_E_AUTH : FERRY_E_IO,
			   "s3://%s: %s %s: HTTP %ld %s%s%s", c->bucket, r->method,
			   what, st, er->code[0] ? er->code : "",
			   er->message[0] ? ": " : "", er->message);
}

int s3_request(struct s3_pool *p, struct s3_req *r)
{
	const struct s3_conf *c = p->c;
	double t0 = ferry_mono_seconds(), delay = 0.1;
	double budget = r->retry_seconds > 0 && r->retry_seconds < c->retry_seconds
				? r->retry_seconds
				: c->retry_seconds;
	struct xfer *x = malloc(sizeof(*x));
	CURL *h = take(p);
	int tries = 0, e;

	if (!x || !h) {
		free(x);
		if (h)
			give(p, h);
		return FERRY_E_NOMEM;
	}
	for (;;) {
		CURLcode cc;
		char why[256];

		memset(x, 0, sizeof(*x));
		x->req = r;
		r->status = 0;
		r->out_len = 0;
		r->etag[0] = r->version_id[0] = r->retain_until[0] = r->date[0] = 0;
		r->content_length = 0;
		r->total_size = 0;
		memset(&r->err, 0, sizeof(r->err));
		if (r->out_fd >= 0 && tries &&
		    (ftruncate(r->out_fd, 0) < 0 || lseek(r->out_fd, 0, SEEK_SET) < 0)) {
			e = ferry_error(FERRY_E_IO, "s3: reset a download: %s",
					strerror(errno));
			break;
		}
		tries++;
		cc = attempt(p, h, x);
		r->status = x->status;
		if (x->errlen)
			s3_error_parse(x->errbody, x->errlen, &r->err);
		if (cc == CURLE_URL_MALFORMAT) {
			e = ferry_error(FERRY_E_INVAL, "s3: cannot form a request for %s",
					r->key ? r->key : c->bucket);
			break;
		}
		if (x->io_err) {
			e = ferry_error(FERRY_E_IO, "s3: write %s locally: %s",
					r->key ? r->key : "", strerror(errno));
			break;
		}
		if (cc == CURLE_OK && x->status >= 200 && x->status < 300) {
			if (x->overflow && !r->out_trunc) {
				e = ferry_error(FERRY_E_CORRUPT,
						"s3: %s is larger than expected (%zu bytes at most)",
						r->key ? r->key : "", r->out_cap);
				break;
			}
			e = 0;
			break;
		}
		if (cc == CURLE_WRITE_ERROR && x->overflow) {
			e = ferry_error(FERRY_E_CORRUPT,
					"s3: %s is larger than expected (%zu bytes at most)",
					r->key ? r->key : "", r->out_cap);
			break;
		}
		if (cc == CURLE_OK && !retryable_status(x->status, &r->err)) {
			if ((x->status == 404 && r->want_404 &&
			     strcmp(r->err.code, "NoSuchBucket")) ||
			    ((x->status == 403 || x->status == 409 || x->status == 400) &&
			     r->want_refusal && r->err.code[0] &&
			     strcmp(r->err.code, "SignatureDoesNotMatch") &&
			     strcmp(r->err.code, "InvalidAccessKeyId"))) {
				e = 0;
				break;
			}
			e = refusal(c, r, x->status);
			break;
		}
		if (cc != CURLE_OK && !retryable_curl(cc)) {
			e = ferry_error(FERRY_E_NET, "s3: %s %s: %s", r->method,
					r->key ? r->key : c->bucket,
					curl_easy_strerror(cc));
			break;
		}
		if (cc != CURLE_OK)
			snprintf(why, sizeof(why), "%s", curl_easy_strerror(cc));
		else
			snprintf(why, sizeof(why), "HTTP %ld %s", x->status,
				 r->err.code);
		if (ferry_mono_seconds() - t0 + delay > budget ||
		    atomic_load(&ferry_cancelled)) {
			e = ferry_error(cc == CURLE_OPERATION_TIMEDOUT ? FERRY_E_TIMEOUT
								       : FERRY_E_NET,
					"s3 endpoint %s: %s %s: %s (%d attempt(s) in %.0f s)",
					c->endpoint, r->method,
					r->key ? r->key : c->bucket, why, tries,
					ferry_mono_seconds() - t0);
			break;
		}
		atomic_fetch_add(&p->retries, 1);
		/* Exponential backoff with jitter, at most 5 s a wait. */
		{
			uint32_t rnd = 0;
			double d = delay;

			ferry_random(&rnd, sizeof(rnd));
			d = delay * (0.5 + (rnd % 1000) / 1000.0);
			usleep((useconds_t)(d * 1e6));
			delay = delay * 2 > 5 ? 5 : delay * 2;
		}
		/* A connection that failed is not reused. */
		curl_easy_cleanup(h);
		if (!(h = curl_easy_init())) {
			free(x);
			return FERRY_E_NOMEM;
		}
	}
	give(p, h);
	free(x);
	return e;
}

/* ---- credentials -------------------------------------------------------- */

static void trim(char *s)
{
	size_t n = strlen(s);
	char *p = s;

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
		     s[n - 1] == '\n'))
		s[--n] = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	memmove(s, p, strlen(p) + 1);
}

/* Copy V into DST (CAP bytes); FERRY_E_AUTH naming KEY, FILE and line NO
 * when it does not fit (never a secret cut short). */
static int cred_value(char *dst, size_t cap, const char *v, const char *key,
		      const char *path, int no)
{
	if (strlen(v) >= cap)
		return ferry_error(FERRY_E_AUTH,
				   "s3: credentials file %s:%d: %s longer than %zu bytes",
				   path, no, key, cap - 1);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* 0, 1 when PATH cannot be opened, or a FERRY_E_* code. */
static int creds_file(struct s3_creds *c, const char *path, const char *profile)
{
	FILE *f = fopen(path, "r");
	char line[2304], section[128] = "";
	int in = 0, no = 0, e = 0;

	if (!f)
		return 1; /* errno says why */
	while (!e && fgets(line, sizeof(line), f)) {
		char *eq;

		no++;
		/* Never read a long line as two (its tail as a line). */
		if (!strchr(line, '\n') && !feof(f)) {
			e = ferry_error(FERRY_E_AUTH,
					"s3: credentials file %s:%d: line longer than %zu bytes",
					path, no, sizeof(line) - 2);
			break;
		}
		trim(line);
		if (line[0] == '#' || line[0] == ';' || !line[0])
			continue;
		if (line[0] == '[') {
			char *end = strchr(line, ']');

			if (end)
				*end = 0;
			snprintf(section, sizeof(section), "%.127s", line + 1);
			trim(section);
			in = !strcmp(section, profile);
			continue;
		}
		if (!in || !(eq = strchr(line, '=')))
			continue;
		*eq = 0;
		trim(line);
		trim(eq + 1);
		if (!strcmp(line, "aws_access_key_id"))
			e = cred_value(c->access_key, sizeof(c->access_key), eq + 1,
				       line, path, no);
		else if (!strcmp(line, "aws_secret_access_key"))
			e = cred_value(c->secret_key, sizeof(c->secret_key), eq + 1,
				       line, path, no);
		else if (!strcmp(line, "aws_session_token"))
			e = cred_value(c->token, sizeof(c->token), eq + 1, line, path, no);
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	if (e)
		explicit_bzero(c, sizeof(*c));
	return e;
}

int s3_creds_load(struct s3_creds *c)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID");
	const char *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *tk = getenv("AWS_SESSION_TOKEN");
	const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE");
	const char *profile = getenv("AWS_PROFILE");
	char path[4096];
	int e;

	memset(c, 0, sizeof(*c));
	if (ak && *ak && sk && *sk) {
		snprintf(c->access_key, sizeof(c->access_key), "%s", ak);
		snprintf(c->secret_key, sizeof(c->secret_key), "%s", sk);
		if (tk)
			snprintf(c->token, sizeof(c->token), "%s", tk);
		return 0;
	}
	if (!file || !*file) {
		const char *home = getenv("HOME");

		snprintf(path, sizeof(path), "%s/.aws/credentials", home ? home : "");
		file = path;
	}
	if (!profile || !*profile)
		profile = "default";
	if ((e = creds_file(c, file, profile)) < 0)
		return e;
	if (e == 1 && file != path)
		return ferry_error(FERRY_E_AUTH,
				   "s3: cannot read the credentials file %s (AWS_SHARED_CREDENTIALS_FILE): %s",
				   file, strerror(errno));
	if (!c->access_key[0] || !c->secret_key[0])
		return ferry_error(FERRY_E_AUTH,
				   "s3: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give profile [%s] in %s",
				   profile, file);
	return 0;
}

/* ---- time --------------------------------------------------------------- */

int64_t s3_time_parse(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%a, %d %b %Y %H:%M:%S", &tm);
	}
	if (!end)
		return -1;
	return (int64_t)timegm(&tm);
}

void s3_time_iso(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
