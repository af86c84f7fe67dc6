/* faultproxy.c - a user-space TCP proxy that injects link faults for the
 * end-to-end tests (tc netem is not available here): cut connections
 * after a number of bytes (RST or FIN), stall them, delay and rate-limit
 * both directions (a WAN link), corrupt one byte, and count what crossed.
 *
 *   faultproxy --listen HOST:PORT --to HOST:PORT [--port-file F]
 *              [--cut-every BYTES] [--max-cuts N] [--mode rst|fin]
 *              [--stall-after BYTES] [--max-stalls N]
 *              [--delay MS] [--rate BYTES_PER_S] [--corrupt-at BYTES]
 *              [--stats FILE]
 *
 * Byte counts are of data delivered to the other side, client to server
 * (c2s) and back (s2c).  --cut-every cuts the connection that carries the
 * c2s stream across each multiple of BYTES; --stall-after freezes a
 * connection (both ways, sockets left open) once it carried BYTES c2s;
 * --delay holds each byte MS milliseconds in each direction; --rate
 * paces each direction (shared by all connections, like one link).  The
 * stats file is rewritten on every change: "c2s N s2c N conns N cuts N
 * stalls N". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (4u << 20)
#define MAXCONN 64
#define MARKS 8192

struct dir {
	uint8_t *buf;            /* ring of BUF bytes */
	size_t head, len;        /* unsent bytes at head */
	/* release times: bytes up to 'end' (absolute count) may go at 't' */
	struct { uint64_t end; double t; } mark[MARKS];
	int mh, mn;
	uint64_t in, out;        /* absolute counts read / written */
	int eof;
};

struct pair {
	int c, s;                /* client, server */
	struct dir d[2];         /* 0: c2s, 1: s2c */
	uint64_t c2s_total;      /* bytes of this connection c2s */
	int stalled, used;
};

static struct pair conns[MAXCONN];
static uint64_t total[2], cut_every, stall_after, corrupt_at = UINT64_MAX;
static unsigned long cuts, max_cuts = ~0ul, stalls, max_stalls = 1, nconns;
static double delay, rate, tokens[2], last_fill;
static int rst = 1;
static const char *stats_file;
static volatile sig_atomic_t stop;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_stats(void)
{
	char tmp[4200];
	FILE *f;

	if (!stats_file)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", stats_file);
	if (!(f = fopen(tmp, "w")))
		return;
	fprintf(f, "c2s %llu s2c %llu conns %lu cuts %lu stalls %lu\n",
		(unsigned long long)total[0], (unsigned long long)total[1], nconns,
		cuts, stalls);
	fclose(f);
	rename(tmp, stats_file);
}

static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

static int split(const char *s, char *host, char *port)
{
	const char *c = strrchr(s, ':');

	if (!c || c == s || (size_t)(c - s) > 200 || strlen(c + 1) > 7)
		return -1;
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = 0;
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	snprintf(port, 16, "%s", c + 1);
	return 0;
}

static int tcp(const char *hp, int listening)
{
	char host[256], port[16];
	struct addrinfo h = { 0 }, *r;
	int fd, one = 1;

	if (split(hp, host, port))
		return -1;
	h.ai_socktype = SOCK_STREAM;
	h.ai_flags = listening ? AI_PASSIVE : 0;
	if (getaddrinfo(host, port, &h, &r))
		return -1;
	fd = socket(r->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (listening ? bind(fd, r->ai_addr, r->ai_addrlen) || listen(fd, 64)
			      : connect(fd, r->ai_addr, r->ai_addrlen)) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(r);
	if (fd >= 0) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fcntl(fd, F_SETFL, O_NONBLOCK);
	}
	return fd;
}

