/* seal.h - encryption at rest: the repository keys, AES-256-GCM sealing of
 * objects, keyed chunk ids, and the passphrase-wrapped key kept in the
 * repository config (docs/encryption.md, docs/format.md "Encryption"). */
#ifndef FERRY_SEAL_H
#define FERRY_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define FERRY_KEY_LEN 32
#define FERRY_NONCE_LEN 12
#define FERRY_TAG_LEN 16
#define FERRY_SALT_LEN 32
/* The name in "features = ..." and the value of "encryption = ...". */
#define FERRY_FEATURE_ENCRYPTION "encryption"
#define FERRY_CIPHER_NAME "aes-256-gcm"

/* The unwrapped keys of a repository: ENC seals chunks and manifests,
 * ID keys the chunk ids (HMAC-SHA-256).  Wiped when freed. */
struct ferry_keys {
	uint8_t enc[FERRY_KEY_LEN];
	uint8_t id[FERRY_KEY_LEN];
};

/* Key derivation functions ("kdf = ..." in the config). */
#define FERRY_KDF_SCRYPT 1
#define FERRY_KDF_ARGON2ID 2
/* libsodium's crypto_pwhash_SALTBYTES */
#define FERRY_ARGON2_SALT_LEN 16

/* The key lines of the config, parsed and bounded (see the fuzz target). */
struct ferry_keyfile {
	int kdf;		/* FERRY_KDF_* */
	unsigned log_n, r, p;	/* scrypt cost: N = 2^log_n */
	unsigned opslimit;	/* argon2id passes */
	uint64_t memlimit;	/* argon2id memory, bytes */
	size_t salt_len;	/* FERRY_SALT_LEN (scrypt), 16 (argon2id) */
	uint8_t salt[FERRY_SALT_LEN];
	/* nonce || AES-256-GCM(enc key || id key) || tag */
	uint8_t wrapped[FERRY_NONCE_LEN + 2 * FERRY_KEY_LEN + FERRY_TAG_LEN];
};

/* Default scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, ~0.1 s here).
 * FERRY_KDF_LOG_N (10..22) overrides it at init, for tests and for
 * operators who want it slower. */
#define FERRY_KDF_LOG_N 15

/* Default Argon2id cost (the new repositories' KDF): 3 passes over
 * 64 MiB, one lane (RFC 9106's second recommended option, single lane
 * as libsodium runs it).  FERRY_KDF_OPSLIMIT (1..32) and
 * FERRY_KDF_MEMLIMIT_KIB (8..1048576) override it at init and when the
 * KDF is switched.  A config asking for more than these bounds (1 GiB,
 * 32 passes) is refused before anything is allocated. */
#define FERRY_ARGON2_OPSLIMIT 3
#define FERRY_ARGON2_MEMLIMIT (64ull << 20)
#define FERRY_ARGON2_OPS_MAX 32
#define FERRY_ARGON2_MEM_MIN (8ull << 10)
#define FERRY_ARGON2_MEM_MAX (1ull << 30)

/* FERRY_KDF_* for a name ("argon2id", "scrypt"; NULL or "" is the
 * default, argon2id); -1 for an unknown one.  The name of a FERRY_KDF_*. */
int ferry_kdf_by_name(const char *name);
const char *ferry_kdf_name(int kdf);
/* A fresh salt and the default (or environment) cost of KDF in KF. */
int ferry_keyfile_new_kdf(struct ferry_keyfile *kf, int kdf);
/* A fresh salt, and OLD's KDF and cost. */
int ferry_keyfile_new_like(struct ferry_keyfile *kf,
			   const struct ferry_keyfile *old);
/* "argon2id (3 passes, 64 MiB)" or "scrypt (N=2^15, r=8, p=1)". */
void ferry_keyfile_describe(const struct ferry_keyfile *kf, char *buf,
			    size_t cap);

/* Parse the key lines out of a config text.  FERRY_E_CORRUPT when a line
 * is missing or out of range (the detail names it). */
int ferry_keyfile_parse(const char *config, struct ferry_keyfile *kf);
/* The key lines for KF ("kdf = ...\n...key = ...\n") into BUF. */
int ferry_keyfile_format(const struct ferry_keyfile *kf, char *buf,
			 size_t cap);
