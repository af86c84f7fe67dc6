/* nbdsrv.h - the server side of the NBD protocol (nbd_proto.c), apart
 * from sockets and restore points so that the fuzz target can drive it
 * from a byte buffer, and the listener (nbd_serve.c) from a socket. */
#ifndef FERRY_NBDSRV_H
#define FERRY_NBDSRV_H

#include "internal.h"

#define FERRY_NBD_OPT_MAX 4096          /* option payload we parse */
#define FERRY_NBD_OPT_DRAIN (1u << 20)  /* larger options: disconnect */
#define FERRY_NBD_OPTS_MAX 256          /* options per handshake */
#define FERRY_NBD_REQ_MAX (32u << 20)   /* largest read or write */

/* Byte stream of one client: 0, or < 0 when the peer is gone. */
struct ferry_nbd_io {
	int (*recv)(void *arg, void *buf, size_t n);
	int (*send)(void *arg, const void *buf, size_t n);
	void *arg;
};

/* What is exported.  Callbacks return 0 or a positive errno (EIO...). */
struct ferry_nbd_backend {
	uint64_t size;
	int writable;
	int (*pread)(void *arg, void *buf, size_t len, uint64_t off);
	int (*pwrite)(void *arg, const void *buf, size_t len, uint64_t off);
	int (*flush)(void *arg);
	void *arg;
};

/* One client connection in transmission: several threads may run
 * ferry_nbd_requests() on it; requests are read one at a time (RMU) and
 * replies written whole (WMU). */
struct ferry_nbd_conn {
	struct ferry_nbd_io io;
	const struct ferry_nbd_backend *b;
	pthread_mutex_t rmu, wmu;
	atomic_int done;
	atomic_ullong requests;
};

/* The fixed newstyle handshake: 0 when transmission starts (NBD_OPT_GO
 * or NBD_OPT_EXPORT_NAME), < 0 when the client aborted, left, or broke
 * the protocol. */
int ferry_nbd_handshake(const struct ferry_nbd_io *io,
			const struct ferry_nbd_backend *b);
void ferry_nbd_conn_init(struct ferry_nbd_conn *c, const struct ferry_nbd_io *io,
			 const struct ferry_nbd_backend *b);
void ferry_nbd_conn_release(struct ferry_nbd_conn *c);
/* Serve requests until NBD_CMD_DISC, a protocol error or the end of the
 * stream (then c->done is set).  Returns 0 or FERRY_E_NOMEM. */
int ferry_nbd_requests(struct ferry_nbd_conn *c);

#endif
