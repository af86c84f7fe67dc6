/* chunk.c - the stored form of a block: a checked header, then the
 * payload compressed with zstd or lz4 (or raw when that does not pay), and
 * the SHA-256 identity of the plaintext; in an encrypted repository the
 * payload is sealed with AES-256-GCM and the identity is keyed (HMAC). */
#include <lz4.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <zstd.h>

#include "internal.h"
#include "seal.h"

/* Header layout (little endian), see docs/format.md:
 *   0  4  magic "FCH1"
 *   4  1  codec
 *   5  3  zero
 *   8  4  raw (plaintext) length
 *  12  4  payload length
 *  16  4  CRC-32C of the payload
 *  20  4  CRC-32C of bytes 0..19
 *
 * Sealed (encrypted repository), docs/format.md "Encryption":
 *   0  4  magic "FCE1"
 *   4  1  codec
 *   5  3  zero
 *   8  4  raw (plaintext) length
 *  12  4  payload length (ciphertext + 16-byte GCM tag)
 *  16 12  nonce (random per object)
 *  28  4  CRC-32C of the payload (what a keyless mover checks)
 *  32  4  CRC-32C of bytes 0..31
 * Bytes 0..27 are the GCM additional data. */

struct ferry_codec_ctx {
	int codec, level;
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
	/* Encrypted repository: keys, cipher and HMAC state, and room for
	 * the opened payload of a compressed chunk. */
	int keyed;
	struct ferry_keys keys;
	/* Keyed once at set-up: per chunk only the nonce is set, and the
	 * id is two SHA-256 state copies from the prepared HMAC pads. */
	EVP_CIPHER_CTX *seal, *open;
	struct ferry_hmac *mac;
	EVP_MD_CTX *md;
	uint8_t *scratch;
	size_t scratch_cap;
};

struct ferry_codec_ctx *ferry_codec_ctx_new(int codec, int level)
{
	struct ferry_codec_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->codec = codec;
	c->level = level;
	c->zd = ZSTD_createDCtx();
	if (!c->zd)
		goto fail;
	if (codec == FERRY_CODEC_ZSTD) {
		c->zc = ZSTD_createCCtx();
		if (!c->zc)
			goto fail;
		int lv = level ? level : FERRY_ZSTD_DEFAULT_LEVEL;

		ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, lv);
		/* Level 2 (the default) with a 32 Ki-entry hash table, not
		 * zstd's 64 Ki: on 1 MiB blocks of a 4 GiB disk image that
		 * compressed 25 % faster for 0.5 % more bytes (the smaller
		 * table stays in the core's cache).  Same zstd frames. */
		if (lv == 2)
			ZSTD_CCtx_setParameter(c->zc, ZSTD_c_hashLog, 15);
	}
	return c;
fail:
	ferry_codec_ctx_free(c);
	return NULL;
}

void ferry_codec_ctx_free(struct ferry_codec_ctx *c)
{
	if (!c)
		return;
	ZSTD_freeCCtx(c->zc);
	ZSTD_freeDCtx(c->zd);
	EVP_CIPHER_CTX_free(c->seal);
	EVP_CIPHER_CTX_free(c->open);
	ferry_hmac_free(c->mac);
	EVP_MD_CTX_free(c->md);
	free(c->scratch);
	ferry_keys_wipe(&c->keys);
	free(c);
}

int ferry_codec_ctx_set_keys(struct ferry_codec_ctx *c,
			     const struct ferry_keys *k)
{
	memcpy(&c->keys, k, sizeof(c->keys));
	c->seal = ferry_gcm_ctx_new(c->keys.enc, 1);
	c->open = ferry_gcm_ctx_new(c->keys.enc, 0);
	c->mac = ferry_hmac_new(c->keys.id, sizeof(c->keys.id));
	c->md = EVP_MD_CTX_new();
	if (!c->seal || !c->open || !c->mac || !c->md)
		return ferry_error(FERRY_E_NOMEM, "no AES-GCM or HMAC context");
	c->keyed = 1;
	return 0;
}

struct ferry_codec_ctx *ferry_codec_ctx_for(const struct ferry_repo *r,
					    int codec, int level)
{
	struct ferry_codec_ctx *c;

	if (r && r->encrypted && !r->keys) {
		ferry_error(FERRY_E_KEY,
			    "%s is encrypted: give its passphrase (FERRY_PASSWORD, --password-file, or the prompt)",
			    r->path);
		return NULL;
	}
	if (!(c = ferry_codec_ctx_new(codec, level)))
		return NULL;
	if (r && r->keys && ferry_codec_ctx_set_keys(c, r->keys) != 0) {
		ferry_codec_ctx_free(c);
		return NULL;
	}
	return c;
}

