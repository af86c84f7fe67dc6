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

/* The key lines of the config, parsed and bounded (see the fuzz target). */
struct ferry_keyfile {
	unsigned log_n, r, p;	/* scrypt cost: N = 2^log_n */
	uint8_t salt[FERRY_SALT_LEN];
	/* nonce || AES-256-GCM(enc key || id key) || tag */
	uint8_t wrapped[FERRY_NONCE_LEN + 2 * FERRY_KEY_LEN + FERRY_TAG_LEN];
};

/* Default scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, ~0.1 s here).
 * FERRY_KDF_LOG_N (10..22) overrides it at init, for tests and for
 * operators who want it slower. */
#define FERRY_KDF_LOG_N 15

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
/* New random keys, and a fresh salt with the default cost in KF. */
int ferry_keys_generate(struct ferry_keys *keys);
int ferry_keyfile_new(struct ferry_keyfile *kf);
void ferry_keys_wipe(struct ferry_keys *keys);

/* AES-256-GCM of LEN bytes IN -> OUT (may be IN), tag to TAG.  CTX may
 * be NULL (one is made for the call); pass a per-thread one on hot
 * paths. */
struct evp_cipher_ctx_st;
int ferry_seal(struct evp_cipher_ctx_st *ctx, const uint8_t key[FERRY_KEY_LEN],
	       const uint8_t nonce[FERRY_NONCE_LEN], const void *aad,
	       size_t aadlen, const void *in, size_t len, void *out,
	       uint8_t tag[FERRY_TAG_LEN]);
/* The reverse; FERRY_E_CORRUPT when the tag does not match (OUT must then
 * be ignored). */
int ferry_open(struct evp_cipher_ctx_st *ctx, const uint8_t key[FERRY_KEY_LEN],
	       const uint8_t nonce[FERRY_NONCE_LEN], const void *aad,
	       size_t aadlen, const void *in, size_t len, void *out,
	       const uint8_t tag[FERRY_TAG_LEN]);

/* ---- the repository's key (repo_key.c) ---- */
struct ferry_repo;
/* 1 when the comma list LIST names NAME. */
int ferry_features_has(const char *list, const char *name);
/* "features = encryption\n" and the key lines of a new repository. */
int ferry_repo_key_lines(const char *repo_id, const char *pass,
			 size_t passlen, char *buf, size_t cap);
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
