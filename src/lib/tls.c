/* tls.c - TLS 1.3 with mutual certificate authentication between the
 * movers (OpenSSL): contexts that accept nothing older, handshakes on
 * non-blocking sockets with a deadline, and errors that say whether a
 * certificate was refused (final) or the link failed (worth a retry). */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include "proto.h"

/* TLS 1.3 suites, the AES-128 one first: the fastest with AES-NI
 * (bench/README-remote.md: 1.3 cycles a byte here against 1.7 for
 * AES-256-GCM and 1.6 for ChaCha20-Poly1305). */
#define SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

#define RBUF (64u << 10) /* TLS read-ahead */

static void ssl_err_text(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, buf, cap);
	else
		snprintf(buf, cap, "unknown TLS error");
}

static SSL_CTX *ctx_new(int server, const char *cert, const char *key,
			const char *ca)
{
	SSL_CTX *ctx;
	char err[256];

	if (!cert || !key || !ca) {
		ferry_error(FERRY_E_INVAL,
			    "TLS needs --cert, --key and --ca (or --insecure on loopback)");
		return NULL;
	}
	ERR_clear_error();
	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx) {
		ferry_error(FERRY_E_NOMEM, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_ciphersuites(ctx, SUITES);
	/* The mover picks: AES-128-GCM whatever the client lists first
	 * (openssl s_client, for one, lists AES-256 first). */
	if (server)
		SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Read whole bursts of records per system call.  (Before each
	 * record OpenSSL 3.0 moves what is left of this buffer to its
	 * front; a buffer of one record avoids that but costs a system call
	 * per record and lets the socket's queue grow under load: no
	 * better in instructions, bench/README-remote.md.) */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, RBUF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ssl_err_text(err, sizeof(err));
		ferry_error(FERRY_E_AUTH, "cannot load certificate %s: %s", cert,
			    err);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err_text(err, sizeof(err));
		ferry_error(FERRY_E_AUTH,
			    "cannot load private key %s (or it does not match %s): %s",
			    key, cert, err);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		ssl_err_text(err, sizeof(err));
		ferry_error(FERRY_E_AUTH, "cannot load CA certificate %s: %s", ca,
			    err);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			   NULL);
	/* A client certificate must be meant for clients, a server's for
	 * servers (extended key usage, when the certificate states one). */
	X509_VERIFY_PARAM_set_purpose(SSL_CTX_get0_param(ctx),
				      server ? X509_PURPOSE_SSL_CLIENT
					     : X509_PURPOSE_SSL_SERVER);
	if (server) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);

		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *ferry_tls_server_ctx(const char *cert, const char *key, const char *ca)
{
	return ctx_new(1, cert, key, ca);
}

SSL_CTX *ferry_tls_client_ctx(const char *cert, const char *key, const char *ca)
{
	return ctx_new(0, cert, key, ca);
}

/* Reasons that mean "your certificate (or mine) was refused": retrying
 * will not help. */
static int auth_reason(unsigned long e)
{
	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return 0;
	switch (ERR_GET_REASON(e)) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_WRONG_VERSION_NUMBER:
		return 1;
	default:
		return 0;
	}
}

/* Turn a failed SSL call into a FERRY_E_* with a message. */
static int tls_fail(struct ferry_conn *c, int ret, const char *what)
{
	int se = SSL_get_error(c->ssl, ret), sys = errno;
	unsigned long e = ERR_peek_last_error();
	long vr = SSL_get_verify_result(c->ssl);
	char buf[256];

	c->broken = 1;
	if (se == SSL_ERROR_SYSCALL || (se == SSL_ERROR_SSL && !e))
		return ferry_error(FERRY_E_NET, "%s with %s: %s", what, c->peer,
				   sys && se == SSL_ERROR_SYSCALL
					   ? strerror(sys)
					   : "connection closed");
	if (se == SSL_ERROR_ZERO_RETURN)
		return ferry_error(FERRY_E_NET, "%s with %s: connection closed",
				   what, c->peer);
	ssl_err_text(buf, sizeof(buf));
	if (vr != X509_V_OK)
		return ferry_error(FERRY_E_AUTH,
				   "%s with %s: the peer's certificate is refused: %s",
				   what, c->peer, X509_verify_cert_error_string(vr));
	if (auth_reason(e)) {
		const char *why = ERR_reason_error_string(e);

		return ferry_error(FERRY_E_AUTH,
				   "%s with %s refused: %s (check --cert, --key and --ca: the peer must trust our certificate's CA, and it must be valid)",
				   what, c->peer, why ? why : buf);
	}
	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
		return ferry_error(FERRY_E_NET, "%s with %s: connection closed",
				   what, c->peer);
	return ferry_error(FERRY_E_NET, "%s with %s failed: %s", what, c->peer,
			   buf);
}

