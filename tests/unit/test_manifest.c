/* test_manifest.c - restore-point manifests: the header round-trips, and a
 * manifest built here byte by byte from the layout in manifest.c parses,
 * while any damaged byte, a cut, a wrong block count, a bad entry or an
 * unknown version is refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

#define NBLK 5

/* The layout, written out independently of manifest.c's writer:
 *   header:  "FMAN", u32 version, u32 header length, u32 block size,
 *            u64 disk size, u64 block count, u64 created (ns), 8-byte id,
 *            u16 + name, u16 + source, u16 + extra       (little endian)
 *   entries: per block, u8 kind (0 zero, 1 data) + 32-byte SHA-256
 *            (all zero for a zero block)
 *   footer:  "FEND", six u64 statistics (read, zero, new, reused, stored,
 *            duration in us), then SHA-256 of every byte before it. */
static size_t build(uint8_t *buf, size_t cap, const struct ferry_point *p,
		    uint32_t version, uint64_t nentries, const uint8_t *kinds)
{
	static const uint8_t idb[8] = { 0x01, 0x23, 0x45, 0x67,
					0x89, 0xab, 0xcd, 0xef };
	struct ferry_wr w;
	size_t nl = strlen(p->name), sl = strlen(p->source),
	       el = strlen(p->extra), len;

	ferry_wr_init(&w, buf, cap);
	ferry_wr_bytes(&w, "FMAN", 4);
	ferry_wr_u32(&w, version);
	ferry_wr_u32(&w, (uint32_t)(48 + 2 + nl + 2 + sl + 2 + el));
	ferry_wr_u32(&w, p->block_size);
	ferry_wr_u64(&w, p->disk_size);
	ferry_wr_u64(&w, p->nblocks);
	ferry_wr_u64(&w, p->created_ns);
	ferry_wr_bytes(&w, idb, sizeof(idb));
	ferry_wr_u16(&w, (uint16_t)nl);
	ferry_wr_bytes(&w, p->name, nl);
	ferry_wr_u16(&w, (uint16_t)sl);
	ferry_wr_bytes(&w, p->source, sl);
	ferry_wr_u16(&w, (uint16_t)el);
	ferry_wr_bytes(&w, p->extra, el);
	for (uint64_t i = 0; i < nentries; i++) {
		uint8_t h[FERRY_HASH_LEN] = { 0 };

		ferry_wr_u8(&w, kinds[i % NBLK]);
		if (kinds[i % NBLK] == FERRY_ENTRY_DATA)
			ferry_sha256(&i, sizeof(i), h);
		ferry_wr_bytes(&w, h, sizeof(h));
	}
	ferry_wr_bytes(&w, "FEND", 4);
	ferry_wr_u64(&w, p->bytes_read);
	ferry_wr_u64(&w, p->bytes_zero);
	ferry_wr_u64(&w, p->bytes_new);
	ferry_wr_u64(&w, p->bytes_reused);
	ferry_wr_u64(&w, p->bytes_stored);
	ferry_wr_u64(&w, p->duration_us);
	if (w.bad)
		return 0;
	len = cap - w.left;
	ferry_sha256(buf, len, buf + len);
	return len + FERRY_HASH_LEN;
}

/* Recompute the trailing checksum after an edit. */
static void reseal(uint8_t *buf, size_t len)
{
	ferry_sha256(buf, len - FERRY_HASH_LEN, buf + len - FERRY_HASH_LEN);
}

static void sample(struct ferry_point *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "0123456789abcdef");
	snprintf(p->name, sizeof(p->name), "vm1.img");
	snprintf(p->source, sizeof(p->source), "/var/lib/images/vm1.img");
	snprintf(p->extra, sizeof(p->extra), "bitmap=b1\nbitmap_generation=7\n");
	p->block_size = 1u << 20;
	p->disk_size = 4 * (1ull << 20) + 12345; /* last block partial */
	p->nblocks = NBLK;
	p->created_ns = 1700000000123456789ull;
	p->bytes_read = p->disk_size;
	p->bytes_zero = 1u << 20;
	p->bytes_new = 2u << 20;
	p->bytes_reused = p->disk_size - (3u << 20);
	p->bytes_stored = 777777;
	p->duration_us = 1234567;
}

