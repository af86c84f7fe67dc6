/* test_chunk.c - the stored chunk form: every codec round-trips
 * compressible, random and tiny blocks; data that does not shrink is kept
 * raw; and any damage (a flipped bit, a cut, a wrong id) fails decode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

static const int codecs[] = { FERRY_CODEC_NONE, FERRY_CODEC_ZSTD,
			      FERRY_CODEC_LZ4 };

static void fill_text(uint8_t *p, size_t n)
{
	static const char words[] = "block chunk manifest restore point ";

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)words[(i * 7 / 5) % (sizeof(words) - 1)];
}

static void fill_random(uint8_t *p, size_t n, uint32_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 24);
	}
}

/* Encode IN with CTX, decode it back (with its id), compare; returns the
 * codec recorded in the stored form, or -1 on any failure. */
static int round_trip(struct ferry_codec_ctx *ctx, const uint8_t *in,
		      size_t len, size_t *stored)
{
	size_t cap = ferry_chunk_bound(len), outlen = 0, back = 0;
	uint8_t *enc = malloc(cap), *dec = malloc(len ? len : 1);
	uint8_t id[FERRY_HASH_LEN];
	uint32_t raw = 0, plen = 0;
	int codec = -1, ok;

	ferry_sha256(in, len, id);
	ok = enc && dec &&
	     ferry_chunk_encode(ctx, in, len, enc, cap, &outlen) == 0 &&
	     ferry_chunk_header(enc, outlen, &raw, &plen, &codec) == 0 &&
	     raw == len && plen + FERRY_CHUNK_HDR == outlen &&
	     ferry_chunk_decode(ctx, enc, outlen, dec, len, &back, id) == 0 &&
	     back == len && memcmp(dec, in, len) == 0;
	*stored = outlen;
	free(enc);
	free(dec);
	return ok ? codec : -1;
}

static void test_round_trips(void)
{
	size_t big = FERRY_BLOCK_DEFAULT, stored;
	uint8_t *text = malloc(big), *rnd = malloc(big);
	static const size_t tiny[] = { 1, 2, 7, 63, 64, 65, 100, 4095 };

	CHECK(text && rnd);
	if (!text || !rnd)
		exit(1);
	fill_text(text, big);
	fill_random(rnd, big, 1);
	for (size_t c = 0; c < FERRY_ARRAY_SIZE(codecs); c++) {
		struct ferry_codec_ctx *ctx = ferry_codec_ctx_new(codecs[c], 0);

		CHECK(ctx != NULL);
		/* Compressible: stored with the repository's codec, and
		 * much smaller unless the codec is none. */
		CHECK(round_trip(ctx, text, big, &stored) == codecs[c]);
		if (codecs[c] == FERRY_CODEC_NONE)
			CHECK(stored == big + FERRY_CHUNK_HDR);
		else
			CHECK(stored < big / 8);
		/* Random: does not shrink, so it is stored raw. */
		CHECK(round_trip(ctx, rnd, big, &stored) == FERRY_CODEC_NONE);
		CHECK(stored == big + FERRY_CHUNK_HDR);
		CHECK(round_trip(ctx, rnd, FERRY_BLOCK_MIN, &stored) ==
		      FERRY_CODEC_NONE);
		/* Tiny blocks of either kind round-trip whatever is chosen. */
		for (size_t i = 0; i < FERRY_ARRAY_SIZE(tiny); i++) {
			CHECK(round_trip(ctx, text, tiny[i], &stored) >= 0);
			CHECK(round_trip(ctx, rnd, tiny[i], &stored) ==
			      FERRY_CODEC_NONE);
		}
		/* The largest block there is. */
		{
			uint8_t *max = calloc(1, FERRY_BLOCK_MAX);

			CHECK(max != NULL);
			if (max) {
				fill_text(max, FERRY_BLOCK_MAX);
				CHECK(round_trip(ctx, max, FERRY_BLOCK_MAX,
						 &stored) == codecs[c]);
				free(max);
			}
		}
		ferry_codec_ctx_free(ctx);
	}
	/* zstd levels other than the default work too. */
	{
		struct ferry_codec_ctx *z1 = ferry_codec_ctx_new(FERRY_CODEC_ZSTD, 1),
				       *z19 = ferry_codec_ctx_new(FERRY_CODEC_ZSTD, 19);

		CHECK(round_trip(z1, text, 200000, &stored) == FERRY_CODEC_ZSTD);
		CHECK(round_trip(z19, text, 200000, &stored) == FERRY_CODEC_ZSTD);
		ferry_codec_ctx_free(z1);
		ferry_codec_ctx_free(z19);
	}
	ferry_codec_ctx_free(NULL); /* a no-op */
	free(text);
	free(rnd);
}

/* Every single-bit flip and every truncation of ENC is refused, with and
 * without the expected id; so is one trailing byte more. */
