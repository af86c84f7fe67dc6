/* manifest.c - restore-point manifests: a checked header, one fixed-size
 * entry per block (zero, or the SHA-256 of its chunk), and a footer with
 * the session's statistics and a SHA-256 over the whole file.  Written as
 * a stream and committed atomically; read only after a full check. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "seal.h"

#define IOBUF (64u << 10)
_Static_assert(IOBUF == FERRY_SMANIFEST_SEG, "a sealed segment is one buffer");

/* ---- sealed manifests (encrypted repository) -------------------------
 * The file is a 32-byte header, then the v1 manifest's bytes in segments
 * of 64 KiB, each sealed with AES-256-GCM (ciphertext then 16-byte tag):
 *   0  4  magic "FMAE"     4  4  version (1)     8  4  segment size
 *  12  8  restore point id (binary)             20 12  base nonce
 * Segment I's nonce is the base nonce with its last 8 bytes XORed with I
 * (little endian); its additional data is the 32-byte header, I (u64 le)
 * and a byte that is 1 on the last segment only, so segments cannot be
 * reordered, dropped, truncated or moved to another point's file. */

static void seg_nonce(const uint8_t *fhdr, uint64_t i, uint8_t *nonce)
{
	memcpy(nonce, fhdr + 20, FERRY_NONCE_LEN);
	for (int k = 0; k < 8; k++)
		nonce[4 + k] ^= (uint8_t)(i >> (8 * k));
}

static void seg_aad(const uint8_t *fhdr, uint64_t i, int final, uint8_t *aad)
{
	memcpy(aad, fhdr, FERRY_SMANIFEST_HDR);
	for (int k = 0; k < 8; k++)
		aad[FERRY_SMANIFEST_HDR + k] = (uint8_t)(i >> (8 * k));
	aad[FERRY_SMANIFEST_HDR + 8] = (uint8_t)final;
}
#define SEG_AAD (FERRY_SMANIFEST_HDR + 9)

int ferry_sealed_manifest_check(const uint8_t *head, uint64_t len,
				const char *id, uint64_t nblocks)
{
	uint8_t pid[8];
	uint64_t body, full, rem, plain, fixed;

	if (len < FERRY_SMANIFEST_HDR + FERRY_TAG_LEN + 1 ||
	    memcmp(head, FERRY_SMANIFEST_MAGIC, 4) ||
	    ferry_le32(head + 4) != FERRY_SMANIFEST_VERSION ||
	    ferry_le32(head + 8) != FERRY_SMANIFEST_SEG)
		return ferry_error(FERRY_E_PROTO,
				   "sealed manifest of point %s has a bad header", id);
	if (ferry_hex_decode(id, pid, sizeof(pid)) || memcmp(pid, head + 12, 8))
		return ferry_error(FERRY_E_PROTO,
				   "sealed manifest names another point than %s", id);
	body = len - FERRY_SMANIFEST_HDR;
	full = body / (IOBUF + FERRY_TAG_LEN);
	rem = body % (IOBUF + FERRY_TAG_LEN);
	if (rem && rem <= FERRY_TAG_LEN)
		return ferry_error(FERRY_E_PROTO, "sealed manifest of point %s is cut short", id);
	plain = full * IOBUF + (rem ? rem - FERRY_TAG_LEN : 0);
	/* header (48 fixed bytes, three u16 lengths, up to the header
	 * limit), the entries, the footer */
	fixed = nblocks * FERRY_ENTRY_LEN + FERRY_MANIFEST_FOOTER;
	if (plain < fixed + 54 || plain > fixed + FERRY_MANIFEST_HEADER_MAX)
		return ferry_error(FERRY_E_PROTO,
				   "sealed manifest of point %s has %llu bytes for %llu blocks",
				   id, (unsigned long long)len,
				   (unsigned long long)nblocks);
	return 0;
}

static int bs_valid(uint32_t bs)
{
	return bs >= FERRY_BLOCK_MIN && bs <= FERRY_BLOCK_MAX &&
	       (bs & (bs - 1)) == 0;
}

