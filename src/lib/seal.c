/* seal.c - the keys of an encrypted repository: AES-256-GCM sealing and
 * opening (OpenSSL EVP, AES-NI/VAES), and the master keys wrapped by a key
 * derived from the passphrase with Argon2id (libsodium) or scrypt
 * (OpenSSL), kept as config lines. */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "seal.h"

EVP_CIPHER_CTX *ferry_gcm_ctx_new(const uint8_t key[FERRY_KEY_LEN], int enc)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

	if (c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, NULL,
				   enc ? 1 : 0) != 1) {
		EVP_CIPHER_CTX_free(c);
		c = NULL;
	}
	return c;
}

/* Set up C for one object: with KEY, a full (re)initialisation; without
 * (C made by ferry_gcm_ctx_new), only the nonce. */
static int gcm_start(EVP_CIPHER_CTX *c, const uint8_t *key,
		     const uint8_t nonce[FERRY_NONCE_LEN], int enc)
{
	if (key)
		return EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce,
					 enc) == 1;
	return EVP_CipherInit_ex(c, NULL, NULL, NULL, nonce, enc) == 1;
}

int ferry_seal(EVP_CIPHER_CTX *ctx, const uint8_t *key,
	       const uint8_t nonce[FERRY_NONCE_LEN], const void *aad,
	       size_t aadlen, const void *in, size_t len, void *out,
	       uint8_t tag[FERRY_TAG_LEN])
{
	EVP_CIPHER_CTX *c = ctx ? ctx : EVP_CIPHER_CTX_new();
	int n, ok;

	if (!c)
		return FERRY_E_NOMEM;
	ok = (key || ctx) && len <= INT32_MAX && aadlen <= INT32_MAX &&
	     gcm_start(c, key, nonce, 1) &&
	     (!aadlen || EVP_EncryptUpdate(c, NULL, &n, aad, (int)aadlen) == 1) &&
	     (!len || EVP_EncryptUpdate(c, out, &n, in, (int)len) == 1) &&
	     EVP_EncryptFinal_ex(c, (uint8_t *)out + len, &n) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, FERRY_TAG_LEN, tag) == 1;
	if (!ctx)
		EVP_CIPHER_CTX_free(c);
	return ok ? 0 : ferry_error(FERRY_E_IO, "AES-256-GCM seal failed");
}

int ferry_open(EVP_CIPHER_CTX *ctx, const uint8_t *key,
	       const uint8_t nonce[FERRY_NONCE_LEN], const void *aad,
	       size_t aadlen, const void *in, size_t len, void *out,
	       const uint8_t tag[FERRY_TAG_LEN])
{
	EVP_CIPHER_CTX *c = ctx ? ctx : EVP_CIPHER_CTX_new();
	uint8_t t[FERRY_TAG_LEN];
	int n, ok;

	if (!c)
		return FERRY_E_NOMEM;
	memcpy(t, tag, sizeof(t));
	ok = (key || ctx) && len <= INT32_MAX && aadlen <= INT32_MAX &&
	     gcm_start(c, key, nonce, 0) &&
	     (!aadlen || EVP_DecryptUpdate(c, NULL, &n, aad, (int)aadlen) == 1) &&
	     (!len || EVP_DecryptUpdate(c, out, &n, in, (int)len) == 1) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, FERRY_TAG_LEN, t) == 1 &&
	     EVP_DecryptFinal_ex(c, (uint8_t *)out + len, &n) == 1;
	if (!ctx)
		EVP_CIPHER_CTX_free(c);
	return ok ? 0 : FERRY_E_CORRUPT;
}

/* ---- HMAC-SHA-256 with the key's pads hashed once ---------------------- */

struct ferry_hmac {
	EVP_MD_CTX *inner, *outer; /* SHA-256 after K^ipad, after K^opad */
};

void ferry_hmac_free(struct ferry_hmac *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->inner);
	EVP_MD_CTX_free(h->outer);
	free(h);
}

struct ferry_hmac *ferry_hmac_new(const uint8_t *key, size_t keylen)
{
	struct ferry_hmac *h = calloc(1, sizeof(*h));
	uint8_t k0[64], pad[64];
	int ok;

