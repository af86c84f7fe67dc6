/* s3.h - what the S3 backend's files share: the Signature V4 signer
 * (s3_sign.c), the bounded XML reader for S3 answers (s3_xml.c), and the
 * HTTP client with retries and credentials (s3_http.c) under store_s3.c. */
#ifndef FERRY_S3_H
#define FERRY_S3_H

#include <stddef.h>
#include <stdint.h>

/* ---- signing (s3_sign.c) --------------------------------------------- */

struct s3_creds {
	char access_key[128];
	char secret_key[128];
	char token[2048];
};

/* Lower-case hex SHA-256 of BUF. */
void s3_sha256_hex(const void *buf, size_t len, char out[65]);
/* Base64 of the MD5 of BUF (a Content-MD5 header value). */
void s3_md5_b64(const void *buf, size_t len, char out[32]);
/* RFC 3986 percent-encoding (unreserved characters kept); '/' kept when
 * KEEP_SLASH.  Returns the length, or -1 when OUT is too small. */
int s3_uri_encode(const char *in, int keep_slash, char *out, size_t cap);

struct s3_hdr {
	const char *name;  /* lower case */
	const char *value;
};

/* Everything a Signature V4 request signs. QUERY holds NQ pairs (raw,
 * unencoded; value NULL for "?uploads"), HDRS NH headers beyond host,
 * x-amz-date and x-amz-content-sha256 (which the signer adds). */
struct s3_sign_in {
	const char *method;
	const char *host;        /* "host[:port]" as sent */
	const char *path;        /* raw, starting with '/' */
	const struct s3_hdr *query;
	int nq;
	const struct s3_hdr *hdrs;
	int nh;
	const char *payload_hash; /* hex */
	const char *region;
	const char *amz_date;    /* YYYYMMDDTHHMMSSZ */
	const struct s3_creds *creds;
};

/* The Authorization header's value, and the canonical query string for
 * the URL (both NUL-terminated).  FERRY_E_INVAL when a buffer is short. */
int s3_sign(const struct s3_sign_in *in, char *auth, size_t auth_cap,
	    char *query_out, size_t query_cap);

/* ---- XML answers (s3_xml.c) ------------------------------------------ */

/* Find the next <TAG>...</TAG> in BUF[*pos..LEN): the element's text in
 * *VAL and *VLEN, *pos moved past it; 1 when found, 0 when not.  Nested
 * elements are returned as text (to be searched again). */
int s3_xml_next(const char *buf, size_t len, size_t *pos, const char *tag,
		const char **val, size_t *vlen);
/* The first <TAG> text of BUF copied (entities &amp; &lt; &gt; &quot;
 * &apos; decoded, cut to CAP-1 bytes); 1 when found. */
int s3_xml_get(const char *buf, size_t len, const char *tag, char *out,
	       size_t cap);

struct s3_error {
	char code[64];
	char message[256];
};
/* Parse an S3 <Error> document; 0 when it has a Code. */
int s3_error_parse(const char *buf, size_t len, struct s3_error *err);

/* ---- HTTP (s3_http.c) ------------------------------------------------ */

struct s3_conf {
	char *endpoint;      /* scheme://host[:port] */
	char *host;          /* host[:port] */
	char *scheme;        /* "http" / "https" */
	char *bucket;
	char *prefix;        /* "" or "dir/" */
	char region[64];
	int virtual_host;
	int insecure_tls;
	double retry_seconds;   /* total time a request may be retried */
	long timeout;           /* seconds without progress */
	struct s3_creds creds;
};

struct s3_pool;

/* One request. Body from BODY/BODY_LEN; the answer goes to OUT (at most
 * OUT_CAP bytes; more is FERRY_E_CORRUPT unless OUT_TRUNC) or, when
 * OUT_FD >= 0, to that file. */
struct s3_req {
	const char *method;
	const char *key;          /* object key (prefix included); NULL: bucket */
	const struct s3_hdr *query;
	int nq;
	const struct s3_hdr *hdrs;
	int nh;
	const void *body;
	size_t body_len;
	void *out;
	size_t out_cap;
	int out_trunc;
	int out_fd;
	/* results */
	long status;
	size_t out_len;
	char etag[128];
	char version_id[256];
	char retain_until[64];
	char date[64];
	uint64_t content_length;
	uint64_t total_size;      /* from Content-Range: bytes A-B/TOTAL */
	struct s3_error err;
	/* 1: a 404 is an answer (status set, return 0), not an error. */
	int want_404;
	/* 1: a 403/409 with an S3 error is an answer too (object lock). */
	int want_refusal;
	/* > 0: retry for at most this many seconds (less than configured) */
	double retry_seconds;
};

int s3_pool_new(const struct s3_conf *c, struct s3_pool **out);
void s3_pool_free(struct s3_pool *p);
/* Send REQ with retries (5xx, 429, timeouts, connection errors) within
 * the configured time; clear errors for refusals. */