/* Derive the key-encryption key from PASS with KF's parameters. */
int ferry_keyfile_kek(const struct ferry_keyfile *kf, const char *pass,
		      size_t passlen, uint8_t kek[FERRY_KEY_LEN]);
/* Wrap / unwrap KEYS with KEK; REPO_ID (32 hex) is bound as AAD.
 * Unwrap fails with FERRY_E_KEY when the tag does not match (a wrong
 * passphrase, or a damaged key line). */
int ferry_keyfile_wrap(struct ferry_keyfile *kf, const uint8_t kek[FERRY_KEY_LEN],
		       const char *repo_id, const struct ferry_keys *keys);
int ferry_keyfile_unwrap(const struct ferry_keyfile *kf,
			 const uint8_t kek[FERRY_KEY_LEN], const char *repo_id,
			 struct ferry_keys *keys);
/* New random keys, and a fresh salt with the default KDF and cost in KF. */
int ferry_keys_generate(struct ferry_keys *keys);
int ferry_keyfile_new(struct ferry_keyfile *kf);
void ferry_keys_wipe(struct ferry_keys *keys);

/* AES-256-GCM of LEN bytes IN -> OUT (may be IN), tag to TAG.  CTX may
 * be NULL (one is made for the call); pass a per-thread one on hot
 * paths.  KEY NULL: CTX was keyed once by ferry_gcm_ctx_new (the AES key
 * schedule and GHASH key are not recomputed per object; only the nonce
 * is set). */
struct evp_cipher_ctx_st;
int ferry_seal(struct evp_cipher_ctx_st *ctx, const uint8_t *key,
	       const uint8_t nonce[FERRY_NONCE_LEN], const void *aad,
	       size_t aadlen, const void *in, size_t len, void *out,
	       uint8_t tag[FERRY_TAG_LEN]);
/* The reverse; FERRY_E_CORRUPT when the tag does not match (OUT must then
 * be ignored). */
int ferry_open(struct evp_cipher_ctx_st *ctx, const uint8_t *key,
	       const uint8_t nonce[FERRY_NONCE_LEN], const void *aad,
	       size_t aadlen, const void *in, size_t len, void *out,
	       const uint8_t tag[FERRY_TAG_LEN]);
/* A context keyed with KEY for sealing (ENC 1) or opening (ENC 0) many
 * objects: pass it with KEY NULL.  EVP_CIPHER_CTX_free() it. */
struct evp_cipher_ctx_st *ferry_gcm_ctx_new(const uint8_t key[FERRY_KEY_LEN],
					    int enc);

/* HMAC-SHA-256 under one key, the two padded key blocks hashed once
 * (RFC 2104: the SHA-256 states after K^ipad and K^opad); a message then
 * costs two state copies, not a re-keying.  The same bytes as
 * HMAC(EVP_sha256(), key, ...) (test_seal checks it).  H is only read:
 * threads share it, each with its own WORK (EVP_MD_CTX_new()). */
struct ferry_hmac;
struct evp_md_ctx_st;
struct ferry_hmac *ferry_hmac_new(const uint8_t *key, size_t keylen);
void ferry_hmac_free(struct ferry_hmac *h);
int ferry_hmac_sha256(const struct ferry_hmac *h, struct evp_md_ctx_st *work,
		      const void *buf, size_t len, uint8_t out[32]);

/* ---- the repository's key (repo_key.c) ---- */
struct ferry_repo;
/* 1 when the comma list LIST names NAME. */
int ferry_features_has(const char *list, const char *name);
/* "features = encryption\n" and the key lines of a new repository. */
int ferry_repo_key_lines(const char *repo_id, const char *pass,
			 size_t passlen, int kdf, char *buf, size_t cap);
void ferry_repo_keys_free(struct ferry_repo *r);

/* ---- sealed manifests (manifest.c) ---- */
#define FERRY_SMANIFEST_MAGIC "FMAE"
#define FERRY_SMANIFEST_VERSION 1
#define FERRY_SMANIFEST_HDR 32
#define FERRY_SMANIFEST_SEG (64u << 10)

/* ---- sealed chunks (chunk.c) ---- */
#define FERRY_SCHUNK_MAGIC "FCE1"
#define FERRY_SCHUNK_HDR 36

#endif
