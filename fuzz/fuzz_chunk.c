/* fuzz_chunk.c - libFuzzer target for the stored chunk form: the header
 * parser and the decoder (none, zstd, lz4) must reject any damage without
 * a crash or a read or write out of bounds, with or without an expected
 * hash, and whatever decodes must decode the same way twice.  Each input
 * is tried as given and again with its two CRC-32s recomputed, so that
 * mutations reach the field checks and the decompressors behind them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ferry_codec_ctx *ctx;
static uint8_t *big; /* FERRY_BLOCK_MAX bytes, the largest legal output */

static void one(const uint8_t *data, size_t size)
{
	uint8_t h[FERRY_HASH_LEN], *exact;
	uint32_t raw = 0, plen = 0;
	size_t outlen = 0, len2 = 0;
	int codec = -1, e;

	e = ferry_chunk_header(data, size, &raw, &plen, &codec);
	if (e != 0 && e != FERRY_E_CORRUPT)
		abort();

	/* Without an expected hash, into the largest buffer. */
	e = ferry_chunk_decode(ctx, data, size, big, FERRY_BLOCK_MAX, &outlen,
			       NULL);
	if (e != 0) {
		/* A well-framed sealed chunk needs the key: refused as such. */
		if (e != FERRY_E_CORRUPT &&
		    !(e == FERRY_E_KEY && ferry_chunk_is_sealed(data, size)))
			abort();
		return;
	}
	/* The header agreed, and the output is exactly what it announced. */
	if (raw == 0 || outlen != raw || plen != size - FERRY_CHUNK_HDR ||
	    codec < FERRY_CODEC_NONE || codec > FERRY_CODEC_LZ4)
		abort();

	/* Into a buffer of exactly the plaintext's size (so ASan sees any
	 * overrun), with the right hash, then with a wrong one. */
	ferry_sha256(big, outlen, h);
	exact = malloc(outlen);
	if (!exact)
		abort();
	if (ferry_chunk_decode(ctx, data, size, exact, outlen, &len2, h) != 0 ||
	    len2 != outlen || memcmp(exact, big, outlen) != 0)
		abort();
	h[FERRY_HASH_LEN - 1] ^= 1;
	if (ferry_chunk_decode(ctx, data, size, exact, outlen, &len2, h) !=
	    FERRY_E_CORRUPT)
		abort();
	/* One byte too small a buffer is refused, never overrun. */
	if (outlen > 1 &&
	    ferry_chunk_decode(ctx, data, size, exact, outlen - 1, &len2,
			       NULL) != FERRY_E_CORRUPT)
		abort();
	free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (!ctx) {
		ctx = ferry_codec_ctx_new(FERRY_CODEC_ZSTD, 3);
		big = malloc(FERRY_BLOCK_MAX);
		if (!ctx || !big)
			abort();
	}
	one(data, size);
	if (size < FERRY_CHUNK_HDR)
		return 0;
	/* Resealed: payload CRC over what follows the header, header CRC
	 * over bytes 0..19 (layout in chunk.c). */
	copy = malloc(size);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	ferry_put_le32(copy + 16,
		       ferry_crc32c(copy + FERRY_CHUNK_HDR,
				    size - FERRY_CHUNK_HDR));
	ferry_put_le32(copy + 20, ferry_crc32c(copy, 20));
	one(copy, size);
	free(copy);
	return 0;
}
