/* repo_key.c - an encrypted repository's key as the repository holds it:
 * made at init, opened with the passphrase, rewrapped when the passphrase
 * changes (the config is rewritten atomically; no chunk is touched). */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "seal.h"

/* The config keys that hold the wrapped key (replaced on a change). */
static const char *const key_lines[] = {
	"encryption", "kdf", "kdf_log_n", "kdf_r", "kdf_p", "kdf_salt", "key",
	"kdf_opslimit", "kdf_memlimit",
	NULL,
};

int ferry_features_has(const char *list, const char *name)
{
	size_t nl = strlen(name);

	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ", ");

		if (n == nl && !strncmp(p, name, n))
			return 1;
		p += n;
		p += strspn(p, ", ");
	}
	return 0;
}

int ferry_repo_encrypted(const struct ferry_repo *r)
{
	return r && r->encrypted;
}

int ferry_repo_need_key(const struct ferry_repo *r)
{
	if (r->encrypted && !r->keys)
		return ferry_error(FERRY_E_KEY,
				   "%s is encrypted: give its passphrase (FERRY_PASSWORD, --password-file, or the prompt)",
				   r->path);
	return 0;
}

/* "features = encryption" and the key lines for a new repository. */
int ferry_repo_key_lines(const char *repo_id, const char *pass, size_t passlen,
			 int kdf, char *buf, size_t cap)
{
	struct ferry_keyfile kf;
	struct ferry_keys keys;
	uint8_t kek[FERRY_KEY_LEN];
	int n, e;

	if (!passlen)
		return ferry_error(FERRY_E_INVAL, "empty passphrase");
	if ((e = ferry_keyfile_new_kdf(&kf, kdf)) != 0 ||
	    (e = ferry_keys_generate(&keys)) != 0)
		goto out;
	if ((e = ferry_keyfile_kek(&kf, pass, passlen, kek)) != 0 ||
	    (e = ferry_keyfile_wrap(&kf, kek, repo_id, &keys)) != 0)
		goto out;
	n = snprintf(buf, cap, "features = %s\n", FERRY_FEATURE_ENCRYPTION);
	if (n < 0 || (size_t)n >= cap) {
		e = ferry_error(FERRY_E_INVAL, "key lines do not fit");
		goto out;
	}
	e = ferry_keyfile_format(&kf, buf + n, cap - (size_t)n);
out:
	explicit_bzero(kek, sizeof(kek));
	ferry_keys_wipe(&keys);
	return e;
}

int ferry_repo_unlock(struct ferry_repo *r, const char *pass, size_t passlen)
{
	struct ferry_keyfile kf;
	struct ferry_keys *k;
	uint8_t kek[FERRY_KEY_LEN];
	int e;

	if (!r->encrypted)
		return 0;
	if (r->keys)
		return 0;
	if ((e = ferry_keyfile_parse(r->config_text ? r->config_text : "", &kf)) != 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", ferry_last_error());
		return ferry_error(e, "%s: %s", r->path, why);
	}
	if (!(k = calloc(1, sizeof(*k))))
		return FERRY_E_NOMEM;
	if ((e = ferry_keyfile_kek(&kf, pass, passlen, kek)) == 0)
		e = ferry_keyfile_unwrap(&kf, kek, r->repo_id, k);
	explicit_bzero(kek, sizeof(kek));
	if (e) {
		ferry_keys_wipe(k);
		free(k);
		if (e == FERRY_E_KEY)
			return ferry_error(e, "wrong passphrase for %s", r->path);
		return e;
	}
	if (!(r->id_mac = ferry_hmac_new(k->id, sizeof(k->id)))) {
		ferry_keys_wipe(k);
		free(k);
		return ferry_error(FERRY_E_NOMEM, "no HMAC-SHA-256 context");
	}
	r->keys = k;
	return 0;
}

void ferry_repo_keys_free(struct ferry_repo *r)
{
	if (r->keys) {
		ferry_keys_wipe(r->keys);
		free(r->keys);
		r->keys = NULL;
	}
	ferry_hmac_free(r->id_mac);
	r->id_mac = NULL;
}

static int is_key_line(const char *l, size_t n)
{
	while (n && *l == ' ')
		l++, n--;
	for (size_t i = 0; key_lines[i]; i++) {
		size_t kl = strlen(key_lines[i]);

		if (n > kl && !strncmp(l, key_lines[i], kl) &&
		    (l[kl] == ' ' || l[kl] == '='))
			return 1;
	}
	return 0;
}

int ferry_repo_change_passphrase(struct ferry_repo *r, const char *newpass,
				 size_t newlen)
{
	return ferry_repo_change_passphrase_kdf(r, newpass, newlen, NULL);
}

