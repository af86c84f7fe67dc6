/* fuzz_qga_reply.c - libFuzzer target for the parser of qemu-guest-agent
 * replies (bytes that come from inside the guest). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmsrc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char val[128];
	long long v = 0;
	int e = ferry_qga_parse_reply((const char *)data, size, &v, val, sizeof(val));

	if (e == 0 && strlen(val) >= sizeof(val))
		abort();
	return 0;
}
