/* test_idset.c - the chunk-id set: every id added is found, no other is,
 * across growth from empty (ids sharing their first 8 bytes collide in
 * the slot hash and must still be told apart); clear empties it and it
 * refills; free leaves it empty and usable. */
#include <stdint.h>
#include <string.h>

#include "common/common.h"
#include "unit.h"

static void id_of(unsigned i, int collide, uint8_t h[FERRY_HASH_LEN])
{
	memset(h, 0, FERRY_HASH_LEN);
	if (!collide)
		memcpy(h, &i, sizeof(i)); /* spread over the slots */
	memcpy(h + 28, &i, sizeof(i));    /* different ids in any case */
	h[20] = 0x5a;
}

int main(void)
{
	struct ferry_idset s = { 0 };
	uint8_t h[FERRY_HASH_LEN];
	const unsigned n = 20000;

	id_of(1, 0, h);
	CHECK(!ferry_idset_has(&s, h)); /* empty, never allocated */
	for (unsigned i = 0; i < n; i++) {
		id_of(i, i % 5 == 0, h);
		CHECK(ferry_idset_add(&s, h) == 0);
		CHECK(ferry_idset_add(&s, h) == 0); /* twice: counted once */
	}
	CHECK(s.n == n && s.cap >= 2 * n);
	for (unsigned i = 0; i < n; i++) {
		id_of(i, i % 5 == 0, h);
		CHECK(ferry_idset_has(&s, h));
		id_of(i + n, i % 5 == 0, h);
		CHECK(!ferry_idset_has(&s, h));
	}
	ferry_idset_clear(&s);
	id_of(7, 0, h);
	CHECK(s.n == 0 && !ferry_idset_has(&s, h));
	CHECK(ferry_idset_add(&s, h) == 0 && ferry_idset_has(&s, h) && s.n == 1);
	ferry_idset_free(&s);
	CHECK(s.cap == 0 && !ferry_idset_has(&s, h));
	CHECK(ferry_idset_add(&s, h) == 0 && ferry_idset_has(&s, h));
	ferry_idset_free(&s);
	return unit_done();
}
