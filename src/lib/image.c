/* image.c - random access to a restore point: the manifest entry of a
 * block is read by one pread (its offset is fixed), its chunk is fetched,
 * checked against the SHA-256 and decoded on demand, and kept in a small
 * bounded LRU cache shared by every thread.  Instant recovery (NBD) and
 * file-level restore read through here; a damaged block is an error for
 * the range that touches it, never unchecked bytes. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define IMG_CACHE_DEFAULT 16
#define IMG_CACHE_MAX 4096

struct img_slot {
	uint64_t index;    /* UINT64_MAX: empty */
	uint64_t used;     /* LRU clock */
	uint8_t *data;
};

/* A decode context; one per concurrent fetch, kept in a free list. */
struct img_ctx {
	struct ferry_codec_ctx *codec;
	uint8_t *in, *out;
	uint8_t *rec; /* a delta record (kind-2 entries, delta.c) */
	struct img_ctx *next;
};

struct ferry_image {
	struct ferry_repo *repo;
	struct ferry_point point;
	struct ferry_mreader *m;
	struct ferry_image_opts opts;
	size_t incap;
	pthread_mutex_t mu;    /* cache and context list */
	struct img_slot *slot;
	uint32_t nslots;
	uint64_t clock;
	struct img_ctx *free_ctx;
};

static void ctx_free(struct img_ctx *c)
{
	if (!c)
		return;
	ferry_codec_ctx_free(c->codec);
	free(c->in);
	free(c->out);
	free(c->rec);
	free(c);
}

static struct img_ctx *ctx_get(struct ferry_image *img)
{
	struct img_ctx *c;

	pthread_mutex_lock(&img->mu);
	c = img->free_ctx;
	if (c)
		img->free_ctx = c->next;
	pthread_mutex_unlock(&img->mu);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->codec = ferry_codec_ctx_for(img->repo, FERRY_CODEC_NONE, 0);
	c->in = malloc(img->incap);
	c->out = malloc(img->point.block_size);
	if (img->repo->delta)
		c->rec = malloc(img->point.block_size);
	if (!c->codec || !c->in || !c->out || (img->repo->delta && !c->rec)) {
		ctx_free(c);
		return NULL;
	}
	return c;
}

static void ctx_put(struct ferry_image *img, struct img_ctx *c)
{
	pthread_mutex_lock(&img->mu);
	c->next = img->free_ctx;
	img->free_ctx = c;
	pthread_mutex_unlock(&img->mu);
}

int ferry_image_open(struct ferry_repo *repo, const char *spec,
		     const struct ferry_image_opts *opts,
		     struct ferry_image **out)
{
	struct ferry_image *img = calloc(1, sizeof(*img));
	int e;

	if (!img)
		return FERRY_E_NOMEM;
	pthread_mutex_init(&img->mu, NULL);
	img->repo = repo;
	if (opts)
		img->opts = *opts;
	img->nslots = img->opts.cache_blocks ? img->opts.cache_blocks
					     : IMG_CACHE_DEFAULT;
	if (img->nslots > IMG_CACHE_MAX)
		img->nslots = IMG_CACHE_MAX;
	if ((e = ferry_point_resolve(repo, spec, &img->point)) != 0)
		goto fail;
	if ((e = ferry_mreader_open(repo, img->point.id, &img->m,
				    &img->point)) != 0)
		goto fail;
	img->incap = ferry_chunk_bound(img->point.block_size);
	img->slot = calloc(img->nslots, sizeof(*img->slot));
	if (!img->slot) {
		e = FERRY_E_NOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < img->nslots; i++)
		img->slot[i].index = UINT64_MAX;
	*out = img;
	return 0;
fail:
	ferry_image_free(img);
	return e;
}

void ferry_image_free(struct ferry_image *img)
{
	if (!img)
		return;
	for (uint32_t i = 0; img->slot && i < img->nslots; i++)
		free(img->slot[i].data);
	free(img->slot);
	while (img->free_ctx) {
		struct img_ctx *c = img->free_ctx;

		img->free_ctx = c->next;
		ctx_free(c);
	}
	ferry_mreader_free(img->m);
	pthread_mutex_destroy(&img->mu);
	free(img);
}

const struct ferry_point *ferry_image_point(const struct ferry_image *img)
{
	return &img->point;
}

static void report_bad(struct ferry_image *img, uint64_t index,
		       const uint8_t *hash, int err);

int ferry_image_entry(struct ferry_image *img, uint64_t index,
		      uint8_t hash[FERRY_HASH_LEN])
{
	struct img_ctx *c;
	int kind, e;

	if ((e = ferry_mreader_entry(img->m, index, &kind, hash)) != 0)
		return e;
	if (kind != FERRY_ENTRY_DELTA)
		return kind == FERRY_ENTRY_DATA;
	/* A delta block: the id of the whole block, from its record. */
	if (!(c = ctx_get(img)))
		return FERRY_E_NOMEM;
	{
		struct ferry_dbufs b = { c->in, c->rec, img->incap,
					 img->point.block_size };
		uint8_t did[FERRY_HASH_LEN];

		memcpy(did, hash, FERRY_HASH_LEN);
		e = ferry_entry_block_id(img->repo, c->codec, kind, did, &b, hash);
		if (e == FERRY_E_CORRUPT || e == FERRY_E_MISSING)
			report_bad(img, index, did, e);
	}
	ctx_put(img, c);
	return e ? e : 1;
}