static void drop(struct pair *p, int hard)
{
	int fds[2] = { p->c, p->s };

	for (int i = 0; i < 2; i++) {
		if (hard && rst) {
			struct linger l = { 1, 0 };

			setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		} else {
			char junk[65536];

			/* A FIN, not a reset: nothing unread may remain. */
			while (read(fds[i], junk, sizeof(junk)) > 0)
				;
			shutdown(fds[i], SHUT_RDWR);
		}
		close(fds[i]);
	}
	free(p->d[0].buf);
	free(p->d[1].buf);
	memset(p, 0, sizeof(*p));
	write_stats();
}

static void refill(void)
{
	double t = now();

	if (rate > 0) {
		for (int i = 0; i < 2; i++) {
			tokens[i] += (t - last_fill) * rate;
			if (tokens[i] > rate / 100 + 65536)
				tokens[i] = rate / 100 + 65536;
		}
	}
	last_fill = t;
}

/* Read into direction D of P from fd IN. */
static int pull(struct pair *p, int k, int in)
{
	struct dir *d = &p->d[k];
	size_t tail = (d->head + d->len) % BUF, room = BUF - d->len, n;
	ssize_t r;

	if (!room || d->mn == MARKS)
		return 0;
	n = tail + room > BUF ? BUF - tail : room;
	r = read(in, d->buf + tail, n);
	if (r == 0) {
		d->eof = 1;
		return 0;
	}
	if (r < 0)
		return errno == EAGAIN ? 0 : -1;
	d->len += (size_t)r;
	d->in += (uint64_t)r;
	d->mark[(d->mh + d->mn) % MARKS].end = d->in;
	d->mark[(d->mh + d->mn) % MARKS].t = now() + delay;
	d->mn++;
	return 0;
}

