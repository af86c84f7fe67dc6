/* nbd_serve.c - instant recovery: exports a restore point as an NBD disk
 * on a unix socket or TCP port.  Reads go through the checked, cached
 * random-access image (image.c); with --writable, writes land in an
 * overlay file at 4 KiB granularity and the repository is never written.
 * Each client gets its own threads; all share the image and overlay. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "nbdsrv.h"

#define OV_PAGE 4096u

/* ---- the export: image + optional overlay ---------------------------- */

struct export {
	struct ferry_image *img;
	const struct ferry_serve_opts *opts;
	int ov_fd;                 /* -1: read-only */
	uint8_t *ov_map;           /* one bit per 4 KiB page written */
	pthread_rwlock_t ov_lock;  /* readers: read; writers: write */
	pthread_mutex_t log_mu;
};

static void slog(struct export *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void slog(struct export *x, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!x->opts->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&x->log_mu);
	x->opts->log(msg, x->opts->log_arg);
	pthread_mutex_unlock(&x->log_mu);
}

static int ov_has(const struct export *x, uint64_t page)
{
	return x->ov_map[page / 8] >> (page % 8) & 1;
}

static int base_read(struct export *x, void *buf, size_t len, uint64_t off)
{
	int e = ferry_image_pread(x->img, buf, len, off);

	if (e == 0)
		return 0;
	slog(x, "read of %zu bytes at %llu failed (I/O error to the client): %s",
	     len, (unsigned long long)off, ferry_last_error());
	return e == FERRY_E_NOMEM ? ENOMEM : EIO;
}

static int ex_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	struct export *x = arg;
	uint8_t *p = buf;
	int e = 0;

	if (x->ov_fd < 0)
		return base_read(x, buf, len, off);
	pthread_rwlock_rdlock(&x->ov_lock);
	/* Runs of pages from the overlay or from the restore point. */
	while (len && !e) {
		uint64_t page = off / OV_PAGE;
		int in_ov = ov_has(x, page);
		size_t n = 0;

		while (n < len && ov_has(x, (off + n) / OV_PAGE) == in_ov) {
			size_t step = OV_PAGE - (size_t)((off + n) % OV_PAGE);

			n += step < len - n ? step : len - n;
		}
		if (in_ov) {
			ssize_t got = ferry_pread_full(x->ov_fd, p, n, (off_t)off);

			e = got == (ssize_t)n ? 0 : EIO;
		} else {
			e = base_read(x, p, n, off);
		}
		p += n;
		off += n;
		len -= n;
	}
	pthread_rwlock_unlock(&x->ov_lock);
	return e;
}

static int ex_pwrite(void *arg, const void *buf, size_t len, uint64_t off)
{
	struct export *x = arg;
	const uint8_t *p = buf;
	uint8_t page_buf[OV_PAGE];
	int e = 0;

	pthread_rwlock_wrlock(&x->ov_lock);
	while (len && !e) {
		uint64_t page = off / OV_PAGE, pstart = page * OV_PAGE;
		size_t skip = (size_t)(off - pstart);
		size_t n = OV_PAGE - skip < len ? OV_PAGE - skip : len;
		size_t plen = pstart + OV_PAGE > ferry_image_point(x->img)->disk_size
				      ? (size_t)(ferry_image_point(x->img)->disk_size - pstart)
				      : OV_PAGE;

		if (n == plen && skip == 0) {
			e = ferry_pwrite_all(x->ov_fd, p, n, (off_t)off) ? EIO : 0;
		} else {
			/* A partial page: merge with what the client sees now. */
			if (ov_has(x, page))
				e = ferry_pread_full(x->ov_fd, page_buf, plen,
						     (off_t)pstart) == (ssize_t)plen ? 0 : EIO;
			else
				e = base_read(x, page_buf, plen, pstart);
			if (!e) {
				memcpy(page_buf + skip, p, n);
				e = ferry_pwrite_all(x->ov_fd, page_buf, plen,
						     (off_t)pstart) ? EIO : 0;
			}
		}
		if (!e)
			x->ov_map[page / 8] |= (uint8_t)(1u << (page % 8));
		p += n;
		off += n;
		len -= n;
	}
	pthread_rwlock_unlock(&x->ov_lock);
	if (e == EIO)
		slog(x, "overlay write failed: %s", strerror(errno));
	return e;
}

static int ex_flush(void *arg)
{
	struct export *x = arg;

	return x->ov_fd >= 0 && fdatasync(x->ov_fd) < 0 ? EIO : 0;
}