static uint32_t block_len(const struct ferry_image *img, uint64_t index)
{
	uint64_t off = index * img->point.block_size;

	return img->point.disk_size - off < img->point.block_size
		       ? (uint32_t)(img->point.disk_size - off)
		       : img->point.block_size;
}

/* Copy [SKIP, SKIP+N) of cached block INDEX into BUF: 1 hit, 0 miss. */
static int cache_copy(struct ferry_image *img, uint64_t index, size_t skip,
		      size_t n, uint8_t *buf)
{
	int hit = 0;

	pthread_mutex_lock(&img->mu);
	for (uint32_t i = 0; i < img->nslots; i++)
		if (img->slot[i].index == index) {
			memcpy(buf, img->slot[i].data + skip, n);
			img->slot[i].used = ++img->clock;
			hit = 1;
			break;
		}
	pthread_mutex_unlock(&img->mu);
	return hit;
}

static void cache_put(struct ferry_image *img, uint64_t index,
		      const uint8_t *data, size_t len)
{
	struct img_slot *victim = NULL;

	pthread_mutex_lock(&img->mu);
	for (uint32_t i = 0; i < img->nslots; i++) {
		struct img_slot *s = &img->slot[i];

		if (s->index == index) {
			victim = NULL;
			goto out; /* another thread fetched it meanwhile */
		}
		if (!victim || s->used < victim->used)
			victim = s;
	}
	if (!victim->data && !(victim->data = malloc(img->point.block_size)))
		goto out; /* no room to cache: the read still succeeded */
	memcpy(victim->data, data, len);
	victim->index = index;
	victim->used = ++img->clock;
out:
	pthread_mutex_unlock(&img->mu);
}

static void report_bad(struct ferry_image *img, uint64_t index,
		       const uint8_t *hash, int err)
{
	char detail[512];

	snprintf(detail, sizeof(detail), "%s", ferry_last_error());
	if (img->opts.bad) {
		struct ferry_bad_block b = { img->point.id, index,
					     index * img->point.block_size,
					     hash, err, detail };

		img->opts.bad(&b, img->opts.bad_arg);
	}
	ferry_error(err, "block %llu (offset %llu) of restore point %s: %s",
		    (unsigned long long)index,
		    (unsigned long long)(index * img->point.block_size),
		    img->point.id, detail);
}

/* Fetch, check and decode block INDEX; copy its [SKIP, SKIP+N). */
static int fetch_block(struct ferry_image *img, uint64_t index, size_t skip,
		       size_t n, uint8_t *buf)
{
	uint8_t hash[FERRY_HASH_LEN];
	struct img_ctx *c;
	size_t raw;
	int kind, e;

	if (cache_copy(img, index, skip, n, buf))
		return 0;
	if ((e = ferry_mreader_entry(img->m, index, &kind, hash)) != 0)
		return e;
	if (kind == FERRY_ENTRY_ZERO) {
		memset(buf, 0, n);
		return 0;
	}
	if (!(c = ctx_get(img)))
		return FERRY_E_NOMEM;
	{
		struct ferry_dbufs b = { c->in, c->rec, img->incap,
					 img->point.block_size };

		/* A whole chunk, or a delta block rebuilt and checked. */
		e = ferry_block_read(img->repo, c->codec, kind, hash, &b, c->out,
				     img->point.block_size, &raw);
	}
	if (e == 0 && raw != block_len(img, index))
		e = ferry_error(FERRY_E_CORRUPT,
				"chunk length does not fit the block");
	if (e == FERRY_E_CORRUPT || e == FERRY_E_MISSING)
		report_bad(img, index, hash, e);
	if (e == 0) {
		memcpy(buf, c->out + skip, n);
		cache_put(img, index, c->out, raw);
	}
	ctx_put(img, c);
	return e;
}

int ferry_image_pread(struct ferry_image *img, void *buf, size_t len,
		      uint64_t off)
{
	uint8_t *p = buf;
	uint32_t bs = img->point.block_size;

	if (off > img->point.disk_size || len > img->point.disk_size - off)
		return ferry_error(FERRY_E_INVAL,
				   "read of %zu bytes at %llu is past the disk's end",
				   len, (unsigned long long)off);
	while (len) {
		uint64_t index = off / bs;
		size_t skip = (size_t)(off % bs);
		size_t n = bs - skip < len ? bs - skip : len;
		int e;

		if ((e = fetch_block(img, index, skip, n, p)) != 0)
			return e;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}