static int wait_fd(int fd, short ev, double deadline)
{
	struct pollfd p = { fd, ev, 0 };
	double left = deadline - ferry_mono_seconds();
	int r;

	if (left <= 0)
		return FERRY_E_TIMEOUT;
	r = poll(&p, 1, (int)(left * 1000) + 1);
	if (r < 0 && errno != EINTR)
		return ferry_error(FERRY_E_NET, "poll: %s", strerror(errno));
	return 0;
}

static void peer_identity(struct ferry_conn *c)
{
	X509 *x = SSL_get0_peer_certificate(c->ssl);

	c->identity[0] = 0;
	if (x)
		X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					  NID_commonName, c->identity,
					  sizeof(c->identity));
}

int ferry_tls_pending(const struct ferry_conn *c)
{
	/* decrypted bytes, or records read ahead */
	return c->ssl && SSL_has_pending(c->ssl);
}

static int handshake(struct ferry_conn *c, int server, double deadline)
{
	for (;;) {
		int r, se;

		ERR_clear_error();
		errno = 0;
		r = server ? SSL_accept(c->ssl) : SSL_connect(c->ssl);
		if (r == 1)
			break;
		se = SSL_get_error(c->ssl, r);
		if (se != SSL_ERROR_WANT_READ && se != SSL_ERROR_WANT_WRITE)
			return tls_fail(c, r, "TLS handshake");
		if (wait_fd(c->fd, se == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
			    deadline) == FERRY_E_TIMEOUT) {
			c->broken = 1;
			return ferry_error(FERRY_E_TIMEOUT,
					   "TLS handshake with %s timed out",
					   c->peer);
		}
	}
	peer_identity(c);
	return 0;
}

static int tls_new(struct ferry_conn *c, SSL_CTX *ctx)
{
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
		return ferry_error(FERRY_E_NOMEM, "cannot create a TLS session");
	return 0;
}

int ferry_tls_accept(struct ferry_conn *c, SSL_CTX *ctx, double deadline)
{
	int e;

	if ((e = tls_new(c, ctx)) != 0)
		return e;
	return handshake(c, 1, deadline);
}

int ferry_tls_connect(struct ferry_conn *c, SSL_CTX *ctx, const char *host,
		      double deadline)
{
	X509_VERIFY_PARAM *vp;
	int e;

	if ((e = tls_new(c, ctx)) != 0)
		return e;
	vp = SSL_get0_param(c->ssl);
	/* The server certificate must name the host we asked for. */
	if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) {
		if (SSL_set1_host(c->ssl, host) != 1)
			return ferry_error(FERRY_E_INVAL, "bad host name %s", host);
		SSL_set_tlsext_host_name(c->ssl, host);
	}
	return handshake(c, 0, deadline);
}

ssize_t ferry_tls_read(struct ferry_conn *c, void *buf, size_t n)
{
	size_t got = 0;
	int r, se;

	ERR_clear_error();
	errno = 0;
	r = SSL_read_ex(c->ssl, buf, n, &got);
	if (r == 1) {
		c->want_write = 0;
		return (ssize_t)got;
	}
	se = SSL_get_error(c->ssl, r);
	if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
		c->want_write = se == SSL_ERROR_WANT_WRITE;
		return -EAGAIN;
	}
	if (se == SSL_ERROR_ZERO_RETURN)
		return 0;
	return tls_fail(c, r, "TLS read");
}

ssize_t ferry_tls_write(struct ferry_conn *c, const void *buf, size_t n)
{
	size_t put = 0;
	int r, se;

	ERR_clear_error();
	errno = 0;
	r = SSL_write_ex(c->ssl, buf, n, &put);
	if (r == 1)
		return (ssize_t)put;
	se = SSL_get_error(c->ssl, r);
	if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE)
		return -EAGAIN;
	return tls_fail(c, r, "TLS write");
}

void ferry_tls_close(struct ferry_conn *c)
{
	if (!c->ssl)
		return;
	if (!c->broken) {
		ERR_clear_error();
		SSL_shutdown(c->ssl); /* non-blocking: one try */
	}
	SSL_free(c->ssl);
	c->ssl = NULL;
	ERR_clear_error();
}
