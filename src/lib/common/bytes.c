/* bytes.c - bounded little-endian readers and writers: the only way
 * libferry reads fields out of untrusted bytes (manifests, chunk headers,
 * frames); no pointer casts, every length checked. */
#include <stdio.h>

#include "common.h"

static int rd_take(struct ferry_rd *r, size_t n, const uint8_t **p)
{
	if (r->bad || r->left < n) {
		r->bad = 1;
		return FERRY_E_CORRUPT;
	}
	*p = r->p;
	r->p += n;
	r->left -= n;
	return 0;
}

int ferry_rd_u8(struct ferry_rd *r, uint8_t *v)
{
	const uint8_t *p;

	if (rd_take(r, 1, &p))
		return FERRY_E_CORRUPT;
	*v = p[0];
	return 0;
}

int ferry_rd_u16(struct ferry_rd *r, uint16_t *v)
{
	const uint8_t *p;

	if (rd_take(r, 2, &p))
		return FERRY_E_CORRUPT;
	*v = (uint16_t)(p[0] | p[1] << 8);
	return 0;
}

int ferry_rd_u32(struct ferry_rd *r, uint32_t *v)
{
	const uint8_t *p;

	if (rd_take(r, 4, &p))
		return FERRY_E_CORRUPT;
	*v = ferry_le32(p);
	return 0;
}

int ferry_rd_u64(struct ferry_rd *r, uint64_t *v)
{
	const uint8_t *p;

	if (rd_take(r, 8, &p))
		return FERRY_E_CORRUPT;
	*v = (uint64_t)ferry_le32(p) | (uint64_t)ferry_le32(p + 4) << 32;
	return 0;
}

int ferry_rd_bytes(struct ferry_rd *r, void *out, size_t n)
{
	const uint8_t *p;

	if (rd_take(r, n, &p))
		return FERRY_E_CORRUPT;
	if (n)
		memcpy(out, p, n);
	return 0;
}

const uint8_t *ferry_rd_ptr(struct ferry_rd *r, size_t n)
{
	const uint8_t *p;

	if (rd_take(r, n, &p))
		return NULL;
	return p;
}

static uint8_t *wr_take(struct ferry_wr *w, size_t n)
{
	uint8_t *p;

	if (w->bad || w->left < n) {
		w->bad = 1;
		return NULL;
	}
	p = w->p;
	w->p += n;
	w->left -= n;
	return p;
}

void ferry_wr_u8(struct ferry_wr *w, uint8_t v)
{
	uint8_t *p = wr_take(w, 1);

	if (p)
		p[0] = v;
}

void ferry_wr_u16(struct ferry_wr *w, uint16_t v)
{
	uint8_t *p = wr_take(w, 2);

	if (p) {
		p[0] = (uint8_t)v;
		p[1] = (uint8_t)(v >> 8);
	}
}

void ferry_wr_u32(struct ferry_wr *w, uint32_t v)
{
	uint8_t *p = wr_take(w, 4);

	if (p)
		ferry_put_le32(p, v);
}

void ferry_wr_u64(struct ferry_wr *w, uint64_t v)
{
	uint8_t *p = wr_take(w, 8);

	if (p) {
		ferry_put_le32(p, (uint32_t)v);
		ferry_put_le32(p + 4, (uint32_t)(v >> 32));
	}
}

void ferry_wr_bytes(struct ferry_wr *w, const void *v, size_t n)
{
	uint8_t *p = wr_take(w, n);

	if (p && n)
		memcpy(p, v, n);
}

void ferry_hash_hex(const uint8_t hash[FERRY_HASH_LEN], char out[65])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < FERRY_HASH_LEN; i++) {
		out[2 * i] = digits[hash[i] >> 4];
		out[2 * i + 1] = digits[hash[i] & 15];
	}
	out[64] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ferry_hex_decode(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo;

		if (hi < 0)
			return FERRY_E_INVAL;
		lo = hexval(hex[2 * i + 1]);
		if (lo < 0)
			return FERRY_E_INVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int ferry_is_zero(const void *buf, size_t n)
{
	const uint8_t *p = buf;
	static const uint8_t zeros[64];

	if (n <= 64)
		return memcmp(p, zeros, n) == 0;
	/* The first 64 bytes are zero, so comparing the buffer with itself
	 * shifted by 64 proves the rest is zero, with a vectorised memcmp. */
	return memcmp(p, zeros, 64) == 0 && memcmp(p, p + 64, n - 64) == 0;
}
