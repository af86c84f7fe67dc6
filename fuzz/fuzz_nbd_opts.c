/* fuzz_nbd_opts.c - libFuzzer target for the NBD server's protocol code:
 * the input is everything a client sends (client flags, options, then
 * requests); the server answers into a sink, over a 1 MiB writable disk
 * in memory.  Whatever the bytes, the handshake and the request loop end,
 * never read or write outside their buffers, and never export bytes
 * outside the disk. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nbdsrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DISK (1u << 20)

struct stream {
	const uint8_t *p;
	size_t left;
};

static int f_recv(void *arg, void *buf, size_t n)
{
	struct stream *s = arg;

	if (n > s->left)
		return -1;
	memcpy(buf, s->p, n);
	s->p += n;
	s->left -= n;
	return 0;
}

static int f_send(void *arg, const void *buf, size_t n)
{
	(void)arg, (void)buf, (void)n;
	return 0;
}

static uint8_t disk[DISK];

static int d_pread(void *arg, void *buf, size_t len, uint64_t off)
{
	(void)arg;
	if (off > DISK || len > DISK - off)
		abort();
	memcpy(buf, disk + off, len);
	return off == 4096 ? 5 : 0; /* one block reads as an I/O error */
}

static int d_pwrite(void *arg, const void *buf, size_t len, uint64_t off)
{
	(void)arg;
	if (off > DISK || len > DISK - off)
		abort();
	memcpy(disk + off, buf, len);
	return 0;
}

static int d_flush(void *arg)
{
	(void)arg;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stream s = { data, size };
	struct ferry_nbd_io io = { f_recv, f_send, &s };
	struct ferry_nbd_backend b = { DISK, size & 1, d_pread, d_pwrite,
				       d_flush, NULL };
	struct ferry_nbd_conn c;

	if (ferry_nbd_handshake(&io, &b) != 0)
		return 0;
	ferry_nbd_conn_init(&c, &io, &b);
	ferry_nbd_requests(&c);
	ferry_nbd_conn_release(&c);
	return 0;
}
