/* quiesce.c - a client of qemu-guest-agent: JSON commands over its unix
 * socket (one request, one reply line), each bounded by a timeout, the
 * stream synchronised first with guest-sync-delimited so a stale reply is
 * never taken for ours.  Protocol notes are in docs/vm-sources.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmsrc.h"

#define REPLY_MAX (256u << 10)

struct ferry_qga {
	int fd;
	int timeout_ms;
	char path[108];
	char *buf;       /* bytes received and not yet consumed */
	size_t len;
	int stale;       /* a reply may still be on its way: reconnect */
};

/* ---- a bounded scanner for the agent's JSON replies --------------------- */

struct js {
	const char *p, *end;
};

static void js_ws(struct js *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' ||
				 *j->p == '\n'))
		j->p++;
}

/* A string: its raw bytes (escapes not decoded) in [*s, *s + *n). */
static int js_string(struct js *j, const char **s, size_t *n)
{
	js_ws(j);
	if (j->p >= j->end || *j->p != '"')
		return -1;
	j->p++;
	*s = j->p;
	while (j->p < j->end && *j->p != '"') {
		if (*j->p == '\\') {
			if (++j->p >= j->end)
				return -1;
		}
		j->p++;
	}
	if (j->p >= j->end)
		return -1;
	*n = (size_t)(j->p - *s);
	j->p++;
	return 0;
}

/* Skip one value of any kind (depth-bounded). */
static int js_skip(struct js *j, int depth)
{
	const char *s;
	size_t n;

	if (depth > 32)
		return -1;
	js_ws(j);
	if (j->p >= j->end)
		return -1;
	if (*j->p == '"')
		return js_string(j, &s, &n);
	if (*j->p == '{' || *j->p == '[') {
		char close = *j->p == '{' ? '}' : ']';
		int obj = *j->p == '{';

		j->p++;
		js_ws(j);
		if (j->p < j->end && *j->p == close) {
			j->p++;
			return 0;
		}
		for (;;) {
			if (obj) {
				if (js_string(j, &s, &n) != 0)
					return -1;
				js_ws(j);
				if (j->p >= j->end || *j->p != ':')
					return -1;
				j->p++;
			}
			if (js_skip(j, depth + 1) != 0)
				return -1;
			js_ws(j);
			if (j->p >= j->end)
				return -1;
			if (*j->p == ',') {
				j->p++;
				continue;
			}
			if (*j->p != close)
				return -1;
			j->p++;
			return 0;
		}
	}
	/* number, true, false, null */
	s = j->p;
	while (j->p < j->end && (*j->p == '-' || *j->p == '+' || *j->p == '.' ||
				 (*j->p >= '0' && *j->p <= '9') ||
				 (*j->p >= 'a' && *j->p <= 'z') ||
				 (*j->p >= 'A' && *j->p <= 'Z')))
		j->p++;
	return j->p > s ? 0 : -1;
}

/* The value of KEY at the top level of the object [p, end). */
static int js_get(const char *p, const char *end, const char *key,
		  const char **vs, const char **ve)
{
	struct js j = { p, end };
	size_t kl = strlen(key);

	js_ws(&j);
	if (j.p >= j.end || *j.p != '{')
		return -1;
	j.p++;
	js_ws(&j);
	if (j.p < j.end && *j.p == '}')
		return -1;
	for (;;) {
		const char *s;
		size_t n;

		if (js_string(&j, &s, &n) != 0)
			return -1;
		js_ws(&j);
		if (j.p >= j.end || *j.p != ':')
			return -1;
		j.p++;
		js_ws(&j);
		*vs = j.p;
		if (js_skip(&j, 1) != 0)
			return -1;
		*ve = j.p;
		if (n == kl && !memcmp(s, key, kl))
			return 0;
		js_ws(&j);
		if (j.p >= j.end || *j.p != ',')
			return -1;
		j.p++;
	}
}

/* A string value's raw bytes into OUT (escapes kept, control bytes
 * dropped: it is for messages). */
static void js_copy_str(const char *vs, const char *ve, char *out, size_t len)
{
	struct js j = { vs, ve };
	const char *s;
	size_t n, o = 0;

	out[0] = 0;
	if (js_string(&j, &s, &n) != 0)
		return;
	for (size_t i = 0; i < n && o + 1 < len; i++)
		if ((unsigned char)s[i] >= 0x20)
			out[o++] = s[i];
	out[o] = 0;
}