static int same_point(const struct ferry_point *a, const struct ferry_point *b)
{
	return !strcmp(a->id, b->id) && !strcmp(a->name, b->name) &&
	       !strcmp(a->source, b->source) && a->block_size == b->block_size &&
	       a->disk_size == b->disk_size && a->nblocks == b->nblocks &&
	       a->created_ns == b->created_ns && !strcmp(a->extra, b->extra);
}

static void test_header(void)
{
	struct ferry_point p, q;
	uint8_t buf[FERRY_MANIFEST_HEADER_MAX], full[8192];
	size_t hl = 0, ql = 0;
	static const uint8_t kinds[NBLK] = { 1, 0, 1, 1, 1 };

	sample(&p);
	CHECK(ferry_manifest_header_encode(&p, buf, sizeof(buf), &hl) == 0);
	CHECK(hl == 48 + 2 + strlen(p.name) + 2 + strlen(p.source) + 2 + strlen(p.extra));
	memset(&q, 0, sizeof(q));
	CHECK(ferry_manifest_header_parse(buf, hl, &q, &ql) == 0);
	CHECK(ql == hl);
	CHECK(same_point(&p, &q));
	/* The writer and the layout written out above agree byte for byte. */
	CHECK(build(full, sizeof(full), &p, 1, NBLK, kinds) > hl);
	CHECK(memcmp(full, buf, hl) == 0);
	/* Every cut of the header is refused. */
	for (size_t n = 0; n < hl; n++)
		if (ferry_manifest_header_parse(buf, n, &q, &ql) == 0)
			CHECK(!"a cut header parsed");
	/* Too small an output buffer, and a non-hex id, are refused. */
	CHECK(ferry_manifest_header_encode(&p, buf, hl - 1, &ql) ==
	      FERRY_E_INVAL);
	p.id[3] = 'x';
	CHECK(ferry_manifest_header_encode(&p, buf, sizeof(buf), &ql) ==
	      FERRY_E_INVAL);
	/* The longest name and source round-trip. */
	sample(&p);
	memset(p.name, 'n', FERRY_NAME_MAX);
	p.name[FERRY_NAME_MAX] = 0;
	memset(p.source, 's', sizeof(p.source) - 1);
	p.source[sizeof(p.source) - 1] = 0;
	CHECK(ferry_manifest_header_encode(&p, buf, sizeof(buf), &hl) == 0);
	CHECK(ferry_manifest_header_parse(buf, hl, &q, &ql) == 0 &&
	      same_point(&p, &q));
}