int s3_request(struct s3_pool *p, struct s3_req *req);
/* Counters for statistics and tests. */
uint64_t s3_pool_requests(struct s3_pool *p);
uint64_t s3_pool_retries(struct s3_pool *p);
uint64_t s3_pool_bytes_up(struct s3_pool *p);

/* Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN,
 * else the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or
 * ~/.aws/credentials, profile AWS_PROFILE or "default"). */
int s3_creds_load(struct s3_creds *c);

/* Parse "2026-11-26T01:02:03[.000]Z" or an HTTP date into seconds since
 * the epoch; -1 when it does not parse. */
int64_t s3_time_parse(const char *s);
/* Format T as ISO 8601 UTC ("2026-11-26T01:02:03Z"). */
void s3_time_iso(int64_t t, char out[32]);

/* ---- settings (s3_conf.c) ------------------------------------------- */

/* Bucket, prefix, endpoint, host, scheme, region and addressing of URL
 * (s3://BUCKET[/PREFIX]) with the s3-endpoint, s3-region and
 * s3-addressing settings. */
int s3_conf_parse_url(const char *url, struct s3_conf *c);
/* A size (K, M, G suffixes) or a number setting KEY, DEF when unset. */
int s3_opt_size(const char *key, uint64_t def, uint64_t min, uint64_t max,
		uint64_t *out);
int s3_opt_num(const char *key, double def, double min, double max,
	       double *out);

/* ---- objects (s3_object.c) ------------------------------------------ */

#define S3_LIST_MAX (4u << 20)    /* one listing page */
#define S3_SMALL_MAX (64u << 10)  /* upload ids, completions */

struct s3_obj {
	struct s3_pool *pool;
	uint64_t mp_threshold, part_size;
	char list_keys[16];  /* max-keys of a listing page ("1000") */
};
typedef int (*s3o_read_fn)(void *arg, uint64_t off, void *buf, size_t n);
typedef int (*s3o_list_cb)(struct s3_obj *s, const char *key, size_t klen,
			   uint64_t size, int64_t mtime, void *arg);

/* PUT (multipart above mp_threshold); UNTIL > 0 adds a COMPLIANCE
 * retention until then. */
int s3o_put_object(struct s3_obj *s, const char *key, const void *data,
		   size_t len, int64_t until);
int s3o_put_single(struct s3_obj *s, const char *key, const void *data,
		   size_t len, int64_t until);
/* Small PUT / DELETE retried for at most BUDGET seconds (lock objects:
 * a heartbeat must not outlive its beat, a release must not hang). */
int s3o_put_brief(struct s3_obj *s, const char *key, const void *data,
		  size_t len, double budget, char *version, size_t vcap);
int s3o_delete_brief(struct s3_obj *s, const char *key, const char *version,
		     double budget);
int s3o_put_multipart(struct s3_obj *s, const char *key, uint64_t total,
		      s3o_read_fn rd, void *arg, int64_t until);
int s3o_fd_read(void *arg, uint64_t off, void *buf, size_t n); /* arg: int *fd */
void s3o_abort_upload(struct s3_obj *s, const char *key,
		      const char *upload_id);
/* 1 when present (size, retain-until, version when asked), 0 when not. */
int s3o_head_object(struct s3_obj *s, const char *key, uint64_t *size,
		    int64_t *until, char *version, size_t vcap);
/* GET into BUF; FERRY_E_NOTFOUND when absent; TRUNC: cut at CAP. */
int s3o_get_small(struct s3_obj *s, const char *key, void *buf, size_t cap,
		  size_t *len, int trunc);
/* DELETE (one version when VERSION); FERRY_STORE_KEPT when refused. */
int s3o_delete_object(struct s3_obj *s, const char *key, const char *version);
/* ListObjectsV2 of PREFIX; *SERVER_NOW: the server's clock, when asked. */
int s3o_list_prefix(struct s3_obj *s, const char *prefix, s3o_list_cb cb,
		    void *arg, int64_t *server_now);
/* PutObjectRetention: COMPLIANCE until UNTIL. */
int s3o_extend_retention(struct s3_obj *s, const char *key, int64_t until);

/* ---- locks (s3_lock.c) ------------------------------------------------ */

/* A lock object PREFIX<kind>-<session> ('s' shared, 'x' exclusive),
 * rewritten by a heartbeat thread; one older than STALE seconds (by the
 * server's clock) belongs to a dead process.  Shared waits while a live
 * exclusive lock exists; exclusive waits until no live lock of another
 * session remains. */
struct s3_lock;
int s3_lock_take(struct s3_obj *o, const char *prefix, int kind, double stale,
		 double timeout, struct s3_lock **out);   /* timeout <= 0: none */
int s3_lock_kind(const struct s3_lock *l);
/* 0 while the heartbeat keeps the lock valid, else an error. */
int s3_lock_fresh(struct s3_lock *l);
/* Remove stale lock objects of dead processes (counted in *N). */
int s3_lock_sweep(struct s3_lock *l, uint64_t *n);
void s3_lock_release(struct s3_lock *l); /* NULL: no-op */

#endif
