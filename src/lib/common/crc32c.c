/* crc32c.c - CRC-32C (Castagnoli), the checksum of every stored chunk:
 * with the SSE4.2 crc32 instruction where the CPU has it (several GB/s,
 * so checking what was stored costs next to nothing), else by table. */
#include "common.h"

static uint32_t table[8][256];
static int have_table;

static void make_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^
				      table[0][table[t - 1][i] & 0xff];
	have_table = 1;
}

static uint32_t crc_table(uint32_t crc, const uint8_t *p, size_t n)
{
	if (!__atomic_load_n(&have_table, __ATOMIC_ACQUIRE))
		make_table(); /* idempotent: racing callers write the same */
	while (n >= 8) {
		uint32_t lo = crc ^ ferry_le32(p), hi = ferry_le32(p + 4);

		crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
		      table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
		      table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
		      table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc,
							 const uint8_t *p,
							 size_t n)
{
	uint64_t c = crc;

	while (n >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		n -= 8;
	}
	crc = (uint32_t)c;
	while (n--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t ferry_crc32c(const void *buf, size_t n)
{
	const uint8_t *p = buf;

#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc_hw(~0u, p, n);
#endif
	return ~crc_table(~0u, p, n);
}

uint32_t ferry_crc32c_portable(const void *buf, size_t n)
{
	return ~crc_table(~0u, buf, n);
}