int ferry_repo_kdf_describe(const struct ferry_repo *r, char *buf, size_t cap,
			    const char **name)
{
	struct ferry_keyfile kf;
	int e;

	if (!r->encrypted)
		return ferry_error(FERRY_E_INVAL, "%s is not encrypted", r->path);
	if ((e = ferry_keyfile_parse(r->config_text ? r->config_text : "", &kf)) != 0)
		return e;
	ferry_keyfile_describe(&kf, buf, cap);
	if (name)
		*name = ferry_kdf_name(kf.kdf);
	return 0;
}

int ferry_repo_change_passphrase_kdf(struct ferry_repo *r, const char *newpass,
				     size_t newlen, const char *kdf)
{
	struct ferry_keyfile kf, old;
	int want = ferry_kdf_by_name(kdf);
	uint8_t kek[FERRY_KEY_LEN];
	char lines[1024], *text = NULL;
	size_t cap, used = 0;
	int e;

	if (!r->encrypted)
		return ferry_error(FERRY_E_INVAL, "%s is not encrypted", r->path);
	if ((e = ferry_repo_need_key(r)) != 0)
		return e;
	if (!r->ops->config_put || ferry_is_remote_url(r->path))
		return ferry_error(FERRY_E_INVAL,
				   "%s: change the passphrase on the repository's host",
				   r->path);
	if (!newlen)
		return ferry_error(FERRY_E_INVAL, "empty passphrase");
	if (want < 0)
		return ferry_error(FERRY_E_INVAL,
				   "key derivation '%s' is not known (use argon2id or scrypt)",
				   kdf ? kdf : "");
	if ((e = ferry_keyfile_parse(r->config_text ? r->config_text : "", &old)) != 0)
		return e;
	/* No --kdf: the repository's KDF and cost, a fresh salt. */
	if (!kdf)
		e = ferry_keyfile_new_like(&kf, &old);
	else
		e = ferry_keyfile_new_kdf(&kf, want);
	if (e)
		return e;
	if ((e = ferry_keyfile_kek(&kf, newpass, newlen, kek)) == 0)
		e = ferry_keyfile_wrap(&kf, kek, r->repo_id, r->keys);
	explicit_bzero(kek, sizeof(kek));
	if (e || (e = ferry_keyfile_format(&kf, lines, sizeof(lines))) != 0)
		return e;
	cap = strlen(r->config_text) + strlen(lines) + 2;
	if (!(text = malloc(cap)))
		return FERRY_E_NOMEM;
	/* Every line but the old key lines, then the new ones. */
	for (const char *l = r->config_text; *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);

		if (!is_key_line(l, n)) {
			memcpy(text + used, l, n);
			used += n;
			text[used++] = '\n';
		}
		if (!nl)
			break;
		l = nl + 1;
	}
	memcpy(text + used, lines, strlen(lines) + 1);
	used += strlen(lines);
	if ((e = r->ops->config_put(r, text, used)) != 0) {
		free(text);
		return e;
	}
	free(r->config_text);
	r->config_text = text;
	return 0;
}

int ferry_repo_key_text(const struct ferry_repo *r, char *buf, size_t cap,
			size_t *len)
{
	size_t used = 0;
	int n;

	*len = 0;
	if (!r->encrypted)
		return 0;
	n = snprintf(buf, cap, "features = %s\n", FERRY_FEATURE_ENCRYPTION);
	if (n < 0 || (size_t)n >= cap)
		return ferry_error(FERRY_E_INVAL, "key lines do not fit");
	used = (size_t)n;
	for (const char *l = r->config_text ? r->config_text : ""; *l;) {
		const char *nl = strchr(l, '\n');
		size_t k = nl ? (size_t)(nl - l) : strlen(l);

		if (is_key_line(l, k)) {
			if (used + k + 1 >= cap)
				return ferry_error(FERRY_E_INVAL, "key lines do not fit");
			memcpy(buf + used, l, k);
			used += k;
			buf[used++] = '\n';
		}
		if (!nl)
			break;
		l = nl + 1;
	}
	*len = used;
	return 0;
}

int ferry_repo_key_text_take(struct ferry_repo *r, const char *text, size_t len)
{
	struct ferry_keyfile kf;
	char *t;
	int e;

	if (!len)
		return 0;
	if (!(t = malloc(len + 1)))
		return FERRY_E_NOMEM;
	memcpy(t, text, len);
	t[len] = 0;
	if (strlen(t) != len || !strstr(t, "features = " FERRY_FEATURE_ENCRYPTION) ||
	    (e = ferry_keyfile_parse(t, &kf)) != 0) {
		free(t);
		return ferry_error(FERRY_E_PROTO,
				   "the mover's key lines for %s are malformed", r->path);
	}
	free(r->config_text);
	r->config_text = t;
	r->encrypted = 1;
	return 0;
}
