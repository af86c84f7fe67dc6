/* s3_object.c - object operations of the S3 backend over s3_request():
 * single and multipart PUT (with Content-MD5 and Object Lock headers),
 * HEAD, GET, DELETE of a version, retention raised, and listings page by
 * page. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "s3.h"

struct memsrc {
	const uint8_t *p;
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* ---- objects ---------------------------------------------------------- */

/* The Object Lock headers for an object kept until UNTIL (0: none). */
static int s3o_lock_hdrs(int64_t until, struct s3_hdr *h, char iso[32])
{
	if (!until)
		return 0;
	s3_time_iso(until, iso);
	h[0] = (struct s3_hdr){ "x-amz-object-lock-mode", "COMPLIANCE" };
	h[1] = (struct s3_hdr){ "x-amz-object-lock-retain-until-date", iso };
	return 2;
}

int s3o_put_single(struct s3_obj *s, const char *key, const void *data,
		      size_t len, int64_t until)
{
	char md5[32], iso[32];
	struct s3_hdr h[4];
	int nh = 0;

	s3_md5_b64(data, len, md5);
	h[nh++] = (struct s3_hdr){ "content-md5", md5 };
	nh += s3o_lock_hdrs(until, h + nh, iso);
	struct s3_req rq = { .method = "PUT", .key = key, .hdrs = h, .nh = nh,
			     .body = data, .body_len = len, .out_fd = -1 };
	return s3_request(s->pool, &rq);
}

void s3o_abort_upload(struct s3_obj *s, const char *key,
		      const char *upload_id)
{
	struct s3_hdr q[1] = { { "uploadId", upload_id } };
	struct s3_req rq = { .method = "DELETE", .key = key, .query = q,
			     .nq = 1, .out_fd = -1, .want_404 = 1 };
	int code;
	char msg[256];

	ferry_error_save(&code, msg, sizeof(msg));
	s3_request(s->pool, &rq);
	ferry_error_restore(code, msg);
}

/* Multipart: create, parts of part_size read through READ, complete. */
int s3o_put_multipart(struct s3_obj *s, const char *key, uint64_t total,
			 s3o_read_fn rd, void *arg, int64_t until)
{
	char upload_id[512] = "", iso[32], md5[32], num[16];
	struct s3_hdr h[4], q[2];
	size_t nparts = (size_t)((total + s->part_size - 1) / s->part_size);
	char (*etags)[128] = NULL;
	char *buf = NULL, *xml = NULL, *resp = NULL;
	size_t xcap, xn = 0;
	int nh = 0, e;

	if (nparts == 0 || nparts > 10000)
		return ferry_error(FERRY_E_INVAL,
				   "s3: %s needs %zu parts (1 to 10000): raise s3-part-size",
				   key, nparts);
	etags = calloc(nparts, sizeof(*etags));
	buf = malloc(s->part_size);
	resp = malloc(S3_SMALL_MAX);
	xcap = 128 + nparts * 200;
	xml = malloc(xcap);
	if (!etags || !buf || !resp || !xml) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	nh = s3o_lock_hdrs(until, h, iso);
	q[0] = (struct s3_hdr){ "uploads", NULL };
	struct s3_req cr = { .method = "POST", .key = key, .query = q, .nq = 1,
			     .hdrs = h, .nh = nh, .out = resp,
			     .out_cap = S3_SMALL_MAX, .out_fd = -1 };
	if ((e = s3_request(s->pool, &cr)) != 0)
		goto out;
	if (!s3_xml_get(resp, cr.out_len, "UploadId", upload_id,
			sizeof(upload_id)) || !upload_id[0]) {
		e = ferry_error(FERRY_E_IO, "s3: no UploadId for %s", key);
		goto out;
	}
	for (size_t i = 0; i < nparts; i++) {
		uint64_t off = (uint64_t)i * s->part_size;
		size_t n = (size_t)(total - off < s->part_size ? total - off
							       : s->part_size);

		if ((e = rd(arg, off, buf, n)) != 0)
			goto abort;
		snprintf(num, sizeof(num), "%zu", i + 1);
		s3_md5_b64(buf, n, md5);
		q[0] = (struct s3_hdr){ "partNumber", num };
		q[1] = (struct s3_hdr){ "uploadId", upload_id };
		h[0] = (struct s3_hdr){ "content-md5", md5 };
		struct s3_req pr = { .method = "PUT", .key = key, .query = q,
				     .nq = 2, .hdrs = h, .nh = 1, .body = buf,
				     .body_len = n, .out_fd = -1 };
		if ((e = s3_request(s->pool, &pr)) != 0)
			goto abort;
		snprintf(etags[i], sizeof(etags[i]), "%s", pr.etag);
	}
	xn = (size_t)snprintf(xml, xcap, "<CompleteMultipartUpload>");
	for (size_t i = 0; i < nparts; i++)
		xn += (size_t)snprintf(xml + xn, xcap - xn,
				       "<Part><PartNumber>%zu</PartNumber><ETag>\"%s\"</ETag></Part>",
				       i + 1, etags[i]);
	xn += (size_t)snprintf(xml + xn, xcap - xn, "</CompleteMultipartUpload>");
	s3_md5_b64(xml, xn, md5);
	q[0] = (struct s3_hdr){ "uploadId", upload_id };
	h[0] = (struct s3_hdr){ "content-md5", md5 };
	struct s3_req cp = { .method = "POST", .key = key, .query = q, .nq = 1,
			     .hdrs = h, .nh = 1, .body = xml, .body_len = xn,
			     .out = resp, .out_cap = S3_SMALL_MAX, .out_fd = -1 };
	if ((e = s3_request(s->pool, &cp)) != 0)
		goto abort;
	/* A 200 may still carry an error document. */
	if (s3_error_parse(resp, cp.out_len, &cp.err) == 0) {
		e = ferry_error(FERRY_E_IO, "s3: completing the upload of %s: %s %s",
				key, cp.err.code, cp.err.message);
		goto abort;
	}
	goto out;
abort:
	s3o_abort_upload(s, key, upload_id);
out:
	free(etags);
	free(buf);
	free(xml);
	free(resp);
	return e;
}