/* Write what may go from direction K of P to fd OUT; 1 when cut. */
static int push(struct pair *p, int k, int out)
{
	struct dir *d = &p->d[k];
	double t = now();
	uint64_t may = d->out;
	size_t n;
	ssize_t w;

	while (d->mn && d->mark[d->mh].end <= d->out) {
		d->mh = (d->mh + 1) % MARKS;
		d->mn--;
	}
	for (int i = 0; i < d->mn; i++) {
		int m = (d->mh + i) % MARKS;

		if (d->mark[m].t > t)
			break;
		may = d->mark[m].end;
	}
	if (may <= d->out)
		return 0;
	n = (size_t)(may - d->out);
	if (n > BUF - d->head)
		n = BUF - d->head;
	if (rate > 0) {
		if (tokens[k] < 1)
			return 0;
		if (n > (size_t)tokens[k])
			n = (size_t)tokens[k];
	}
	if (k == 0 && cut_every && cuts < max_cuts) {
		uint64_t next = (total[0] / cut_every + 1) * cut_every;

		if (total[0] + n >= next)
			n = (size_t)(next - total[0]);
	}
	if (k == 0 && corrupt_at >= total[0] && corrupt_at < total[0] + n) {
		d->buf[d->head + (corrupt_at - total[0])] ^= 0x5a;
		corrupt_at = UINT64_MAX; /* once, even if this write is short */
	}
	w = write(out, d->buf + d->head, n);
	if (w < 0)
		return errno == EAGAIN ? 0 : -1;
	d->head = (d->head + (size_t)w) % BUF;
	d->len -= (size_t)w;
	d->out += (uint64_t)w;
	total[k] += (uint64_t)w;
	if (rate > 0)
		tokens[k] -= (double)w;
	if (k == 0) {
		p->c2s_total += (uint64_t)w;
		if (cut_every && cuts < max_cuts && total[0] % cut_every == 0) {
			cuts++;
			fprintf(stderr, "faultproxy: cut %lu at %llu bytes (%s)\n", cuts,
				(unsigned long long)total[0], rst ? "RST" : "FIN");
			return 1;
		}
		if (stall_after && !p->stalled && stalls < max_stalls &&
		    p->c2s_total >= stall_after) {
			p->stalled = 1;
			stalls++;
			fprintf(stderr, "faultproxy: stalled a connection at %llu bytes\n",
				(unsigned long long)p->c2s_total);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *listen_at = NULL, *to = NULL, *port_file = NULL;
	int lfd;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v) {
			fprintf(stderr, "faultproxy: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--listen")) listen_at = v;
		else if (!strcmp(a, "--to")) to = v;
		else if (!strcmp(a, "--port-file")) port_file = v;
		else if (!strcmp(a, "--cut-every")) cut_every = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--max-cuts")) max_cuts = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--mode")) rst = strcmp(v, "fin") != 0;
		else if (!strcmp(a, "--stall-after")) stall_after = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--max-stalls")) max_stalls = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--delay")) delay = strtod(v, NULL) / 1000;
		else if (!strcmp(a, "--rate")) rate = strtod(v, NULL);
		else if (!strcmp(a, "--corrupt-at")) corrupt_at = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--stats")) stats_file = v;
		else {
			fprintf(stderr, "faultproxy: unknown option %s\n", a);
			return 2;
		}
	}
	if (!listen_at || !to) {
		fprintf(stderr, "usage: faultproxy --listen HOST:PORT --to HOST:PORT [options]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	if ((lfd = tcp(listen_at, 1)) < 0) {
		fprintf(stderr, "faultproxy: cannot listen on %s: %s\n", listen_at,
			strerror(errno));
		return 1;
	}
	if (port_file) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		char tmp[4200];
		FILE *f;

		getsockname(lfd, (struct sockaddr *)&sa, &sl);
		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		if ((f = fopen(tmp, "w"))) {
			fprintf(f, "%d\n", ntohs(sa.sin_port));
			fclose(f);
			rename(tmp, port_file);
		}
	}
	write_stats();
	last_fill = now();
	while (!stop) {
		struct pollfd pf[1 + 2 * MAXCONN];
		int np = 1, ms = 50;

		pf[0].fd = lfd;
		pf[0].events = POLLIN;
		for (int i = 0; i < MAXCONN; i++) {
			struct pair *p = &conns[i];
			short ec = 0, es = 0;

			if (!p->used)
				continue;
			if (!p->stalled) {
				if (!p->d[0].eof && p->d[0].len < BUF)
					ec |= POLLIN;
				if (!p->d[1].eof && p->d[1].len < BUF)
					es |= POLLIN;
				if (p->d[0].len)
					es |= POLLOUT;
				if (p->d[1].len)
					ec |= POLLOUT;
				if (p->d[0].len || p->d[1].len)
					ms = 1; /* delays and rates run on time */
			}
			pf[np].fd = p->c;
			pf[np++].events = ec;
			pf[np].fd = p->s;
			pf[np++].events = es;
		}
		if (poll(pf, (nfds_t)np, ms) < 0 && errno != EINTR)
			break;
		if (pf[0].revents & POLLIN) {
			int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			int s = c >= 0 ? tcp(to, 0) : -1, slot = -1;

			for (int i = 0; i < MAXCONN && c >= 0 && s >= 0; i++)
				if (!conns[i].used) {
					slot = i;
					break;
				}
			if (slot < 0) {
				if (c >= 0)
					close(c);
				if (s >= 0)
					close(s);
			} else {
				struct pair *p = &conns[slot];
				int one = 1;

				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				p->used = 1;
				p->c = c;
				p->s = s;
				p->d[0].buf = malloc(BUF);
				p->d[1].buf = malloc(BUF);
				nconns++;
				write_stats();
			}
		}
		refill();
		for (int i = 0; i < MAXCONN; i++) {
			struct pair *p = &conns[i];
			int r = 0;

			if (!p->used || p->stalled)
				continue;
			if (pull(p, 0, p->c) || pull(p, 1, p->s)) {
				drop(p, 0);
				continue;
			}
			if ((r = push(p, 0, p->s)) != 0 || push(p, 1, p->c)) {
				drop(p, r == 1);
				continue;
			}
			/* An end of stream passes on once its data went. */
			if ((p->d[0].eof && !p->d[0].len) || (p->d[1].eof && !p->d[1].len))
				drop(p, 0);
		}
	}
	write_stats();
	return 0;
}