int ferry_manifest_header_encode(const struct ferry_point *p, uint8_t *out,
				 size_t cap, size_t *len)
{
	struct ferry_wr w;
	uint8_t id[FERRY_ID_LEN / 2];
	size_t nl = strlen(p->name), sl = strlen(p->source),
	       el = strlen(p->extra);
	uint32_t hl = (uint32_t)(48 + 2 + nl + 2 + sl + 2 + el);

	if (nl > FERRY_NAME_MAX || sl >= sizeof(p->source) || el > FERRY_EXTRA_MAX ||
	    hl > FERRY_MANIFEST_HEADER_MAX ||
	    ferry_hex_decode(p->id, id, sizeof(id)))
		return ferry_error(FERRY_E_INVAL, "bad restore point header");
	ferry_wr_init(&w, out, cap);
	ferry_wr_bytes(&w, FERRY_MANIFEST_MAGIC, 4);
	ferry_wr_u32(&w, FERRY_FORMAT_VERSION);
	ferry_wr_u32(&w, hl);
	ferry_wr_u32(&w, p->block_size);
	ferry_wr_u64(&w, p->disk_size);
	ferry_wr_u64(&w, p->nblocks);
	ferry_wr_u64(&w, p->created_ns);
	ferry_wr_bytes(&w, id, sizeof(id));
	ferry_wr_u16(&w, (uint16_t)nl);
	ferry_wr_bytes(&w, p->name, nl);
	ferry_wr_u16(&w, (uint16_t)sl);
	ferry_wr_bytes(&w, p->source, sl);
	ferry_wr_u16(&w, (uint16_t)el);
	ferry_wr_bytes(&w, p->extra, el);
	if (w.bad)
		return ferry_error(FERRY_E_INVAL, "manifest header too long");
	*len = hl;
	return 0;
}

int ferry_manifest_header_parse(const uint8_t *buf, size_t len,
				struct ferry_point *p, size_t *header_len)
{
	struct ferry_rd r;
	uint8_t magic[4], id[FERRY_ID_LEN / 2];
	uint32_t ver, hl;
	uint16_t nl, sl, el;

	ferry_rd_init(&r, buf, len);
	if (ferry_rd_bytes(&r, magic, 4) || memcmp(magic, FERRY_MANIFEST_MAGIC, 4))
		return ferry_error(FERRY_E_CORRUPT, "not a manifest (bad magic)");
	ferry_rd_u32(&r, &ver);
	if (r.bad)
		return ferry_error(FERRY_E_CORRUPT, "manifest truncated");
	if (ver != FERRY_FORMAT_VERSION)
		return ferry_error(FERRY_E_VERSION,
				   "manifest format version %u is not supported (this ferry reads %d)",
				   ver, FERRY_FORMAT_VERSION);
	ferry_rd_u32(&r, &hl);
	ferry_rd_u32(&r, &p->block_size);
	ferry_rd_u64(&r, &p->disk_size);
	ferry_rd_u64(&r, &p->nblocks);
	ferry_rd_u64(&r, &p->created_ns);
	ferry_rd_bytes(&r, id, sizeof(id));
	ferry_rd_u16(&r, &nl);
	if (r.bad || nl > FERRY_NAME_MAX)
		return ferry_error(FERRY_E_CORRUPT, "manifest header is damaged");
	ferry_rd_bytes(&r, p->name, nl);
	p->name[nl] = 0;
	ferry_rd_u16(&r, &sl);
	if (r.bad || sl >= sizeof(p->source))
		return ferry_error(FERRY_E_CORRUPT, "manifest header is damaged");
	ferry_rd_bytes(&r, p->source, sl);
	p->source[sl] = 0;
	ferry_rd_u16(&r, &el);
	if (r.bad || el > FERRY_EXTRA_MAX)
		return ferry_error(FERRY_E_CORRUPT, "manifest header is damaged");
	ferry_rd_bytes(&r, p->extra, el);
	p->extra[el] = 0;
	if (r.bad || hl != 48u + 2 + nl + 2 + sl + 2 + el)
		return ferry_error(FERRY_E_CORRUPT, "manifest header is damaged");
	if (!bs_valid(p->block_size) || p->disk_size > (UINT64_MAX >> 1) ||
	    p->nblocks != (p->disk_size + p->block_size - 1) / p->block_size ||
	    !ferry_name_valid(p->name) || strlen(p->name) != nl ||
	    strlen(p->source) != sl || strlen(p->extra) != el)
		return ferry_error(FERRY_E_CORRUPT,
				   "manifest header has impossible values");
	for (int i = 0; i < 8; i++)
		snprintf(p->id + 2 * i, 3, "%02x", id[i]);
	*header_len = hl;
	return 0;
}

