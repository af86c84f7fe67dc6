/* test_srcmap.c - a disk image read through its mapping: the block's bytes
 * are the file's, holes are zero blocks without a mapping, and a file that
 * shrinks under the mapping gives FERRY_MAP_FAULT (SIGBUS caught), then the
 * same again, instead of killing the process. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"

#define MIB (1u << 20)

struct sum {
	const uint8_t *p;
	size_t n;
	uint64_t total;
};

static int add_up(void *arg)
{
	struct sum *s = arg;

	for (size_t i = 0; i < s->n; i++)
		s->total += s->p[i];
	return 0;
}

int main(void)
{
	char path[] = "/tmp/ferry-srcmap-XXXXXX";
	int fd = mkstemp(path);
	uint8_t *buf = malloc(MIB);
	struct ferry_source *src = NULL;
	const uint8_t *p = NULL;
	uint64_t want = 0;
	int kind = -1;

	CHECK(fd >= 0 && buf);
	if (fd < 0 || !buf)
		return unit_done();
	for (size_t i = 0; i < MIB; i++) {
		buf[i] = (uint8_t)(i * 7 + 1);
		want += buf[i];
	}
	/* block 0 data, block 1 a hole, blocks 2 and 3 data */
	CHECK(pwrite(fd, buf, MIB, 0) == MIB);
	CHECK(pwrite(fd, buf, MIB, 2 * MIB) == MIB);
	CHECK(pwrite(fd, buf, MIB, 3 * MIB) == MIB);
	CHECK(ferry_source_open(path, NULL, &src) == 0);
	if (!src)
		return unit_done();
	CHECK(src->size == 4 * MIB);
	CHECK(src->ops->map != NULL);

	CHECK(src->ops->map(src, 0, MIB, &p, &kind) == 0);
	CHECK(kind == FERRY_BLK_DATA);
	if (!p) {
		/* Only where a SIGBUS handler was there before (ASan): the
		 * source reads with pread, as map() says. */
		printf("no mapping (SIGBUS already handled): pread path\n");
	} else {
		struct sum s = { p, MIB, 0 };

		CHECK(ferry_map_call(add_up, &s) == 0);
		CHECK(s.total == want);
	}
	CHECK(src->ops->map(src, MIB, MIB, &p, &kind) == 0);
	CHECK(kind == FERRY_BLK_ZERO || (kind == FERRY_BLK_DATA && p));

	CHECK(src->ops->map(src, 3 * MIB, MIB, &p, &kind) == 0);
	CHECK(kind == FERRY_BLK_DATA);
	/* The image shrinks to 1 MiB while mapped. */
	CHECK(ftruncate(fd, MIB) == 0);
	if (p) {
		struct sum s = { p, MIB, 0 };

		CHECK(ferry_map_call(add_up, &s) == FERRY_MAP_FAULT);
		s.total = 0;
		CHECK(ferry_map_call(add_up, &s) == FERRY_MAP_FAULT);
		/* what is still there still reads */
		CHECK(src->ops->map(src, 0, MIB, &p, &kind) == 0);
		s.p = p;
		s.total = 0;
		CHECK(p && ferry_map_call(add_up, &s) == 0 && s.total == want);
	}
	/* and pread names the problem */
	CHECK(ferry_source_pread(src, 3 * MIB, buf, MIB) != 0);
	ferry_source_free(src);
	close(fd);
	unlink(path);
	free(buf);
	return unit_done();
}
