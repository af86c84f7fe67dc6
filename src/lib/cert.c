/* cert.c - a small certificate authority for movers (OpenSSL): makes a CA
 * and the certificates it signs (EC P-256, SHA-256), each carrying its
 * name as CN and subjectAltName, usable for both TLS client and server
 * authentication, and never overwriting an existing file. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

static int ossl_fail(const char *what)
{
	char buf[256] = "unknown error";
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return ferry_error(FERRY_E_INVAL, "%s: %s", what, buf);
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex)
		return ossl_fail("certificate extension");
	X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return 0;
}

static int dns_ok(const char *s)
{
	if (!*s || strlen(s) > 253)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ||
		      *s == '*'))
			return 0;
	return 1;
}

/* "name1,name2": DNS or IP subjectAltNames. */
static int san_value(const char *names, char *out, size_t cap)
{
	char tmp[1024], *save = NULL;
	size_t n = 0;

	snprintf(tmp, sizeof(tmp), "%s", names);
	out[0] = 0;
	for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned char a[16];
		int ip = inet_pton(AF_INET, t, a) == 1 || inet_pton(AF_INET6, t, a) == 1;

		if (!ip && !dns_ok(t))
			continue;
		n += (size_t)snprintf(out + n, cap - n, "%s%s:%s", n ? "," : "",
				      ip ? "IP" : "DNS", t);
		if (n >= cap)
			return ferry_error(FERRY_E_INVAL, "too many names");
	}
	return 0;
}

static X509 *make(EVP_PKEY *key, const char *names, int days, X509 *issuer,
		  EVP_PKEY *issuer_key, int ca)
{
	X509 *x = X509_new();
	BIGNUM *bn = BN_new();
	char cn[256], san[1100], *comma;

	if (!x || !bn) {
		ferry_error(FERRY_E_NOMEM, "out of memory");
		goto fail;
	}
	snprintf(cn, sizeof(cn), "%s", names);
	if ((comma = strchr(cn, ',')))
		*comma = 0;
	X509_set_version(x, 2);
	if (!BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto fail;
	/* An hour back: clocks of movers differ a little. */
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
				       : X509_get_subject_name(x));
	if (ca) {
		if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
		    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
		    add_ext(x, x, NID_subject_key_identifier, "hash"))
			goto fail;
	} else {
		if (add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
		    add_ext(x, issuer, NID_key_usage, "critical,digitalSignature") ||
		    add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth") ||
		    add_ext(x, issuer, NID_subject_key_identifier, "hash") ||
		    add_ext(x, issuer, NID_authority_key_identifier, "keyid:always"))
			goto fail;
		if (san_value(names, san, sizeof(san)))
			goto fail;
		if (san[0] && add_ext(x, issuer, NID_subject_alt_name, san))
			goto fail;
	}
	if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256())) {
		ossl_fail("sign certificate");
		goto fail;
	}
	BN_free(bn);
	return x;
fail:
	BN_free(bn);
	X509_free(x);
	return NULL;
}

static int create(const char *path, int mode, FILE **out)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

	if (fd < 0)
		return ferry_error(errno == EEXIST ? FERRY_E_EXISTS : FERRY_E_IO,
				   "create %s: %s", path, strerror(errno));
	if (!(*out = fdopen(fd, "w"))) {
		close(fd);
		unlink(path);
		return FERRY_E_NOMEM;
	}
	return 0;
}

static int save(X509 *x, EVP_PKEY *key, const char *cert_path,
		const char *key_path)
{
	FILE *kf, *cf;
	int ok, e;

	if ((e = create(key_path, 0600, &kf)) != 0)
		return e;
	ok = PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL);
	if (fclose(kf) != 0 || !ok) {
		unlink(key_path);
		return ferry_error(FERRY_E_IO, "write %s", key_path);
	}
	if ((e = create(cert_path, 0644, &cf)) != 0) {
		unlink(key_path);
		return e;
	}
	ok = PEM_write_X509(cf, x);
	if (fclose(cf) != 0 || !ok) {
		unlink(key_path);
		unlink(cert_path);
		return ferry_error(FERRY_E_IO, "write %s", cert_path);
	}
	return 0;
}

static int check_args(const char *name, int days)
{
	if (!name || !*name || strlen(name) > 250)
		return ferry_error(FERRY_E_INVAL, "give a name of 1-250 characters");
	if (days < 1 || days > 36500)
		return ferry_error(FERRY_E_INVAL, "days must be 1-36500");
	return 0;
}

int ferry_cert_make_ca(const char *cert_path, const char *key_path,
		       const char *name, int days)
{
	EVP_PKEY *key;
	X509 *x;
	int e;

	if ((e = check_args(name, days)) != 0)
		return e;
	if (!(key = EVP_EC_gen("P-256")))
		return ossl_fail("generate key");
	if (!(x = make(key, name, days, NULL, NULL, 1))) {
		EVP_PKEY_free(key);
		return FERRY_E_INVAL;
	}
	e = save(x, key, cert_path, key_path);
	X509_free(x);
	EVP_PKEY_free(key);
	return e;
}

int ferry_cert_issue(const char *ca_cert, const char *ca_key, const char *name,
		     int days, const char *cert_path, const char *key_path)
{
	EVP_PKEY *key = NULL, *cakey = NULL;
	X509 *ca = NULL, *x = NULL;
	FILE *f;
	int e;

	if ((e = check_args(name, days)) != 0)
		return e;
	if (!(f = fopen(ca_cert, "r")))
		return ferry_error(FERRY_E_NOTFOUND, "open %s: %s", ca_cert,
				   strerror(errno));
	ca = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!(f = fopen(ca_key, "r"))) {
		X509_free(ca);
		return ferry_error(FERRY_E_NOTFOUND, "open %s: %s", ca_key,
				   strerror(errno));
	}
	cakey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!ca || !cakey || X509_check_private_key(ca, cakey) != 1) {
		e = ossl_fail("CA certificate and key do not load or do not match");
		goto out;
	}
	if (!(key = EVP_EC_gen("P-256"))) {
		e = ossl_fail("generate key");
		goto out;
	}
	if (!(x = make(key, name, days, ca, cakey, 0))) {
		e = FERRY_E_INVAL;
		goto out;
	}
	e = save(x, key, cert_path, key_path);
out:
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return e;
}