static int footer_parse(const uint8_t *buf, struct ferry_point *p)
{
	struct ferry_rd r;
	uint8_t magic[4];

	ferry_rd_init(&r, buf, FERRY_MANIFEST_FOOTER - FERRY_HASH_LEN);
	ferry_rd_bytes(&r, magic, 4);
	ferry_rd_u64(&r, &p->bytes_read);
	ferry_rd_u64(&r, &p->bytes_zero);
	ferry_rd_u64(&r, &p->bytes_new);
	ferry_rd_u64(&r, &p->bytes_reused);
	ferry_rd_u64(&r, &p->bytes_stored);
	ferry_rd_u64(&r, &p->duration_us);
	if (r.bad || memcmp(magic, FERRY_MANIFEST_END, 4))
		return ferry_error(FERRY_E_CORRUPT, "manifest footer is damaged");
	return 0;
}

int ferry_manifest_footer_parse(const uint8_t *buf, struct ferry_point *p)
{
	return footer_parse(buf, p);
}

static int entry_check(const uint8_t *e)
{
	static const uint8_t zero[FERRY_HASH_LEN];

	if (e[0] == FERRY_ENTRY_ZERO)
		return memcmp(e + 1, zero, FERRY_HASH_LEN) ? FERRY_E_CORRUPT : 0;
	if (e[0] == FERRY_ENTRY_DATA)
		return 0;
	return FERRY_E_CORRUPT;
}

int ferry_manifest_parse_buffer(const uint8_t *buf, size_t len,
				struct ferry_point *p)
{
	uint8_t h[FERRY_HASH_LEN];
	size_t hl, body;
	int e;

	memset(p, 0, sizeof(*p));
	if ((e = ferry_manifest_header_parse(buf, len, p, &hl)) != 0)
		return e;
	if (len < hl + FERRY_MANIFEST_FOOTER ||
	    (len - hl - FERRY_MANIFEST_FOOTER) / FERRY_ENTRY_LEN != p->nblocks ||
	    (len - hl - FERRY_MANIFEST_FOOTER) % FERRY_ENTRY_LEN)
		return ferry_error(FERRY_E_CORRUPT,
				   "manifest length does not match its block count");
	body = len - FERRY_HASH_LEN;
	ferry_sha256(buf, body, h);
	if (memcmp(h, buf + body, FERRY_HASH_LEN))
		return ferry_error(FERRY_E_CORRUPT, "manifest checksum mismatch");
	for (uint64_t i = 0; i < p->nblocks; i++)
		if (entry_check(buf + hl + i * FERRY_ENTRY_LEN))
			return ferry_error(FERRY_E_CORRUPT,
					   "manifest entry %llu is invalid",
					   (unsigned long long)i);
	return footer_parse(buf + len - FERRY_MANIFEST_FOOTER, p);
}

/* ---- writer --------------------------------------------------------- */

struct ferry_mwriter {
	struct ferry_repo *repo;
	char id[FERRY_ID_LEN + 1];
	int fd;
	char *tmp;
	EVP_MD_CTX *md;
	uint8_t *buf;
	size_t used;
	uint64_t entries, nblocks;
	int committed;
	/* Sealed: the file header, the next segment, cipher state. */
	int sealed;
	uint8_t fhdr[FERRY_SMANIFEST_HDR];
	uint64_t seg;
	uint8_t *sbuf;
	EVP_CIPHER_CTX *cc;
	int external; /* writes to a caller's fd (ferry_mwriter_begin_fd) */
};

/* Write the buffer (a sealed segment when the repository is encrypted;
 * FINAL on the last one). */
