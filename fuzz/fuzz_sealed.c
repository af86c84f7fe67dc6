/* fuzz_sealed.c - libFuzzer target for the parsers of an encrypted
 * repository: the sealed chunk form (FCE1) under fixed keys, and the key
 * lines of the config (text; scrypt or argon2id cost, bounded).  The first byte picks the parser.  Sealed
 * chunks are tried as given and with their two CRC-32Cs recomputed, so
 * mutations reach the AES-GCM tag check; nothing may decode without the
 * tag holding, and nothing may crash or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ferry_codec_ctx *ctx;
static uint8_t *big;

static void chunk(const uint8_t *data, size_t size)
{
	uint32_t raw, plen;
	size_t outlen;
	int codec, e;

	e = ferry_chunk_header(data, size, &raw, &plen, &codec);
	if (e != 0 && e != FERRY_E_CORRUPT)
		abort();
	e = ferry_chunk_check(data, size, &raw);
	if (e != 0 && e != FERRY_E_CORRUPT)
		abort();
	e = ferry_chunk_decode(ctx, data, size, big, FERRY_BLOCK_MAX, &outlen, NULL);
	if (e != 0 && e != FERRY_E_CORRUPT && e != FERRY_E_NOMEM)
		abort();
	if (e == 0 && outlen > FERRY_BLOCK_MAX)
		abort();
}

static void keylines(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct ferry_keyfile kf;
	struct ferry_keys k;
	uint8_t kek[FERRY_KEY_LEN] = { 0 };
	int e;

	if (!text)
		return;
	memcpy(text, data, size);
	text[size] = 0;
	e = ferry_keyfile_parse(text, &kf);
	if (e == 0) {
		char out[1024];

		/* What was accepted is in range: a derivation from it
		 * cannot ask for more than 1 GiB or 32 passes. */
		if (kf.kdf == FERRY_KDF_SCRYPT &&
		    (kf.log_n < 10 || kf.log_n > 22 || !kf.r || !kf.p ||
		     kf.salt_len != FERRY_SALT_LEN))
			abort();
		if (kf.kdf == FERRY_KDF_ARGON2ID &&
		    (kf.opslimit < 1 || kf.opslimit > FERRY_ARGON2_OPS_MAX ||
		     kf.memlimit < FERRY_ARGON2_MEM_MIN ||
		     kf.memlimit > FERRY_ARGON2_MEM_MAX || kf.memlimit % 1024 ||
		     kf.salt_len != FERRY_ARGON2_SALT_LEN))
			abort();
		if (kf.kdf != FERRY_KDF_SCRYPT && kf.kdf != FERRY_KDF_ARGON2ID)
			abort();
		/* Unwrap with a fixed key-encryption key (the KDF is not
		 * fuzzed: it is OpenSSL's / libsodium's, and slow by
		 * design). */
		e = ferry_keyfile_unwrap(&kf, kek, "00112233445566778899aabbccddeeff", &k);
		if (e != 0 && e != FERRY_E_KEY)
			abort();
		if (ferry_keyfile_format(&kf, out, sizeof(out)) != 0)
			abort();
	} else if (e != FERRY_E_CORRUPT && e != FERRY_E_VERSION) {
		abort();
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ctx) {
		struct ferry_keys keys;

		for (int i = 0; i < 32; i++) {
			keys.enc[i] = (uint8_t)i;
			keys.id[i] = (uint8_t)(32 + i);
		}
		ctx = ferry_codec_ctx_new(FERRY_CODEC_NONE, 0);
		big = malloc(FERRY_BLOCK_MAX);
		if (!ctx || !big || ferry_codec_ctx_set_keys(ctx, &keys))
			abort();
	}
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		keylines(data + 1, size - 1);
		return 0;
	}
	data++;
	size--;
	chunk(data, size);
	if (size >= FERRY_SCHUNK_HDR && size <= (4u << 20)) {
		uint8_t *copy = malloc(size);

		if (!copy)
			abort();
		memcpy(copy, data, size);
		ferry_put_le32(copy + 28, ferry_crc32c(copy + 36, size - 36));
		ferry_put_le32(copy + 32, ferry_crc32c(copy, 32));
		chunk(copy, size);
		free(copy);
	}
	return 0;
}