int ferry_chunk_id(struct ferry_codec_ctx *c, const void *buf, size_t len,
		   uint8_t out[FERRY_HASH_LEN])
{
	if (!c || !c->keyed) {
		ferry_sha256(buf, len, out);
		return 0;
	}
	return ferry_hmac_sha256(c->mac, c->md, buf, len, out);
}

int ferry_repo_block_id(const struct ferry_repo *r, const void *buf,
			size_t len, uint8_t out[FERRY_HASH_LEN])
{
	EVP_MD_CTX *md;
	int e;

	if (!r || !r->keys) {
		if (r && r->encrypted)
			return ferry_repo_need_key(r);
		ferry_sha256(buf, len, out);
		return 0;
	}
	if (!(md = EVP_MD_CTX_new()))
		return FERRY_E_NOMEM;
	e = ferry_hmac_sha256(r->id_mac, md, buf, len, out);
	EVP_MD_CTX_free(md);
	return e;
}

size_t ferry_chunk_bound(size_t len)
{
	size_t z = ZSTD_compressBound(len);
	size_t l = (size_t)LZ4_compressBound((int)len);

	/* Room for the sealed form, whichever this repository uses. */
	return FERRY_SCHUNK_HDR + FERRY_TAG_LEN + (z > l ? z : l);
}

void ferry_sha256(const void *buf, size_t len, uint8_t out[FERRY_HASH_LEN])
{
	SHA256(buf, len, out);
}

static uint32_t crc(const void *p, size_t n)
{
	return ferry_crc32c(p, n);
}

/* Seal PLEN payload bytes at SRC (the compressed payload in place, or the
 * raw block) into OUT's sealed form. */
static int seal_chunk(struct ferry_codec_ctx *c, int codec, const void *src,
		      size_t raw, size_t plen, uint8_t *out, size_t *outlen)
{
	uint8_t *payload = out + FERRY_SCHUNK_HDR;
	int e;

	memcpy(out, FERRY_SCHUNK_MAGIC, 4);
	out[4] = (uint8_t)codec;
	out[5] = out[6] = out[7] = 0;
	ferry_put_le32(out + 8, (uint32_t)raw);
	ferry_put_le32(out + 12, (uint32_t)(plen + FERRY_TAG_LEN));
	/* A random 96-bit nonce per object: 2^32 chunks under one key keep
	 * the collision chance below 2^-32 (NIST SP 800-38D 8.3). */
	if ((e = ferry_random(out + 16, FERRY_NONCE_LEN)) != 0)
		return e;
	if ((e = ferry_seal(c->seal, NULL, out + 16, out, 28, src, plen,
			    payload, payload + plen)) != 0)
		return e;
	ferry_put_le32(out + 28, crc(payload, plen + FERRY_TAG_LEN));
	ferry_put_le32(out + 32, crc(out, 32));
	*outlen = FERRY_SCHUNK_HDR + plen + FERRY_TAG_LEN;
	return 0;
}

int ferry_chunk_encode(struct ferry_codec_ctx *c, const void *in, size_t len,
		       uint8_t *out, size_t cap, size_t *outlen)
{
	size_t hl = c->keyed ? FERRY_SCHUNK_HDR : FERRY_CHUNK_HDR;
	uint8_t *payload = out + hl;
	size_t room, plen = 0;
	int codec = FERRY_CODEC_NONE;

	if (len == 0 || len > FERRY_BLOCK_MAX)
		return ferry_error(FERRY_E_INVAL, "chunk of %zu bytes", len);
	if (cap < ferry_chunk_bound(len))
		return ferry_error(FERRY_E_INVAL, "chunk buffer too small");
	room = cap - FERRY_SCHUNK_HDR - FERRY_TAG_LEN;
	if (c->codec == FERRY_CODEC_ZSTD) {
		size_t z = ZSTD_compress2(c->zc, payload, room, in, len);

		if (!ZSTD_isError(z)) {
			plen = z;
			codec = FERRY_CODEC_ZSTD;
		}
	} else if (c->codec == FERRY_CODEC_LZ4) {
		int z = LZ4_compress_default(in, (char *)payload, (int)len,
					     (int)(room > INT32_MAX ? INT32_MAX
								    : room));
		if (z > 0) {
			plen = (size_t)z;
			codec = FERRY_CODEC_LZ4;
		}
	}
	/* Keep it raw unless compression saves at least 1/64: decoding raw
	 * data is free, decoding barely-compressed data is not. */
	if (codec == FERRY_CODEC_NONE || plen >= len - len / 64) {
		/* Sealing reads the plaintext where it is. */
		if (!c->keyed)
			memcpy(payload, in, len);
		plen = len;
		codec = FERRY_CODEC_NONE;
	}
	if (c->keyed)
		return seal_chunk(c, codec, codec == FERRY_CODEC_NONE ? in : payload,
				  len, plen, out, outlen);
	memcpy(out, FERRY_CHUNK_MAGIC, 4);
	out[4] = (uint8_t)codec;
	out[5] = out[6] = out[7] = 0;
	ferry_put_le32(out + 8, (uint32_t)len);
	ferry_put_le32(out + 12, (uint32_t)plen);
	ferry_put_le32(out + 16, crc(payload, plen));
	ferry_put_le32(out + 20, crc(out, 20));
	*outlen = FERRY_CHUNK_HDR + plen;
	return 0;
}

