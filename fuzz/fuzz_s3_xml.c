/* fuzz_s3_xml.c - libFuzzer target for the bounded reader of S3 answers
 * (error documents, listings, upload ids): bytes from the S3 server. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *v;
	struct s3_error err;
	char out[64];
	size_t pos = 0, vl;
	int n = 0;

	if (s3_error_parse(buf, size, &err) == 0 &&
	    (strlen(err.code) >= sizeof(err.code) || !err.code[0]))
		abort();
	/* a listing: every Contents element, its Key and Size */
	while (s3_xml_next(buf, size, &pos, "Contents", &v, &vl)) {
		if (v < buf || v + vl > buf + size || pos > size)
			abort();
		s3_xml_get(v, vl, "Key", out, sizeof(out));
		if (strlen(out) >= sizeof(out))
			abort();
		s3_xml_get(v, vl, "Size", out, sizeof(out));
		if (++n > 100000)
			abort();
	}
	s3_xml_get(buf, size, "NextContinuationToken", out, sizeof(out));
	s3_xml_get(buf, size, "UploadId", out, 1);
	return 0;
}
