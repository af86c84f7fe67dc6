/* test_bytes.c - bounded readers never read past their input; sizes and
 * hex parse as documented; the zero test sees a single set bit. */
#include <stdint.h>
#include <string.h>

#include "common/common.h"
#include "unit.h"

int main(void)
{
	uint8_t buf[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, big[1 << 16] = { 0 };
	struct ferry_rd r;
	uint32_t v32;
	uint64_t v64, sz;

	ferry_rd_init(&r, buf, 9);
	CHECK(ferry_rd_u32(&r, &v32) == 0 && v32 == 0x04030201);
	CHECK(ferry_rd_u64(&r, &v64) != 0 && r.bad); /* only 5 bytes left */
	CHECK(ferry_rd_u32(&r, &v32) != 0);          /* latched */

	CHECK(ferry_size_parse("1M", &sz) == 0 && sz == 1048576);
	CHECK(ferry_size_parse("256K", &sz) == 0 && sz == 262144);
	CHECK(ferry_size_parse("4MiB", &sz) == 0 && sz == 4194304);
	CHECK(ferry_size_parse("12", &sz) == 0 && sz == 12);
	CHECK(ferry_size_parse("-1M", &sz) != 0);
	CHECK(ferry_size_parse("1X", &sz) != 0);
	CHECK(ferry_size_parse("", &sz) != 0);

	CHECK(ferry_is_zero(big, sizeof(big)));
	for (size_t i = 0; i < sizeof(big); i += 4093) {
		big[i] = 0x10;
		CHECK(!ferry_is_zero(big, sizeof(big)));
		big[i] = 0;
	}
	big[sizeof(big) - 1] = 1;
	CHECK(!ferry_is_zero(big, sizeof(big)));

	CHECK(ferry_hex_decode("0aFf", buf, 2) == 0 && buf[0] == 0x0a &&
	      buf[1] == 0xff);
	CHECK(ferry_hex_decode("0g", buf, 1) != 0);

	/* CRC-32C check value, and the fast path agrees with the table at
	 * every length and alignment. */
	CHECK(ferry_crc32c("123456789", 9) == 0xe3069283u);
	CHECK(ferry_crc32c_portable("123456789", 9) == 0xe3069283u);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 131 + 7);
	for (size_t off = 0; off < 9; off++)
		for (size_t n = 0; n < 300; n += 7)
			CHECK(ferry_crc32c(big + off, n) ==
			      ferry_crc32c_portable(big + off, n));
	/* lengths around the three-lane stride (3 x 4096) and a block */
	{
		size_t lens[] = { 12287, 12288, 12289, 24576 + 13, 1u << 20 };
		uint8_t *huge = malloc((1u << 20) + 8);

		CHECK(huge != NULL);
		for (size_t i = 0; huge && i < (1u << 20) + 8; i++)
			huge[i] = (uint8_t)(i * 2654435761u >> 13);
		for (size_t k = 0; huge && k < sizeof(lens) / sizeof(lens[0]); k++)
			for (size_t off = 0; off < 3; off++)
				CHECK(ferry_crc32c(huge + off, lens[k]) ==
				      ferry_crc32c_portable(huge + off, lens[k]));
		free(huge);
	}
	return unit_done();
}