static int mw_flush(struct ferry_mwriter *w, int final)
{
	const uint8_t *out = w->buf;
	size_t n = w->used;
	int e;

	if (!w->used && !(w->sealed && final))
		return 0;
	if (w->sealed) {
		uint8_t nonce[FERRY_NONCE_LEN], aad[SEG_AAD];

		seg_nonce(w->fhdr, w->seg, nonce);
		seg_aad(w->fhdr, w->seg, final, aad);
		if ((e = ferry_seal(w->cc, NULL, nonce, aad,
				    sizeof(aad), w->buf, w->used, w->sbuf,
				    w->sbuf + w->used)) != 0)
			return e;
		out = w->sbuf;
		n = w->used + FERRY_TAG_LEN;
		w->seg++;
	}
	if ((e = ferry_write_all(w->fd, out, n)) != 0)
		return ferry_error(ferry_errno_code(-e, FERRY_E_IO),
				   "write manifest %s: %s", w->id, strerror(-e));
	w->used = 0;
	return 0;
}

/* Buffer N bytes of the manifest; a full buffer is written only when more
 * bytes follow, so the last (sealed) segment is never empty. */
static int mw_put(struct ferry_mwriter *w, const void *p, size_t n)
{
	const uint8_t *b = p;
	int e;

	EVP_DigestUpdate(w->md, p, n);
	while (n) {
		size_t k = IOBUF - w->used;

		if (k == 0) {
			if ((e = mw_flush(w, 0)) != 0)
				return e;
			k = IOBUF;
		}
		if (k > n)
			k = n;
		memcpy(w->buf + w->used, b, k);
		w->used += k;
		b += k;
		n -= k;
	}
	return 0;
}

static int mw_begin(struct ferry_repo *r, const struct ferry_point *p,
		    int ext_fd, struct ferry_mwriter **out);

int ferry_mwriter_begin(struct ferry_repo *r, const struct ferry_point *p,
			struct ferry_mwriter **out)
{
	return mw_begin(r, p, -1, out);
}

int ferry_mwriter_begin_fd(struct ferry_repo *r, const struct ferry_point *p,
			   int fd, struct ferry_mwriter **out)
{
	return mw_begin(r, p, fd, out);
}

static int mw_begin(struct ferry_repo *r, const struct ferry_point *p,
		    int ext_fd, struct ferry_mwriter **out)
{
	struct ferry_mwriter *w = calloc(1, sizeof(*w));
	uint8_t hdr[FERRY_MANIFEST_HEADER_MAX];
	size_t hl;
	int e;

	if (!w)
		return FERRY_E_NOMEM;
	w->fd = -1;
	w->repo = r;
	w->nblocks = p->nblocks;
	memcpy(w->id, p->id, sizeof(w->id));
	w->buf = malloc(IOBUF);
	w->md = EVP_MD_CTX_new();
	if (!w->buf || !w->md || !EVP_DigestInit_ex(w->md, EVP_sha256(), NULL)) {
		e = FERRY_E_NOMEM;
		goto fail;
	}
	if ((e = ferry_repo_need_key(r)) != 0)
		goto fail;
	if ((e = ferry_manifest_header_encode(p, hdr, sizeof(hdr), &hl)) != 0)
		goto fail;
	if (r->encrypted) {
		w->sealed = 1;
		w->sbuf = malloc(IOBUF + FERRY_TAG_LEN);
		w->cc = ferry_gcm_ctx_new(r->keys->enc, 1);
		if (!w->sbuf || !w->cc) {
			e = FERRY_E_NOMEM;
			goto fail;
		}
		memcpy(w->fhdr, FERRY_SMANIFEST_MAGIC, 4);
		ferry_put_le32(w->fhdr + 4, FERRY_SMANIFEST_VERSION);
		ferry_put_le32(w->fhdr + 8, FERRY_SMANIFEST_SEG);
		if (ferry_hex_decode(p->id, w->fhdr + 12, 8)) {
			e = ferry_error(FERRY_E_INVAL, "bad restore point id");
			goto fail;
		}
		if ((e = ferry_random(w->fhdr + 20, FERRY_NONCE_LEN)) != 0)
			goto fail;
	}
	if (ext_fd >= 0) {
		w->fd = ext_fd;
		w->external = 1;
	} else if ((e = r->ops->point_create(r, p->id, &w->fd, &w->tmp)) != 0) {
		goto fail;
	}
	if (w->sealed && (e = ferry_write_all(w->fd, w->fhdr, sizeof(w->fhdr))) != 0) {
		e = ferry_error(ferry_errno_code(-e, FERRY_E_IO),
				"write manifest %s: %s", w->id, strerror(-e));
		goto fail;
	}
	if ((e = mw_put(w, hdr, hl)) != 0)
		goto fail;
	*out = w;
	return 0;
fail:
	ferry_mwriter_free(w);
	return e;
}

