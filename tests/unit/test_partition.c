/* test_partition.c - the MBR/GPT parser on tables built in memory: the
 * partitions it finds, and every corruption it must refuse. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "unit.h"
#include "vmsrc.h"

#define DISK (64u << 20)
#define HEAD (1u << 20) /* bytes of the disk kept in memory */

static uint8_t *img;

static int mem_rd(void *arg, uint64_t off, void *buf, size_t len)
{
	(void)arg;
	if (off >= DISK || len > DISK - off)
		return FERRY_E_SOURCE;
	/* Beyond HEAD the disk reads as zeros. */
	memset(buf, 0, len);
	if (off < HEAD)
		memcpy(buf, img + off, off + len <= HEAD ? len : HEAD - off);
	return 0;
}

static void put64(uint8_t *p, uint64_t v)
{
	ferry_put_le32(p, (uint32_t)v);
	ferry_put_le32(p + 4, (uint32_t)(v >> 32));
}

static void mbr_entry(int i, uint8_t type, uint32_t start, uint32_t n)
{
	uint8_t *p = img + 446 + 16 * i;

	p[0] = 0;
	p[4] = type;
	ferry_put_le32(p + 8, start);
	ferry_put_le32(p + 12, n);
	img[510] = 0x55;
	img[511] = 0xaa;
}

static const uint8_t swap_guid[16] = { 0x6d, 0xfd, 0x57, 0x06, 0xab, 0xa4, 0xc4, 0x43,
				       0x84, 0xe5, 0x09, 0x33, 0xc8, 0x4b, 0x4f, 0x4f };
static const uint8_t linux_guid[16] = { 0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
					0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4 };

static void gpt_fix(void)
{
	uint8_t *h = img + 512;

	ferry_put_le32(h + 88, (uint32_t)crc32(0, img + 1024, 128 * 128));
	memset(h + 16, 0, 4);
	ferry_put_le32(h + 16, (uint32_t)crc32(0, h, 92));
}

static void gpt_build(void)
{
	uint8_t *h = img + 512, *e = img + 1024;

	memset(img, 0, HEAD);
	mbr_entry(0, 0xee, 1, DISK / 512 - 1);
	memcpy(h, "EFI PART", 8);
	ferry_put_le32(h + 8, 0x10000);
	ferry_put_le32(h + 12, 92);
	put64(h + 24, 1);
	put64(h + 32, DISK / 512 - 1);
	put64(h + 40, 34);
	put64(h + 48, DISK / 512 - 34);
	put64(h + 72, 2);
	ferry_put_le32(h + 80, 128);
	ferry_put_le32(h + 84, 128);
	memcpy(e, linux_guid, 16);
	put64(e + 32, 2048);
	put64(e + 40, 2048 + 40960 - 1);
	e += 128 * 2; /* entry 3: swap (entry 2 empty) */
	memcpy(e, swap_guid, 16);
	put64(e + 32, 43008);
	put64(e + 40, 43008 + 16384 - 1);
	gpt_fix();
}

static void test_gpt(void)
{
	struct ferry_ptable *pt = calloc(1, sizeof(*pt));

	gpt_build();
	CHECK(ferry_ptable_read(mem_rd, NULL, DISK, pt) == 0);
	CHECK(pt->scheme == FERRY_PT_GPT && pt->count == 2);
	CHECK(pt->part[0].number == 1 && pt->part[0].kind == FERRY_PART_LINUX);
	CHECK(pt->part[0].start == 2048 * 512ull && pt->part[0].size == 40960 * 512ull);
	CHECK(pt->part[1].number == 3 && pt->part[1].kind == FERRY_PART_SWAP);

	/* header checksum */
	img[512 + 40] ^= 1;
	CHECK(ferry_ptable_read(mem_rd, NULL, DISK, pt) == FERRY_E_CORRUPT);
	CHECK(pt->count == 0);
	/* entry checksum */
	gpt_build();
	img[1024 + 40] ^= 1;
	CHECK(ferry_ptable_read(mem_rd, NULL, DISK, pt) == FERRY_E_CORRUPT);
	/* an entry outside the usable area, with good checksums */
	gpt_build();
	put64(img + 1024 + 40, DISK / 512);
	gpt_fix();
	CHECK(ferry_ptable_read(mem_rd, NULL, DISK, pt) == FERRY_E_CORRUPT);
	/* overlapping partitions */
	gpt_build();
	put64(img + 1024 + 256 + 32, 40000);
	gpt_fix();
	CHECK(ferry_ptable_read(mem_rd, NULL, DISK, pt) == FERRY_E_CORRUPT);
	/* entry array too large */
	gpt_build();
	ferry_put_le32(img + 512 + 80, 100000);
	gpt_fix();
	CHECK(ferry_ptable_read(mem_rd, NULL, DISK, pt) == FERRY_E_CORRUPT);
	/* protective MBR without a GPT */
	gpt_build();
	memset(img + 512, 0, 512);
	CHECK(ferry_ptable_read(mem_rd, NULL, DISK, pt) == FERRY_E_CORRUPT);
	free(pt);
}

