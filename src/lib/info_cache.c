/* info_cache.c - a local cache of the uncompressed size of each chunk of
 * an object-storage repository, so that `ferry info` on a bucket reads
 * only the headers of chunks it has not seen before.
 *
 * A chunk is immutable and named by its content, so (id, stored size) ->
 * uncompressed size never goes stale; a deleted chunk simply drops out.
 * The cache is a file of fixed records sorted by id: an S3 listing comes
 * in key order (chunks/XX/<id>), so the old file and the listing are
 * merged in one pass with constant memory, and the new file is written as
 * the listing goes.  When the listing is not in ascending order the cache
 * is neither used nor rewritten.  It is a hint only (info's totals, never
 * data): a damaged or foreign file is ignored.
 *
 * File: $FERRY_CACHE_DIR, else $XDG_CACHE_HOME/ferry, else
 * $HOME/.cache/ferry; name info-<repository id>.  Layout: "FICH0001",
 * the 32-character repository id, then records of id (32 bytes), stored
 * size (8, little endian), uncompressed size (4). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define IC_MAGIC "FICH0001"
#define IC_REC (FERRY_HASH_LEN + 8 + 4)

struct ferry_info_cache {
	FILE *old, *new;
	char path[4096], tmp[4200];
	uint8_t cur[IC_REC];
	int have_cur;
	uint8_t last[FERRY_HASH_LEN];
	int any, sorted, failed;
	uint64_t hits, misses;
};

static int cache_dir(char *out, size_t cap)
{
	const char *d = getenv("FERRY_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME");
	const char *h = getenv("HOME");
	int n;

	if (d && *d)
		n = snprintf(out, cap, "%s", d);
	else if (x && *x)
		n = snprintf(out, cap, "%s/ferry", x);
	else if (h && *h)
		n = snprintf(out, cap, "%s/.cache/ferry", h);
	else
		return -1;
	if (n < 0 || (size_t)n >= cap)
		return -1;
	if (ferry_mkdir_p(out, 0700) != 0)
		return -1;
	return 0;
}

static void next_old(struct ferry_info_cache *c)
{
	c->have_cur = c->old && fread(c->cur, IC_REC, 1, c->old) == 1;
}

struct ferry_info_cache *ferry_info_cache_open(const struct ferry_repo *r)
{
	struct ferry_info_cache *c;
	char dir[4000], head[8 + 32];
	int fd;

	if (strncmp(r->path, "s3://", 5) || strlen(r->repo_id) != 32)
		return NULL;
	if (cache_dir(dir, sizeof(dir)) != 0)
		return NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	c->sorted = 1;
	snprintf(c->path, sizeof(c->path), "%s/info-%s", dir, r->repo_id);
	snprintf(c->tmp, sizeof(c->tmp), "%s.tmp-%ld", c->path, (long)getpid());
	if ((c->old = fopen(c->path, "rbe")) != NULL &&
	    (fread(head, sizeof(head), 1, c->old) != 1 ||
	     memcmp(head, IC_MAGIC, 8) || memcmp(head + 8, r->repo_id, 32))) {
		fclose(c->old);
		c->old = NULL;
	}
	next_old(c);
	/* Keyed ids of an encrypted repository: for this user only. */
	fd = open(c->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0 && !(c->new = fdopen(fd, "wb")))
		close(fd);
	if (c->new) {
		memcpy(head, IC_MAGIC, 8);
		memcpy(head + 8, r->repo_id, 32);
		if (fwrite(head, sizeof(head), 1, c->new) != 1)
			c->failed = 1;
	}
	return c;
}

int ferry_info_cache_lookup(struct ferry_info_cache *c,
			    const uint8_t h[FERRY_HASH_LEN], uint64_t size,
			    uint32_t *raw)
{
	if (!c)
		return 0;
	if (c->any && memcmp(h, c->last, FERRY_HASH_LEN) <= 0)
		c->sorted = 0;
	c->any = 1;
	memcpy(c->last, h, FERRY_HASH_LEN);
	if (!c->sorted)
		return 0;
	while (c->have_cur && memcmp(c->cur, h, FERRY_HASH_LEN) < 0)
		next_old(c);
	if (c->have_cur && !memcmp(c->cur, h, FERRY_HASH_LEN) &&
	    ((uint64_t)ferry_le32(c->cur + FERRY_HASH_LEN + 4) << 32 |
	     ferry_le32(c->cur + FERRY_HASH_LEN)) == size) {
		uint32_t v = ferry_le32(c->cur + FERRY_HASH_LEN + 8);

		if (v && v <= FERRY_BLOCK_MAX) {
			*raw = v;
			c->hits++;
			return 1;
		}
	}
	c->misses++;
	return 0;
}

void ferry_info_cache_add(struct ferry_info_cache *c,
			  const uint8_t h[FERRY_HASH_LEN], uint64_t size,
			  uint32_t raw)
{
	uint8_t rec[IC_REC];

	if (!c || !c->new || c->failed || !c->sorted || !raw)
		return;
	memcpy(rec, h, FERRY_HASH_LEN);
	ferry_put_le32(rec + FERRY_HASH_LEN, (uint32_t)size);
	ferry_put_le32(rec + FERRY_HASH_LEN + 4, (uint32_t)(size >> 32));
	ferry_put_le32(rec + FERRY_HASH_LEN + 8, raw);
	if (fwrite(rec, sizeof(rec), 1, c->new) != 1)
		c->failed = 1;
}

void ferry_info_cache_finish(struct ferry_info_cache *c, int complete)
{
	if (!c)
		return;
	if (c->old)
		fclose(c->old);
	if (c->new) {
		int bad = fclose(c->new) != 0 || c->failed || !c->sorted ||
			  !complete;

		if (bad || rename(c->tmp, c->path) != 0)
			unlink(c->tmp);
	}
	free(c);
}
