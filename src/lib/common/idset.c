/* idset.c - a set of chunk ids (open addressing, linear probing, grown
 * at half full): which chunks a process has already handled. */
#include <stdlib.h>
#include <string.h>

#include "common.h"

static size_t slot(const struct ferry_idset *t, const uint8_t h[FERRY_HASH_LEN])
{
	uint64_t k;

	memcpy(&k, h, sizeof(k));
	return (size_t)k & (t->cap - 1);
}

int ferry_idset_has(const struct ferry_idset *t, const uint8_t h[FERRY_HASH_LEN])
{
	if (!t->cap)
		return 0;
	for (size_t i = slot(t, h);; i = (i + 1) & (t->cap - 1)) {
		if (!t->used[i])
			return 0;
		if (!memcmp(t->v[i], h, FERRY_HASH_LEN))
			return 1;
	}
}

int ferry_idset_add(struct ferry_idset *t, const uint8_t h[FERRY_HASH_LEN])
{
	if (ferry_idset_has(t, h))
		return 0;
	if ((t->n + 1) * 2 > t->cap) {
		struct ferry_idset n = { 0 };

		n.cap = t->cap ? t->cap * 2 : 1024;
		n.v = calloc(n.cap, FERRY_HASH_LEN);
		n.used = calloc(n.cap, 1);
		if (!n.v || !n.used) {
			free(n.v);
			free(n.used);
			return FERRY_E_NOMEM;
		}
		for (size_t i = 0; i < t->cap; i++)
			if (t->used[i]) {
				size_t j = slot(&n, t->v[i]);

				while (n.used[j])
					j = (j + 1) & (n.cap - 1);
				memcpy(n.v[j], t->v[i], FERRY_HASH_LEN);
				n.used[j] = 1;
				n.n++;
			}
		free(t->v);
		free(t->used);
		*t = n;
	}
	size_t i = slot(t, h);

	while (t->used[i])
		i = (i + 1) & (t->cap - 1);
	memcpy(t->v[i], h, FERRY_HASH_LEN);
	t->used[i] = 1;
	t->n++;
	return 0;
}

void ferry_idset_clear(struct ferry_idset *t)
{
	t->n = 0;
	if (t->used)
		memset(t->used, 0, t->cap);
}

void ferry_idset_free(struct ferry_idset *t)
{
	free(t->v);
	free(t->used);
	memset(t, 0, sizeof(*t));
}
