/* net.c - the connection layer under the mover protocol: TCP sockets with
 * deadlines, URL parsing, a token-bucket rate limit, and buffered frame
 * I/O over plain TCP or TLS on non-blocking sockets, so that one thread
 * can send and receive on a connection without ever blocking on it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "proto.h"

#define TX_HARD_CAP (256u << 20) /* a bug, never a working state */

/* ---- rate limit ------------------------------------------------------ */

void ferry_rate_init(struct ferry_rate *r, uint64_t rate)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	r->rate = rate;
	/* A burst of 1/50 s keeps the pace smooth at any rate. */
	r->burst = rate / 50 > 16384 ? (double)rate / 50 : 16384;
	r->tokens = r->burst;
	r->last = ferry_mono_seconds();
}

void ferry_rate_release(struct ferry_rate *r)
{
	pthread_mutex_destroy(&r->mu);
}

size_t ferry_rate_take(struct ferry_rate *r, size_t want, int *wait_ms)
{
	double now;
	size_t n;

	*wait_ms = 0;
	if (!r || !r->rate)
		return want;
	pthread_mutex_lock(&r->mu);
	now = ferry_mono_seconds();
	r->tokens += (now - r->last) * (double)r->rate;
	if (r->tokens > r->burst)
		r->tokens = r->burst;
	r->last = now;
	/* At least 4 KiB at a time (or all that is wanted): a trickle of
	 * tiny writes would cost a TLS record each. */
	if (r->tokens < (double)(want < 4096 ? want : 4096)) {
		double need = (double)(want < 4096 ? want : 4096) - r->tokens;

		*wait_ms = (int)(need * 1000 / (double)r->rate) + 1;
		n = 0;
	} else {
		n = want < (size_t)r->tokens ? want : (size_t)r->tokens;
		r->tokens -= (double)n;
	}
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* ---- addresses -------------------------------------------------------- */

int ferry_hostport_parse(const char *s, char *host, size_t hcap, char *port,
			 size_t pcap)
{
	const char *colon, *h = s;
	size_t hl;

	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return FERRY_E_INVAL;
		h = s + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return FERRY_E_INVAL;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hcap || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= pcap ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    strtoul(colon + 1, NULL, 10) > 65535)
		return FERRY_E_INVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	snprintf(port, pcap, "%s", colon + 1);
	return 0;
}

int ferry_is_remote_url(const char *path)
{
	return path && !strncmp(path, "ferry://", 8);
}

int ferry_url_parse(const char *url, struct ferry_url *u)
{
	char hp[300];
	const char *rest, *slash;

	memset(u, 0, sizeof(*u));
	if (!ferry_is_remote_url(url))
		return ferry_error(FERRY_E_INVAL, "%s is not a ferry:// URL", url);
	rest = url + 8;
	slash = strchr(rest, '/');
	if (!slash || (size_t)(slash - rest) >= sizeof(hp))
		goto bad;
	memcpy(hp, rest, (size_t)(slash - rest));
	hp[slash - rest] = 0;
	if (ferry_hostport_parse(hp, u->host, sizeof(u->host), u->port,
				 sizeof(u->port)))
		goto bad;
	if (!ferry_name_valid(slash + 1))
		goto bad;
	snprintf(u->repo, sizeof(u->repo), "%s", slash + 1);
	return 0;
bad:
	return ferry_error(FERRY_E_INVAL,
			   "bad repository URL '%s': expected ferry://HOST:PORT/REPO",
			   url);
}

int ferry_addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) &&
		       a->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

void ferry_addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
	char h[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &a->sin_addr, h, sizeof(h));
		port = ntohs(a->sin_port);
		snprintf(out, cap, "%s:%d", h, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof(h));
		port = ntohs(a->sin6_port);
		snprintf(out, cap, "[%s]:%d", h, port);
	} else {
		snprintf(out, cap, "?");
	}
}