/* Both stored forms: *HL is the header length, *SEALED says which. */
static int parse_head(const uint8_t *in, size_t len, uint32_t *raw_len,
		      uint32_t *stored_len, int *codec, size_t *hl, int *sealed)
{
	struct ferry_rd r;
	uint8_t magic[4], cdc, pad[3], nonce[FERRY_NONCE_LEN];
	uint32_t raw, plen, pcrc, hcrc;
	size_t h;
	int s;

	ferry_rd_init(&r, in, len);
	ferry_rd_bytes(&r, magic, 4);
	if (r.bad)
		return ferry_error(FERRY_E_CORRUPT,
				   "chunk truncated: %zu bytes, header needs %d",
				   len, FERRY_CHUNK_HDR);
	if (!memcmp(magic, FERRY_CHUNK_MAGIC, 4))
		s = 0;
	else if (!memcmp(magic, FERRY_SCHUNK_MAGIC, 4))
		s = 1;
	else
		return ferry_error(FERRY_E_CORRUPT, "chunk has a bad magic");
	h = s ? FERRY_SCHUNK_HDR : FERRY_CHUNK_HDR;
	ferry_rd_u8(&r, &cdc);
	ferry_rd_bytes(&r, pad, 3);
	ferry_rd_u32(&r, &raw);
	ferry_rd_u32(&r, &plen);
	if (s)
		ferry_rd_bytes(&r, nonce, sizeof(nonce));
	ferry_rd_u32(&r, &pcrc);
	ferry_rd_u32(&r, &hcrc);
	if (r.bad)
		return ferry_error(FERRY_E_CORRUPT,
				   "chunk truncated: %zu bytes, header needs %zu",
				   len, h);
	if (crc(in, h - 4) != hcrc)
		return ferry_error(FERRY_E_CORRUPT,
				   "chunk header checksum mismatch");
	if (cdc > FERRY_CODEC_LZ4 || pad[0] || pad[1] || pad[2])
		return ferry_error(FERRY_E_CORRUPT, "chunk has unknown codec %u",
				   cdc);
	if (raw > FERRY_BLOCK_MAX || raw == 0)
		return ferry_error(FERRY_E_CORRUPT,
				   "chunk plaintext length %u out of range", raw);
	if (plen != len - h)
		return ferry_error(FERRY_E_CORRUPT,
				   "chunk payload is %zu bytes, header says %u",
				   len - h, plen);
	if (s && plen <= FERRY_TAG_LEN)
		return ferry_error(FERRY_E_CORRUPT, "sealed chunk has no payload");
	if (cdc == FERRY_CODEC_NONE && plen != raw + (s ? FERRY_TAG_LEN : 0))
		return ferry_error(FERRY_E_CORRUPT, "raw chunk length mismatch");
	*raw_len = raw;
	*stored_len = plen;
	*codec = cdc;
	*hl = h;
	*sealed = s;
	return 0;
}

int ferry_chunk_header(const uint8_t *in, size_t len, uint32_t *raw_len,
		       uint32_t *stored_len, int *codec)
{
	size_t hl;
	int sealed;

	return parse_head(in, len, raw_len, stored_len, codec, &hl, &sealed);
}

int ferry_chunk_is_sealed(const uint8_t *in, size_t len)
{
	return len >= 4 && !memcmp(in, FERRY_SCHUNK_MAGIC, 4);
}

int ferry_chunk_check(const uint8_t *in, size_t len, uint32_t *raw_len)
{
	uint32_t plen;
	size_t hl;
	int codec, sealed, e;

	if ((e = parse_head(in, len, raw_len, &plen, &codec, &hl, &sealed)) != 0)
		return e;
	if (crc(in + hl, plen) != ferry_le32(in + hl - 8))
		return ferry_error(FERRY_E_CORRUPT, "chunk payload checksum mismatch");
	return 0;
}

