/* nbd_proto.c - the NBD protocol, server side: the fixed newstyle
 * handshake (NBD_OPT_GO, INFO, LIST, EXPORT_NAME, ABORT) and the
 * transmission phase with simple replies (READ, WRITE, FLUSH, DISC).
 * Every length from the client is checked before it is used; the state
 * machine is written out in docs/instant-recovery.md. */
#include <errno.h>
#include <stdlib.h>

#include "nbdsrv.h"

#define NBD_MAGIC 0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_IHAVEOPT 0x49484156454F5054ull
#define NBD_REP_MAGIC 0x0003e889045565a9ull
#define NBD_REQ_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u

#define NBD_FLAG_FIXED_NEWSTYLE 1u
#define NBD_FLAG_NO_ZEROES 2u

enum {
	NBD_OPT_EXPORT_NAME = 1, NBD_OPT_ABORT = 2, NBD_OPT_LIST = 3,
	NBD_OPT_INFO = 6, NBD_OPT_GO = 7,
};
#define NBD_REP_ACK 1u
#define NBD_REP_SERVER 2u
#define NBD_REP_INFO 3u
#define NBD_REP_ERR_UNSUP (0x80000000u + 1)
#define NBD_REP_ERR_INVALID (0x80000000u + 3)
#define NBD_REP_ERR_TOO_BIG (0x80000000u + 9)
#define NBD_INFO_EXPORT 0
#define NBD_INFO_BLOCK_SIZE 3

#define NBD_TF_HAS_FLAGS (1u << 0)
#define NBD_TF_READ_ONLY (1u << 1)
#define NBD_TF_SEND_FLUSH (1u << 2)
#define NBD_TF_SEND_FUA (1u << 3)
#define NBD_TF_CAN_MULTI_CONN (1u << 8)

enum { NBD_CMD_READ = 0, NBD_CMD_WRITE = 1, NBD_CMD_DISC = 2,
       NBD_CMD_FLUSH = 3 };
#define NBD_CMD_FLAG_FUA 1u

/* ---- big-endian helpers ---------------------------------------------- */

static void be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void be32(uint8_t *p, uint32_t v)
{
	be16(p, (uint16_t)(v >> 16));
	be16(p + 2, (uint16_t)v);
}
static void be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}
static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static uint16_t tflags(const struct ferry_nbd_backend *b)
{
	uint16_t f = NBD_TF_HAS_FLAGS | NBD_TF_CAN_MULTI_CONN;

	if (b->writable)
		f |= NBD_TF_SEND_FLUSH | NBD_TF_SEND_FUA;
	else
		f |= NBD_TF_READ_ONLY;
	return f;
}

/* ---- handshake ------------------------------------------------------- */

static int opt_reply(const struct ferry_nbd_io *io, uint32_t opt,
		     uint32_t type, const void *data, uint32_t len)
{
	uint8_t h[20];

	be64(h, NBD_REP_MAGIC);
	be32(h + 8, opt);
	be32(h + 12, type);
	be32(h + 16, len);
	if (io->send(io->arg, h, sizeof(h)))
		return -1;
	return len ? io->send(io->arg, data, len) : 0;
}

/* NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 count, u16[count].
 * 0 answered, 1 refused as invalid (answered), -1 the client is gone. */
static int opt_info(const struct ferry_nbd_io *io,
		    const struct ferry_nbd_backend *b, uint32_t opt,
		    const uint8_t *d, uint32_t len)
{
	uint8_t info[14];
	uint32_t nl;
	uint16_t nreq;

	if (len < 6 || (nl = get32(d)) > len - 6 ||
	    (nreq = get16(d + 4 + nl), (uint32_t)nreq * 2 != len - 6 - nl))
		return opt_reply(io, opt, NBD_REP_ERR_INVALID, NULL, 0) ? -1 : 1;
	/* Any export name is this restore point: there is only one. */
	be16(info, NBD_INFO_EXPORT);
	be64(info + 2, b->size);
	be16(info + 10, tflags(b));
	if (opt_reply(io, opt, NBD_REP_INFO, info, 12))
		return -1;
	/* Always announce the block sizes: clients that understand them
	 * send 4 KiB-aligned requests (the overlay's granularity). */
	be16(info, NBD_INFO_BLOCK_SIZE);
	be32(info + 2, 1);
	be32(info + 6, 4096);
	be32(info + 10, FERRY_NBD_REQ_MAX);
	if (opt_reply(io, opt, NBD_REP_INFO, info, 14))
		return -1;
	return opt_reply(io, opt, NBD_REP_ACK, NULL, 0) ? -1 : 0;
}