static void tune(int fd)
{
	int one = 1, idle = 30, intvl = 10, cnt = 6;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

int ferry_tcp_connect(const char *host, const char *port, double deadline,
		      int *out, char *peer, size_t peer_cap, int *loopback)
{
	struct addrinfo hints, *res = NULL, *ai;
	int e, fd = -1, err = ECONNREFUSED;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0)
		return ferry_error(FERRY_E_NET, "cannot resolve %s: %s", host,
				   gai_strerror(e));
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd p;
		socklen_t sl = sizeof(err);
		double left;

		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
		    errno != EINPROGRESS) {
			err = errno;
			goto next;
		}
		p.fd = fd;
		p.events = POLLOUT;
		left = deadline - ferry_mono_seconds();
		if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0) {
			err = ETIMEDOUT;
			goto next;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
			err = errno;
		if (err)
			goto next;
		tune(fd);
		ferry_addr_text(ai->ai_addr, peer, peer_cap);
		*loopback = ferry_addr_is_loopback(ai->ai_addr);
		*out = fd;
		freeaddrinfo(res);
		return 0;
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return ferry_error(err == ETIMEDOUT ? FERRY_E_TIMEOUT : FERRY_E_NET,
			   "cannot connect to %s:%s: %s", host, port,
			   strerror(err));
}

int ferry_tcp_listen(const char *host, const char *port, int *out,
		     char *bound, size_t cap, int *loopback)
{
	struct addrinfo hints, *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int e, fd, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0)
		return ferry_error(FERRY_E_NET, "cannot resolve %s: %s", host,
				   gai_strerror(e));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		goto fail;
	freeaddrinfo(res);
	ferry_addr_text((struct sockaddr *)&ss, bound, cap);
	*loopback = ferry_addr_is_loopback((struct sockaddr *)&ss);
	*out = fd;
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return ferry_error(FERRY_E_NET, "cannot listen on %s:%s: %s", host, port,
			   strerror(e));
}

/* ---- connections ---------------------------------------------------- */

struct ferry_conn *ferry_conn_new(int fd, const char *peer)
{
	struct ferry_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->max_frame = FERRY_FRAME_PREAUTH;
	c->last_rx = ferry_mono_seconds();
	return c;
}

void ferry_conn_free(struct ferry_conn *c)
{
	if (!c)
		return;
	ferry_tls_close(c);
	if (c->fd >= 0)
		close(c->fd);
	free(c->rx);
	free(c->tx);
	free(c);
}

static ssize_t raw_read(struct ferry_conn *c, void *buf, size_t n)
{
	ssize_t r;

	if (c->ssl)
		r = ferry_tls_read(c, buf, n);
	else {
		do
			r = read(c->fd, buf, n);
		while (r < 0 && errno == EINTR);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -EAGAIN;
			c->broken = 1;
			return ferry_error(FERRY_E_NET, "read from %s: %s",
					   c->peer, strerror(errno));
		}
	}
	if (r > 0) {
		c->bytes_in += (uint64_t)r;
		c->last_rx = ferry_mono_seconds();
	}
	return r;
}

static ssize_t raw_write(struct ferry_conn *c, const void *buf, size_t n)
{
	ssize_t r;

	if (c->ssl)
		return ferry_tls_write(c, buf, n);
	do
		r = send(c->fd, buf, n, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		c->broken = 1;
		return ferry_error(FERRY_E_NET, "write to %s: %s", c->peer,
				   strerror(errno));
	}
	return r;
}

static int eof(struct ferry_conn *c)
{
	c->broken = 1;
	if (c->hdr_got || c->rx_got)
		return ferry_error(FERRY_E_NET,
				   "%s closed the connection in the middle of a frame",
				   c->peer);
	c->eof = 1;
	return ferry_error(FERRY_E_NET, "%s closed the connection", c->peer);
}

