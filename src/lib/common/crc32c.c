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

/* The crc32 instruction takes 3 cycles but can start one a cycle: three
 * independent lanes of LANE bytes run three times as fast, and are joined
 * with the linear map "append LANE zero bytes" (shift_tab, built once from
 * the 32 basis vectors). */
#define LANE 4096
static uint32_t shift_tab[4][256];
static int have_shift;

static void make_shift(void)
{
	static const uint8_t zeros[LANE];
	uint32_t basis[32];

	for (int k = 0; k < 32; k++)
		basis[k] = crc_hw(1u << k, zeros, LANE);
	for (int b = 0; b < 4; b++)
		for (uint32_t v = 0; v < 256; v++) {
			uint32_t t = 0;

			for (int bit = 0; bit < 8; bit++)
				if (v >> bit & 1)
					t ^= basis[8 * b + bit];
			shift_tab[b][v] = t;
		}
	__atomic_store_n(&have_shift, 1, __ATOMIC_RELEASE);
}

static uint32_t shift_lane(uint32_t c)
{
	return shift_tab[0][c & 0xff] ^ shift_tab[1][(c >> 8) & 0xff] ^
	       shift_tab[2][(c >> 16) & 0xff] ^ shift_tab[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw3(uint32_t crc,
							  const uint8_t *p,
							  size_t n)
{
	if (n >= 3 * LANE && !__atomic_load_n(&have_shift, __ATOMIC_ACQUIRE))
		make_shift(); /* idempotent: racing callers write the same */
	while (n >= 3 * LANE) {
		uint64_t c0 = crc, c1 = 0, c2 = 0;

		for (size_t i = 0; i < LANE; i += 8) {
			uint64_t v0, v1, v2;

			memcpy(&v0, p + i, 8);
			memcpy(&v1, p + LANE + i, 8);
			memcpy(&v2, p + 2 * LANE + i, 8);
			c0 = __builtin_ia32_crc32di(c0, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
		}
		crc = shift_lane(shift_lane((uint32_t)c0) ^ (uint32_t)c1) ^
		      (uint32_t)c2;
		p += 3 * LANE;
		n -= 3 * LANE;
	}
	return crc_hw(crc, p, n);
}
#endif

uint32_t ferry_crc32c(const void *buf, size_t n)
{
	const uint8_t *p = buf;

#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc_hw3(~0u, p, n);
#endif
	return ~crc_table(~0u, p, n);
}

uint32_t ferry_crc32c_portable(const void *buf, size_t n)
{
	return ~crc_table(~0u, buf, n);
}
