/* http.c - the REST API's HTTP(S) front: libmicrohttpd (TLS through its
 * GnuTLS build), a bounded request body, the bearer-token check every
 * endpoint passes, and one JSON error shape. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "srv.h"

struct srv_http {
	struct MHD_Daemon *d;
	struct srv *s;
	char *cert, *key;
	int port;
};

struct conn_state {
	char *body;
	size_t len, cap;
	int too_big;
};

static char *read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > (1 << 20) ||
	    fseek(f, 0, SEEK_SET) || !(buf = malloc((size_t)n + 1))) {
		snprintf(err, errlen, "cannot read %s (too large or unreadable)", path);
		fclose(f);
		return NULL;
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		snprintf(err, errlen, "cannot read %s", path);
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[n] = 0;
	fclose(f);
	return buf;
}

static const char *conn_arg(void *cls, const char *key)
{
	return MHD_lookup_connection_value(cls, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result send_resp(struct MHD_Connection *c, int status, char *body,
				 const char *ctype)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", ctype);
	if (status == 401)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"ferry\"");
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static char *error_body(const char *msg)
{
	struct json_object *o = json_object_new_object();
	char *s;

	json_object_object_add(o, "error", json_object_new_string(msg));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct srv_http *h = cls;
	struct srv *s = h->s;
	struct conn_state *cs = *con_cls;
	const char *auth;
	struct srv_req rq;
	struct srv_resp rs = { 0, NULL, "application/json" };
	char tname[256];
	int scope = SRV_SCOPE_NONE, need;

	(void)version;
	if (!cs) {
		if (!(cs = calloc(1, sizeof(*cs))))
			return MHD_NO;
		*con_cls = cs;
		return MHD_YES;
	}
	if (*upload_size) {
		if (cs->len + *upload_size > (size_t)s->conf.max_body) {
			cs->too_big = 1;
		} else if (!cs->too_big) {
			if (cs->len + *upload_size + 1 > cs->cap) {
				size_t nc = (cs->len + *upload_size + 1) * 2;
				char *nb = realloc(cs->body, nc);

				if (!nb)
					return MHD_NO;
				cs->body = nb;
				cs->cap = nc;
			}
			memcpy(cs->body + cs->len, upload, *upload_size);
			cs->len += *upload_size;
			cs->body[cs->len] = 0;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&s->mu);
	s->http_requests++;
	pthread_mutex_unlock(&s->mu);
	auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (auth && !strncmp(auth, "Bearer ", 7))
		scope = srv_token_check(s, auth + 7, tname, sizeof(tname));
	if (scope == SRV_SCOPE_NONE) {
		pthread_mutex_lock(&s->mu);
		s->http_unauthorized++;
		pthread_mutex_unlock(&s->mu);
		return send_resp(c, 401, error_body(auth ? "invalid API token"
						    : "missing API token: send 'Authorization: Bearer TOKEN' (ferry token create makes one)"),
				 "application/json");
	}
	if (scope < (need = srv_api_scope(method, url))) {
		char msg[700];

		snprintf(msg, sizeof(msg), "token '%.200s' has scope %s; %s %.300s needs a token "
			 "with scope %s (ferry token create --scope %s)", tname,
			 srv_scope_name(scope), method, url, srv_scope_name(need),
			 srv_scope_name(need));
		pthread_mutex_lock(&s->mu);
		s->http_forbidden++;
		pthread_mutex_unlock(&s->mu);
		return send_resp(c, 403, error_body(msg), "application/json");
	}
	if (cs->too_big) {
		char msg[128];

		snprintf(msg, sizeof(msg), "request body larger than %d bytes", s->conf.max_body);
		return send_resp(c, 413, error_body(msg), "application/json");
	}
	rq.method = method;
	rq.path = url;
	rq.arg = conn_arg;
	rq.arg_cls = c;
	rq.body = cs->body ? cs->body : "";
	rq.body_len = cs->len;
	srv_api_handle(s, &rq, &rs);
	if (!rs.body)
		rs.body = error_body("out of memory");
	if (rs.status >= 400 && rs.status < 500 && rs.status != 404) {
		pthread_mutex_lock(&s->mu);
		s->http_bad++;
		pthread_mutex_unlock(&s->mu);
	}
	return send_resp(c, rs.status, rs.body, rs.content_type);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	struct conn_state *cs = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (cs) {
		free(cs->body);
		free(cs);
		*con_cls = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = 0;
	srv_log("http: %s", line);
}

int srv_http_start(struct srv *s, struct srv_http **out, char *err, size_t errlen)
{
	struct srv_http *h = calloc(1, sizeof(*h));
	struct sockaddr_in sa;
	char host[256];
	const char *colon = strrchr(s->conf.listen, ':');
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_ERROR_LOG;
	long port;
	char *end;
	const union MHD_DaemonInfo *di;

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	h->s = s;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	if (!colon || (size_t)(colon - s->conf.listen) >= sizeof(host)) {
		snprintf(err, errlen, "listen '%s': give HOST:PORT", s->conf.listen);
		free(h);
		return -1;
	}
	memcpy(host, s->conf.listen, (size_t)(colon - s->conf.listen));
	host[colon - s->conf.listen] = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 ||
	    inet_pton(AF_INET, !strcmp(host, "localhost") ? "127.0.0.1" : host,
		      &sa.sin_addr) != 1) {
		snprintf(err, errlen, "listen '%s': give an IPv4 HOST:PORT", s->conf.listen);
		free(h);
		return -1;
	}
	sa.sin_port = htons((uint16_t)port);
	if (s->conf.tls_cert[0]) {
		if (!(h->cert = read_file(s->conf.tls_cert, err, errlen)) ||
		    !(h->key = read_file(s->conf.tls_key, err, errlen))) {
			free(h->cert);
			free(h);
			return -1;
		}
		flags |= MHD_USE_TLS;
	} else if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
		snprintf(err, errlen, "listen %s without tls-cert and tls-key: plain HTTP "
			 "is allowed on loopback only", s->conf.listen);
		free(h);
		return -1;
	}
	if (h->cert)
		h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
					MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
					MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
					MHD_OPTION_HTTPS_MEM_CERT, h->cert,
					MHD_OPTION_HTTPS_MEM_KEY, h->key,
					MHD_OPTION_NOTIFY_COMPLETED, on_done, h,
					MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
					MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
					MHD_OPTION_END);
	else
		h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
					MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
					MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
					MHD_OPTION_NOTIFY_COMPLETED, on_done, h,
					MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
					MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
					MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "cannot listen on %s (address in use, or the TLS "
			 "certificate and key do not load)", s->conf.listen);
		free(h->cert);
		free(h->key);
		free(h);
		return -1;
	}
	di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : (int)port;
	*out = h;
	return 0;
}

int srv_http_port(struct srv_http *h)
{
	return h->port;
}

void srv_http_stop(struct srv_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	free(h->cert);
	free(h->key);
	free(h);
}