int ferry_mwriter_add(struct ferry_mwriter *w, int kind,
		      const uint8_t hash[FERRY_HASH_LEN])
{
	uint8_t e[FERRY_ENTRY_LEN] = { 0 };

	if (w->entries >= w->nblocks)
		return ferry_error(FERRY_E_INVAL, "too many manifest entries");
	e[0] = (uint8_t)kind;
	if (kind == FERRY_ENTRY_DATA)
		memcpy(e + 1, hash, FERRY_HASH_LEN);
	w->entries++;
	return mw_put(w, e, sizeof(e));
}

int ferry_mwriter_commit(struct ferry_mwriter *w, const struct ferry_point *p)
{
	uint8_t foot[FERRY_MANIFEST_FOOTER];
	struct ferry_wr wr;
	unsigned int hl;
	int e;

	if (w->entries != w->nblocks)
		return ferry_error(FERRY_E_INVAL,
				   "manifest has %llu of %llu entries",
				   (unsigned long long)w->entries,
				   (unsigned long long)w->nblocks);
	ferry_wr_init(&wr, foot, sizeof(foot));
	ferry_wr_bytes(&wr, FERRY_MANIFEST_END, 4);
	ferry_wr_u64(&wr, p->bytes_read);
	ferry_wr_u64(&wr, p->bytes_zero);
	ferry_wr_u64(&wr, p->bytes_new);
	ferry_wr_u64(&wr, p->bytes_reused);
	ferry_wr_u64(&wr, p->bytes_stored);
	ferry_wr_u64(&wr, p->duration_us);
	if ((e = mw_put(w, foot, sizeof(foot) - FERRY_HASH_LEN)) != 0)
		return e;
	EVP_DigestFinal_ex(w->md, foot, &hl);
	/* The checksum is the last bytes (of the last sealed segment). */
	if ((e = mw_put(w, foot, FERRY_HASH_LEN)) != 0 ||
	    (e = mw_flush(w, 1)) != 0)
		return e;
	if (w->external) {
		w->committed = 1;
		return 0;
	}
	/* Invariant 1: every chunk the manifest names is durable first. */
	if ((e = w->repo->ops->sync_chunks(w->repo)) != 0)
		return e;
	e = w->repo->ops->point_commit(w->repo, w->id, w->fd, w->tmp);
	w->fd = -1;
	if (e == 0)
		w->committed = 1;
	return e;
}

void ferry_mwriter_free(struct ferry_mwriter *w)
{
	if (!w)
		return;
	if (w->fd >= 0 && !w->external)
		w->repo->ops->point_abort(w->repo, w->fd, w->tmp);
	EVP_MD_CTX_free(w->md);
	EVP_CIPHER_CTX_free(w->cc);
	free(w->tmp);
	free(w->buf);
	free(w->sbuf);
	free(w);
}

/* ---- reader --------------------------------------------------------- */

struct ferry_mreader {
	int fd;
	uint64_t base, nblocks; /* entries start at BASE (random access) */
	uint64_t off, end, left;
	uint8_t *buf;
	size_t have, pos;
	char id[FERRY_ID_LEN + 1];
	/* Sealed: the plaintext is read through a one-segment cache. */
	int sealed;
	uint8_t fhdr[FERRY_SMANIFEST_HDR];
	const struct ferry_keys *keys;
	uint64_t plain_size, nseg, cached;
	uint8_t *seg, *ct;
	EVP_CIPHER_CTX *cc;
	pthread_mutex_t mu;
	int mu_init;
};

