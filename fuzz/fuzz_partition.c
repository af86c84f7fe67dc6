/* fuzz_partition.c - libFuzzer target for the partition-table parser
 * (MBR with its logical-partition chain, GPT) and the swap signature
 * probe: the input is the start of a 1 GiB disk that reads as zeros
 * beyond it.  Whatever the bytes, the parser returns, and an accepted
 * table describes disjoint partitions inside the disk. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmsrc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_DISK (1ull << 30)

#include "fuzz_img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ferry_ptable pt;
	struct img m = { data, size };

	if (ferry_ptable_read(rd, &m, FUZZ_DISK, &pt) == 0) {
		if (pt.count < 0 || pt.count > FERRY_PART_MAX)
			abort();
		for (int i = 0; i < pt.count; i++) {
			const struct ferry_part *p = &pt.part[i];

			if (p->size == 0 || p->start + p->size > FUZZ_DISK ||
			    p->start + p->size < p->start)
				abort();
			if (i && pt.part[i - 1].start + pt.part[i - 1].size > p->start)
				abort();
			if (p->kind == FERRY_PART_SWAP)
				(void)ferry_swap_header_size(rd, &m, p->start, p->size);
		}
	} else if (pt.count != 0) {
		abort(); /* a refused table is never half used */
	}
	return 0;
}