int ferry_conn_recv(struct ferry_conn *c)
{
	ssize_t r;

	if (c->rx_ready) {
		c->rx_ready = 0;
		c->hdr_got = 0;
		c->rx_got = 0;
		c->rx_len = 0;
	}
	if (c->broken)
		return FERRY_E_NET;
	while (c->hdr_got < FERRY_FRAME_HDR) {
		uint32_t len;
		int e;

		r = raw_read(c, c->hdr + c->hdr_got, FERRY_FRAME_HDR - c->hdr_got);
		if (r == -EAGAIN)
			return 0;
		if (r < 0)
			return (int)r;
		if (r == 0)
			return eof(c);
		c->hdr_got += (size_t)r;
		if (c->hdr_got < FERRY_FRAME_HDR)
			continue;
		/* Every limit is checked here, before any allocation. */
		/* The stream is unusable after this, but still writable:
		 * the caller tells the peer why before closing. */
		if ((e = ferry_frame_header_parse(c->hdr, c->max_frame,
						  c->block_size, &len,
						  &c->rx_type)) != 0)
			return e;
		if (len > c->rx_cap) {
			uint8_t *n = realloc(c->rx, len);

			if (!n)
				return FERRY_E_NOMEM;
			c->rx = n;
			c->rx_cap = len;
		}
		c->rx_len = len;
		c->rx_got = 0;
	}
	while (c->rx_got < c->rx_len) {
		r = raw_read(c, c->rx + c->rx_got, c->rx_len - c->rx_got);
		if (r == -EAGAIN)
			return 0;
		if (r < 0)
			return (int)r;
		if (r == 0)
			return eof(c);
		c->rx_got += (size_t)r;
	}
	c->rx_ready = 1;
	return 1;
}

/* Room for NEED more bytes at the end of tx; moves the unsent bytes to
 * the front first when that is cheap or frees much. */
static int tx_reserve(struct ferry_conn *c, size_t need)
{
	if (c->tx_off == c->tx_len ||
	    (c->tx_off > (1u << 20) && c->tx_off > c->tx_len / 2)) {
		size_t d = c->tx_off;

		if (d) {
			memmove(c->tx, c->tx + d, c->tx_len - d);
			c->tx_len -= d;
			c->tx_off = 0;
			for (unsigned i = 0; i < c->txr_n; i++)
				c->txr[(c->txr_head + i) % FERRY_TXREF_MAX].at -= d;
		}
	}
	if (c->tx_len + need + c->txr_bytes > TX_HARD_CAP)
		return ferry_error(FERRY_E_NOMEM, "send buffer to %s overflows",
				   c->peer);
	if (c->tx_len + need > c->tx_cap) {
		size_t cap = c->tx_cap ? c->tx_cap : 65536;
		uint8_t *n;

		while (cap < c->tx_len + need)
			cap *= 2;
		if (!(n = realloc(c->tx, cap)))
			return FERRY_E_NOMEM;
		c->tx = n;
		c->tx_cap = cap;
	}
	return 0;
}

int ferry_conn_queue(struct ferry_conn *c, uint16_t type, const void *a,
		     size_t alen, const void *b, size_t blen)
{
	size_t need = FERRY_FRAME_HDR + alen + blen;
	int e;

	if (alen + blen > UINT32_MAX)
		return ferry_error(FERRY_E_NOMEM, "send buffer to %s overflows",
				   c->peer);
	if ((e = tx_reserve(c, need)) != 0)
		return e;
	ferry_frame_header_encode(c->tx + c->tx_len, type, (uint32_t)(alen + blen));
	if (alen)
		memcpy(c->tx + c->tx_len + FERRY_FRAME_HDR, a, alen);
	if (blen)
		memcpy(c->tx + c->tx_len + FERRY_FRAME_HDR + alen, b, blen);
	c->tx_len += need;
	return 0;
}

/* Below this a payload is copied: a reference would cost a TLS record
 * (and a write) of its own for too few bytes. */
#define REF_MIN (64u << 10)
/* A TLS record's plaintext. */
#define RECORD 16384u

