/* delta.c - sub-block deltas (manifest entry kind 2, feature "delta";
 * docs/format.md "Delta blocks").  A kind-2 entry names a delta chunk: an
 * ordinary content-addressed chunk whose plaintext is a record saying
 * which 4 KiB pages of a base chunk (always a full, kind-1 chunk: depth 1)
 * are replaced, with the replacing bytes, and the id of the whole block it
 * rebuilds.  The record is parsed with strict limits (fuzz_delta) and the
 * rebuilt block is checked against that id before anyone uses it. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

int ferry_delta_parse(const uint8_t *buf, size_t len, struct ferry_delta *d)
{
	uint64_t need, data = 0, prev_end = 0;
	uint32_t n;

	memset(d, 0, sizeof(*d));
	if (len < FERRY_DELTA_HDR)
		return ferry_error(FERRY_E_CORRUPT, "delta record is truncated");
	if (memcmp(buf, FERRY_DELTA_MAGIC, 4))
		return ferry_error(FERRY_E_CORRUPT, "delta record has a bad magic");
	d->block_len = rd32(buf + 4);
	n = rd32(buf + 8);
	if (d->block_len < 1 || d->block_len > FERRY_BLOCK_MAX)
		return ferry_error(FERRY_E_CORRUPT,
				   "delta record: block length %u out of range",
				   d->block_len);
	if (n < 1 || n > d->block_len / FERRY_DELTA_PAGE + 1)
		return ferry_error(FERRY_E_CORRUPT,
				   "delta record: %u extents for a block of %u bytes",
				   n, d->block_len);
	need = FERRY_DELTA_HDR + (uint64_t)n * 8;
	if (len < need)
		return ferry_error(FERRY_E_CORRUPT, "delta record is truncated");
	memcpy(d->full, buf + 12, FERRY_HASH_LEN);
	memcpy(d->base, buf + 44, FERRY_HASH_LEN);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t off = rd32(buf + FERRY_DELTA_HDR + 8 * i);
		uint32_t el = rd32(buf + FERRY_DELTA_HDR + 8 * i + 4);

		if (off % FERRY_DELTA_PAGE || !el || off < prev_end ||
		    (i && off == prev_end) || el > d->block_len ||
		    off > d->block_len - el ||
		    (el % FERRY_DELTA_PAGE && off + el != d->block_len))
			return ferry_error(FERRY_E_CORRUPT,
					   "delta record: extent %u (%u+%u) is invalid",
					   i, off, el);
		prev_end = (uint64_t)off + el;
		data += el;
	}
	if (data >= d->block_len || len != need + data)
		return ferry_error(FERRY_E_CORRUPT,
				   "delta record: %zu bytes, its extents need %llu",
				   len, (unsigned long long)(need + data));
	d->n = n;
	d->ext = buf + FERRY_DELTA_HDR;
	d->data = buf + need;
	d->data_len = (size_t)data;
	return 0;
}

void ferry_delta_apply(const struct ferry_delta *d, uint8_t *block)
{
	const uint8_t *src = d->data;

	for (uint32_t i = 0; i < d->n; i++) {
		uint32_t off = rd32(d->ext + 8 * i), el = rd32(d->ext + 8 * i + 4);

		memcpy(block + off, src, el);
		src += el;
	}
}

/* Extent N of a delta record: bytes START..END of BLK, its data at POS;
 * returns the position after the data. */
static size_t put_run(uint8_t *out, size_t pos, size_t n, const uint8_t *blk,
		      size_t start, size_t end)
{
	wr32(out + FERRY_DELTA_HDR + 8 * n, (uint32_t)start);
	wr32(out + FERRY_DELTA_HDR + 8 * n + 4, (uint32_t)(end - start));
	memcpy(out + pos, blk + start, end - start);
	return pos + end - start;
}

size_t ferry_delta_build(const uint8_t *base, const uint8_t *blk, size_t len,
			 const uint8_t full[FERRY_HASH_LEN],
			 const uint8_t base_id[FERRY_HASH_LEN], size_t max_data,
			 uint8_t *out, size_t cap)
{
	size_t npages = (len + FERRY_DELTA_PAGE - 1) / FERRY_DELTA_PAGE;
	size_t n = 0, data = 0, pos;
	size_t run_start = 0;
	int in_run = 0;

	/* First pass: count extents and changed bytes. */
	for (size_t pg = 0; pg <= npages; pg++) {
		int changed = 0;

		if (pg < npages) {
			size_t o = pg * FERRY_DELTA_PAGE;
			size_t l = len - o < FERRY_DELTA_PAGE ? len - o
							      : FERRY_DELTA_PAGE;

			changed = memcmp(base + o, blk + o, l) != 0;
			if (changed)
				data += l;
			if (data > max_data)
				return 0;
		}
		if (changed && !in_run) {
			in_run = 1;
			n++;
		} else if (!changed) {
			in_run = 0;
		}
	}
	if (!n || data >= len)
		return 0;
	pos = FERRY_DELTA_HDR + 8 * n;
	if (pos + data > cap)
		return 0;
	memcpy(out, FERRY_DELTA_MAGIC, 4);
	wr32(out + 4, (uint32_t)len);
	wr32(out + 8, (uint32_t)n);
	memcpy(out + 12, full, FERRY_HASH_LEN);
	memcpy(out + 44, base_id, FERRY_HASH_LEN);
	n = 0;
	in_run = 0;
	for (size_t pg = 0; pg <= npages; pg++) {
		size_t o = pg * FERRY_DELTA_PAGE;
		size_t l = pg < npages ? (len - o < FERRY_DELTA_PAGE
						  ? len - o : FERRY_DELTA_PAGE)
				       : 0;
		int changed = pg < npages && memcmp(base + o, blk + o, l) != 0;

		if (changed && !in_run) {
			in_run = 1;
			run_start = o;
		} else if (!changed && in_run) {
			in_run = 0;
			pos = put_run(out, pos, n++, blk, run_start, o);
		}
		if (changed && pg + 1 == npages) {
			/* The run reaches the block's end (maybe short). */
			pos = put_run(out, pos, n++, blk, run_start, len);
			break;
		}
	}
	return pos;
}

