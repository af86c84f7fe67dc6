/*
 * nbd_dl.c - libnbd, loaded when an NBD source or target is first used
 * (src/lib/common/dl.h says why: libnbd brings GnuTLS and libxml2 with
 * ICU).
 *
 * nbd_create() is the entry point: without the library it returns NULL,
 * and nbd_get_error() then says what to install.
 */
#include <stdint.h>

#include <libnbd.h>

#include "common/dl.h"

static struct ferry_dl nbd_lib = FERRY_DL_INIT("libnbd.so.0", "libnbd0");

FERRY_DL_ENTRY(nbd_lib, struct nbd_handle *, nbd_create, (void), (), NULL)
FERRY_DL_ENTRY(nbd_lib, const char *, nbd_get_error, (void), (),
	       "libnbd is not installed (libnbd0)")
FERRY_DL_RELEASE(nbd_lib, nbd_close, struct nbd_handle *)

FERRY_DL_FN(nbd_lib, int, nbd_add_meta_context, (struct nbd_handle *h, const char *name), (h, name))
FERRY_DL_FN(nbd_lib, int, nbd_aio_is_ready, (struct nbd_handle *h), (h))
FERRY_DL_FN(nbd_lib, int, nbd_block_status,
	    (struct nbd_handle *h, uint64_t count, uint64_t offset,
	     nbd_extent_callback cb, uint32_t flags),
	    (h, count, offset, cb, flags))
FERRY_DL_FN(nbd_lib, int, nbd_can_flush, (struct nbd_handle *h), (h))
FERRY_DL_FN(nbd_lib, int, nbd_can_meta_context, (struct nbd_handle *h, const char *m), (h, m))
FERRY_DL_FN(nbd_lib, int, nbd_can_zero, (struct nbd_handle *h), (h))
FERRY_DL_FN(nbd_lib, int, nbd_connect_systemd_socket_activation,
	    (struct nbd_handle *h, char **argv), (h, argv))
FERRY_DL_FN(nbd_lib, int, nbd_connect_uri, (struct nbd_handle *h, const char *uri), (h, uri))
FERRY_DL_FN(nbd_lib, int, nbd_flush, (struct nbd_handle *h, uint32_t flags), (h, flags))
FERRY_DL_FN(nbd_lib, int64_t, nbd_get_block_size, (struct nbd_handle *h, int type), (h, type))
FERRY_DL_FN(nbd_lib, int64_t, nbd_get_size, (struct nbd_handle *h), (h))
FERRY_DL_FN(nbd_lib, int, nbd_is_read_only, (struct nbd_handle *h), (h))
FERRY_DL_FN(nbd_lib, int, nbd_pread,
	    (struct nbd_handle *h, void *buf, size_t count, uint64_t offset, uint32_t flags),
	    (h, buf, count, offset, flags))
FERRY_DL_FN(nbd_lib, int, nbd_pwrite,
	    (struct nbd_handle *h, const void *buf, size_t count, uint64_t offset, uint32_t flags),
	    (h, buf, count, offset, flags))
FERRY_DL_FN(nbd_lib, int, nbd_shutdown, (struct nbd_handle *h, uint32_t flags), (h, flags))
FERRY_DL_FN(nbd_lib, int, nbd_zero,
	    (struct nbd_handle *h, uint64_t count, uint64_t offset, uint32_t flags),
	    (h, count, offset, flags))
