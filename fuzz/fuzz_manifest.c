/* fuzz_manifest.c - libFuzzer target for the restore-point manifest
 * parser: any bytes must be rejected or accepted without a crash, and a
 * header that parses must encode back to the very same bytes.  Each input
 * is tried as given and again with its trailing SHA-256 recomputed, so
 * that mutations reach the entry and footer checks behind it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A parsed header re-encodes to exactly its input bytes (a parser that
 * accepts something the writer could not have written is a bug). */
static void header_round_trip(const uint8_t *data, size_t size)
{
	struct ferry_point p;
	uint8_t out[FERRY_MANIFEST_HEADER_MAX];
	size_t hl = 0, ol = 0;

	memset(&p, 0, sizeof(p));
	if (ferry_manifest_header_parse(data, size, &p, &hl) != 0)
		return;
	if (hl > size || hl > sizeof(out))
		abort();
	if (ferry_manifest_header_encode(&p, out, sizeof(out), &ol) != 0 ||
	    ol != hl || memcmp(out, data, hl) != 0)
		abort();
}

static void one(const uint8_t *data, size_t size)
{
	struct ferry_point p, q;
	size_t hl = 0;
	int e;

	e = ferry_manifest_parse_buffer(data, size, &p);
	if (e == 0) {
		/* An accepted manifest is self-consistent: its header parses
		 * alone, and header, entries and footer fill it exactly. */
		if (ferry_manifest_header_parse(data, size, &q, &hl) != 0 ||
		    size != hl + p.nblocks * FERRY_ENTRY_LEN +
				    FERRY_MANIFEST_FOOTER ||
		    p.block_size < FERRY_BLOCK_MIN ||
		    p.block_size > FERRY_BLOCK_MAX ||
		    p.nblocks != (p.disk_size + p.block_size - 1) / p.block_size ||
		    strlen(p.id) != FERRY_ID_LEN || !ferry_name_valid(p.name))
			abort();
	} else if (e != FERRY_E_CORRUPT && e != FERRY_E_VERSION) {
		abort(); /* untrusted bytes only ever give these two */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	header_round_trip(data, size);
	one(data, size);
	if (size < FERRY_HASH_LEN)
		return 0;
	copy = malloc(size);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	ferry_sha256(copy, size - FERRY_HASH_LEN, copy + size - FERRY_HASH_LEN);
	one(copy, size);
	free(copy);
	return 0;
}
