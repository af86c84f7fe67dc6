/* target_local.c - the target-side data mover in the same process (the
 * embedded default): answers which chunks the repository holds, stores
 * new ones, and writes and commits the manifest. */
#include <stdlib.h>

#include "internal.h"

struct tlocal {
	struct ferry_repo *repo;
	struct ferry_mwriter *mw;
};

static int tl_begin(struct ferry_target *t, const struct ferry_point *p)
{
	struct tlocal *s = t->state;
	int e;

	if ((e = s->repo->ops->lock_shared(s->repo)) != 0)
		return e;
	return ferry_mwriter_begin(s->repo, p, &s->mw);
}

static int tl_have(struct ferry_target *t, const uint8_t h[FERRY_HASH_LEN])
{
	struct tlocal *s = t->state;

	return s->repo->ops->has_chunk(s->repo, h);
}

static int tl_put(struct ferry_target *t, const uint8_t h[FERRY_HASH_LEN],
		  const void *chunk, size_t len)
{
	struct tlocal *s = t->state;
	uint32_t raw, plen;
	int codec, e;

	/* The target checks what it is given before storing it. */
	if ((e = ferry_chunk_header(chunk, len, &raw, &plen, &codec)) != 0)
		return e;
	return s->repo->ops->put_chunk(s->repo, h, chunk, len);
}

static int tl_record(struct ferry_target *t, int kind,
		     const uint8_t h[FERRY_HASH_LEN])
{
	struct tlocal *s = t->state;

	return ferry_mwriter_add(s->mw, kind, h);
}

static int tl_commit(struct ferry_target *t, const struct ferry_point *p)
{
	struct tlocal *s = t->state;

	return ferry_mwriter_commit(s->mw, p);
}

static void tl_free(struct ferry_target *t)
{
	struct tlocal *s;

	if (!t)
		return;
	s = t->state;
	ferry_mwriter_free(s->mw);
	free(s);
	free(t);
}

static const struct ferry_target_ops tlocal_ops = {
	.begin = tl_begin,
	.have = tl_have,
	.put = tl_put,
	.record = tl_record,
	.commit = tl_commit,
	.free = tl_free,
};

int ferry_target_local_new(struct ferry_repo *r, struct ferry_target **out)
{
	struct ferry_target *t = calloc(1, sizeof(*t));
	struct tlocal *s = calloc(1, sizeof(*s));

	if (!t || !s) {
		free(t);
		free(s);
		return FERRY_E_NOMEM;
	}
	s->repo = r;
	t->ops = &tlocal_ops;
	t->state = s;
	*out = t;
	return 0;
}

int ferry_target_new(struct ferry_repo *r, struct ferry_target **out)
{
	if (r->ops->target_new)
		return r->ops->target_new(r, out);
	return ferry_target_local_new(r, out);
}
