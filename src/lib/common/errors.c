/* errors.c - error codes, their names, and the per-thread last-error
 * detail that tells the operator which file, block or peer failed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

static _Thread_local char last_msg[1024];

static const char *const names[] = {
	[0] = "success",
	[1] = "out of memory",
	[2] = "I/O error",
	[3] = "no space left on device",
	[4] = "not a ferry repository",
	[5] = "unsupported format version",
	[6] = "corrupt data",
	[7] = "missing chunk",
	[8] = "not found",
	[9] = "invalid argument",
	[10] = "already exists",
	[11] = "cannot read source",
	[12] = "ambiguous restore point id",
	[13] = "interrupted",
	[14] = "cannot write restore target",
	[15] = "network error",
	[16] = "authentication refused",
	[17] = "protocol error",
	[18] = "timed out",
	[19] = "protected until its expiry (hardened repository)",
	[20] = "wrong passphrase or no key",
};

const char *ferry_strerror(int err)
{
	unsigned i = (unsigned)(-err);

	if (err > 0 || i >= FERRY_ARRAY_SIZE(names) || !names[i])
		return "unknown error";
	return names[i];
}

const char *ferry_last_error(void)
{
	return last_msg;
}

int ferry_error(int code, const char *fmt, ...)
{
	char msg[sizeof(last_msg)];
	va_list ap;

	/* Through a copy: callers may pass ferry_last_error() itself to
	 * wrap the detail with context. */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(last_msg, msg, sizeof(msg));
	return code;
}

void ferry_error_save(int *code, char *buf, size_t len)
{
	(void)code;
	snprintf(buf, len, "%s", last_msg);
}

void ferry_error_restore(int code, const char *msg)
{
	(void)code;
	snprintf(last_msg, sizeof(last_msg), "%s", msg);
}

int ferry_errno_code(int e, int fallback)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
		return FERRY_E_NOSPC;
	case ENOMEM:
		return FERRY_E_NOMEM;
	case ENOENT:
		return FERRY_E_NOTFOUND;
	case EEXIST:
		return FERRY_E_EXISTS;
	case EINTR:
		return FERRY_E_INTERRUPTED;
	default:
		return fallback;
	}
}
