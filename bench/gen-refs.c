/* gen-refs.c - builds a synthetic repository for bench/run-gc through the
 * library: CHUNKS small live chunks, GARBAGE unreferenced ones, and POINTS
 * manifests of ENTRIES blocks each naming random live chunks (so the
 * manifests hold POINTS x ENTRIES chunk references).  Only gc reads it:
 * the chunks are 16-byte blocks, not whole blocks.
 * usage: gen-refs REPO CHUNKS GARBAGE POINTS ENTRIES */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static int chunk_of(struct ferry_repo *r, struct ferry_codec_ctx *c,
		    uint64_t n, uint8_t h[FERRY_HASH_LEN])
{
	uint8_t plain[16], out[128];
	size_t len;
	int e;

	memset(plain, 0, sizeof(plain));
	for (int i = 0; i < 8; i++)
		plain[i] = (uint8_t)(n >> (8 * i));
	ferry_sha256(plain, sizeof(plain), h);
	if (!r)
		return 0;
	if ((e = ferry_chunk_encode(c, plain, sizeof(plain), out, sizeof(out),
				    &len)) != 0)
		return e;
	e = r->ops->put_chunk(r, h, out, len);
	return e < 0 ? e : 0;
}

int main(int argc, char **argv)
{
	struct ferry_init_opts io = { 65536, FERRY_CODEC_NONE, 0, NULL };
	struct ferry_codec_ctx *c;
	struct ferry_repo *r;
	uint64_t chunks, garbage, points, entries;
	uint8_t h[FERRY_HASH_LEN];
	int e;

	if (argc != 6) {
		fprintf(stderr, "usage: gen-refs REPO CHUNKS GARBAGE POINTS ENTRIES\n");
		return 2;
	}
	chunks = strtoull(argv[2], NULL, 10);
	garbage = strtoull(argv[3], NULL, 10);
	points = strtoull(argv[4], NULL, 10);
	entries = strtoull(argv[5], NULL, 10);
	if ((e = ferry_repo_init(argv[1], &io)) != 0 ||
	    (e = ferry_repo_open(argv[1], &r)) != 0) {
		fprintf(stderr, "gen-refs: %s\n", ferry_last_error());
		return 1;
	}
	c = ferry_codec_ctx_new(FERRY_CODEC_NONE, 0);
	for (uint64_t i = 0; i < chunks + garbage; i++)
		if ((e = chunk_of(r, c, i, h)) != 0) {
			fprintf(stderr, "gen-refs: %s\n", ferry_last_error());
			return 1;
		}
	for (uint64_t p = 0; p < points; p++) {
		struct ferry_point pt;
		struct ferry_mwriter *w;
		uint8_t id[8];

		memset(&pt, 0, sizeof(pt));
		ferry_random(id, sizeof(id));
		for (int i = 0; i < 8; i++)
			snprintf(pt.id + 2 * i, 3, "%02x", id[i]);
		snprintf(pt.name, sizeof(pt.name), "synthetic-%llu",
			 (unsigned long long)(p % 50));
		snprintf(pt.source, sizeof(pt.source), "gen-refs");
		pt.block_size = 65536;
		pt.nblocks = entries;
		pt.disk_size = entries * 65536;
		pt.created_ns = ferry_now_ns();
		if ((e = ferry_mwriter_begin(r, &pt, &w)) != 0)
			goto fail;
		for (uint64_t k = 0; k < entries; k++) {
			/* every live chunk is referenced at least once when
			 * POINTS x ENTRIES >= CHUNKS */
			chunk_of(NULL, NULL, (p * entries + k) % chunks, h);
			if ((e = ferry_mwriter_add(w, FERRY_ENTRY_DATA, h)) != 0)
				goto fail;
		}
		if ((e = ferry_mwriter_commit(w, &pt)) != 0)
			goto fail;
		ferry_mwriter_free(w);
	}
	ferry_codec_ctx_free(c);
	ferry_repo_free(r);
	return 0;
fail:
	fprintf(stderr, "gen-refs: %s\n", ferry_last_error());
	return 1;
}
