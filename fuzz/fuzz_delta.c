/* fuzz_delta.c - libFuzzer target for the delta record (delta.c, the
 * plaintext of a kind-2 entry's chunk): the parser must reject any damage
 * without a crash or an out-of-bounds access; whatever it accepts must
 * apply inside a block of the length it announces, touching only the
 * extents it lists; and a record built from two blocks must parse and
 * rebuild the second from the first. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry_delta d;
	uint8_t *blk, *rec;
	int e;

	e = ferry_delta_parse(data, size, &d);
	if (e != 0 && e != FERRY_E_CORRUPT)
		abort();
	if (e == 0) {
		if (d.block_len == 0 || d.block_len > FERRY_BLOCK_MAX ||
		    d.data_len >= d.block_len || !d.n)
			abort();
		/* Exactly the announced length: ASan catches a write past it. */
		if (!(blk = malloc(d.block_len)))
			return 0;
		memset(blk, 0xa5, d.block_len);
		ferry_delta_apply(&d, blk);
		free(blk);
	}
	/* Build: the input's halves as base and block (up to 64 KiB). */
	if (size >= 2) {
		size_t len = size / 2 > 65536 ? 65536 : size / 2;
		size_t cap = len + FERRY_DELTA_HDR + 8 * (len / 4096 + 1);
		uint8_t full[FERRY_HASH_LEN] = { 1 }, base[FERRY_HASH_LEN] = { 2 };
		size_t n;

		if (!(rec = malloc(cap)) || !(blk = malloc(len))) {
			free(rec);
			return 0;
		}
		n = ferry_delta_build(data, data + len, len, full, base, len, rec,
				      cap);
		if (n) {
			if (ferry_delta_parse(rec, n, &d) != 0 ||
			    d.block_len != len)
				abort();
			memcpy(blk, data, len);
			ferry_delta_apply(&d, blk);
			if (memcmp(blk, data + len, len))
				abort();
		} else if (memcmp(data, data + len, len)) {
			/* Refused although it differs: only when every byte
			 * of every page changed (data >= len). */
			size_t changed = 0;

			for (size_t o = 0; o < len; o += 4096) {
				size_t l = len - o < 4096 ? len - o : 4096;

				if (memcmp(data + o, data + len + o, l))
					changed += l;
			}
			if (changed < len)
				abort();
		}
		free(rec);
		free(blk);
	}
	return 0;
}
