/* test_seal.c - encryption at rest with fixed vectors: AES-256-GCM (NIST
 * GCM test case 14), the sealed chunk, key lines and sealed manifest in
 * tests/golden (written by make-sealed.py, an independent Python
 * implementation of docs/format.md "Encryption"), HMAC chunk ids, round
 * trips of every codec, and every single-byte flip refused. */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "seal.h"
#include "unit.h"

static char golden_dir[PATH_MAX];

static size_t slurp(const char *name, uint8_t *buf, size_t cap)
{
	char path[PATH_MAX + 64], src[PATH_MAX];
	FILE *f;
	size_t n;

	if (!golden_dir[0]) {
		const char *env = getenv("GOLDEN_DIR");

		snprintf(src, sizeof(src), "%s", __FILE__);
		snprintf(golden_dir, sizeof(golden_dir), "%s",
			 env && *env ? env : "tests/golden");
		snprintf(path, sizeof(path), "%s/chunk-sealed.fce", golden_dir);
		if (access(path, R_OK))
			snprintf(golden_dir, sizeof(golden_dir), "%s/../golden",
				 dirname(src));
	}
	snprintf(path, sizeof(path), "%s/%s", golden_dir, name);
	if (!(f = fopen(path, "rb"))) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 0;
	}
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static const struct ferry_keys *golden_keys(void)
{
	static struct ferry_keys k;

	for (int i = 0; i < 32; i++) {
		k.enc[i] = (uint8_t)i;
		k.id[i] = (uint8_t)(32 + i);
	}
	return &k;
}

static void test_gcm_vector(void)
{
	/* NIST GCM test case 14: K = 0^256, IV = 0^96, P = 0^128. */
	uint8_t key[32] = { 0 }, iv[12] = { 0 }, p[16] = { 0 }, c[16], t[16],
		back[16];
	char ch[33], th[33];

	CHECK(ferry_seal(NULL, key, iv, NULL, 0, p, 16, c, t) == 0);
	hex_of(c, 16, ch);
	hex_of(t, 16, th);
	CHECK(!strcmp(ch, "cea7403d4d606b6e074ec5d3baf39d18"));
	CHECK(!strcmp(th, "d0d1c8a799996bf0265b98b5d48ab919"));
	CHECK(ferry_open(NULL, key, iv, NULL, 0, c, 16, back, t) == 0);
	CHECK(!memcmp(back, p, 16));
	t[3] ^= 1;
	CHECK(ferry_open(NULL, key, iv, NULL, 0, c, 16, back, t) == FERRY_E_CORRUPT);
	t[3] ^= 1;
	CHECK(ferry_open(NULL, key, iv, "x", 1, c, 16, back, t) == FERRY_E_CORRUPT);
}

static void golden_plain(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 7 + 3) & 255);
}