static int overlay_open(struct export *x, uint64_t size)
{
	const char *path = x->opts->overlay;
	uint64_t pages = (size + OV_PAGE - 1) / OV_PAGE;

	if (path) {
		x->ov_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (x->ov_fd < 0)
			return ferry_error(FERRY_E_TARGET,
					   "cannot create overlay %s: %s (it must not exist)",
					   path, strerror(errno));
	} else {
		const char *dir = getenv("TMPDIR");

		x->ov_fd = open(dir && *dir ? dir : "/tmp",
				O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
		if (x->ov_fd < 0)
			return ferry_error(FERRY_E_TARGET,
					   "cannot create an overlay file in %s: %s (set TMPDIR or give --overlay)",
					   dir && *dir ? dir : "/tmp", strerror(errno));
	}
	if (ftruncate(x->ov_fd, (off_t)size) < 0)
		return ferry_error(FERRY_E_TARGET, "size overlay: %s", strerror(errno));
	if (!(x->ov_map = calloc(1, (size_t)(pages / 8 + 1))))
		return FERRY_E_NOMEM;
	return 0;
}

/* ---- sockets --------------------------------------------------------- */

static int sock_recv(void *arg, void *buf, size_t n)
{
	int fd = *(int *)arg;
	uint8_t *p = buf;

	while (n) {
		ssize_t k = recv(fd, p, n, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int sock_send(void *arg, const void *buf, size_t n)
{
	int fd = *(int *)arg;
	const uint8_t *p = buf;

	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int listen_on(const char *spec, char *where, size_t wlen)
{
	int fd = -1, one = 1;

	if (!strncmp(spec, "unix:", 5)) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		struct stat st;
		const char *path = spec + 5;

		if (!*path || strlen(path) >= sizeof(sa.sun_path))
			return ferry_error(FERRY_E_INVAL, "socket path '%s' is empty or too long", path);
		memcpy(sa.sun_path, path, strlen(path) + 1);
		if (lstat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode))
				return ferry_error(FERRY_E_EXISTS, "%s exists and is not a socket", path);
			unlink(path); /* a stale socket of an earlier server */
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(fd, 64) < 0)
			goto fail;
		snprintf(where, wlen, "nbd+unix:///?socket=%s", path);
		return fd;
	} else {
		char host[256];
		const char *colon = strrchr(spec, ':');
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
					  .ai_flags = AI_PASSIVE }, *ai = NULL;
		size_t hl;
		int g;

		if (!colon || !colon[1] || (hl = (size_t)(colon - spec)) >= sizeof(host))
			return ferry_error(FERRY_E_INVAL,
					   "--nbd '%s': give unix:PATH or HOST:PORT", spec);
		memcpy(host, spec, hl);
		host[hl] = 0;
		if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
			memmove(host, host + 1, hl - 2);
			host[hl - 2] = 0;
		}
		if ((g = getaddrinfo(*host ? host : NULL, colon + 1, &hints, &ai)) != 0)
			return ferry_error(FERRY_E_INVAL, "--nbd '%s': %s", spec,
					   gai_strerror(g));
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
			freeaddrinfo(ai);
			goto fail;
		}
		freeaddrinfo(ai);
		snprintf(where, wlen, "nbd://%s/", spec);
		return fd;
	}
fail:
	{
		int e = errno;

		if (fd >= 0)
			close(fd);
		return ferry_error(e == EADDRINUSE ? FERRY_E_EXISTS : FERRY_E_IO,
				   "cannot listen on %s: %s", spec, strerror(e));
	}
}

/* ---- clients --------------------------------------------------------- */

struct client {
	struct export *x;
	const struct ferry_nbd_backend *b;
	int fd, id, threads;
	pthread_t th;
	atomic_int finished;
	struct ferry_nbd_conn conn;
	struct client *next;
};

static void *req_thread(void *arg)
{
	ferry_nbd_requests(arg);
	return NULL;
}