/* Open segment I into the cache (under M->mu). */
static int mr_segment(struct ferry_mreader *m, uint64_t i)
{
	uint64_t start = i * IOBUF;
	size_t pl = m->plain_size - start < IOBUF ? (size_t)(m->plain_size - start)
						  : IOBUF;
	uint8_t nonce[FERRY_NONCE_LEN], aad[SEG_AAD];
	ssize_t n;
	int e;

	if (m->cached == i)
		return 0;
	m->cached = UINT64_MAX;
	n = ferry_pread_full(m->fd, m->ct, pl + FERRY_TAG_LEN,
			     (off_t)(FERRY_SMANIFEST_HDR + i * (IOBUF + FERRY_TAG_LEN)));
	if (n != (ssize_t)(pl + FERRY_TAG_LEN))
		return ferry_error(FERRY_E_IO, "read manifest %s: %s", m->id,
				   n < 0 ? strerror((int)-n) : "short read");
	seg_nonce(m->fhdr, i, nonce);
	seg_aad(m->fhdr, i, i + 1 == m->nseg, aad);
	e = ferry_open(m->cc, NULL, nonce, aad, sizeof(aad), m->ct, pl,
		       m->seg, m->ct + pl);
	if (e == FERRY_E_CORRUPT)
		return ferry_error(e,
				   "manifest %s: sealed segment %llu fails authentication (damaged or tampered file)",
				   m->id, (unsigned long long)i);
	if (e)
		return e;
	m->cached = i;
	return 0;
}

/* LEN bytes of the manifest's plaintext at OFF (fewer only at its end):
 * the count, or a negative FERRY_E_* with the detail set. */
static ssize_t mr_read(struct ferry_mreader *m, void *buf, size_t len,
		       uint64_t off)
{
	uint8_t *b = buf;
	size_t done = 0;
	ssize_t n;

	if (!m->sealed) {
		n = ferry_pread_full(m->fd, buf, len, (off_t)off);
		if (n < 0)
			return ferry_error(FERRY_E_IO, "read manifest %s: %s",
					   m->id, strerror((int)-n));
		return n;
	}
	pthread_mutex_lock(&m->mu);
	while (done < len && off < m->plain_size) {
		uint64_t i = off / IOBUF;
		size_t at = (size_t)(off % IOBUF), k;
		int e = mr_segment(m, i);

		if (e) {
			pthread_mutex_unlock(&m->mu);
			return e;
		}
		k = IOBUF - at;
		if (k > m->plain_size - off)
			k = (size_t)(m->plain_size - off);
		if (k > len - done)
			k = len - done;
		memcpy(b + done, m->seg + at, k);
		done += k;
		off += k;
	}
	pthread_mutex_unlock(&m->mu);
	return (ssize_t)done;
}

static int mr_fill(struct ferry_mreader *m)
{
	size_t want = IOBUF - IOBUF % FERRY_ENTRY_LEN;
	ssize_t n;

	if (want > m->end - m->off)
		want = (size_t)(m->end - m->off);
	n = mr_read(m, m->buf, want, m->off);
	if (n < 0)
		return (int)n;
	if ((size_t)n != want)
		return ferry_error(FERRY_E_IO, "read manifest %s: short read",
				   m->id);
	m->off += want;
	m->have = want;
	m->pos = 0;
	return 0;
}

/* Sealed file: check its header against the repository and the id, and
 * work out the plaintext's size from the file's. */