static void test_buffer(void)
{
	static const uint8_t kinds[NBLK] = { 1, 0, 1, 1, 1 };
	struct ferry_point p, q;
	uint8_t good[8192], buf[8192];
	size_t len, bad = 0;
	int e;

	sample(&p);
	len = build(good, sizeof(good), &p, 1, NBLK, kinds);
	CHECK(len == 48 + 6 + strlen(p.name) + strlen(p.source) + strlen(p.extra) +
			     NBLK * FERRY_ENTRY_LEN + FERRY_MANIFEST_FOOTER);
	CHECK(ferry_manifest_parse_buffer(good, len, &q) == 0);
	CHECK(same_point(&p, &q));
	CHECK(q.bytes_read == p.bytes_read && q.bytes_zero == p.bytes_zero &&
	      q.bytes_new == p.bytes_new && q.bytes_reused == p.bytes_reused &&
	      q.bytes_stored == p.bytes_stored &&
	      q.duration_us == p.duration_us && !q.corrupt);

	/* Any changed byte anywhere is refused (mostly by the checksum). */
	memcpy(buf, good, len);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (uint8_t)(1u << bit);
			if (ferry_manifest_parse_buffer(buf, len, &q) == 0)
				bad++;
			buf[i] ^= (uint8_t)(1u << bit);
		}
		buf[i] ^= 0xff;
		if (ferry_manifest_parse_buffer(buf, len, &q) == 0)
			bad++;
		buf[i] ^= 0xff;
	}
	CHECK(bad == 0);
	/* Every cut, and one trailing byte, are refused. */
	bad = 0;
	for (size_t n = 0; n < len; n++)
		if (ferry_manifest_parse_buffer(buf, n, &q) == 0)
			bad++;
	CHECK(bad == 0);
	buf[len] = 0;
	CHECK(ferry_manifest_parse_buffer(buf, len + 1, &q) == FERRY_E_CORRUPT);

	/* Another version is named as such, even with a valid checksum. */
	for (uint32_t v = 0; v < 4; v++) {
		if (v == FERRY_FORMAT_VERSION)
			continue;
		len = build(buf, sizeof(buf), &p, v, NBLK, kinds);
		CHECK(ferry_manifest_parse_buffer(buf, len, &q) ==
		      FERRY_E_VERSION);
		CHECK(strstr(ferry_last_error(), "version") != NULL);
	}
	len = build(buf, sizeof(buf), &p, 0x01000001, NBLK, kinds);
	CHECK(ferry_manifest_parse_buffer(buf, len, &q) == FERRY_E_VERSION);

	/* One entry more or less than the header's block count. */
	len = build(buf, sizeof(buf), &p, 1, NBLK + 1, kinds);
	CHECK(ferry_manifest_parse_buffer(buf, len, &q) == FERRY_E_CORRUPT);
	len = build(buf, sizeof(buf), &p, 1, NBLK - 1, kinds);
	CHECK(ferry_manifest_parse_buffer(buf, len, &q) == FERRY_E_CORRUPT);
	/* A block count that does not match the disk size, with entries to
	 * match it. */
	p.nblocks = NBLK + 1;
	len = build(buf, sizeof(buf), &p, 1, NBLK + 1, kinds);
	CHECK(ferry_manifest_parse_buffer(buf, len, &q) == FERRY_E_CORRUPT);
	p.nblocks = NBLK - 1;
	len = build(buf, sizeof(buf), &p, 1, NBLK - 1, kinds);
	CHECK(ferry_manifest_parse_buffer(buf, len, &q) == FERRY_E_CORRUPT);
	sample(&p);

	/* Resealed damage the checksum cannot see. */
	{
		size_t hl = 48 + 6 + strlen(p.name) + strlen(p.source) + strlen(p.extra);

		len = build(buf, sizeof(buf), &p, 1, NBLK, kinds);
		buf[hl + FERRY_ENTRY_LEN] = 2; /* reserved kind */
		reseal(buf, len);
		CHECK(ferry_manifest_parse_buffer(buf, len, &q) == FERRY_E_CORRUPT);
		buf[hl + FERRY_ENTRY_LEN] = FERRY_ENTRY_ZERO;
		buf[hl + FERRY_ENTRY_LEN + 9] = 1; /* zero entry with a hash */
		reseal(buf, len);
		CHECK(ferry_manifest_parse_buffer(buf, len, &q) == FERRY_E_CORRUPT);
		buf[hl + FERRY_ENTRY_LEN + 9] = 0;
		reseal(buf, len);
		CHECK(ferry_manifest_parse_buffer(buf, len, &q) == 0);
		memcpy(buf + len - FERRY_MANIFEST_FOOTER, "FENd", 4);
		reseal(buf, len);
		CHECK(ferry_manifest_parse_buffer(buf, len, &q) == FERRY_E_CORRUPT);
	}
	p.block_size = 3u << 19; /* not a power of two */
	p.nblocks = (p.disk_size + p.block_size - 1) / p.block_size;
	len = build(buf, sizeof(buf), &p, 1, p.nblocks, kinds);
	CHECK(ferry_manifest_parse_buffer(buf, len, &q) == FERRY_E_CORRUPT);
	p.block_size = 32u << 20; /* too large */
	p.nblocks = 1;
	len = build(buf, sizeof(buf), &p, 1, 1, kinds);
	CHECK(ferry_manifest_parse_buffer(buf, len, &q) == FERRY_E_CORRUPT);
	sample(&p);
	p.name[2] = '/'; /* names never hold a slash */
	len = build(buf, sizeof(buf), &p, 1, NBLK, kinds);
	CHECK(ferry_manifest_parse_buffer(buf, len, &q) == FERRY_E_CORRUPT);
	sample(&p);
	p.name[0] = 0; /* nor are empty */
	len = build(buf, sizeof(buf), &p, 1, NBLK, kinds);
	CHECK(ferry_manifest_parse_buffer(buf, len, &q) == FERRY_E_CORRUPT);

	/* An empty disk has no entries and is valid. */
	sample(&p);
	p.disk_size = 0;
	p.nblocks = 0;
	len = build(buf, sizeof(buf), &p, 1, 0, kinds);
	CHECK((e = ferry_manifest_parse_buffer(buf, len, &q)) == 0);
	CHECK(q.nblocks == 0);
	/* Nothing at all is not a manifest. */
	CHECK(ferry_manifest_parse_buffer(buf, 0, &q) == FERRY_E_CORRUPT);
}

int main(void)
{
	test_header();
	test_buffer();
	return unit_done();
}