/* EBR chains need sectors beyond the first MiB: a sparse reader. */
static uint8_t ebr1[512], ebr2[512];
static int ebr_rd(void *arg, uint64_t off, void *buf, size_t len)
{
	(void)arg;
	if (off == 2048ull * 512 && len == 512) {
		memcpy(buf, ebr1, 512);
		return 0;
	}
	if (off == (2048ull + 20480) * 512 && len == 512) {
		memcpy(buf, ebr2, 512);
		return 0;
	}
	return mem_rd(arg, off, buf, len);
}

static void ebr_entry(uint8_t *s, int i, uint8_t type, uint32_t start, uint32_t n)
{
	uint8_t *p = s + 446 + 16 * i;

	p[4] = type;
	ferry_put_le32(p + 8, start);
	ferry_put_le32(p + 12, n);
	s[510] = 0x55;
	s[511] = 0xaa;
}

static void test_logical(void)
{
	struct ferry_ptable *pt = calloc(1, sizeof(*pt));

	memset(img, 0, HEAD);
	memset(ebr1, 0, sizeof(ebr1));
	memset(ebr2, 0, sizeof(ebr2));
	mbr_entry(0, 0x05, 2048, 40960);
	mbr_entry(1, 0x83, 43008, 40960);
	ebr_entry(ebr1, 0, 0x82, 2048, 16384);
	ebr_entry(ebr1, 1, 0x05, 20480, 20480);
	ebr_entry(ebr2, 0, 0x83, 2048, 16384);
	CHECK(ferry_ptable_read(ebr_rd, NULL, DISK, pt) == 0);
	CHECK(pt->scheme == FERRY_PT_MBR && pt->count == 3);
	CHECK(pt->part[0].number == 5 && pt->part[0].kind == FERRY_PART_SWAP);
	CHECK(pt->part[0].start == (2048ull + 2048) * 512);
	CHECK(pt->part[1].number == 6 && pt->part[1].kind == FERRY_PART_LINUX);
	CHECK(pt->part[2].number == 2);
	/* a link that points back: refused, not followed forever */
	ebr_entry(ebr2, 1, 0x05, 0, 20480);
	CHECK(ferry_ptable_read(ebr_rd, NULL, DISK, pt) == FERRY_E_CORRUPT);
	/* a logical partition past its extended partition */
	ebr_entry(ebr2, 1, 0, 0, 0);
	ebr_entry(ebr2, 0, 0x83, 2048, 30000);
	CHECK(ferry_ptable_read(ebr_rd, NULL, DISK, pt) == FERRY_E_CORRUPT);
	/* a primary partition past the end of the disk */
	memset(img, 0, HEAD);
	mbr_entry(0, 0x83, 2048, DISK / 512);
	CHECK(ferry_ptable_read(mem_rd, NULL, DISK, pt) == FERRY_E_CORRUPT);
	/* a boot sector that is not a partition table: no table, no error */
	memset(img, 0, HEAD);
	mbr_entry(0, 0x83, 2048, 4096);
	img[446] = 0x29;
	CHECK(ferry_ptable_read(mem_rd, NULL, DISK, pt) == 0 && pt->scheme == FERRY_PT_NONE);
	/* nothing at all */
	memset(img, 0, HEAD);
	CHECK(ferry_ptable_read(mem_rd, NULL, DISK, pt) == 0 && pt->scheme == FERRY_PT_NONE);
	free(pt);
}

static void test_swap(void)
{
	memset(img, 0, HEAD);
	memcpy(img + 8192 + 4096 - 10, "SWAPSPACE2", 10);
	CHECK(ferry_swap_header_size(mem_rd, NULL, 8192, 1 << 20) == 4096);
	memcpy(img + 8192 + 4096 - 10, "S1SUSPEND\0", 10);
	CHECK(ferry_swap_header_size(mem_rd, NULL, 8192, 1 << 20) == 0);
	memcpy(img + 8192 + 65536 - 10, "SWAPSPACE2", 10);
	CHECK(ferry_swap_header_size(mem_rd, NULL, 8192, 1 << 20) == 65536);
}

int main(void)
{
	img = calloc(1, HEAD);
	test_gpt();
	test_logical();
	test_swap();
	free(img);
	return unit_done();
}