static void test_golden_chunk(void)
{
	static uint8_t file[1024], out[1024], bad[1024], want[300];
	uint8_t id[32], h[32];
	char hex[65];
	size_t n = slurp("chunk-sealed.fce", file, sizeof(file)), outlen;
	struct ferry_codec_ctx *c = ferry_codec_ctx_new(FERRY_CODEC_NONE, 0),
			       *plain = ferry_codec_ctx_new(FERRY_CODEC_NONE, 0);
	uint32_t raw, plen;
	int codec;

	CHECK(n == 352);
	CHECK(c && plain && ferry_codec_ctx_set_keys(c, golden_keys()) == 0);
	golden_plain(want, sizeof(want));
	/* The keyed id is HMAC-SHA-256(id key, plaintext). */
	CHECK(ferry_chunk_id(c, want, sizeof(want), id) == 0);
	ferry_hash_hex(id, hex);
	CHECK(!strcmp(hex, "81b13b5cb819295f938340c0cfc522f5665f686001d6685637f6d79dbe176287"));
	CHECK(ferry_chunk_id(c, want, sizeof(want), h) == 0 && !memcmp(h, id, 32));
	HMAC(EVP_sha256(), golden_keys()->id, 32, want, sizeof(want), h, NULL);
	CHECK(!memcmp(h, id, 32));
	ferry_chunk_id(plain, want, sizeof(want), h);
	ferry_hash_hex(h, hex);
	CHECK(!strcmp(hex, "04773f8726c81cafcfa1a09a82664b98b00d2021031a1715bca1154f2dad3472"));
	/* Header and framing readable without the key (what a mover checks). */
	CHECK(ferry_chunk_header(file, n, &raw, &plen, &codec) == 0 && raw == 300 &&
	      plen == 316 && codec == FERRY_CODEC_NONE);
	CHECK(ferry_chunk_check(file, n, &raw) == 0);
	CHECK(ferry_chunk_is_sealed(file, n));
	CHECK(ferry_chunk_decode(c, file, n, out, sizeof(out), &outlen, id) == 0 &&
	      outlen == 300 && !memcmp(out, want, 300));
	/* Without the key: refused as such, never decoded. */
	CHECK(ferry_chunk_decode(plain, file, n, out, sizeof(out), &outlen, NULL) ==
	      FERRY_E_KEY);
	/* Every single-byte change fails, whatever the byte. */
	for (size_t i = 0; i < n; i++) {
		memcpy(bad, file, n);
		bad[i] ^= (uint8_t)(1u << (i % 8));
		CHECK(ferry_chunk_decode(c, bad, n, out, sizeof(out), &outlen, id) != 0);
	}
	/* A header made consistent again (CRCs fixed) still fails the tag. */
	memcpy(bad, file, n);
	bad[4] = FERRY_CODEC_LZ4; /* the codec is bound as additional data */
	ferry_put_le32(bad + 32, ferry_crc32c(bad, 32));
	CHECK(ferry_chunk_check(bad, n, &raw) == 0);
	CHECK(ferry_chunk_decode(c, bad, n, out, sizeof(out), &outlen, NULL) ==
	      FERRY_E_CORRUPT);
	memcpy(bad, file, n);
	bad[20] ^= 1; /* the nonce */
	ferry_put_le32(bad + 32, ferry_crc32c(bad, 32));
	CHECK(ferry_chunk_decode(c, bad, n, out, sizeof(out), &outlen, NULL) ==
	      FERRY_E_CORRUPT);
	memcpy(bad, file, n);
	bad[40] ^= 1;
	ferry_put_le32(bad + 28, ferry_crc32c(bad + 36, n - 36));
	ferry_put_le32(bad + 32, ferry_crc32c(bad, 32));
	CHECK(ferry_chunk_check(bad, n, &raw) == 0); /* framing holds */
	CHECK(ferry_chunk_decode(c, bad, n, out, sizeof(out), &outlen, NULL) ==
	      FERRY_E_CORRUPT);
	/* A plain chunk is refused by a keyed context. */
	{
		size_t pl;
		uint8_t enc[1024];

		CHECK(ferry_chunk_encode(plain, want, 300, enc, sizeof(enc), &pl) == 0);
		CHECK(ferry_chunk_decode(c, enc, pl, out, sizeof(out), &outlen, NULL) ==
		      FERRY_E_CORRUPT);
	}
	ferry_codec_ctx_free(c);
	ferry_codec_ctx_free(plain);
}

