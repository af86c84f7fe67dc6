/*
 * mhd_dl.c - libmicrohttpd, loaded when `ferry server` starts its REST API
 * (src/lib/common/dl.h says why: it brings GnuTLS).
 *
 * MHD_start_daemon() is the entry point: without the library it returns
 * NULL, which http.c reports as a failure to listen.  It is variadic; its
 * option list goes on to MHD_start_daemon_va() as it came.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/dl.h"

static struct ferry_dl mhd_lib = FERRY_DL_INIT("libmicrohttpd.so.12", "libmicrohttpd12");

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
				    MHD_AcceptPolicyCallback apc, void *apc_cls,
				    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	struct MHD_Daemon *d;
	va_list ap;

	if (!ferry_dl_load(&mhd_lib))
		return NULL;
	FERRY_DL_LOOKUP(mhd_lib, MHD_start_daemon_va, fn_);
	va_start(ap, dh_cls);
	d = fn_(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

/* No type of information takes an argument after INFO_TYPE yet. */
const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *d,
						enum MHD_DaemonInfoType info_type, ...)
{
	FERRY_DL_LOOKUP(mhd_lib, MHD_get_daemon_info, fn_);
	return fn_(d, info_type);
}

FERRY_DL_VOID(mhd_lib, MHD_stop_daemon, (struct MHD_Daemon *d), (d))
FERRY_DL_FN(mhd_lib, const char *, MHD_lookup_connection_value,
	    (struct MHD_Connection *c, enum MHD_ValueKind kind, const char *key),
	    (c, kind, key))
FERRY_DL_FN(mhd_lib, enum MHD_Result, MHD_queue_response,
	    (struct MHD_Connection *c, unsigned int status, struct MHD_Response *r),
	    (c, status, r))
FERRY_DL_FN(mhd_lib, struct MHD_Response *, MHD_create_response_from_buffer,
	    (size_t size, void *buffer, enum MHD_ResponseMemoryMode mode),
	    (size, buffer, mode))
FERRY_DL_VOID(mhd_lib, MHD_destroy_response, (struct MHD_Response *r), (r))
FERRY_DL_FN(mhd_lib, enum MHD_Result, MHD_add_response_header,
	    (struct MHD_Response *r, const char *header, const char *content),
	    (r, header, content))
