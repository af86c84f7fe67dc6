/* s3_xml.c - a small bounded reader for the XML documents S3 answers
 * with (errors, listings, upload ids): it finds <Tag>text</Tag> pairs
 * inside a buffer of known length and never reads past it, allocates
 * nothing, and does not recurse.  Anything it does not recognise is
 * skipped. */
#include <string.h>

#include "s3.h"

/* memmem limited to BUF[from..len). */
static const char *find(const char *buf, size_t len, size_t from,
			const char *needle, size_t nlen)
{
	if (from > len || nlen == 0 || len - from < nlen)
		return NULL;
	for (size_t i = from; i + nlen <= len; i++)
		if (buf[i] == needle[0] && !memcmp(buf + i, needle, nlen))
			return buf + i;
	return NULL;
}

int s3_xml_next(const char *buf, size_t len, size_t *pos, const char *tag,
		const char **val, size_t *vlen)
{
	char open[72], close[72];
	size_t tl = strlen(tag), from = *pos;
	const char *o, *c, *start;

	if (tl == 0 || tl > 64)
		return 0;
	open[0] = '<';
	memcpy(open + 1, tag, tl);
	close[0] = '<';
	close[1] = '/';
	memcpy(close + 2, tag, tl);
	close[tl + 2] = '>';
	for (;;) {
		o = find(buf, len, from, open, tl + 1);
		if (!o)
			return 0;
		start = o + tl + 1;
		if (start >= buf + len)
			return 0;
		/* <Tag> or <Tag attr="..."> but not <TagOther>; <Tag/> is empty. */
		if (*start == '>' || *start == ' ' || *start == '/') {
			const char *gt = memchr(start, '>', (size_t)(buf + len - start));

			if (!gt)
				return 0;
			if (gt > start && gt[-1] == '/') {
				*val = gt;
				*vlen = 0;
				*pos = (size_t)(gt + 1 - buf);
				return 1;
			}
			start = gt + 1;
			break;
		}
		from = (size_t)(start - buf);
	}
	c = find(buf, len, (size_t)(start - buf), close, tl + 3);
	if (!c)
		return 0;
	*val = start;
	*vlen = (size_t)(c - start);
	*pos = (size_t)(c - buf) + tl + 3;
	return 1;
}

int s3_xml_get(const char *buf, size_t len, const char *tag, char *out,
	       size_t cap)
{
	static const struct {
		const char *ent;
		char ch;
	} ents[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		     { "&quot;", '"' }, { "&apos;", '\'' } };
	const char *v;
	size_t vl, pos = 0, n = 0;

	if (cap == 0)
		return 0;
	out[0] = 0;
	if (!s3_xml_next(buf, len, &pos, tag, &v, &vl))
		return 0;
	for (size_t i = 0; i < vl && n + 1 < cap;) {
		size_t k;

		if (v[i] == '&') {
			for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
				size_t el = strlen(ents[k].ent);

				if (vl - i >= el && !memcmp(v + i, ents[k].ent, el)) {
					out[n++] = ents[k].ch;
					i += el;
					break;
				}
			}
			if (k < sizeof(ents) / sizeof(ents[0]))
				continue;
		}
		out[n++] = v[i++];
	}
	out[n] = 0;
	return 1;
}

int s3_error_parse(const char *buf, size_t len, struct s3_error *err)
{
	const char *v;
	size_t vl, pos = 0;

	memset(err, 0, sizeof(*err));
	if (!s3_xml_next(buf, len, &pos, "Error", &v, &vl))
		return -1;
	s3_xml_get(v, vl, "Code", err->code, sizeof(err->code));
	s3_xml_get(v, vl, "Message", err->message, sizeof(err->message));
	/* Only printable ASCII reaches an error message. */
	for (char *p = err->code; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	for (char *p = err->message; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	return err->code[0] ? 0 : -1;
}