static void *client_thread(void *arg)
{
	struct client *c = arg;
	struct ferry_nbd_io io = { sock_recv, sock_send, &c->fd };
	pthread_t extra[63];
	int n = 0;

	if (ferry_nbd_handshake(&io, c->b) != 0) {
		slog(c->x, "client %d: left during the handshake", c->id);
		goto out;
	}
	slog(c->x, "client %d: transmission started", c->id);
	ferry_nbd_conn_init(&c->conn, &io, c->b);
	for (; n < c->threads - 1 && n < 63; n++)
		if (pthread_create(&extra[n], NULL, req_thread, &c->conn))
			break;
	ferry_nbd_requests(&c->conn);
	/* Wake the others: one may wait in recv() for a request. */
	shutdown(c->fd, SHUT_RD);
	for (int i = 0; i < n; i++)
		pthread_join(extra[i], NULL);
	slog(c->x, "client %d: disconnected after %llu requests", c->id,
	     (unsigned long long)atomic_load(&c->conn.requests));
	ferry_nbd_conn_release(&c->conn);
out:
	shutdown(c->fd, SHUT_RDWR);
	atomic_store(&c->finished, 1);
	return NULL;
}

static void bad_block(const struct ferry_bad_block *b, void *arg)
{
	slog(arg, "bad block %llu (offset %llu) of restore point %s: %s",
	     (unsigned long long)b->block, (unsigned long long)b->offset,
	     b->point_id ? b->point_id : "?", b->detail ? b->detail : "");
}

static void reap(struct client **list, int *active, int all)
{
	for (struct client **pp = list; *pp;) {
		struct client *c = *pp;

		if (all)
			shutdown(c->fd, SHUT_RDWR);
		if (all || atomic_load(&c->finished)) {
			pthread_join(c->th, NULL);
			close(c->fd);
			*pp = c->next;
			free(c);
			(*active)--;
		} else {
			pp = &c->next;
		}
	}
}

int ferry_serve(struct ferry_repo *repo, const char *point,
		const struct ferry_serve_opts *opts)
{
	struct export x;
	struct ferry_nbd_backend b;
	struct ferry_image_opts io = { 0 };
	struct client *clients = NULL;
	char where[600];
	int lfd = -1, e, active = 0, next_id = 1;
	int max_clients = opts->max_clients > 0 ? opts->max_clients : 64;
	int threads = opts->threads > 0 ? opts->threads : 4;
	uint32_t cache_mib = opts->cache_mib ? opts->cache_mib : 64;

	memset(&x, 0, sizeof(x));
	x.opts = opts;
	x.ov_fd = -1;
	pthread_rwlock_init(&x.ov_lock, NULL);
	pthread_mutex_init(&x.log_mu, NULL);
	if (!opts->listen) {
		e = ferry_error(FERRY_E_INVAL, "nothing to listen on");
		goto out;
	}
	io.bad = bad_block;
	io.bad_arg = &x;
	io.cache_blocks = (uint32_t)(((uint64_t)cache_mib << 20) /
				     ferry_repo_block_size(repo));
	if (!io.cache_blocks)
		io.cache_blocks = 1;
	if ((e = ferry_image_open(repo, point, &io, &x.img)) != 0)
		goto out;
	if (opts->writable &&
	    (e = overlay_open(&x, ferry_image_point(x.img)->disk_size)) != 0)
		goto out;
	memset(&b, 0, sizeof(b));
	b.size = ferry_image_point(x.img)->disk_size;
	b.writable = opts->writable;
	b.pread = ex_pread;
	b.pwrite = ex_pwrite;
	b.flush = ex_flush;
	b.arg = &x;
	if ((lfd = listen_on(opts->listen, where, sizeof(where))) < 0) {
		e = lfd;
		lfd = -1;
		goto out;
	}
	if (opts->ready)
		opts->ready(where, ferry_image_point(x.img), opts->ready_arg);
	while (!atomic_load(&ferry_cancelled)) {
		struct pollfd pfd = { lfd, POLLIN, 0 };
		struct client *c;
		int fd, one = 1;

		reap(&clients, &active, 0);
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (active >= max_clients) {
			slog(&x, "refused a client: %d clients already connected", active);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (!(c = calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		c->x = &x;
		c->b = &b;
		c->fd = fd;
		c->id = next_id++;
		c->threads = threads;
		atomic_init(&c->finished, 0);
		if (pthread_create(&c->th, NULL, client_thread, c)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = clients;
		clients = c;
		active++;
		slog(&x, "client %d: connected", c->id);
	}
	reap(&clients, &active, 1);
	e = 0;
out:
	if (lfd >= 0) {
		close(lfd);
		if (!strncmp(opts->listen, "unix:", 5))
			unlink(opts->listen + 5);
	}
	if (x.ov_fd >= 0)
		close(x.ov_fd);
	free(x.ov_map);
	ferry_image_free(x.img);
	pthread_rwlock_destroy(&x.ov_lock);
	pthread_mutex_destroy(&x.log_mu);
	return e;
}
