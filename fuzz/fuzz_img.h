/* fuzz_img.h - the fuzzer's input as a guest disk of FUZZ_DISK bytes
 * (zeros past the input), read through struct ferry_vmsrc-style reads:
 * shared by the targets that parse what a disk holds. */
#ifndef FUZZ_IMG_H
#define FUZZ_IMG_H

#include <stdint.h>
#include <string.h>

struct img {
	const uint8_t *p;
	size_t n;
};

static int rd(void *arg, uint64_t off, void *buf, size_t len)
{
	const struct img *m = arg;

	if (off > FUZZ_DISK || len > FUZZ_DISK - off)
		return FERRY_E_SOURCE;
	memset(buf, 0, len);
	if (off < m->n)
		memcpy(buf, m->p + off, off + len <= m->n ? len : m->n - (size_t)off);
	return 0;
}

#endif
