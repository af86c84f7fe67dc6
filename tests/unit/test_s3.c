/* test_s3.c - the S3 backend's pure parts: Signature V4 against the
 * examples AWS publishes for S3 (GET with a Range header, a listing with
 * a query), query canonicalisation, URI encoding, and the XML reader. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "s3.h"
#include "unit.h"

static const char *empty_hash =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static void sigv4(void)
{
	struct s3_creds c;
	char auth[1024], q[512];
	struct s3_hdr range[1] = { { "range", "bytes=0-9" } };
	struct s3_hdr list[2] = { { "prefix", "J" }, { "max-keys", "2" } };

	memset(&c, 0, sizeof(c));
	snprintf(c.access_key, sizeof(c.access_key), "AKIAIOSFODNN7EXAMPLE");
	snprintf(c.secret_key, sizeof(c.secret_key), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
	struct s3_sign_in get = {
		.method = "GET", .host = "examplebucket.s3.amazonaws.com",
		.path = "/test.txt", .hdrs = range, .nh = 1,
		.payload_hash = empty_hash, .region = "us-east-1",
		.amz_date = "20130524T000000Z", .creds = &c,
	};
	CHECK(s3_sign(&get, auth, sizeof(auth), q, sizeof(q)) == 0);
	CHECK(!strcmp(auth,
		      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
		      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
	CHECK(q[0] == 0);

	/* query given out of order: the signer sorts it */
	struct s3_sign_in ls = {
		.method = "GET", .host = "examplebucket.s3.amazonaws.com",
		.path = "/", .query = list, .nq = 2,
		.payload_hash = empty_hash, .region = "us-east-1",
		.amz_date = "20130524T000000Z", .creds = &c,
	};
	CHECK(s3_sign(&ls, auth, sizeof(auth), q, sizeof(q)) == 0);
	CHECK(!strcmp(q, "max-keys=2&prefix=J"));
	CHECK(strstr(auth, "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7") != NULL);

	/* a value-less name signs as "name=", '/' in a value is encoded */
	struct s3_hdr up[2] = { { "uploads", NULL }, { "prefix", "a/b c" } };
	ls.query = up;
	CHECK(s3_sign(&ls, auth, sizeof(auth), q, sizeof(q)) == 0);
	CHECK(!strcmp(q, "prefix=a%2Fb%20c&uploads="));
	/* too small a buffer is an error, not a cut signature */
	CHECK(s3_sign(&ls, auth, 40, q, sizeof(q)) != 0);
}

static void encode(void)
{
	char out[64];

	CHECK(s3_uri_encode("r/chunks/ab~-_.", 1, out, sizeof(out)) == 15);
	CHECK(!strcmp(out, "r/chunks/ab~-_."));
	CHECK(s3_uri_encode("a/b+c=d", 0, out, sizeof(out)) > 0);
	CHECK(!strcmp(out, "a%2Fb%2Bc%3Dd"));
	CHECK(s3_uri_encode("abcdef", 0, out, 4) < 0);
}

static void xml(void)
{
	const char *doc =
		"<?xml version=\"1.0\"?><Error><Code>InvalidAccessKeyId</Code>"
		"<Message>The &lt;key&gt; &amp; more</Message></Error>";
	const char *list =
		"<R><Contents><Key>p/1</Key><Size>5</Size></Contents>"
		"<ContentsX>no</ContentsX><Contents><Key>p/2</Key></Contents>"
		"<IsTruncated>false</IsTruncated><Empty/></R>";
	struct s3_error e;
	const char *v;
	size_t vl, pos = 0;
	char k[16];
	int n = 0;

	CHECK(s3_error_parse(doc, strlen(doc), &e) == 0);
	CHECK(!strcmp(e.code, "InvalidAccessKeyId"));
	CHECK(!strcmp(e.message, "The <key> & more"));
	CHECK(s3_error_parse(doc, 30, &e) != 0); /* cut short: no Code */
	while (s3_xml_next(list, strlen(list), &pos, "Contents", &v, &vl)) {
		CHECK(s3_xml_get(v, vl, "Key", k, sizeof(k)) == 1);
		n++;
	}
	CHECK(n == 2);
	CHECK(!strcmp(k, "p/2"));
	CHECK(s3_xml_get(list, strlen(list), "Empty", k, sizeof(k)) == 1 && !k[0]);
	CHECK(s3_xml_get(list, strlen(list), "Missing", k, sizeof(k)) == 0);
	CHECK(s3_xml_get(list, strlen(list), "Key", k, 3) == 1 && !strcmp(k, "p/"));
}

static void times(void)
{
	char iso[32];

	CHECK(s3_time_parse("2013-05-24T00:00:00.000Z") == 1369353600);
	CHECK(s3_time_parse("Fri, 24 May 2013 00:00:00 GMT") == 1369353600);
	CHECK(s3_time_parse("junk") == -1);
	s3_time_iso(1369353600, iso);
	CHECK(!strcmp(iso, "2013-05-24T00:00:00Z"));
}

int main(void)
{
	sigv4();
	encode();
	xml();
	times();
	return unit_done();
}