static int mr_sealed_setup(struct ferry_mreader *m, struct ferry_repo *r,
			   uint64_t size)
{
	uint8_t pid[8];
	uint64_t body, full, rem;
	ssize_t n;

	if (!r->encrypted)
		return ferry_error(FERRY_E_KEY,
				   "manifest %s is sealed (encrypted) but %s is not an encrypted repository",
				   m->id, r->path);
	n = ferry_pread_full(m->fd, m->fhdr, sizeof(m->fhdr), 0);
	if (n != (ssize_t)sizeof(m->fhdr))
		return ferry_error(FERRY_E_CORRUPT, "manifest %s is truncated", m->id);
	if (ferry_le32(m->fhdr + 4) != FERRY_SMANIFEST_VERSION)
		return ferry_error(FERRY_E_VERSION,
				   "sealed manifest %s has version %u (this ferry reads %d)",
				   m->id, ferry_le32(m->fhdr + 4), FERRY_SMANIFEST_VERSION);
	if (ferry_le32(m->fhdr + 8) != FERRY_SMANIFEST_SEG)
		return ferry_error(FERRY_E_CORRUPT,
				   "sealed manifest %s has a bad segment size", m->id);
	if (ferry_hex_decode(m->id, pid, sizeof(pid)) ||
	    memcmp(pid, m->fhdr + 12, sizeof(pid)))
		return ferry_error(FERRY_E_CORRUPT,
				   "manifest %s carries another point's id (renamed or replaced file)",
				   m->id);
	body = size - FERRY_SMANIFEST_HDR;
	full = body / (IOBUF + FERRY_TAG_LEN);
	rem = body % (IOBUF + FERRY_TAG_LEN);
	if (rem && rem <= FERRY_TAG_LEN)
		return ferry_error(FERRY_E_CORRUPT,
				   "sealed manifest %s is truncated", m->id);
	m->nseg = full + (rem ? 1 : 0);
	m->plain_size = full * IOBUF + (rem ? rem - FERRY_TAG_LEN : 0);
	if (!m->nseg)
		return ferry_error(FERRY_E_CORRUPT, "sealed manifest %s is empty",
				   m->id);
	m->keys = r->keys;
	m->seg = malloc(IOBUF);
	m->ct = malloc(IOBUF + FERRY_TAG_LEN);
	m->cc = ferry_gcm_ctx_new(r->keys->enc, 0);
	if (!m->seg || !m->ct || !m->cc)
		return FERRY_E_NOMEM;
	m->cached = UINT64_MAX;
	m->sealed = 1;
	return 0;
}

int ferry_mreader_open(struct ferry_repo *r, const char *id,
		       struct ferry_mreader **out, struct ferry_point *p)
{
	struct ferry_mreader *m = calloc(1, sizeof(*m));
	uint8_t hdr[FERRY_MANIFEST_HEADER_MAX], h[FERRY_HASH_LEN],
		foot[FERRY_MANIFEST_FOOTER], magic[4];
	EVP_MD_CTX *md = NULL;
	struct stat st;
	size_t hl;
	uint64_t size, off;
	ssize_t n;
	unsigned int dl;
	int e;