int ferry_conn_queue_ref(struct ferry_conn *c, uint16_t type, const void *a,
			 size_t alen, const void *b, size_t blen)
{
	size_t head, need;
	struct ferry_txref *x;
	int e;

	if (blen < REF_MIN || c->txr_n == FERRY_TXREF_MAX ||
	    FERRY_FRAME_HDR + alen >= RECORD || alen + blen > UINT32_MAX)
		return ferry_conn_queue(c, type, a, alen, b, blen);
	/* The header, A and the start of B fill one record; the rest of B
	 * goes from the caller's memory in full records. */
	head = RECORD - FERRY_FRAME_HDR - alen;
	need = FERRY_FRAME_HDR + alen + head;
	if ((e = tx_reserve(c, need)) != 0)
		return e;
	if (c->tx_len + need + c->txr_bytes + (blen - head) > TX_HARD_CAP)
		return ferry_error(FERRY_E_NOMEM, "send buffer to %s overflows",
				   c->peer);
	ferry_frame_header_encode(c->tx + c->tx_len, type, (uint32_t)(alen + blen));
	if (alen)
		memcpy(c->tx + c->tx_len + FERRY_FRAME_HDR, a, alen);
	memcpy(c->tx + c->tx_len + FERRY_FRAME_HDR + alen, b, head);
	c->tx_len += need;
	x = &c->txr[(c->txr_head + c->txr_n) % FERRY_TXREF_MAX];
	x->at = c->tx_len;
	x->p = (const uint8_t *)b + head;
	x->len = blen - head;
	c->txr_n++;
	c->txr_bytes += x->len;
	return 0;
}

int ferry_conn_refs(const struct ferry_conn *c, const void *p, size_t len)
{
	const uint8_t *lo = p, *hi = lo + len;

	for (unsigned i = 0; i < c->txr_n; i++) {
		const struct ferry_txref *x =
			&c->txr[(c->txr_head + i) % FERRY_TXREF_MAX];

		if (x->p < hi && x->p + x->len > lo)
			return 1;
	}
	return 0;
}

size_t ferry_conn_backlog(const struct ferry_conn *c)
{
	return c->tx_len - c->tx_off + c->txr_bytes;
}

int ferry_conn_flush(struct ferry_conn *c)
{
	c->rate_wait_ms = 0;
	if (c->broken)
		return FERRY_E_NET;
	while (c->tx_off < c->tx_len || c->txr_n) {
		struct ferry_txref *x = c->txr_n ? &c->txr[c->txr_head] : NULL;
		const uint8_t *p;
		size_t want, n;
		int ref = x && x->at == c->tx_off;
		ssize_t r;

		if (ref) {
			p = x->p + c->txr_off;
			want = x->len - c->txr_off;
		} else {
			/* copied bytes, up to the next payload by reference */
			p = c->tx + c->tx_off;
			want = (x ? x->at : c->tx_len) - c->tx_off;
		}
		/* TLS records are 16 KiB: pace in pieces of that size. */
		if (c->rate && want > RECORD)
			want = RECORD;
		n = ferry_rate_take(c->rate, want, &c->rate_wait_ms);
		if (!n)
			return 1;
		r = raw_write(c, p, n);
		if (r == -EAGAIN) {
			/* Unused tokens go back: nothing was sent. */
			if (c->rate && c->rate->rate) {
				pthread_mutex_lock(&c->rate->mu);
				c->rate->tokens += (double)n;
				pthread_mutex_unlock(&c->rate->mu);
			}
			return 1;
		}
		if (r < 0)
			return (int)r;
		if (c->rate && c->rate->rate && (size_t)r < n) {
			pthread_mutex_lock(&c->rate->mu);
			c->rate->tokens += (double)(n - (size_t)r);
			pthread_mutex_unlock(&c->rate->mu);
		}
		if (ref) {
			c->txr_off += (size_t)r;
			c->txr_bytes -= (size_t)r;
			if (c->txr_off == x->len) {
				c->txr_head = (c->txr_head + 1) % FERRY_TXREF_MAX;
				c->txr_n--;
				c->txr_off = 0;
			}
		} else {
			c->tx_off += (size_t)r;
		}
		c->bytes_out += (uint64_t)r;
	}
	c->tx_off = c->tx_len = 0;
	return 0;
}

short ferry_conn_events(const struct ferry_conn *c)
{
	short ev = POLLIN;

	if (((c->tx_off < c->tx_len || c->txr_n) && !c->rate_wait_ms) ||
	    c->want_write)
		ev |= POLLOUT;
	return ev;
}