static void test_round_trips(void)
{
	static uint8_t in[256 << 10], enc[(256 << 10) + 4096], out[256 << 10],
		enc2[(256 << 10) + 4096];
	const int codecs[] = { FERRY_CODEC_NONE, FERRY_CODEC_ZSTD, FERRY_CODEC_LZ4 };
	uint8_t id[32];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i % 251 < 100 ? 'a' + i % 7 : (i * 2654435761u) >> 13);
	for (size_t k = 0; k < 3; k++) {
		struct ferry_codec_ctx *c = ferry_codec_ctx_new(codecs[k], 0);
		size_t n, n2, outlen;
		uint32_t raw, plen;
		int codec;

		CHECK(c && ferry_codec_ctx_set_keys(c, golden_keys()) == 0);
		CHECK(ferry_chunk_bound(sizeof(in)) <= sizeof(enc));
		CHECK(ferry_chunk_id(c, in, sizeof(in), id) == 0);
		CHECK(ferry_chunk_encode(c, in, sizeof(in), enc, sizeof(enc), &n) == 0);
		CHECK(ferry_chunk_header(enc, n, &raw, &plen, &codec) == 0 &&
		      codec == codecs[k] && raw == sizeof(in));
		CHECK(!memcmp(enc, FERRY_SCHUNK_MAGIC, 4));
		/* No plaintext run survives sealing. */
		CHECK(!memmem(enc, n, "abcdefg", 7));
		CHECK(ferry_chunk_decode(c, enc, n, out, sizeof(out), &outlen, id) == 0 &&
		      outlen == sizeof(in) && !memcmp(in, out, sizeof(in)));
		/* Two seals of one block differ (fresh nonce) and both open. */
		CHECK(ferry_chunk_encode(c, in, sizeof(in), enc2, sizeof(enc2), &n2) == 0);
		CHECK(n2 == n && memcmp(enc + 16, enc2 + 16, 12) && memcmp(enc, enc2, n));
		CHECK(ferry_chunk_decode(c, enc2, n2, out, sizeof(out), &outlen, id) == 0);
		/* A flip anywhere in a sample of positions is refused. */
		for (size_t i = 0; i < n; i += n / 97 + 1) {
			enc[i] ^= 0x10;
			CHECK(ferry_chunk_decode(c, enc, n, out, sizeof(out), &outlen, id) != 0);
			enc[i] ^= 0x10;
		}
		ferry_codec_ctx_free(c);
	}
}

static void test_key_lines(void)
{
	static char conf[2048], bad[2048];
	size_t n = slurp("key-lines.conf", (uint8_t *)conf, sizeof(conf) - 1);
	struct ferry_keyfile kf, kf2;
	struct ferry_keys k;
	uint8_t kek[32];
	char hex[65], out[1024];
	const char *pass = "correct horse battery staple";
	const char *repo_id = "00112233445566778899aabbccddeeff";

	conf[n] = 0;
	CHECK(n > 0 && ferry_keyfile_parse(conf, &kf) == 0);
	CHECK(kf.log_n == 10 && kf.r == 8 && kf.p == 1 && kf.salt[0] == 100);
	CHECK(ferry_keyfile_kek(&kf, pass, strlen(pass), kek) == 0);
	hex_of(kek, 32, hex);
	CHECK(!strcmp(hex, "e954738222dd10fcc8ecb10bb0c3724e903bf364b519ba9a38f10c80ac36d8ba"));
	CHECK(ferry_keyfile_unwrap(&kf, kek, repo_id, &k) == 0);
	CHECK(!memcmp(&k, golden_keys(), sizeof(k)));
	/* Bound to the repository id. */
	CHECK(ferry_keyfile_unwrap(&kf, kek, "ffffffffffffffffffffffffffffffff", &k) ==
	      FERRY_E_KEY);
	/* A wrong passphrase. */
	CHECK(ferry_keyfile_kek(&kf, "correct horse battery stapl", 27, kek) == 0);
	CHECK(ferry_keyfile_unwrap(&kf, kek, repo_id, &k) == FERRY_E_KEY);
	/* Format, parse again, same fields. */
	CHECK(ferry_keyfile_format(&kf, out, sizeof(out)) == 0);
	CHECK(!strcmp(out, conf));
	CHECK(ferry_keyfile_parse(out, &kf2) == 0 && !memcmp(&kf, &kf2, sizeof(kf)));
	/* Each line missing or damaged: refused, naming it. */
	{
		static const char *const drops[] = { "encryption =", "kdf =", "kdf_log_n",
						     "kdf_r", "kdf_p", "kdf_salt", "key =" };

		for (size_t i = 0; i < FERRY_ARRAY_SIZE(drops); i++) {
			char *l;

			snprintf(bad, sizeof(bad), "%s", conf);
			l = strstr(bad, drops[i]);
			CHECK(l != NULL);
			if (l)
				l[0] = '#';
			CHECK(ferry_keyfile_parse(bad, &kf2) != 0);
		}
	}
	snprintf(bad, sizeof(bad), "%s", conf);
	memcpy(strstr(bad, "kdf_log_n = 10"), "kdf_log_n = 40", 14);
	CHECK(ferry_keyfile_parse(bad, &kf2) == FERRY_E_CORRUPT);
	snprintf(bad, sizeof(bad), "%s", conf);
	memcpy(strstr(bad, "scrypt"), "bcrypt", 6);
	CHECK(ferry_keyfile_parse(bad, &kf2) == FERRY_E_VERSION);
	snprintf(bad, sizeof(bad), "%s", conf);
	strstr(bad, "key = ")[10] = 'g';
	CHECK(ferry_keyfile_parse(bad, &kf2) == FERRY_E_CORRUPT);
	CHECK(ferry_keyfile_parse("", &kf2) == FERRY_E_CORRUPT);
}

