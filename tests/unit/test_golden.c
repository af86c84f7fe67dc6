/* test_golden.c - frozen format vectors: chunk files of each codec and a
 * manifest, committed in tests/golden/, must keep decoding to the content
 * stated here.  A failure means the on-disk format changed: bump the
 * format version and add new vectors (see tests/golden/README.md) rather
 * than editing these. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"

static char golden_dir[PATH_MAX];

static int dir_has_vectors(const char *dir)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/manifest-v1.fman", dir);
	return access(path, R_OK) == 0;
}

/* GOLDEN_DIR, else ../golden next to this source file (the build runs
 * from the top of the tree), else tests/golden above the binary. */
static int find_golden(void)
{
	const char *env = getenv("GOLDEN_DIR");
	char src[PATH_MAX], exe[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(golden_dir, sizeof(golden_dir), "%s", env);
		return dir_has_vectors(golden_dir);
	}
	snprintf(src, sizeof(src), "%s", __FILE__);
	snprintf(golden_dir, sizeof(golden_dir), "%s/../golden", dirname(src));
	if (dir_has_vectors(golden_dir))
		return 1;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return 0;
	exe[n] = 0;
	for (char *d = dirname(exe); strcmp(d, "/") && strcmp(d, ".");
	     d = dirname(d)) {
		snprintf(golden_dir, sizeof(golden_dir), "%s/tests/golden", d);
		if (dir_has_vectors(golden_dir))
			return 1;
	}
	return 0;
}

static size_t slurp(const char *name, uint8_t *buf, size_t cap)
{
	char path[PATH_MAX + 64];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", golden_dir, name);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 0;
	}
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static int hash_is(const uint8_t h[FERRY_HASH_LEN], const char *hex)
{
	char got[65];

	ferry_hash_hex(h, got);
	if (strcmp(got, hex)) {
		fprintf(stderr, "sha256 %s, expected %s\n", got, hex);
		return 0;
	}
	return 1;
}

/* The plaintexts, as tests/golden/README.md describes them. */
static size_t text_plain(uint8_t *buf, const char *tag)
{
	size_t n = 0;

	for (int i = 0; i < 128; i++)
		n += (size_t)snprintf((char *)buf + n, 64,
				      "ferry golden %s line %04d\n", tag, i);
	return n;
}

static void lcg_plain(uint8_t *buf, size_t n)
{
	uint32_t x = 12345;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
}

struct vector {
	const char *file;
	int codec;
	size_t file_len, raw_len;
	const char *file_sha256, *plain_sha256;
};

static const struct vector chunks[] = {
	{ "chunk-none.fch", FERRY_CODEC_NONE, 280, 256,
	  "2b054580274f530822dd53f29539ab4ca08d41473cdc339559b35f777067917f",
	  "a75d80808c86e6ad91a4268092e9575a28ea7679b95f58e3a0e4c1231eefa999" },
	{ "chunk-zstd.fch", FERRY_CODEC_ZSTD, 179, 3584,
	  "05f963d99a771ad1a3a608570e6a90804e16f660c17a61492077b8ae17093f5d",
	  "70d6485841890281628bb30d6091561c719e95b4a80f163faab8d7a6d72902ee" },
	{ "chunk-lz4.fch", FERRY_CODEC_LZ4, 701, 3456,
	  "b20631af9cbafb6a24dc9bde7b2c21a50147cd6ec155e4236c9ea3d4681ae354",
	  "9bf061feaee73e59248dc89518faa4a8e2f314bd63d77b075709641d3bf4e28b" },
};

