/* test_delta.c - the delta record (delta.c): a record built from two
 * blocks parses and rebuilds the second from the first, including a short
 * last page; the builder refuses more than its limit and no change; the
 * parser refuses every field out of its limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

int main(void)
{
	enum { L = 65536 + 1000 }; /* a short last page */
	static uint8_t base[L], blk[L], out[L], rec[2 * L];
	uint8_t full[FERRY_HASH_LEN] = { 7 }, bid[FERRY_HASH_LEN] = { 9 };
	struct ferry_delta d;
	size_t n;

	for (size_t i = 0; i < L; i++)
		base[i] = (uint8_t)(i * 31 + 7);
	memcpy(blk, base, L);
	/* no change: no delta */
	CHECK(ferry_delta_build(base, blk, L, full, bid, L / 2, rec, sizeof(rec)) == 0);
	blk[5] ^= 1;             /* page 0 */
	blk[4096 * 3 + 9] ^= 1;  /* page 3 */
	blk[4096 * 4] ^= 1;      /* page 4: one extent with page 3 */
	blk[L - 1] ^= 1;         /* the short last page */
	n = ferry_delta_build(base, blk, L, full, bid, L / 2, rec, sizeof(rec));
	CHECK(n == FERRY_DELTA_HDR + 3 * 8 + 4096 + 8192 + 1000);
	CHECK(ferry_delta_parse(rec, n, &d) == 0);
	CHECK(d.n == 3 && d.block_len == L && d.data_len == 4096 + 8192 + 1000);
	CHECK(!memcmp(d.full, full, sizeof(full)) && !memcmp(d.base, bid, sizeof(bid)));
	memcpy(out, base, L);
	ferry_delta_apply(&d, out);
	CHECK(!memcmp(out, blk, L));
	/* over the limit: refused */
	CHECK(ferry_delta_build(base, blk, L, full, bid, 8192, rec, sizeof(rec)) == 0);
	/* the parser: every damage refused */
	CHECK(ferry_delta_parse(rec, n - 1, &d) == FERRY_E_CORRUPT);
	CHECK(ferry_delta_parse(rec, n + 1, &d) == FERRY_E_CORRUPT);
	CHECK(ferry_delta_parse(rec, 10, &d) == FERRY_E_CORRUPT);
	rec[0] = 'X';
	CHECK(ferry_delta_parse(rec, n, &d) == FERRY_E_CORRUPT);
	rec[0] = 'F';
	put32(rec + 4, 0);                      /* block length 0 */
	CHECK(ferry_delta_parse(rec, n, &d) == FERRY_E_CORRUPT);
	put32(rec + 4, FERRY_BLOCK_MAX + 1);
	CHECK(ferry_delta_parse(rec, n, &d) == FERRY_E_CORRUPT);
	put32(rec + 4, L);
	put32(rec + 8, 0);                      /* no extents */
	CHECK(ferry_delta_parse(rec, n, &d) == FERRY_E_CORRUPT);
	put32(rec + 8, 3);
	put32(rec + FERRY_DELTA_HDR, 1);        /* unaligned offset */
	CHECK(ferry_delta_parse(rec, n, &d) == FERRY_E_CORRUPT);
	put32(rec + FERRY_DELTA_HDR, 4096 * 3); /* overlaps the next */
	CHECK(ferry_delta_parse(rec, n, &d) == FERRY_E_CORRUPT);
	put32(rec + FERRY_DELTA_HDR, 0);
	put32(rec + FERRY_DELTA_HDR + 16, L - 999); /* past the end */
	CHECK(ferry_delta_parse(rec, n, &d) == FERRY_E_CORRUPT);
	put32(rec + FERRY_DELTA_HDR + 16, L - 1000);
	put32(rec + FERRY_DELTA_HDR + 12, 4096);    /* touches the next... */
	put32(rec + FERRY_DELTA_HDR + 8, 4096 * 2); /* ...after an overlap */
	CHECK(ferry_delta_parse(rec, n, &d) == FERRY_E_CORRUPT);
	put32(rec + FERRY_DELTA_HDR + 8, 4096 * 3);
	put32(rec + FERRY_DELTA_HDR + 12, 8192);
	CHECK(ferry_delta_parse(rec, n, &d) == 0);
	return unit_done();
}