int ferry_conn_pending(const struct ferry_conn *c)
{
	return ferry_tls_pending(c);
}

static int poll_one(struct ferry_conn *c, short ev, double deadline,
		    int extra_ms)
{
	struct pollfd p = { c->fd, ev, 0 };
	double left = deadline - ferry_mono_seconds();
	int ms;

	if (left <= 0) {
		c->broken = 1;
		return ferry_error(FERRY_E_TIMEOUT, "%s did not answer in time",
				   c->peer);
	}
	ms = (int)(left * 1000) + 1;
	if (ms > 250)
		ms = 250; /* look at the cancel flag now and then */
	if (extra_ms && extra_ms < ms)
		ms = extra_ms;
	if (poll(&p, 1, ms) < 0 && errno != EINTR)
		return ferry_error(FERRY_E_NET, "poll: %s", strerror(errno));
	return 0;
}

int ferry_conn_send_wait(struct ferry_conn *c, double deadline)
{
	int r;

	while ((r = ferry_conn_flush(c)) == 1) {
		if (c->rate_wait_ms && !c->want_write) {
			struct timespec ts = { 0, (long)c->rate_wait_ms * 1000000L };

			if (ferry_mono_seconds() > deadline)
				return ferry_error(FERRY_E_TIMEOUT,
						   "sending to %s timed out", c->peer);
			nanosleep(&ts, NULL);
			continue;
		}
		if ((r = poll_one(c, POLLOUT | POLLIN, deadline, 0)) != 0)
			return r;
	}
	return r;
}

int ferry_conn_recv_wait(struct ferry_conn *c, double deadline)
{
	int r;

	while ((r = ferry_conn_recv(c)) == 0) {
		if ((r = poll_one(c, c->want_write ? POLLOUT : POLLIN, deadline,
				  0)) != 0)
			return r;
	}
	return r < 0 ? r : 0;
}

int ferry_conn_peer_error(struct ferry_conn *c)
{
	char msg[FERRY_MSG_MAX + 1];
	int code;

	if (ferry_error_parse(c->rx, c->rx_len, &code, msg, sizeof(msg)))
		return FERRY_E_PROTO;
	return ferry_error(code, "%s", msg);
}

int ferry_conn_call(struct ferry_conn *c, uint16_t type, const void *a,
		    size_t alen, const void *b, size_t blen, double deadline)
{
	int e;

	if ((e = ferry_conn_queue(c, type, a, alen, b, blen)) != 0 ||
	    (e = ferry_conn_send_wait(c, deadline)) != 0 ||
	    (e = ferry_conn_recv_wait(c, deadline)) != 0)
		return e;
	if (c->rx_type == FM_ERROR)
		return ferry_conn_peer_error(c);
	return 0;
}

void ferry_conn_close_soft(struct ferry_conn *c, int ms)
{
	double until = ferry_mono_seconds() + ms / 1000.0;
	char junk[16384];

	if (c->broken || c->fd < 0)
		return;
	if (c->ssl) {
		ERR_clear_error();
		SSL_shutdown(c->ssl); /* close_notify, non-blocking */
		ERR_clear_error();
	}
	shutdown(c->fd, SHUT_WR);
	while (ferry_mono_seconds() < until) {
		struct pollfd p = { c->fd, POLLIN, 0 };
		ssize_t r;

		if (poll(&p, 1, 10) <= 0)
			continue;
		r = read(c->fd, junk, sizeof(junk));
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			break;
	}
	c->broken = 1; /* nothing more on it */
}

void ferry_conn_send_error(struct ferry_conn *c, int code, const char *msg)
{
	uint8_t buf[8 + FERRY_MSG_MAX];
	size_t n = ferry_error_encode(buf, sizeof(buf), code, msg);

	if (c->broken || !n)
		return;
	if (ferry_conn_queue(c, FM_ERROR, buf, n, NULL, 0) == 0)
		ferry_conn_send_wait(c, ferry_mono_seconds() + 2);
}
