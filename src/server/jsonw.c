/* jsonw.c - a growing text buffer with a JSON string writer, for the
 * large listings (/api/v1/points, /api/v1/jobs) that would otherwise
 * build one json-c object per row; output only (requests are parsed by
 * json-c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

static int grow(struct srv_buf *b, size_t need)
{
	size_t nc;
	char *np;

	if (b->oom)
		return -1;
	if (b->len + need + 1 <= b->cap)
		return 0;
	nc = (b->len + need + 1) * 2;
	if (nc < 4096)
		nc = 4096;
	if (!(np = realloc(b->p, nc))) {
		b->oom = 1;
		return -1;
	}
	b->p = np;
	b->cap = nc;
	return 0;
}

void srv_buf_raw(struct srv_buf *b, const char *s, size_t n)
{
	if (grow(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void srv_buf_printf(struct srv_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (b->p && b->len + (size_t)n < b->cap) {
		b->len += (size_t)n;
		return;
	}
	if (grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void srv_buf_num(struct srv_buf *b, const char *v)
{
	size_t n = 0;

	if (v && v[0] == '-')
		n = 1;
	while (v && v[n] >= '0' && v[n] <= '9')
		n++;
	if (!v || v[n] || n == 0 || (n == 1 && v[0] == '-') || n > 20)
		srv_buf_raw(b, "0", 1); /* not an integer: never emit raw text */
	else
		srv_buf_raw(b, v, n);
}

void srv_buf_str(struct srv_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strlen(s);

	/* Worst case: every byte becomes \u00XX. */
	if (grow(b, n * 6 + 2))
		return;
	b->p[b->len++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			b->p[b->len++] = '\\';
			b->p[b->len++] = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f) {
			b->p[b->len++] = '\\';
			b->p[b->len++] = 'u';
			b->p[b->len++] = '0';
			b->p[b->len++] = '0';
			b->p[b->len++] = hex[*p >> 4];
			b->p[b->len++] = hex[*p & 15];
		} else {
			b->p[b->len++] = (char)*p;
		}
	}
	b->p[b->len++] = '"';
	b->p[b->len] = 0;
}
