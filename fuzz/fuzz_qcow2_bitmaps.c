/* fuzz_qcow2_bitmaps.c - libFuzzer target for the qcow2 header and
 * persistent-bitmap directory reader: the input is the image file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmsrc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct img {
	const uint8_t *p;
	size_t n;
};

static int rd(void *arg, uint64_t off, void *buf, size_t len)
{
	const struct img *m = arg;

	if (off > m->n || len > m->n - off)
		return FERRY_E_CORRUPT;
	memcpy(buf, m->p + off, len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct img m = { data, size };
	struct ferry_qcow2_bitmap b;
	int r = ferry_qcow2_find_bitmap(rd, &m, size, "b0", &b);

	if (r == 1 && strcmp(b.name, "b0"))
		abort();
	return 0;
}