	if (!m)
		return FERRY_E_NOMEM;
	m->fd = -1;
	snprintf(m->id, sizeof(m->id), "%s", id);
	if (pthread_mutex_init(&m->mu, NULL) == 0)
		m->mu_init = 1;
	m->buf = malloc(IOBUF);
	md = EVP_MD_CTX_new();
	if (!m->buf || !md || !m->mu_init) {
		e = FERRY_E_NOMEM;
		goto fail;
	}
	if ((e = ferry_repo_need_key(r)) != 0)
		goto fail;
	if ((e = r->ops->point_open(r, id, &m->fd)) != 0)
		goto fail;
	if (fstat(m->fd, &st) < 0) {
		e = ferry_error(FERRY_E_IO, "stat manifest %s", id);
		goto fail;
	}
	size = (uint64_t)st.st_size;
	if (ferry_pread_full(m->fd, magic, 4, 0) == 4 &&
	    !memcmp(magic, FERRY_SMANIFEST_MAGIC, 4)) {
		if ((e = mr_sealed_setup(m, r, size)) != 0)
			goto fail;
		size = m->plain_size;
	} else if (r->encrypted) {
		e = ferry_error(FERRY_E_CORRUPT,
				"manifest %s is not sealed, in an encrypted repository (replaced file?)",
				id);
		goto fail;
	}
	n = mr_read(m, hdr, sizeof(hdr), 0);
	if (n < 0) {
		e = (int)n;
		goto fail;
	}
	memset(p, 0, sizeof(*p));
	if ((e = ferry_manifest_header_parse(hdr, (size_t)n, p, &hl)) != 0) {
		char why[256];

		/* The detail is copied first: it lives in the buffer that
		 * ferry_error() writes. */
		snprintf(why, sizeof(why), "%s", ferry_last_error());
		ferry_error(e, "restore point %s: %s", id, why);
		goto fail;
	}
	if (strcmp(p->id, id)) {
		e = ferry_error(FERRY_E_CORRUPT,
				"manifest %s carries the id %s (renamed or replaced file)",
				id, p->id);
		goto fail;
	}
	if (size < hl + FERRY_MANIFEST_FOOTER ||
	    (size - hl - FERRY_MANIFEST_FOOTER) != p->nblocks * FERRY_ENTRY_LEN) {
		e = ferry_error(FERRY_E_CORRUPT,
				"manifest %s is truncated or has trailing bytes", id);
		goto fail;
	}
	/* Check the whole file before anyone acts on an entry. */
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (off = 0; off < size - FERRY_HASH_LEN;) {
		size_t want = IOBUF;

		if (want > size - FERRY_HASH_LEN - off)
			want = (size_t)(size - FERRY_HASH_LEN - off);
		n = mr_read(m, m->buf, want, off);
		if (n < 0) {
			e = (int)n;
			goto fail;
		}
		if ((size_t)n != want) {
			e = ferry_error(FERRY_E_IO, "read manifest %s", id);
			goto fail;
		}
		EVP_DigestUpdate(md, m->buf, want);
		off += want;
	}
	EVP_DigestFinal_ex(md, h, &dl);
	n = mr_read(m, foot, sizeof(foot), size - FERRY_MANIFEST_FOOTER);
	if (n < 0) {
		e = (int)n;
		goto fail;
	}
	if (n != (ssize_t)sizeof(foot) ||
	    memcmp(h, foot + FERRY_MANIFEST_FOOTER - FERRY_HASH_LEN,
		   FERRY_HASH_LEN)) {
		e = ferry_error(FERRY_E_CORRUPT,
				"manifest %s checksum mismatch (damaged file)", id);
		goto fail;
	}
	if ((e = footer_parse(foot, p)) != 0)
		goto fail;
	EVP_MD_CTX_free(md);
	m->off = hl;
	m->base = hl;
	m->nblocks = p->nblocks;
	m->end = hl + p->nblocks * FERRY_ENTRY_LEN;
	m->left = p->nblocks;
	*out = m;
	return 0;
fail:
	EVP_MD_CTX_free(md);
	ferry_mreader_free(m);
	return e;
}

int ferry_mreader_next(struct ferry_mreader *m, int *kind,
		       uint8_t hash[FERRY_HASH_LEN])
{
	const uint8_t *e;
	int r;

	if (!m->left)
		return 0;
	if (m->pos == m->have && (r = mr_fill(m)) != 0)
		return r;
	e = m->buf + m->pos;
	if (entry_check(e))
		return ferry_error(FERRY_E_CORRUPT, "manifest entry is invalid");
	*kind = e[0];
	memcpy(hash, e + 1, FERRY_HASH_LEN);
	m->pos += FERRY_ENTRY_LEN;
	m->left--;
	return 1;
}

int ferry_mreader_entry(struct ferry_mreader *m, uint64_t index, int *kind,
		       uint8_t hash[FERRY_HASH_LEN])
{
	uint8_t e[FERRY_ENTRY_LEN];
	ssize_t n;

	if (index >= m->nblocks)
		return ferry_error(FERRY_E_INVAL, "block %llu is past the disk's end",
				   (unsigned long long)index);
	n = mr_read(m, e, sizeof(e), m->base + index * FERRY_ENTRY_LEN);
	if (n < 0)
		return (int)n;
	if (n != (ssize_t)sizeof(e))
		return ferry_error(FERRY_E_IO, "read manifest entry %llu: short read",
				   (unsigned long long)index);
	if (entry_check(e))
		return ferry_error(FERRY_E_CORRUPT, "manifest entry %llu is invalid",
				   (unsigned long long)index);
	*kind = e[0];
	memcpy(hash, e + 1, FERRY_HASH_LEN);
	return 0;
}

void ferry_mreader_free(struct ferry_mreader *m)
{
	if (!m)
		return;
	if (m->fd >= 0)
		close(m->fd);
	if (m->mu_init)
		pthread_mutex_destroy(&m->mu);
	EVP_CIPHER_CTX_free(m->cc);
	if (m->seg)
		explicit_bzero(m->seg, IOBUF);
	free(m->seg);
	free(m->ct);
	free(m->buf);
	free(m);
}
