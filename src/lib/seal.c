/* seal.c - the keys of an encrypted repository: AES-256-GCM sealing and
 * opening (OpenSSL EVP, AES-NI/VAES), and the master keys wrapped by a key
 * derived from the passphrase with scrypt, kept as config lines. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "seal.h"

int ferry_seal(EVP_CIPHER_CTX *ctx, const uint8_t key[FERRY_KEY_LEN],
	       const uint8_t nonce[FERRY_NONCE_LEN], const void *aad,
	       size_t aadlen, const void *in, size_t len, void *out,
	       uint8_t tag[FERRY_TAG_LEN])
{
	EVP_CIPHER_CTX *c = ctx ? ctx : EVP_CIPHER_CTX_new();
	int n, ok;

	if (!c)
		return FERRY_E_NOMEM;
	ok = len <= INT32_MAX && aadlen <= INT32_MAX &&
	     EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
	     (!aadlen || EVP_EncryptUpdate(c, NULL, &n, aad, (int)aadlen) == 1) &&
	     (!len || EVP_EncryptUpdate(c, out, &n, in, (int)len) == 1) &&
	     EVP_EncryptFinal_ex(c, (uint8_t *)out + len, &n) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, FERRY_TAG_LEN, tag) == 1;
	if (!ctx)
		EVP_CIPHER_CTX_free(c);
	return ok ? 0 : ferry_error(FERRY_E_IO, "AES-256-GCM seal failed");
}

int ferry_open(EVP_CIPHER_CTX *ctx, const uint8_t key[FERRY_KEY_LEN],
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
	ok = len <= INT32_MAX && aadlen <= INT32_MAX &&
	     EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
	     (!aadlen || EVP_DecryptUpdate(c, NULL, &n, aad, (int)aadlen) == 1) &&
	     (!len || EVP_DecryptUpdate(c, out, &n, in, (int)len) == 1) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, FERRY_TAG_LEN, t) == 1 &&
	     EVP_DecryptFinal_ex(c, (uint8_t *)out + len, &n) == 1;
	if (!ctx)
		EVP_CIPHER_CTX_free(c);
	return ok ? 0 : FERRY_E_CORRUPT;
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

int ferry_keyfile_new(struct ferry_keyfile *kf)
{
	const char *env = getenv("FERRY_KDF_LOG_N");

	memset(kf, 0, sizeof(*kf));
	kf->log_n = FERRY_KDF_LOG_N;
	kf->r = 8;
	kf->p = 1;
	if (env && *env) {
		char *end;
		unsigned long v = strtoul(env, &end, 10);

		if (*end || v < 10 || v > 22)
			return ferry_error(FERRY_E_INVAL,
					   "FERRY_KDF_LOG_N=%s: use 10 to 22", env);
		kf->log_n = (unsigned)v;
	}
	return ferry_random(kf->salt, sizeof(kf->salt));
}

/* scrypt needs 128 * r * N bytes: refuse a config that asks for more than
 * 1 GiB rather than let it exhaust memory. */
#define KDF_MEM_MAX (1ull << 30)

static int kdf_valid(unsigned log_n, unsigned r, unsigned p)
{
	return log_n >= 10 && log_n <= 22 && r >= 1 && r <= 32 && p >= 1 &&
	       p <= 16 && 128ull * r * (1ull << log_n) <= KDF_MEM_MAX;
}

int ferry_keyfile_kek(const struct ferry_keyfile *kf, const char *pass,
		      size_t passlen, uint8_t kek[FERRY_KEY_LEN])
{
	if (!kdf_valid(kf->log_n, kf->r, kf->p))
		return ferry_error(FERRY_E_CORRUPT, "key derivation parameters out of range");
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
	int n = snprintf(buf, cap, "ferry-key-1 %s scrypt %u %u %u", repo_id,
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
	if (strcmp(v, "scrypt"))
		return ferry_error(FERRY_E_VERSION,
				   "key derivation '%s' is not supported (this ferry has scrypt)",
				   v);
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

	hex(kf->salt, sizeof(kf->salt), salt);
	hex(kf->wrapped, sizeof(kf->wrapped), key);
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