	if (!h)
		return NULL;
	/* RFC 2104: a key longer than the block is hashed first; then
	 * zero-padded to the 64-byte block. */
	memset(k0, 0, sizeof(k0));
	if (keylen > sizeof(k0))
		SHA256(key, keylen, k0);
	else if (keylen)
		memcpy(k0, key, keylen);
	h->inner = EVP_MD_CTX_new();
	h->outer = EVP_MD_CTX_new();
	ok = h->inner && h->outer &&
	     EVP_DigestInit_ex(h->inner, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestInit_ex(h->outer, EVP_sha256(), NULL) == 1;
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k0[i] ^ 0x36;
	ok = ok && EVP_DigestUpdate(h->inner, pad, sizeof(pad)) == 1;
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k0[i] ^ 0x5c;
	ok = ok && EVP_DigestUpdate(h->outer, pad, sizeof(pad)) == 1;
	explicit_bzero(k0, sizeof(k0));
	explicit_bzero(pad, sizeof(pad));
	if (!ok) {
		ferry_hmac_free(h);
		return NULL;
	}
	return h;
}

int ferry_hmac_sha256(const struct ferry_hmac *h, EVP_MD_CTX *work,
		      const void *buf, size_t len, uint8_t out[FERRY_HASH_LEN])
{
	uint8_t ih[FERRY_HASH_LEN];
	unsigned int n = 0, m = 0;
	int ok;

	ok = EVP_MD_CTX_copy_ex(work, h->inner) == 1 &&
	     (!len || EVP_DigestUpdate(work, buf, len) == 1) &&
	     EVP_DigestFinal_ex(work, ih, &n) == 1 && n == FERRY_HASH_LEN &&
	     EVP_MD_CTX_copy_ex(work, h->outer) == 1 &&
	     EVP_DigestUpdate(work, ih, sizeof(ih)) == 1 &&
	     EVP_DigestFinal_ex(work, out, &m) == 1 && m == FERRY_HASH_LEN;
	explicit_bzero(ih, sizeof(ih));
	return ok ? 0 : ferry_error(FERRY_E_IO, "HMAC-SHA-256 failed");
}

/* ---- keys ------------------------------------------------------------ */

void ferry_keys_wipe(struct ferry_keys *keys)
{
	if (keys)
		explicit_bzero(keys, sizeof(*keys));
}

int ferry_keys_generate(struct ferry_keys *keys)
{
	int e = ferry_random(keys->enc, sizeof(keys->enc));

	if (e == 0)
		e = ferry_random(keys->id, sizeof(keys->id));
	return e;
}

int ferry_kdf_by_name(const char *name)
{
	if (!name || !*name || !strcmp(name, "argon2id"))
		return FERRY_KDF_ARGON2ID;
	if (!strcmp(name, "scrypt"))
		return FERRY_KDF_SCRYPT;
	return -1;
}

const char *ferry_kdf_name(int kdf)
{
	return kdf == FERRY_KDF_SCRYPT ? "scrypt" :
	       kdf == FERRY_KDF_ARGON2ID ? "argon2id" : "?";
}

/* The decimal value of environment variable NAME in [LO, HI] into OUT
 * (left alone when unset). */
static int env_cost(const char *name, uint64_t lo, uint64_t hi, uint64_t *out)
{
	const char *env = getenv(name);
	char *end;
	unsigned long long v;

	if (!env || !*env)
		return 0;
	errno = 0;
	v = strtoull(env, &end, 10);
	if (*env < '0' || *env > '9' || *end || errno || v < lo || v > hi)
		return ferry_error(FERRY_E_INVAL, "%s=%s: use %llu to %llu", name,
				   env, (unsigned long long)lo,
				   (unsigned long long)hi);
	*out = v;
	return 0;
}

int ferry_keyfile_new_kdf(struct ferry_keyfile *kf, int kdf)
{
	uint64_t v;
	int e;

	memset(kf, 0, sizeof(*kf));
	if (kdf == FERRY_KDF_SCRYPT) {
		kf->kdf = FERRY_KDF_SCRYPT;
		kf->log_n = FERRY_KDF_LOG_N;
		kf->r = 8;
		kf->p = 1;
		kf->salt_len = FERRY_SALT_LEN;
		v = kf->log_n;
		if ((e = env_cost("FERRY_KDF_LOG_N", 10, 22, &v)) != 0)
			return e;
		kf->log_n = (unsigned)v;
	} else if (kdf == FERRY_KDF_ARGON2ID) {
		kf->kdf = FERRY_KDF_ARGON2ID;
		kf->opslimit = FERRY_ARGON2_OPSLIMIT;
		kf->memlimit = FERRY_ARGON2_MEMLIMIT;
		kf->salt_len = FERRY_ARGON2_SALT_LEN;
		v = kf->opslimit;
		if ((e = env_cost("FERRY_KDF_OPSLIMIT", 1, FERRY_ARGON2_OPS_MAX, &v)) != 0)
			return e;
		kf->opslimit = (unsigned)v;
		v = kf->memlimit >> 10;
		if ((e = env_cost("FERRY_KDF_MEMLIMIT_KIB", FERRY_ARGON2_MEM_MIN >> 10,
				  FERRY_ARGON2_MEM_MAX >> 10, &v)) != 0)
			return e;
		kf->memlimit = v << 10;
	} else {
		return ferry_error(FERRY_E_INVAL, "unknown key derivation function");
	}
	return ferry_random(kf->salt, kf->salt_len);
}

int ferry_keyfile_new(struct ferry_keyfile *kf)
{
	return ferry_keyfile_new_kdf(kf, FERRY_KDF_ARGON2ID);
}

int ferry_keyfile_new_like(struct ferry_keyfile *kf,
			   const struct ferry_keyfile *old)
{
	*kf = *old;
	memset(kf->salt, 0, sizeof(kf->salt));
	memset(kf->wrapped, 0, sizeof(kf->wrapped));
	return ferry_random(kf->salt, kf->salt_len);
}

void ferry_keyfile_describe(const struct ferry_keyfile *kf, char *buf,
			    size_t cap)
{
	if (kf->kdf == FERRY_KDF_SCRYPT)
		snprintf(buf, cap, "scrypt (N=2^%u, r=%u, p=%u)", kf->log_n,
			 kf->r, kf->p);
	else if (kf->memlimit % (1u << 20) == 0)
		snprintf(buf, cap, "argon2id (%u passes, %llu MiB)", kf->opslimit,
			 (unsigned long long)(kf->memlimit >> 20));
	else
		snprintf(buf, cap, "argon2id (%u passes, %llu KiB)", kf->opslimit,
			 (unsigned long long)(kf->memlimit >> 10));
}

/* scrypt needs 128 * r * N bytes: refuse a config that asks for more than
 * 1 GiB rather than let it exhaust memory. */
#define KDF_MEM_MAX (1ull << 30)

static int kdf_valid(unsigned log_n, unsigned r, unsigned p)
{
	return log_n >= 10 && log_n <= 22 && r >= 1 && r <= 32 && p >= 1 &&
	       p <= 16 && 128ull * r * (1ull << log_n) <= KDF_MEM_MAX;
}

/* Argon2id: whole KiB from 8 KiB to 1 GiB, 1 to 32 passes. */
static int argon2_valid(unsigned ops, uint64_t mem)
{
	return ops >= 1 && ops <= FERRY_ARGON2_OPS_MAX &&
	       mem >= FERRY_ARGON2_MEM_MIN && mem <= FERRY_ARGON2_MEM_MAX &&
	       mem % 1024 == 0;
}

static int kf_valid(const struct ferry_keyfile *kf)
{
	if (kf->kdf == FERRY_KDF_SCRYPT)
		return kf->salt_len == FERRY_SALT_LEN &&
		       kdf_valid(kf->log_n, kf->r, kf->p);
	if (kf->kdf == FERRY_KDF_ARGON2ID)
		return kf->salt_len == FERRY_ARGON2_SALT_LEN &&
		       argon2_valid(kf->opslimit, kf->memlimit);
	return 0;
}

static int kek_argon2id(const struct ferry_keyfile *kf, const char *pass,
			size_t passlen, uint8_t kek[FERRY_KEY_LEN])
{
	_Static_assert(FERRY_ARGON2_SALT_LEN == crypto_pwhash_SALTBYTES,
		      "libsodium's salt length");
	if (sodium_init() < 0)
		return ferry_error(FERRY_E_IO, "libsodium cannot initialise");
	if (passlen > crypto_pwhash_PASSWD_MAX)
		return ferry_error(FERRY_E_INVAL, "passphrase too long");
	if (crypto_pwhash(kek, FERRY_KEY_LEN, pass, passlen, kf->salt,
			  kf->opslimit, (size_t)kf->memlimit,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return ferry_error(FERRY_E_NOMEM,
				   "Argon2id key derivation failed (%u passes, %llu KiB: out of memory?)",
				   kf->opslimit,
				   (unsigned long long)(kf->memlimit >> 10));
	return 0;
}

int ferry_keyfile_kek(const struct ferry_keyfile *kf, const char *pass,
		      size_t passlen, uint8_t kek[FERRY_KEY_LEN])
{
	if (!kf_valid(kf))
		return ferry_error(FERRY_E_CORRUPT, "key derivation parameters out of range");
	if (kf->kdf == FERRY_KDF_ARGON2ID)
		return kek_argon2id(kf, pass, passlen, kek);
	if (EVP_PBE_scrypt(pass, passlen, kf->salt, sizeof(kf->salt),
			   1ull << kf->log_n, kf->r, kf->p,
			   KDF_MEM_MAX + (64u << 20), kek, FERRY_KEY_LEN) != 1)
		return ferry_error(FERRY_E_NOMEM,
				   "scrypt key derivation failed (N=2^%u, r=%u, p=%u)",
				   kf->log_n, kf->r, kf->p);
	return 0;
}

static size_t wrap_aad(const struct ferry_keyfile *kf, const char *repo_id,
		       char *buf, size_t cap)
{
	int n;

	/* The cost is bound to the wrapped key: a changed parameter makes
	 * the key not open, like a wrong passphrase. */
	if (kf->kdf == FERRY_KDF_ARGON2ID)
		n = snprintf(buf, cap, "ferry-key-1 %s argon2id %u %llu", repo_id,
			     kf->opslimit, (unsigned long long)kf->memlimit);
	else
		n = snprintf(buf, cap, "ferry-key-1 %s scrypt %u %u %u", repo_id,
			     kf->log_n, kf->r, kf->p);

	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

int ferry_keyfile_wrap(struct ferry_keyfile *kf, const uint8_t kek[FERRY_KEY_LEN],
		       const char *repo_id, const struct ferry_keys *keys)
{
	uint8_t plain[2 * FERRY_KEY_LEN];
	char aad[128];
	size_t al = wrap_aad(kf, repo_id, aad, sizeof(aad));
	uint8_t *nonce = kf->wrapped, *ct = kf->wrapped + FERRY_NONCE_LEN;
	int e;

	if ((e = ferry_random(nonce, FERRY_NONCE_LEN)) != 0)
		return e;
	memcpy(plain, keys->enc, FERRY_KEY_LEN);
	memcpy(plain + FERRY_KEY_LEN, keys->id, FERRY_KEY_LEN);
	e = ferry_seal(NULL, kek, nonce, aad, al, plain, sizeof(plain), ct,
		       ct + sizeof(plain));
	explicit_bzero(plain, sizeof(plain));
	return e;
}

int ferry_keyfile_unwrap(const struct ferry_keyfile *kf,
			 const uint8_t kek[FERRY_KEY_LEN], const char *repo_id,
			 struct ferry_keys *keys)
{
	uint8_t plain[2 * FERRY_KEY_LEN];
	char aad[128];
	size_t al = wrap_aad(kf, repo_id, aad, sizeof(aad));
	const uint8_t *nonce = kf->wrapped, *ct = kf->wrapped + FERRY_NONCE_LEN;
	int e;

	e = ferry_open(NULL, kek, nonce, aad, al, ct, sizeof(plain), plain,
		       ct + sizeof(plain));
	if (e == FERRY_E_CORRUPT)
		return ferry_error(FERRY_E_KEY,
				   "wrong passphrase (the repository key does not open with it)");
	if (e)
		return e;
	memcpy(keys->enc, plain, FERRY_KEY_LEN);
	memcpy(keys->id, plain + FERRY_KEY_LEN, FERRY_KEY_LEN);
	explicit_bzero(plain, sizeof(plain));
	return 0;
}

/* ---- the config lines ------------------------------------------------ */

/* The value of KEY in CONFIG (a line "KEY = VALUE"), bounded; NULL when
 * absent or too long. */
static const char *line_value(const char *config, const char *key, char *buf,
			      size_t cap)
{
	size_t kl = strlen(key);

	for (const char *l = config; *l;) {
		const char *nl = strchr(l, '\n'), *p = l, *end;

		end = nl ? nl : l + strlen(l);
		while (p < end && *p == ' ')
			p++;
		if ((size_t)(end - p) > kl && !strncmp(p, key, kl) &&
		    (p[kl] == ' ' || p[kl] == '=')) {
			const char *q = p + kl;

			while (q < end && *q == ' ')
				q++;
			if (q < end && *q == '=') {
				q++;
				while (q < end && *q == ' ')
					q++;
				while (end > q && end[-1] == ' ')
					end--;
				if ((size_t)(end - q) >= cap)
					return NULL;
				memcpy(buf, q, (size_t)(end - q));
				buf[end - q] = 0;
				return buf;
			}
		}
		if (!nl)
			break;
		l = nl + 1;
	}
	return NULL;
}

static int get_uint(const char *config, const char *key, unsigned *out)
{
	char v[16], *end;
	unsigned long x;

	if (!line_value(config, key, v, sizeof(v)) || !*v)
		return ferry_error(FERRY_E_CORRUPT,
				   "repository config has no valid '%s' line", key);
	x = strtoul(v, &end, 10);
	if (*end || x > 1000)
		return ferry_error(FERRY_E_CORRUPT,
				   "repository config: %s = %s is not a small number",
				   key, v);
	*out = (unsigned)x;
	return 0;
}

/* A decimal KEY in [LO, HI]: digits only (no sign, no space, no leading
 * zero), at most 19 of them, so it cannot overflow. */
static int get_u64(const char *config, const char *key, uint64_t lo,
		   uint64_t hi, uint64_t *out)
{
	char v[24];
	uint64_t x = 0;
	size_t n;

	if (!line_value(config, key, v, sizeof(v)) || !*v)
		return ferry_error(FERRY_E_CORRUPT,
				   "repository config has no valid '%s' line", key);
	n = strlen(v);
	for (size_t i = 0; i < n; i++)
		if (v[i] < '0' || v[i] > '9' || n > 19 || (v[0] == '0' && n > 1))
			return ferry_error(FERRY_E_CORRUPT,
					   "repository config: %s = %s is not a number",
					   key, v);
	for (size_t i = 0; i < n; i++)
		x = x * 10 + (uint64_t)(v[i] - '0');
	if (x < lo || x > hi)
		return ferry_error(FERRY_E_CORRUPT,
				   "repository config: %s = %s is out of range (%llu to %llu): refused before deriving the key",
				   key, v, (unsigned long long)lo,
				   (unsigned long long)hi);
	*out = x;
	return 0;
}

static int get_hex(const char *config, const char *key, uint8_t *out, size_t n)
{
	char v[2 * sizeof(((struct ferry_keyfile *)0)->wrapped) + 2];

	if (!line_value(config, key, v, sizeof(v)) || strlen(v) != 2 * n ||
	    ferry_hex_decode(v, out, n))
		return ferry_error(FERRY_E_CORRUPT,
				   "repository config: '%s' is missing or not %zu hex bytes",
				   key, n);
	return 0;
}

int ferry_keyfile_parse(const char *config, struct ferry_keyfile *kf)
{
	char v[32];
	int e;

	memset(kf, 0, sizeof(*kf));
	if (!line_value(config, "encryption", v, sizeof(v)))
		return ferry_error(FERRY_E_CORRUPT,
				   "repository config has no 'encryption' line");
	if (strcmp(v, FERRY_CIPHER_NAME))
		return ferry_error(FERRY_E_VERSION,
				   "repository cipher '%s' is not supported (this ferry has %s)",
				   v, FERRY_CIPHER_NAME);
	if (!line_value(config, "kdf", v, sizeof(v)))
		return ferry_error(FERRY_E_CORRUPT,
				   "repository config has no 'kdf' line");
	if (!strcmp(v, "argon2id")) {
		uint64_t ops, mem;

		kf->kdf = FERRY_KDF_ARGON2ID;
		kf->salt_len = FERRY_ARGON2_SALT_LEN;
		if ((e = get_u64(config, "kdf_opslimit", 1, FERRY_ARGON2_OPS_MAX,
				 &ops)) != 0 ||
		    (e = get_u64(config, "kdf_memlimit", FERRY_ARGON2_MEM_MIN,
				 FERRY_ARGON2_MEM_MAX, &mem)) != 0)
			return e;
		if (mem % 1024)
			return ferry_error(FERRY_E_CORRUPT,
					   "repository config: kdf_memlimit = %llu is not whole KiB",
					   (unsigned long long)mem);
		kf->opslimit = (unsigned)ops;
		kf->memlimit = mem;
		if ((e = get_hex(config, "kdf_salt", kf->salt, kf->salt_len)) != 0 ||
		    (e = get_hex(config, "key", kf->wrapped, sizeof(kf->wrapped))) != 0)
			return e;
		return 0;
	}
	if (strcmp(v, "scrypt"))
		return ferry_error(FERRY_E_VERSION,
				   "key derivation '%s' is not supported (this ferry has argon2id and scrypt)",
				   v);
	kf->kdf = FERRY_KDF_SCRYPT;
	kf->salt_len = FERRY_SALT_LEN;
	if ((e = get_uint(config, "kdf_log_n", &kf->log_n)) != 0 ||
	    (e = get_uint(config, "kdf_r", &kf->r)) != 0 ||
	    (e = get_uint(config, "kdf_p", &kf->p)) != 0)
		return e;
	if (!kdf_valid(kf->log_n, kf->r, kf->p))
		return ferry_error(FERRY_E_CORRUPT,
				   "repository config: scrypt parameters out of range (log_n %u, r %u, p %u)",
				   kf->log_n, kf->r, kf->p);
	if ((e = get_hex(config, "kdf_salt", kf->salt, sizeof(kf->salt))) != 0 ||
	    (e = get_hex(config, "key", kf->wrapped, sizeof(kf->wrapped))) != 0)
		return e;
	return 0;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

int ferry_keyfile_format(const struct ferry_keyfile *kf, char *buf, size_t cap)
{
	char salt[2 * FERRY_SALT_LEN + 1], key[2 * sizeof(kf->wrapped) + 1];
	int n;

	if (!kf_valid(kf))
		return ferry_error(FERRY_E_INVAL, "key derivation parameters out of range");
	hex(kf->salt, kf->salt_len, salt);
	hex(kf->wrapped, sizeof(kf->wrapped), key);
	if (kf->kdf == FERRY_KDF_ARGON2ID)
		n = snprintf(buf, cap,
			     "encryption = %s\n"
			     "kdf = argon2id\n"
			     "kdf_opslimit = %u\n"
			     "kdf_memlimit = %llu\n"
			     "kdf_salt = %s\n"
			     "key = %s\n",
			     FERRY_CIPHER_NAME, kf->opslimit,
			     (unsigned long long)kf->memlimit, salt, key);
	else
		n = snprintf(buf, cap,
			     "encryption = %s\n"
			     "kdf = scrypt\n"
			     "kdf_log_n = %u\n"
			     "kdf_r = %u\n"
			     "kdf_p = %u\n"
			     "kdf_salt = %s\n"
			     "key = %s\n",
			     FERRY_CIPHER_NAME, kf->log_n, kf->r, kf->p, salt, key);
	if (n < 0 || (size_t)n >= cap)
		return ferry_error(FERRY_E_INVAL, "key lines do not fit");
	return 0;
}
