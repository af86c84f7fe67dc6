/* s3_sign.c - AWS Signature Version 4 for S3 requests, computed with
 * OpenSSL: the canonical request (sorted, percent-encoded query), the
 * string to sign, and the derived signing key. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "s3.h"

static void hex(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = 0;
}

void s3_sha256_hex(const void *buf, size_t len, char out[65])
{
	uint8_t h[32];

	SHA256(buf, len, h);
	hex(h, 32, out);
}

void s3_md5_b64(const void *buf, size_t len, char out[32])
{
	uint8_t h[16];
	unsigned int n = 0;

	EVP_Digest(buf, len, h, &n, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)out, h, 16);
}

int s3_uri_encode(const char *in, int keep_slash, char *out, size_t cap)
{
	static const char d[] = "0123456789ABCDEF";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
			    *p == '.' || *p == '~' || (keep_slash && *p == '/');

		if (n + (plain ? 1 : 3) >= cap)
			return -1;
		if (plain) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = d[*p >> 4];
			out[n++] = d[*p & 15];
		}
	}
	if (n >= cap)
		return -1;
	out[n] = 0;
	return (int)n;
}

/* A growing string with a hard cap (fails once, then stays failed). */
struct sbuf {
	char *p;
	size_t n, cap;
	int bad;
};

static void sb_add(struct sbuf *s, const char *t, size_t len)
{
	if (s->bad || s->n + len >= s->cap) {
		s->bad = 1;
		return;
	}
	memcpy(s->p + s->n, t, len);
	s->n += len;
	s->p[s->n] = 0;
}

static void sb_str(struct sbuf *s, const char *t)
{
	sb_add(s, t, strlen(t));
}

static void sb_enc(struct sbuf *s, const char *t, int keep_slash)
{
	char tmp[3072];
	int n = s3_uri_encode(t, keep_slash, tmp, sizeof(tmp));

	if (n < 0)
		s->bad = 1;
	else
		sb_add(s, tmp, (size_t)n);
}

struct kv {
	char k[512], v[1024];
};

static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	int c = strcmp(x->k, y->k);

	return c ? c : strcmp(x->v, y->v);
}

static int hdr_cmp(const void *a, const void *b)
{
	const struct s3_hdr *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static void hmac(const void *key, size_t klen, const char *msg, uint8_t out[32])
{
	unsigned int n = 32;

	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg,
	     strlen(msg), out, &n);
}

#define MAXQ 16
#define MAXH 16

int s3_sign(const struct s3_sign_in *in, char *auth, size_t auth_cap,
	    char *query_out, size_t query_cap)
{
	struct kv *q = NULL;
	struct s3_hdr h[MAXH + 4];
	char date[9], scope[128], creq_hash[65], key[160], sig[65];
	char *creq = NULL, signed_h[512], sts[512];
	struct sbuf cr, qs, sh;
	uint8_t k1[32], k2[32];
	int nh = 0, e = FERRY_E_INVAL;

	if (in->nq > MAXQ || in->nh > MAXH || strlen(in->amz_date) != 16)
		return ferry_error(FERRY_E_INVAL, "s3: request too complex to sign");
	if (!(q = calloc(MAXQ, sizeof(*q))) || !(creq = malloc(16384))) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	/* Canonical query: each name and value encoded, sorted by name. */
	for (int i = 0; i < in->nq; i++) {
		if (s3_uri_encode(in->query[i].name, 0, q[i].k, sizeof(q[i].k)) < 0 ||
		    s3_uri_encode(in->query[i].value ? in->query[i].value : "", 0,
				  q[i].v, sizeof(q[i].v)) < 0)
			goto toolong;
	}
	qsort(q, (size_t)in->nq, sizeof(*q), kv_cmp);
	qs = (struct sbuf){ query_out, 0, query_cap, 0 };
	if (query_cap)
		query_out[0] = 0;
	for (int i = 0; i < in->nq; i++) {
		if (i)
			sb_str(&qs, "&");
		sb_str(&qs, q[i].k);
		sb_str(&qs, "=");
		sb_str(&qs, q[i].v);
	}
	/* Headers: the caller's plus the three the signer owns, sorted. */
	h[nh++] = (struct s3_hdr){ "host", in->host };
	h[nh++] = (struct s3_hdr){ "x-amz-content-sha256", in->payload_hash };
	h[nh++] = (struct s3_hdr){ "x-amz-date", in->amz_date };
	for (int i = 0; i < in->nh; i++)
		h[nh++] = in->hdrs[i];
	qsort(h, (size_t)nh, sizeof(*h), hdr_cmp);
	cr = (struct sbuf){ creq, 0, 16384, 0 };
	sh = (struct sbuf){ signed_h, 0, sizeof(signed_h), 0 };
	sb_str(&cr, in->method);
	sb_str(&cr, "\n");
	sb_enc(&cr, in->path, 1);
	sb_str(&cr, "\n");
	sb_str(&cr, query_out);
	sb_str(&cr, "\n");
	for (int i = 0; i < nh; i++) {
		sb_str(&cr, h[i].name);
		sb_str(&cr, ":");
		sb_str(&cr, h[i].value);
		sb_str(&cr, "\n");
		if (i)
			sb_str(&sh, ";");
		sb_str(&sh, h[i].name);
	}
	sb_str(&cr, "\n");
	sb_str(&cr, signed_h);
	sb_str(&cr, "\n");
	sb_str(&cr, in->payload_hash);
	if (cr.bad || qs.bad || sh.bad)
		goto toolong;
	s3_sha256_hex(creq, cr.n, creq_hash);

	memcpy(date, in->amz_date, 8);
	date[8] = 0;
	snprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", date, in->region);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", in->amz_date,
		 scope, creq_hash);
	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region),
	 * "s3"), "aws4_request"). */
	snprintf(key, sizeof(key), "AWS4%s", in->creds->secret_key);
	hmac(key, strlen(key), date, k1);
	hmac(k1, 32, in->region, k2);
	hmac(k2, 32, "s3", k1);
	hmac(k1, 32, "aws4_request", k2);
	hmac(k2, 32, sts, k1);
	hex(k1, 32, sig);
	explicit_bzero(key, sizeof(key));
	explicit_bzero(k2, sizeof(k2));
	if ((size_t)snprintf(auth, auth_cap,
			     "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
			     in->creds->access_key, scope, signed_h, sig) >= auth_cap)
		goto toolong;
	e = 0;
	goto out;
toolong:
	e = ferry_error(FERRY_E_INVAL, "s3: request too long to sign");
out:
	free(q);
	free(creq);
	return e;
}