int ferry_qga_parse_reply(const char *line, size_t len, long long *ival,
			  char *val, size_t vlen)
{
	const char *end = line + len, *vs, *ve;
	char cls[128], desc[512];

	if (val && vlen)
		val[0] = 0;
	if (js_get(line, end, "return", &vs, &ve) == 0) {
		char num[32];
		size_t n = (size_t)(ve - vs);
		char *e;

		if (ival && n > 0 && n < sizeof(num)) {
			memcpy(num, vs, n);
			num[n] = 0;
			*ival = strtoll(num, &e, 10);
			if (*e)
				*ival = -1;
		}
		if (val && vlen) {
			n = n < vlen - 1 ? n : vlen - 1;
			memcpy(val, vs, n);
			val[n] = 0;
		}
		return 0;
	}
	if (js_get(line, end, "error", &vs, &ve) == 0) {
		const char *cs, *ce;

		cls[0] = desc[0] = 0;
		if (js_get(vs, ve, "class", &cs, &ce) == 0)
			js_copy_str(cs, ce, cls, sizeof(cls));
		if (js_get(vs, ve, "desc", &cs, &ce) == 0)
			js_copy_str(cs, ce, desc, sizeof(desc));
		return ferry_error(FERRY_E_SOURCE, "%s: %s", cls[0] ? cls : "error",
				   desc[0] ? desc : "(no description)");
	}
	return ferry_error(FERRY_E_CORRUPT, "qemu-guest-agent sent something that is not a reply");
}

/* ---- the connection ------------------------------------------------------- */

static int q_connect(struct ferry_qga *q)
{
	struct sockaddr_un a;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, q->path, strlen(q->path) + 1);
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (q->fd < 0)
		return ferry_error(FERRY_E_SOURCE, "socket: %s", strerror(errno));
	if (connect(q->fd, (struct sockaddr *)&a, sizeof(a)) != 0 &&
	    errno != EINPROGRESS && errno != EAGAIN) {
		int e = errno;

		close(q->fd);
		q->fd = -1;
		return ferry_error(FERRY_E_SOURCE,
				   "cannot connect to qemu-guest-agent at %s: %s",
				   q->path, strerror(e));
	}
	q->len = 0;
	return 0;
}

static int q_wait(struct ferry_qga *q, short ev, double deadline)
{
	struct pollfd p = { q->fd, ev, 0 };

	for (;;) {
		double left = deadline - ferry_mono_seconds();
		int r;

		if (left <= 0)
			return ferry_error(FERRY_E_SOURCE,
					   "qemu-guest-agent at %s did not answer within %d s",
					   q->path, q->timeout_ms / 1000);
		r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return ferry_error(FERRY_E_SOURCE, "poll: %s", strerror(errno));
	}
}