/* The error of a failed chunk read, prefixed with what the chunk is. */
static int chunk_err(int e, const char *what, const uint8_t h[FERRY_HASH_LEN],
		     const uint8_t *of)
{
	char why[400], hex[65], ofhex[65];

	snprintf(why, sizeof(why), "%s", ferry_last_error());
	ferry_hash_hex(h, hex);
	if (of) {
		ferry_hash_hex(of, ofhex);
		return ferry_error(e, "%s chunk %s of delta chunk %s: %s", what,
				   hex, ofhex, why);
	}
	return ferry_error(e, "%s chunk %s: %s", what, hex, why);
}

int ferry_delta_load(struct ferry_repo *r, struct ferry_codec_ctx *c,
		     const uint8_t id[FERRY_HASH_LEN], uint8_t *in,
		     size_t incap, uint8_t *rec, size_t reccap,
		     struct ferry_delta *d)
{
	size_t len, raw;
	int e;

	if ((e = r->ops->get_chunk(r, id, in, incap, &len)) == 0)
		e = ferry_chunk_decode(c, in, len, rec, reccap, &raw, id);
	if (e == 0)
		e = ferry_delta_parse(rec, raw, d);
	if (e)
		return chunk_err(e, "delta", id, NULL);
	return 0;
}

int ferry_block_read(struct ferry_repo *r, struct ferry_codec_ctx *c,
		     int kind, const uint8_t id[FERRY_HASH_LEN],
		     struct ferry_dbufs *b, uint8_t *out, size_t cap,
		     size_t *raw)
{
	struct ferry_delta d;
	uint8_t h[FERRY_HASH_LEN];
	size_t len;
	int e;

	if (kind == FERRY_ENTRY_DATA) {
		e = r->ops->get_chunk(r, id, b->in, b->incap, &len);
		if (e == 0)
			e = ferry_chunk_decode(c, b->in, len, out, cap, raw, id);
		return e;
	}
	if (kind != FERRY_ENTRY_DELTA || !b->rec)
		return ferry_error(FERRY_E_CORRUPT, "manifest entry kind %d", kind);
	if ((e = ferry_delta_load(r, c, id, b->in, b->incap, b->rec, b->reccap,
				  &d)) != 0)
		return e;
	if (d.block_len > cap)
		return ferry_error(FERRY_E_CORRUPT,
				   "delta chunk: block of %u bytes exceeds %zu",
				   d.block_len, cap);
	e = r->ops->get_chunk(r, d.base, b->in, b->incap, &len);
	if (e == 0)
		e = ferry_chunk_decode(c, b->in, len, out, cap, raw, d.base);
	if (e == 0 && *raw != d.block_len)
		e = ferry_error(FERRY_E_CORRUPT,
				"has %zu bytes, the delta's block %u", *raw,
				d.block_len);
	if (e)
		return chunk_err(e, "base", d.base, id);
	ferry_delta_apply(&d, out);
	if ((e = ferry_chunk_id(c, out, d.block_len, h)) != 0)
		return e;
	if (memcmp(h, d.full, FERRY_HASH_LEN)) {
		char hex[65], bhex[65];

		ferry_hash_hex(id, hex);
		ferry_hash_hex(d.base, bhex);
		return ferry_error(FERRY_E_CORRUPT,
				   "the block rebuilt from delta chunk %s and base chunk %s does not match its id",
				   hex, bhex);
	}
	*raw = d.block_len;
	return 0;
}

int ferry_dbufs_init(struct ferry_dbufs *b, uint32_t block_size)
{
	memset(b, 0, sizeof(*b));
	b->incap = ferry_chunk_bound(block_size);
	b->reccap = block_size;
	b->in = malloc(b->incap);
	b->rec = malloc(b->reccap);
	if (!b->in || !b->rec) {
		ferry_dbufs_free(b);
		return FERRY_E_NOMEM;
	}
	return 0;
}

void ferry_dbufs_free(struct ferry_dbufs *b)
{
	free(b->in);
	free(b->rec);
	b->in = b->rec = NULL;
}

int ferry_entry_block_id(struct ferry_repo *r, struct ferry_codec_ctx *c,
			 int kind, const uint8_t id[FERRY_HASH_LEN],
			 struct ferry_dbufs *b, uint8_t full[FERRY_HASH_LEN])
{
	struct ferry_delta d;
	int e;

	if (kind != FERRY_ENTRY_DELTA) {
		memcpy(full, id, FERRY_HASH_LEN);
		return 0;
	}
	if ((e = ferry_delta_load(r, c, id, b->in, b->incap, b->rec, b->reccap,
				  &d)) != 0)
		return e;
	memcpy(full, d.full, FERRY_HASH_LEN);
	return 0;
}

int ferry_repo_delta(const struct ferry_repo *r)
{
	return r && r->delta;
}