/* The sealed manifest in a scratch repository with the golden keys. */
static void test_golden_manifest(void)
{
	static uint8_t file[1024];
	static char conf[2048], extra[2200];
	char dir[] = "/tmp/ferry-seal-XXXXXX", path[PATH_MAX];
	struct ferry_init_opts io = { 1u << 16, FERRY_CODEC_NONE, 0, NULL };
	struct ferry_repo *r = NULL;
	struct ferry_mreader *m;
	struct ferry_point p;
	size_t n = slurp("manifest-sealed.fmae", file, sizeof(file)),
	       cn = slurp("key-lines.conf", (uint8_t *)conf, sizeof(conf) - 1);
	uint8_t h[32];
	int kind, count = 0, e;
	FILE *f;

	conf[cn] = 0;
	CHECK(n == 317 && mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/repo", dir);
	snprintf(extra, sizeof(extra), "features = encryption\n%s", conf);
	io.extra_config = extra;
	CHECK(ferry_repo_init(path, &io) == 0);
	CHECK(ferry_repo_open(path, &r) == 0);
	if (!r)
		return;
	CHECK(ferry_repo_encrypted(r));
	/* Locked: manifests are refused with FERRY_E_KEY. */
	CHECK(ferry_mreader_open(r, "0123456789abcdef", &m, &p) == FERRY_E_KEY);
	/* The golden key lines were wrapped for this repository id. */
	snprintf(r->repo_id, sizeof(r->repo_id), "00112233445566778899aabbccddeeff");
	CHECK(ferry_repo_unlock(r, "wrong", 5) == FERRY_E_KEY);
	CHECK(ferry_repo_unlock(r, "correct horse battery staple", 28) == 0);
	snprintf(path, sizeof(path), "%s/repo/points/0123456789abcdef", dir);
	for (size_t flip = 0; flip <= n; flip++) {
		if (flip < n)
			file[flip] ^= 0x04;
		f = fopen(path, "wb");
		CHECK(f && fwrite(file, 1, n, f) == n);
		if (f)
			fclose(f);
		e = ferry_mreader_open(r, "0123456789abcdef", &m, &p);
		if (flip < n) {
			CHECK(e != 0);
			file[flip] ^= 0x04;
			continue;
		}
		CHECK(e == 0);
		if (e)
			break;
		CHECK(!strcmp(p.name, "golden.img") && p.nblocks == 3 &&
		      p.block_size == 65536 && p.bytes_stored == 1000);
		while (ferry_mreader_next(m, &kind, h) == 1)
			count++;
		CHECK(count == 3);
		CHECK(ferry_mreader_entry(m, 1, &kind, h) == 0 && kind == FERRY_ENTRY_ZERO);
		ferry_mreader_free(m);
	}
	/* Truncated at any length: refused. */
	for (size_t len = 0; len < n; len += 7) {
		f = fopen(path, "wb");
		CHECK(f && fwrite(file, 1, len, f) == len);
		if (f)
			fclose(f);
		CHECK(ferry_mreader_open(r, "0123456789abcdef", &m, &p) != 0);
	}
	/* The plain v1 manifest in an encrypted repository is refused. */
	n = slurp("manifest-v1.fman", file, sizeof(file));
	f = fopen(path, "wb");
	CHECK(f && fwrite(file, 1, n, f) == n);
	if (f)
		fclose(f);
	CHECK(ferry_mreader_open(r, "0123456789abcdef", &m, &p) == FERRY_E_CORRUPT);
	ferry_repo_free(r);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	CHECK(system(path) == 0);
}

/* Writer and reader agree across segment boundaries (a manifest of
 * several 64 KiB segments), and a repository's passphrase change keeps
 * every point readable. */
static void test_write_read(void)
{
	char dir[] = "/tmp/ferry-seal-XXXXXX", path[PATH_MAX];
	struct ferry_init_opts io = { 1u << 16, FERRY_CODEC_NONE, 0, NULL };
	struct ferry_repo *r = NULL;
	struct ferry_mwriter *w;
	struct ferry_mreader *m;
	struct ferry_point p, q;
	uint8_t h[32];
	int kind, e;
	const uint64_t nb = 5000; /* 165 KB of entries: 3 segments */

	setenv("FERRY_KDF_LOG_N", "10", 1);
	setenv("FERRY_KDF_OPSLIMIT", "1", 1);
	setenv("FERRY_KDF_MEMLIMIT_KIB", "64", 1);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/repo", dir);
	CHECK(ferry_repo_init_encrypted(path, &io, "pw", 2) == 0);
	CHECK(ferry_repo_open(path, &r) == 0);
	if (!r)
		return;
	CHECK(ferry_repo_unlock(r, "pw", 2) == 0);
	memset(&p, 0, sizeof(p));
	snprintf(p.id, sizeof(p.id), "00000000000000aa");
	snprintf(p.name, sizeof(p.name), "big");
	p.block_size = 65536;
	p.disk_size = nb * 65536;
	p.nblocks = nb;
	CHECK((e = ferry_mwriter_begin(r, &p, &w)) == 0);
	if (e)
		return;
	for (uint64_t i = 0; i < nb; i++) {
		memset(h, 0, sizeof(h));
		memcpy(h, &i, sizeof(i));
		CHECK(ferry_mwriter_add(w, i % 3 ? FERRY_ENTRY_DATA : FERRY_ENTRY_ZERO, h) == 0);
	}
	p.bytes_read = 77;
	CHECK(ferry_mwriter_commit(w, &p) == 0);
	ferry_mwriter_free(w);
	CHECK(ferry_repo_change_passphrase(r, "new", 3) == 0);
	ferry_repo_free(r);
	CHECK(ferry_repo_open(path, &r) == 0);
	CHECK(ferry_repo_unlock(r, "pw", 2) == FERRY_E_KEY);
	CHECK(ferry_repo_unlock(r, "new", 3) == 0);
	CHECK((e = ferry_mreader_open(r, p.id, &m, &q)) == 0);
	if (e == 0) {
		uint64_t i = 0;

		CHECK(q.nblocks == nb && q.bytes_read == 77);
		while (ferry_mreader_next(m, &kind, h) == 1) {
			uint64_t v;

			memcpy(&v, h, sizeof(v));
			if (kind == FERRY_ENTRY_DATA)
				CHECK(v == i);
			i++;
		}
		CHECK(i == nb);
		CHECK(ferry_mreader_entry(m, 4001, &kind, h) == 0 &&
		      kind == FERRY_ENTRY_DATA && h[0] == (4001 & 255));
		ferry_mreader_free(m);
	}
	ferry_repo_free(r);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	CHECK(system(path) == 0);
}

/* Argon2id key lines: the KEK against the reference implementation
 * (argon2 CLI 20171227: `echo -n "correct horse battery staple" | argon2
 * @ABCDEFGHIJKLMNO -id -t 2 -k 64 -p 1 -l 32 -r`), format/parse round
 * trip, wrap/unwrap, the cost bound to the wrap, and every out-of-range
 * or malformed cost refused before derivation. */
static void test_key_lines_argon2id(void)
{
	struct ferry_keyfile kf, kf2;
	struct ferry_keys k;
	uint8_t kek[32];
	char hex[65], out[1024], bad[1024];
	const char *pass = "correct horse battery staple";
	const char *repo_id = "00112233445566778899aabbccddeeff";

	setenv("FERRY_KDF_OPSLIMIT", "2", 1);
	setenv("FERRY_KDF_MEMLIMIT_KIB", "64", 1);
	CHECK(ferry_keyfile_new_kdf(&kf, FERRY_KDF_ARGON2ID) == 0);
	CHECK(kf.kdf == FERRY_KDF_ARGON2ID && kf.opslimit == 2 &&
	      kf.memlimit == 65536 && kf.salt_len == 16);
	for (int i = 0; i < 16; i++)
		kf.salt[i] = (uint8_t)(0x40 + i);
	CHECK(ferry_keyfile_kek(&kf, pass, strlen(pass), kek) == 0);
	hex_of(kek, 32, hex);
	CHECK(!strcmp(hex, "87d00dbc034a0cf41fc403f50e84d82084422b02c439e2c62bbba398bb9ee9b2"));
	CHECK(ferry_keyfile_wrap(&kf, kek, repo_id, golden_keys()) == 0);
	CHECK(ferry_keyfile_format(&kf, out, sizeof(out)) == 0);
	CHECK(strstr(out, "kdf = argon2id\nkdf_opslimit = 2\nkdf_memlimit = 65536\n"
			  "kdf_salt = 404142434445464748494a4b4c4d4e4f\n") != NULL);
	CHECK(ferry_keyfile_parse(out, &kf2) == 0 && !memcmp(&kf, &kf2, sizeof(kf)));
	CHECK(ferry_keyfile_unwrap(&kf2, kek, repo_id, &k) == 0 &&
	      !memcmp(&k, golden_keys(), sizeof(k)));
	CHECK(ferry_keyfile_kek(&kf2, "correct horse battery stapl", 27, kek) == 0);
	CHECK(ferry_keyfile_unwrap(&kf2, kek, repo_id, &k) == FERRY_E_KEY);
	/* The cost is bound to the wrapped key: an in-range change does
	 * not open it (with the right passphrase). */
	snprintf(bad, sizeof(bad), "%s", out);
	memcpy(strstr(bad, "kdf_opslimit = 2"), "kdf_opslimit = 3", 16);
	CHECK(ferry_keyfile_parse(bad, &kf2) == 0);
	CHECK(ferry_keyfile_kek(&kf2, pass, strlen(pass), kek) == 0);
	CHECK(ferry_keyfile_unwrap(&kf2, kek, repo_id, &k) == FERRY_E_KEY);
	/* Out of range or malformed: FERRY_E_CORRUPT at parse time. */
	{
		static const char *const subs[][2] = {
			{ "kdf_memlimit = 65536", "kdf_memlimit = 1099511627776" },
			{ "kdf_memlimit = 65536", "kdf_memlimit = 1073742848" },
			{ "kdf_memlimit = 65536", "kdf_memlimit = 4096" },
			{ "kdf_memlimit = 65536", "kdf_memlimit = 65537" },
			{ "kdf_memlimit = 65536", "kdf_memlimit = -65536" },
			{ "kdf_memlimit = 65536", "kdf_memlimit = 065536" },
			{ "kdf_memlimit = 65536", "kdf_memlimit = 65536k" },
			{ "kdf_memlimit = 65536", "kdf_memlimit = 99999999999999999999999" },
			{ "kdf_memlimit = 65536", "kdf_memlimit =" },
			{ "kdf_memlimit = 65536", "#" },
			{ "kdf_opslimit = 2", "kdf_opslimit = 0" },
			{ "kdf_opslimit = 2", "kdf_opslimit = 33" },
			{ "kdf_opslimit = 2", "kdf_opslimit = 4294967298" },
			{ "kdf_opslimit = 2", "kdf_opslimit = +2" },
			{ "kdf_opslimit = 2", "#" },
			{ "kdf_salt = 40", "kdf_salt = 4040" },
			{ "kdf_salt = 40", "#" },
		};

		for (size_t i = 0; i < FERRY_ARRAY_SIZE(subs); i++) {
			char *at, tail[1024];

			snprintf(bad, sizeof(bad), "%s", out);
			at = strstr(bad, subs[i][0]);
			CHECK(at != NULL);
			if (!at)
				continue;
			snprintf(tail, sizeof(tail), "%s", at + strlen(subs[i][0]));
			snprintf(at, sizeof(bad) - (size_t)(at - bad), "%s%s",
				 subs[i][1], tail);
			if (ferry_keyfile_parse(bad, &kf2) != FERRY_E_CORRUPT) {
				fprintf(stderr, "accepted: %s -> %s\n", subs[i][0],
					subs[i][1]);
				CHECK(0);
			}
		}
	}
	/* A keyfile out of range is not derived from (not even allocated). */
	kf2 = kf;
	kf2.memlimit = 1ull << 40;
	CHECK(ferry_keyfile_kek(&kf2, pass, strlen(pass), kek) == FERRY_E_CORRUPT);
	/* Environment overrides are bounded too. */
	setenv("FERRY_KDF_MEMLIMIT_KIB", "2000000", 1);
	CHECK(ferry_keyfile_new_kdf(&kf2, FERRY_KDF_ARGON2ID) == FERRY_E_INVAL);
	setenv("FERRY_KDF_MEMLIMIT_KIB", "64", 1);
	setenv("FERRY_KDF_OPSLIMIT", "0", 1);
	CHECK(ferry_keyfile_new_kdf(&kf2, FERRY_KDF_ARGON2ID) == FERRY_E_INVAL);
	setenv("FERRY_KDF_OPSLIMIT", "1", 1);
	/* Same KDF, same cost, new salt. */
	CHECK(ferry_keyfile_new_like(&kf2, &kf) == 0);
	CHECK(kf2.kdf == kf.kdf && kf2.opslimit == 2 && kf2.memlimit == 65536 &&
	      memcmp(kf2.salt, kf.salt, 16));
	CHECK(ferry_kdf_by_name(NULL) == FERRY_KDF_ARGON2ID &&
	      ferry_kdf_by_name("scrypt") == FERRY_KDF_SCRYPT &&
	      ferry_kdf_by_name("bcrypt") == -1);
}

/* The fast paths give the same bytes as the plain calls: ids from the
 * prepared HMAC pads (ferry_hmac, the codec context's ferry_chunk_id,
 * ferry_repo_block_id) equal HMAC(EVP_sha256(), key, ...) for every
 * length around the SHA-256 block and key lengths 0..100; a GCM context
 * keyed once and re-used (only the nonce set) seals and opens exactly as
 * a fresh one, also after a failed open. */
static void test_fast_paths(void)
{
	static uint8_t msg[(1u << 20) + 3], out[(1u << 20) + 3 + 16],
		out2[(1u << 20) + 3 + 16];
	static const size_t lens[] = { 0, 1, 31, 55, 56, 63, 64, 65, 119, 127,
				       128, 129, 1000, 65536, 65537, 1u << 20,
				       (1u << 20) + 3 };
	uint8_t key[100], h1[32], h2[32], tag1[16], tag2[16], nonce[12];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int hl;

	CHECK(md != NULL);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 2654435761u >> 13);
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 37 + 11);
	for (size_t kl = 0; kl <= sizeof(key); kl += kl < 70 ? 1 : 10) {
		struct ferry_hmac *h = ferry_hmac_new(key, kl);

		CHECK(h != NULL);
		if (!h)
			continue;
		for (size_t i = 0; i < FERRY_ARRAY_SIZE(lens); i++) {
			if (kl % 8 && lens[i] > 65537)
				continue; /* the big ones for a few keys */
			HMAC(EVP_sha256(), key, (int)kl, msg, lens[i], h1, &hl);
			CHECK(ferry_hmac_sha256(h, md, msg, lens[i], h2) == 0);
			if (memcmp(h1, h2, 32)) {
				fprintf(stderr, "hmac differs: key %zu, len %zu\n", kl,
					lens[i]);
				CHECK(0);
			}
		}
		ferry_hmac_free(h);
	}
	/* Through the codec context and the repository. */
	{
		struct ferry_codec_ctx *c = ferry_codec_ctx_new(FERRY_CODEC_ZSTD, 0);
		struct ferry_repo r;

		CHECK(c && ferry_codec_ctx_set_keys(c, golden_keys()) == 0);
		memset(&r, 0, sizeof(r));
		r.encrypted = 1;
		r.keys = (struct ferry_keys *)golden_keys();
		r.id_mac = ferry_hmac_new(golden_keys()->id, 32);
		for (size_t i = 0; c && i < FERRY_ARRAY_SIZE(lens); i++) {
			HMAC(EVP_sha256(), golden_keys()->id, 32, msg, lens[i], h1, &hl);
			CHECK(ferry_chunk_id(c, msg, lens[i], h2) == 0 && !memcmp(h1, h2, 32));
			CHECK(ferry_repo_block_id(&r, msg, lens[i], h2) == 0 &&
			      !memcmp(h1, h2, 32));
		}
		ferry_hmac_free(r.id_mac);
		ferry_codec_ctx_free(c);
	}
	/* GCM: keyed once vs fresh, sealing and opening in turn. */
	{
		struct evp_cipher_ctx_st *s = ferry_gcm_ctx_new(golden_keys()->enc, 1);
		struct evp_cipher_ctx_st *o = ferry_gcm_ctx_new(golden_keys()->enc, 0);
		const uint8_t *k = golden_keys()->enc;

		CHECK(s && o);
		for (size_t i = 0; s && o && i < FERRY_ARRAY_SIZE(lens); i++) {
			size_t n = lens[i];

			memset(nonce, (int)i, sizeof(nonce));
			CHECK(ferry_seal(NULL, k, nonce, "aad", 3, msg, n, out, tag1) == 0);
			CHECK(ferry_seal(s, NULL, nonce, "aad", 3, msg, n, out2, tag2) == 0);
			CHECK(!memcmp(out, out2, n) && !memcmp(tag1, tag2, 16));
			/* A failed open (flipped tag), then a good one. */
			tag2[i % 16] ^= 1;
			CHECK(ferry_open(o, NULL, nonce, "aad", 3, out2, n, out2, tag2) ==
			      FERRY_E_CORRUPT);
			CHECK(ferry_open(o, NULL, nonce, "aad", 3, out, n, out2, tag1) == 0);
			CHECK(!memcmp(out2, msg, n));
			CHECK(ferry_open(NULL, k, nonce, "aad", 3, out, n, out2, tag1) == 0);
		}
		EVP_CIPHER_CTX_free(s);
		EVP_CIPHER_CTX_free(o);
	}
	EVP_MD_CTX_free(md);
}

int main(void)
{
	test_gcm_vector();
	test_golden_chunk();
	test_round_trips();
	test_key_lines();
	test_key_lines_argon2id();
	test_fast_paths();
	test_golden_manifest();
	test_write_read();
	return unit_done();
}