static void test_damage(struct ferry_codec_ctx *ctx, const uint8_t *enc,
			size_t n, size_t rawlen, const uint8_t id[FERRY_HASH_LEN])
{
	uint8_t *buf = malloc(n + 1), *out = malloc(rawlen);
	size_t outlen, undetected = 0, cut_ok = 0;

	if (!buf || !out)
		exit(1);
	memcpy(buf, enc, n);
	CHECK(ferry_chunk_decode(ctx, buf, n, out, rawlen, &outlen, id) == 0);
	for (size_t i = 0; i < n * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		if (ferry_chunk_decode(ctx, buf, n, out, rawlen, &outlen,
				       NULL) != FERRY_E_CORRUPT ||
		    ferry_chunk_decode(ctx, buf, n, out, rawlen, &outlen,
				       id) != FERRY_E_CORRUPT)
			undetected++;
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	CHECK(undetected == 0);
	for (size_t len = 0; len < n; len++) {
		uint32_t r, p;
		int c;

		if (ferry_chunk_decode(ctx, buf, len, out, rawlen, &outlen,
				       NULL) != FERRY_E_CORRUPT ||
		    ferry_chunk_header(buf, len, &r, &p, &c) != FERRY_E_CORRUPT)
			cut_ok++;
	}
	CHECK(cut_ok == 0);
	buf[n] = 0;
	CHECK(ferry_chunk_decode(ctx, buf, n + 1, out, rawlen, &outlen, NULL) ==
	      FERRY_E_CORRUPT);
	free(buf);
	free(out);
}

/* Set byte AT of a copy of ENC to V, fix the header checksum, and check
 * that both the header parser and the decoder refuse it. */
static int resealed_fails(struct ferry_codec_ctx *ctx, const uint8_t *enc,
			  size_t n, size_t at, uint8_t v)
{
	uint8_t buf[4096], out[4096];
	uint32_t raw, plen;
	size_t outlen;
	int codec;

	if (n > sizeof(buf))
		return 0;
	memcpy(buf, enc, n);
	buf[at] = v;
	ferry_put_le32(buf + 20, ferry_crc32c(buf, 20));
	return ferry_chunk_header(buf, n, &raw, &plen, &codec) ==
		       FERRY_E_CORRUPT &&
	       ferry_chunk_decode(ctx, buf, n, out, sizeof(out), &outlen,
				  NULL) == FERRY_E_CORRUPT;
}

static void test_checks(void)
{
	uint8_t plain[3000], wrong[FERRY_HASH_LEN];
	uint8_t enc[8192], out[3000];
	size_t n, outlen;

	fill_text(plain, sizeof(plain));
	for (size_t c = 0; c < FERRY_ARRAY_SIZE(codecs); c++) {
		struct ferry_codec_ctx *ctx = ferry_codec_ctx_new(codecs[c], 0);
		size_t len = codecs[c] == FERRY_CODEC_NONE ? 300 : sizeof(plain);
		uint8_t lid[FERRY_HASH_LEN];

		ferry_sha256(plain, len, lid);
		CHECK(ferry_chunk_encode(ctx, plain, len, enc, sizeof(enc),
					 &n) == 0);
		CHECK(enc[4] == codecs[c]);
		test_damage(ctx, enc, n, len, lid);

		/* A wrong id is caught, and names what failed. */
		memcpy(wrong, lid, sizeof(wrong));
		wrong[7] ^= 0x40;
		CHECK(ferry_chunk_decode(ctx, enc, n, out, sizeof(out), &outlen,
					 wrong) == FERRY_E_CORRUPT);
		CHECK(strstr(ferry_last_error(), "does not match") != NULL);
		/* An output buffer one byte short is refused. */
		CHECK(ferry_chunk_decode(ctx, enc, n, out, len - 1, &outlen,
					 NULL) == FERRY_E_CORRUPT);
		ferry_codec_ctx_free(ctx);
	}

	/* Encode refuses a buffer below the bound and an oversized block. */
	{
		struct ferry_codec_ctx *ctx = ferry_codec_ctx_new(FERRY_CODEC_ZSTD, 3);

		CHECK(ferry_chunk_encode(ctx, plain, sizeof(plain), enc,
					 ferry_chunk_bound(sizeof(plain)) - 1,
					 &n) == FERRY_E_INVAL);
		CHECK(ferry_chunk_encode(ctx, plain, (size_t)FERRY_BLOCK_MAX + 1,
					 enc, sizeof(enc), &n) == FERRY_E_INVAL);
		ferry_codec_ctx_free(ctx);
	}

	/* Headers whose checksum is right but whose fields are impossible. */
	{
		struct ferry_codec_ctx *ctx = ferry_codec_ctx_new(FERRY_CODEC_NONE, 0);
		uint8_t good[FERRY_CHUNK_HDR + 100];
		uint32_t raw, plen;
		int codec;

		CHECK(ferry_chunk_encode(ctx, plain, 100, good, sizeof(good),
					 &n) == FERRY_E_INVAL); /* under the bound */
		CHECK(ferry_chunk_encode(ctx, plain, 100, enc, sizeof(enc), &n) == 0);
		CHECK(n == sizeof(good));
		memcpy(good, enc, n);
		CHECK(ferry_chunk_header(good, n, &raw, &plen, &codec) == 0 &&
		      raw == 100 && plen == 100 && codec == FERRY_CODEC_NONE);
		CHECK(resealed_fails(ctx, good, n, 4, 3));    /* unknown codec */
		CHECK(resealed_fails(ctx, good, n, 5, 1));    /* padding not 0 */
		CHECK(resealed_fails(ctx, good, n, 7, 1));
		CHECK(resealed_fails(ctx, good, n, 8, 0));    /* raw: 100 -> 0 */
		CHECK(resealed_fails(ctx, good, n, 8, 99));   /* raw != stored */
		CHECK(resealed_fails(ctx, good, n, 11, 0x01)); /* raw > 16 MiB */
		CHECK(resealed_fails(ctx, good, n, 12, 99));  /* stored != size */
		CHECK(resealed_fails(ctx, good, n, 0, 'f'));  /* magic "fCH1" */
		ferry_codec_ctx_free(ctx);
	}
}

int main(void)
{
	test_round_trips();
	test_checks();
	return unit_done();
}