static int s3o_mem_read(void *arg, uint64_t off, void *buf, size_t n)
{
	memcpy(buf, ((struct memsrc *)arg)->p + off, n);
	return 0;
}

int s3o_fd_read(void *arg, uint64_t off, void *buf, size_t n)
{
	ssize_t got = ferry_pread_full(*(int *)arg, buf, n, (off_t)off);

	if (got != (ssize_t)n)
		return ferry_error(FERRY_E_IO, "s3: read a local temporary: %s",
				   got < 0 ? strerror((int)-got) : "short read");
	return 0;
}

int s3o_put_object(struct s3_obj *s, const char *key, const void *data,
		      size_t len, int64_t until)
{
	struct memsrc m = { data };

	if (len > s->mp_threshold)
		return s3o_put_multipart(s, key, len, s3o_mem_read, &m, until);
	return s3o_put_single(s, key, data, len, until);
}

/* HEAD: 1 when present (retention in *UNTIL when asked), 0 when not. */
int s3o_head_object(struct s3_obj *s, const char *key, uint64_t *size,
		       int64_t *until, char *version, size_t vcap)
{
	struct s3_req rq = { .method = "HEAD", .key = key, .out_fd = -1,
			     .want_404 = 1 };
	int e;

	if ((e = s3_request(s->pool, &rq)) != 0)
		return e;
	if (rq.status == 404)
		return 0;
	if (size)
		*size = rq.content_length;
	if (until)
		*until = rq.retain_until[0] ? s3_time_parse(rq.retain_until) : 0;
	if (version)
		snprintf(version, vcap, "%s", rq.version_id);
	return 1;
}

int s3o_get_small(struct s3_obj *s, const char *key, void *buf, size_t cap,
		     size_t *len, int trunc)
{
	struct s3_req rq = { .method = "GET", .key = key, .out = buf,
			     .out_cap = cap, .out_trunc = trunc, .out_fd = -1,
			     .want_404 = 1 };
	int e;

	if ((e = s3_request(s->pool, &rq)) != 0)
		return e;
	if (rq.status == 404)
		return FERRY_E_NOTFOUND;
	*len = rq.out_len;
	return 0;
}

