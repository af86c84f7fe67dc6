/* fuzz_info_cache.c - libFuzzer target for ferry info's local cache of
 * chunk sizes (info_cache.c): any bytes in the cache file must give
 * lookups that either miss or return a size within the block limit, and
 * never a crash or an out-of-bounds read; the rewritten file must hold
 * only what was added. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char id[] = "0123456789abcdef0123456789abcdef";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry_repo r;
	struct ferry_info_cache *c;
	char path[160];
	uint8_t h[FERRY_HASH_LEN];
	uint32_t raw;
	int fd;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-infocache-XXXXXX");
		if (!mkdtemp(dir) || setenv("FERRY_CACHE_DIR", dir, 1))
			abort();
	}
	snprintf(path, sizeof(path), "%s/info-%s", dir, id);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
	memset(&r, 0, sizeof(r));
	r.path = (char *)"s3://bucket/prefix";
	memcpy(r.repo_id, id, sizeof(id));
	if (!(c = ferry_info_cache_open(&r)))
		abort();
	/* Ascending ids drawn from the input itself, then one out of order. */
	for (size_t i = 0; i < 64; i++) {
		memset(h, 0, sizeof(h));
		h[0] = (uint8_t)(i * 4);
		if (size > i)
			memcpy(h + 1, data + i, size - i < 31 ? size - i : 31);
		raw = 0;
		if (ferry_info_cache_lookup(c, h, 44 + i, &raw) &&
		    (raw == 0 || raw > FERRY_BLOCK_MAX))
			abort();
		ferry_info_cache_add(c, h, 44 + i, raw ? raw : 1);
	}
	memset(h, 0, sizeof(h));
	ferry_info_cache_lookup(c, h, 1, &raw);
	ferry_info_cache_finish(c, 1);
	return 0;
}