static int q_send(struct ferry_qga *q, const char *msg, double deadline)
{
	size_t n = strlen(msg), at = 0;
	int e;

	while (at < n) {
		ssize_t w = send(q->fd, msg + at, n - at, MSG_NOSIGNAL);

		if (w > 0) {
			at += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return ferry_error(FERRY_E_SOURCE,
					   "write to qemu-guest-agent at %s: %s", q->path,
					   strerror(errno));
		if ((e = q_wait(q, POLLOUT, deadline)) != 0)
			return e;
	}
	return 0;
}

/* The next reply line, without the sync delimiter 0xff and the newline,
 * into LINE and N; valid until the next call. */
static int q_line(struct ferry_qga *q, double deadline, const char **line,
		  size_t *n)
{
	int e;

	for (;;) {
		char *nl;
		size_t skip = 0;

		while (skip < q->len && ((unsigned char)q->buf[skip] == 0xff ||
					 q->buf[skip] == '\n' || q->buf[skip] == '\r' ||
					 q->buf[skip] == ' '))
			skip++;
		if (skip) {
			memmove(q->buf, q->buf + skip, q->len - skip);
			q->len -= skip;
		}
		if (q->len && (nl = memchr(q->buf, '\n', q->len)) != NULL) {
			*line = q->buf;
			*n = (size_t)(nl - q->buf);
			return 0;
		}
		if (q->len >= REPLY_MAX)
			return ferry_error(FERRY_E_CORRUPT,
					   "qemu-guest-agent sent a reply longer than %u bytes",
					   REPLY_MAX);
		if ((e = q_wait(q, POLLIN, deadline)) != 0)
			return e;
		{
			ssize_t r = recv(q->fd, q->buf + q->len, REPLY_MAX - q->len, 0);

			if (r == 0)
				return ferry_error(FERRY_E_SOURCE,
						   "qemu-guest-agent at %s closed the connection",
						   q->path);
			if (r < 0 && errno != EAGAIN && errno != EINTR)
				return ferry_error(FERRY_E_SOURCE,
						   "read from qemu-guest-agent at %s: %s",
						   q->path, strerror(errno));
			if (r > 0)
				q->len += (size_t)r;
		}
	}
}

static int q_sync(struct ferry_qga *q);

static void q_consume(struct ferry_qga *q, size_t n)
{
	if (n < q->len && q->buf[n] == '\n')
		n++;
	memmove(q->buf, q->buf + n, q->len - n);
	q->len -= n;
}

/* Send CMD and parse its reply. */
static int q_cmd(struct ferry_qga *q, const char *cmd, long long *ival,
		 char *val, size_t vlen)
{
	double deadline = ferry_mono_seconds() + q->timeout_ms / 1000.0;
	const char *line;
	size_t n;
	int e;

	/* After a timeout the late reply must not be taken for the next
	 * command's: start over on a fresh, synchronised connection. */
	if (q->stale || q->fd < 0) {
		if (q->fd >= 0)
			close(q->fd);
		q->fd = -1;
		if ((e = q_connect(q)) != 0 || (e = q_sync(q)) != 0)
			return e;
		q->stale = 0;
	}
	if ((e = q_send(q, cmd, deadline)) != 0 ||
	    (e = q_line(q, deadline, &line, &n)) != 0) {
		q->stale = 1;
		return e;
	}
	e = ferry_qga_parse_reply(line, n, ival, val, vlen);
	q_consume(q, n);
	return e;
}

/* guest-sync-delimited with a random id; replies before ours are stale. */
static int q_sync(struct ferry_qga *q)
{
	double deadline = ferry_mono_seconds() + q->timeout_ms / 1000.0;
	uint32_t id;
	char cmd[128];
	int e;

	if ((e = ferry_random(&id, sizeof(id))) != 0)
		return e;
	id &= 0x7fffffff;
	snprintf(cmd, sizeof(cmd),
		 "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":%u}}\n", id);
	if ((e = q_send(q, cmd, deadline)) != 0)
		return e;
	for (int i = 0; i < 16; i++) {
		const char *line;
		size_t n;
		long long v = -1;

		if ((e = q_line(q, deadline, &line, &n)) != 0)
			return e;
		e = ferry_qga_parse_reply(line, n, &v, NULL, 0);
		q_consume(q, n);
		if (e == 0 && v == (long long)id)
			return 0;
	}
	return ferry_error(FERRY_E_SOURCE, "qemu-guest-agent at %s did not synchronise",
			   q->path);
}

int ferry_qga_open(const char *path, int timeout_ms, struct ferry_qga **out)
{
	struct ferry_qga *q;
	int e;

	if (strlen(path) >= sizeof(q->path))
		return ferry_error(FERRY_E_INVAL, "agent socket path %s is too long", path);
	if (!(q = calloc(1, sizeof(*q))) || !(q->buf = malloc(REPLY_MAX))) {
		free(q);
		return FERRY_E_NOMEM;
	}
	memcpy(q->path, path, strlen(path) + 1);
	q->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
	q->fd = -1;
	if ((e = q_connect(q)) != 0 || (e = q_sync(q)) != 0) {
		ferry_qga_free(q);
		return e;
	}
	*out = q;
	return 0;
}

void ferry_qga_free(struct ferry_qga *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	free(q->buf);
	free(q);
}

int ferry_qga_ping(struct ferry_qga *q)
{
	return q_cmd(q, "{\"execute\":\"guest-ping\"}\n", NULL, NULL, 0);
}

int ferry_qga_info(struct ferry_qga *q, char *version, size_t len)
{
	char *val = malloc(REPLY_MAX);
	const char *vs, *ve;
	int e;

	if (!val)
		return FERRY_E_NOMEM;
	version[0] = 0;
	e = q_cmd(q, "{\"execute\":\"guest-info\"}\n", NULL, val, REPLY_MAX);
	if (e == 0 && js_get(val, val + strlen(val), "version", &vs, &ve) == 0)
		js_copy_str(vs, ve, version, len);
	free(val);
	return e;
}

int ferry_qga_freeze(struct ferry_qga *q, int *n)
{
	long long v = -1;
	int e = q_cmd(q, "{\"execute\":\"guest-fsfreeze-freeze\"}\n", &v, NULL, 0);

	*n = (int)v;
	return e;
}

int ferry_qga_thaw(struct ferry_qga *q, int *n)
{
	long long v = -1;
	int e = q_cmd(q, "{\"execute\":\"guest-fsfreeze-thaw\"}\n", &v, NULL, 0);

	/* No reply at all: once more, on a fresh connection. */
	if (e != 0 && q->stale)
		e = q_cmd(q, "{\"execute\":\"guest-fsfreeze-thaw\"}\n", &v, NULL, 0);
	*n = (int)v;
	return e;
}