static void test_chunks(void)
{
	static uint8_t file[8192], out[8192], want[8192], enc[8192];
	struct ferry_codec_ctx *ctx = ferry_codec_ctx_new(FERRY_CODEC_NONE, 0);

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(chunks); i++) {
		const struct vector *v = &chunks[i];
		uint8_t h[FERRY_HASH_LEN], id[FERRY_HASH_LEN];
		size_t n = slurp(v->file, file, sizeof(file)), outlen = 0, wl;
		uint32_t raw, plen;
		int codec;

		CHECK(n == v->file_len);
		ferry_sha256(file, n, h);
		CHECK(hash_is(h, v->file_sha256)); /* the vector itself */
		CHECK(ferry_chunk_header(file, n, &raw, &plen, &codec) == 0);
		CHECK(codec == v->codec && raw == v->raw_len &&
		      plen == n - FERRY_CHUNK_HDR);
		CHECK(ferry_hex_decode(v->plain_sha256, id, sizeof(id)) == 0);
		CHECK(ferry_chunk_decode(ctx, file, n, out, sizeof(out), &outlen,
					 id) == 0);
		CHECK(outlen == v->raw_len);
		ferry_sha256(out, outlen, h);
		CHECK(hash_is(h, v->plain_sha256));
		/* And it is the documented plaintext. */
		if (v->codec == FERRY_CODEC_NONE) {
			wl = v->raw_len;
			lcg_plain(want, wl);
		} else {
			wl = text_plain(want, ferry_codec_name(v->codec));
		}
		CHECK(wl == outlen && memcmp(want, out, wl) == 0);
	}
	/* The raw form is fully determined by the format: encoding the same
	 * plaintext again gives the same bytes. */
	{
		size_t n = slurp(chunks[0].file, file, sizeof(file)), el = 0;

		lcg_plain(want, chunks[0].raw_len);
		CHECK(ferry_chunk_encode(ctx, want, chunks[0].raw_len, enc,
					 sizeof(enc), &el) == 0);
		CHECK(el == n && memcmp(enc, file, n) == 0);
	}
	ferry_codec_ctx_free(ctx);
}

static void test_manifest(void)
{
	static uint8_t file[4096], hdr[FERRY_MANIFEST_HEADER_MAX];
	static const char *const entries[3] = {
		"70d6485841890281628bb30d6091561c719e95b4a80f163faab8d7a6d72902ee",
		NULL, /* a zero block */
		"9bf061feaee73e59248dc89518faa4a8e2f314bd63d77b075709641d3bf4e28b",
	};
	struct ferry_point p;
	size_t n = slurp("manifest-v1.fman", file, sizeof(file)), hl = 0, el = 0;
	uint8_t h[FERRY_HASH_LEN];

	CHECK(n == 269);
	ferry_sha256(file, n, h);
	CHECK(hash_is(h, "f13ac3c1466b9d03de3573f66504f7354db0faf3da5000fcb4097606a50a9e0e"));
	CHECK(ferry_manifest_parse_buffer(file, n, &p) == 0);
	CHECK(!strcmp(p.id, "0123456789abcdef"));
	CHECK(!strcmp(p.name, "golden.img"));
	CHECK(!strcmp(p.source, "/srv/images/golden.img"));
	CHECK(p.block_size == 65536);
	CHECK(p.disk_size == 3 * 65536 - 512);
	CHECK(p.nblocks == 3);
	CHECK(p.created_ns == 1700000000123456789ull);
	CHECK(p.bytes_read == 3 * 65536 - 512 && p.bytes_zero == 65536 &&
	      p.bytes_new == 2 * 65536 - 512 && p.bytes_reused == 0 &&
	      p.bytes_stored == 1000 && p.duration_us == 4321);
	CHECK(ferry_manifest_header_parse(file, n, &p, &hl) == 0 && hl == 86);
	for (int i = 0; i < 3; i++) {
		const uint8_t *e = file + hl + (size_t)i * FERRY_ENTRY_LEN;
		static const uint8_t zero[FERRY_HASH_LEN];

		if (entries[i]) {
			CHECK(e[0] == FERRY_ENTRY_DATA);
			CHECK(hash_is(e + 1, entries[i]));
		} else {
			CHECK(e[0] == FERRY_ENTRY_ZERO);
			CHECK(!memcmp(e + 1, zero, FERRY_HASH_LEN));
		}
	}
	CHECK(!memcmp(file + hl + 3 * FERRY_ENTRY_LEN, FERRY_MANIFEST_END, 4));
	/* Today's writer produces the same header bytes. */
	CHECK(ferry_manifest_header_encode(&p, hdr, sizeof(hdr), &el) == 0);
	CHECK(el == hl && !memcmp(hdr, file, hl));
}

int main(void)
{
	if (!find_golden()) {
		fprintf(stderr, "golden vectors not found: set GOLDEN_DIR to tests/golden\n");
		return 1;
	}
	test_chunks();
	test_manifest();
	return unit_done();
}
