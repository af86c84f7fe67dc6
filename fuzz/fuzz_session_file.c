/* fuzz_session_file.c - libFuzzer target for the mover session-file
 * reader gc uses (ferry_session_file_chunks): any bytes in
 * REPO/sessions/SID must give 0 or FERRY_E_CORRUPT, never a crash, an
 * out-of-bounds read or more entries than the header's block count. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int dfd = -1;
static const char *name = "0123456789abcdef0123456789abcdef";

static void count(const uint8_t *h, void *arg)
{
	(void)h;
	(*(uint64_t *)arg)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t refs = 0, seen = 0, created = 0;
	int fd, e;

	if (dfd < 0) {
		char tmpl[] = "/tmp/fuzz-session-XXXXXX";

		if (!mkdtemp(tmpl) || (dfd = open(tmpl, O_RDONLY | O_DIRECTORY)) < 0)
			abort();
	}
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
	e = ferry_session_file_chunks(dfd, name, count, &seen, &refs, &created);
	if (e != 0 && e != FERRY_E_CORRUPT && e != FERRY_E_NOMEM)
		abort();
	if (seen != refs || (e == FERRY_E_CORRUPT && refs))
		abort();
	if (refs && refs * FERRY_ENTRY_LEN > size)
		abort();
	return 0;
}