int ferry_nbd_handshake(const struct ferry_nbd_io *io,
			const struct ferry_nbd_backend *b)
{
	uint8_t h[18], d[FERRY_NBD_OPT_MAX];
	uint32_t cflags;
	int no_zeroes;

	be64(h, NBD_MAGIC);
	be64(h + 8, NBD_IHAVEOPT);
	be16(h + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (io->send(io->arg, h, 18) || io->recv(io->arg, h, 4))
		return -1;
	cflags = get32(h);
	if (!(cflags & NBD_FLAG_FIXED_NEWSTYLE) ||
	    (cflags & ~(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)))
		return -1; /* unknown client flags: the spec says disconnect */
	no_zeroes = !!(cflags & NBD_FLAG_NO_ZEROES);
	for (int n = 0; n < FERRY_NBD_OPTS_MAX; n++) {
		uint32_t opt, len;

		if (io->recv(io->arg, h, 16) || get64(h) != NBD_IHAVEOPT)
			return -1;
		opt = get32(h + 8);
		len = get32(h + 12);
		if (len > FERRY_NBD_OPT_MAX) {
			if (len > FERRY_NBD_OPT_DRAIN || opt == NBD_OPT_EXPORT_NAME)
				return -1;
			for (uint32_t left = len; left;) {
				uint32_t k = left < sizeof(d) ? left : sizeof(d);

				if (io->recv(io->arg, d, k))
					return -1;
				left -= k;
			}
			if (opt_reply(io, opt, NBD_REP_ERR_TOO_BIG, NULL, 0))
				return -1;
			continue;
		}
		if (len && io->recv(io->arg, d, len))
			return -1;
		switch (opt) {
		case NBD_OPT_EXPORT_NAME: {
			uint8_t r[10 + 124] = { 0 };

			be64(r, b->size);
			be16(r + 8, tflags(b));
			return io->send(io->arg, r, no_zeroes ? 10 : sizeof(r)) ? -1 : 0;
		}
		case NBD_OPT_ABORT:
			opt_reply(io, opt, NBD_REP_ACK, NULL, 0);
			return -1;
		case NBD_OPT_LIST: {
			uint8_t r[4] = { 0 }; /* one export, named "" */

			if (len) {
				if (opt_reply(io, opt, NBD_REP_ERR_INVALID, NULL, 0))
					return -1;
				break;
			}
			if (opt_reply(io, opt, NBD_REP_SERVER, r, 4) ||
			    opt_reply(io, opt, NBD_REP_ACK, NULL, 0))
				return -1;
			break;
		}
		case NBD_OPT_INFO:
		case NBD_OPT_GO: {
			int r = opt_info(io, b, opt, d, len);

			if (r < 0)
				return -1;
			if (r == 0 && opt == NBD_OPT_GO)
				return 0;
			break;
		}
		default: /* STARTTLS, STRUCTURED_REPLY, META_CONTEXT, ... */
			if (opt_reply(io, opt, NBD_REP_ERR_UNSUP, NULL, 0))
				return -1;
			break;
		}
	}
	return -1;
}

/* ---- transmission ---------------------------------------------------- */

void ferry_nbd_conn_init(struct ferry_nbd_conn *c, const struct ferry_nbd_io *io,
			 const struct ferry_nbd_backend *b)
{
	memset(c, 0, sizeof(*c));
	c->io = *io;
	c->b = b;
	pthread_mutex_init(&c->rmu, NULL);
	pthread_mutex_init(&c->wmu, NULL);
	atomic_init(&c->done, 0);
	atomic_init(&c->requests, 0);
}

void ferry_nbd_conn_release(struct ferry_nbd_conn *c)
{
	pthread_mutex_destroy(&c->rmu);
	pthread_mutex_destroy(&c->wmu);
}

static int grow(uint8_t **buf, size_t *cap, size_t n)
{
	uint8_t *p;

	if (n <= *cap)
		return 0;
	if (!(p = realloc(*buf, n)))
		return -1;
	*buf = p;
	*cap = n;
	return 0;
}

int ferry_nbd_requests(struct ferry_nbd_conn *c)
{
	const struct ferry_nbd_backend *b = c->b;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int ret = 0;

	for (;;) {
		uint8_t h[28], r[16];
		uint16_t flags, type;
		uint64_t handle, off;
		uint32_t len, err = 0;
		int fail;

		pthread_mutex_lock(&c->rmu);
		if (atomic_load(&c->done) || c->io.recv(c->io.arg, h, 28) ||
		    get32(h) != NBD_REQ_MAGIC) {
			atomic_store(&c->done, 1);
			pthread_mutex_unlock(&c->rmu);
			break;
		}
		flags = get16(h + 4);
		type = get16(h + 6);
		handle = get64(h + 8);
		off = get64(h + 16);
		len = get32(h + 24);
		fail = 0;
		if (type == NBD_CMD_DISC) {
			fail = 1;
		} else if (type == NBD_CMD_WRITE || type == NBD_CMD_READ) {
			/* A write's payload must be read to stay in step: a
			 * too-large one cannot be skipped safely. */
			if (len > FERRY_NBD_REQ_MAX)
				fail = type == NBD_CMD_WRITE;
			else if (grow(&buf, &cap, len ? len : 1)) {
				ret = FERRY_E_NOMEM;
				fail = 1;
			} else if (type == NBD_CMD_WRITE && len &&
				   c->io.recv(c->io.arg, buf, len)) {
				fail = 1;
			}
		}
		if (fail) {
			atomic_store(&c->done, 1);
			pthread_mutex_unlock(&c->rmu);
			break;
		}
		pthread_mutex_unlock(&c->rmu);
		atomic_fetch_add(&c->requests, 1);

		if (flags & ~NBD_CMD_FLAG_FUA) {
			err = EINVAL;
		} else if (type == NBD_CMD_READ || type == NBD_CMD_WRITE) {
			if (len == 0 || len > FERRY_NBD_REQ_MAX)
				err = EINVAL;
			else if (off > b->size || len > b->size - off)
				err = type == NBD_CMD_WRITE ? ENOSPC : EINVAL;
			else if (type == NBD_CMD_READ)
				err = (uint32_t)b->pread(b->arg, buf, len, off);
			else if (!b->writable)
				err = EPERM;
			else if (!(err = (uint32_t)b->pwrite(b->arg, buf, len, off)) &&
				 (flags & NBD_CMD_FLAG_FUA))
				err = (uint32_t)b->flush(b->arg);
		} else if (type == NBD_CMD_FLUSH) {
			err = b->writable ? (uint32_t)b->flush(b->arg) : 0;
		} else {
			err = EINVAL;
		}
		be32(r, NBD_SIMPLE_REPLY_MAGIC);
		be32(r + 4, err);
		be64(r + 8, handle);
		pthread_mutex_lock(&c->wmu);
		fail = c->io.send(c->io.arg, r, 16) ||
		       (type == NBD_CMD_READ && !err &&
			c->io.send(c->io.arg, buf, len));
		pthread_mutex_unlock(&c->wmu);
		if (fail) {
			atomic_store(&c->done, 1);
			break;
		}
	}
	free(buf);
	return ret;
}