int ferry_chunk_decode(struct ferry_codec_ctx *c, const uint8_t *in,
		       size_t len, uint8_t *out, size_t cap, size_t *outlen,
		       const uint8_t expect[FERRY_HASH_LEN])
{
	uint32_t raw, plen;
	size_t hl;
	int codec, sealed, r;
	const uint8_t *payload;
	uint8_t h[FERRY_HASH_LEN];

	if ((r = parse_head(in, len, &raw, &plen, &codec, &hl, &sealed)) != 0)
		return r;
	payload = in + hl;
	if (sealed && !c->keyed)
		return ferry_error(FERRY_E_KEY,
				   "chunk is encrypted: the repository's key is needed");
	if (!sealed && c->keyed)
		return ferry_error(FERRY_E_CORRUPT,
				   "chunk is not sealed, in an encrypted repository");
	if (raw > cap)
		return ferry_error(FERRY_E_CORRUPT,
				   "chunk plaintext of %u bytes exceeds %zu",
				   raw, cap);
	if (crc(payload, plen) != ferry_le32(in + hl - 8))
		return ferry_error(FERRY_E_CORRUPT,
				   "chunk payload checksum mismatch");
	if (sealed) {
		uint8_t *dst;

		plen -= FERRY_TAG_LEN;
		if (codec == FERRY_CODEC_NONE) {
			dst = out;
		} else {
			if (c->scratch_cap < plen) {
				uint8_t *n = realloc(c->scratch, plen);

				if (!n)
					return FERRY_E_NOMEM;
				c->scratch = n;
				c->scratch_cap = plen;
			}
			dst = c->scratch;
		}
		if ((r = ferry_open(c->open, NULL, in + 16, in, 28, payload,
				    plen, dst, payload + plen)) != 0)
			return r == FERRY_E_CORRUPT
				       ? ferry_error(r, "sealed chunk fails authentication (AES-GCM tag mismatch)")
				       : r;
		payload = dst;
	}
	switch (codec) {
	case FERRY_CODEC_NONE:
		if (payload != out)
			memcpy(out, payload, raw);
		break;
	case FERRY_CODEC_ZSTD: {
		size_t z = ZSTD_decompressDCtx(c->zd, out, raw, payload, plen);

		if (ZSTD_isError(z) || z != raw)
			return ferry_error(FERRY_E_CORRUPT,
					   "chunk does not decompress (zstd: %s)",
					   ZSTD_isError(z) ? ZSTD_getErrorName(z)
							   : "wrong length");
		break;
	}
	case FERRY_CODEC_LZ4: {
		int z = LZ4_decompress_safe((const char *)payload, (char *)out,
					    (int)plen, (int)raw);

		if (z < 0 || (uint32_t)z != raw)
			return ferry_error(FERRY_E_CORRUPT,
					   "chunk does not decompress (lz4)");
		break;
	}
	}
	if (expect) {
		if ((r = ferry_chunk_id(c, out, raw, h)) != 0)
			return r;
		if (memcmp(h, expect, FERRY_HASH_LEN) != 0)
			return ferry_error(FERRY_E_CORRUPT,
					   "chunk content does not match its id");
	}
	*outlen = raw;
	return 0;
}

int ferry_codec_parse(const char *s, int *codec, int *level)
{
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);
	long lv = 0;

	if (colon) {
		char *end;

		lv = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end)
			return FERRY_E_INVAL;
	}
	if (n == 4 && !strncmp(s, "zstd", 4)) {
		if (colon && (lv < 1 || lv > ZSTD_maxCLevel()))
			return FERRY_E_INVAL;
		*codec = FERRY_CODEC_ZSTD;
		*level = colon ? (int)lv : FERRY_ZSTD_DEFAULT_LEVEL;
	} else if (n == 3 && !strncmp(s, "lz4", 3) && !colon) {
		*codec = FERRY_CODEC_LZ4;
		*level = 0;
	} else if (n == 4 && !strncmp(s, "none", 4) && !colon) {
		*codec = FERRY_CODEC_NONE;
		*level = 0;
	} else {
		return FERRY_E_INVAL;
	}
	return 0;
}

const char *ferry_codec_name(int codec)
{
	switch (codec) {
	case FERRY_CODEC_NONE: return "none";
	case FERRY_CODEC_ZSTD: return "zstd";
	case FERRY_CODEC_LZ4: return "lz4";
	default: return "unknown";
	}
}