int s3o_delete_object(struct s3_obj *s, const char *key, const char *version)
{
	struct s3_hdr q[1] = { { "versionId", version } };
	/* Only a version's delete is refused for a retention; any other
	 * refusal (no permission) is an error. */
	struct s3_req rq = { .method = "DELETE", .key = key, .query = q,
			     .nq = version ? 1 : 0, .out_fd = -1, .want_404 = 1,
			     .want_refusal = version != NULL };
	int e;

	if ((e = s3_request(s->pool, &rq)) != 0)
		return e;
	if (rq.status == 403 || rq.status == 409 || rq.status == 400)
		return 2; /* refused: still under retention */
	return 0;
}

/* ---- listings --------------------------------------------------------- */

/* ListObjectsV2 of PREFIX, page by page; *SERVER_NOW gets the server's
 * clock (from the Date header) when asked. */
int s3o_list_prefix(struct s3_obj *s, const char *prefix, s3o_list_cb cb,
		    void *arg,
		       int64_t *server_now)
{
	char *buf = malloc(S3_LIST_MAX), token[1024] = "", k[1024], num[32];
	int e = 0;

	if (!buf)
		return FERRY_E_NOMEM;
	for (;;) {
		struct s3_hdr q[4] = { { "list-type", "2" }, { "prefix", prefix },
				       { "max-keys", s->list_keys },
				       { "continuation-token", token } };
		struct s3_req rq = { .method = "GET", .query = q,
				     .nq = token[0] ? 4 : 3, .out = buf,
				     .out_cap = S3_LIST_MAX, .out_fd = -1 };
		const char *v;
		size_t vl, pos = 0;
		char trunc[16] = "";

		if ((e = s3_request(s->pool, &rq)) != 0)
			break;
		if (server_now)
			*server_now = rq.date[0] ? s3_time_parse(rq.date) : now_s();
		while (e == 0 && s3_xml_next(buf, rq.out_len, &pos, "Contents", &v, &vl)) {
			int64_t mt = 0;

			if (!s3_xml_get(v, vl, "Key", k, sizeof(k)))
				continue;
			num[0] = 0;
			s3_xml_get(v, vl, "Size", num, sizeof(num));
			if (s3_xml_get(v, vl, "LastModified", token, sizeof(token)))
				mt = s3_time_parse(token);
			e = cb(s, k, strlen(k), strtoull(num, NULL, 10), mt, arg);
		}
		if (e)
			break;
		s3_xml_get(buf, rq.out_len, "IsTruncated", trunc, sizeof(trunc));
		token[0] = 0;
		if (strcmp(trunc, "true") ||
		    !s3_xml_get(buf, rq.out_len, "NextContinuationToken", token,
				sizeof(token)) || !token[0])
			break;
	}
	free(buf);
	return e;
}

int s3o_extend_retention(struct s3_obj *s, const char *key, int64_t until)
{
	char iso[32], xml[256], md5[32];
	struct s3_hdr q[1] = { { "retention", NULL } }, h[1];
	int n;

	s3_time_iso(until, iso);
	n = snprintf(xml, sizeof(xml),
		     "<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>%s</RetainUntilDate></Retention>",
		     iso);
	s3_md5_b64(xml, (size_t)n, md5);
	h[0] = (struct s3_hdr){ "content-md5", md5 };
	struct s3_req rq = { .method = "PUT", .key = key, .query = q, .nq = 1,
			     .hdrs = h, .nh = 1, .body = xml,
			     .body_len = (size_t)n, .out_fd = -1 };
	return s3_request(s->pool, &rq);
}


int s3o_put_brief(struct s3_obj *s, const char *key, const void *data,
		  size_t len, double budget, char *version, size_t vcap)
{
	char md5[32];
	struct s3_hdr h[1] = { { "content-md5", md5 } };
	int e;

	s3_md5_b64(data, len, md5);
	struct s3_req rq = { .method = "PUT", .key = key, .hdrs = h, .nh = 1,
			     .body = data, .body_len = len, .out_fd = -1,
			     .retry_seconds = budget };
	if ((e = s3_request(s->pool, &rq)) == 0 && version)
		snprintf(version, vcap, "%s", rq.version_id);
	return e;
}

int s3o_delete_brief(struct s3_obj *s, const char *key, const char *version,
		     double budget)
{
	struct s3_hdr q[1] = { { "versionId", version } };
	struct s3_req rq = { .method = "DELETE", .key = key, .query = q,
			     .nq = version && *version ? 1 : 0, .out_fd = -1,
			     .want_404 = 1, .retry_seconds = budget };

	return s3_request(s->pool, &rq);
}
