/* cache.c - the listing cache: a few rendered GET replies (the full
 * restore-point and job listings, 2 MB and 0.4 MB at 10,000 points and
 * 1,000 jobs), so that listing an unchanged catalog does not go through
 * the database again.  Each entry records the write generation of every
 * table it was built from (struct srv_db.wgen, bumped by srv_db_exec on
 * each statement that writes a table); an entry whose tables were
 * written since is a miss.  The server is the only writer of its catalog
 * (docs/server.md); SIGHUP clears the cache for anyone who changed it
 * with SQL anyway.  Called with s->mu held. */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

static int fresh(const struct srv *s, const struct srv_cache_ent *e)
{
	for (int t = 0; t < SRV_NTABLES; t++)
		if ((e->tables & SRV_TBIT(t)) && e->gen[t] != s->db->wgen[t])
			return 0;
	return 1;
}

static void drop(struct srv_cache_ent *e)
{
	free(e->body);
	memset(e, 0, sizeof(*e));
}

int srv_cache_get(struct srv *s, const char *key, unsigned tables, struct srv_resp *rs)
{
	if (s->conf.cache_off)
		return 0;
	for (int i = 0; i < SRV_CACHE_SLOTS; i++) {
		struct srv_cache_ent *e = &s->cache[i];
		char *copy;

		if (!e->body || e->tables != tables || strcmp(e->key, key))
			continue;
		if (!fresh(s, e)) {
			drop(e);
			break;
		}
		if (!(copy = malloc(e->len + 1)))
			return 0;
		memcpy(copy, e->body, e->len + 1);
		e->used = ++s->cache_tick;
		s->cache_hits++;
		rs->status = 200;
		rs->body = copy;
		return 1;
	}
	s->cache_misses++;
	return 0;
}

void srv_cache_put(struct srv *s, const char *key, unsigned tables, const char *body,
		   size_t len)
{
	struct srv_cache_ent *victim = NULL;
	size_t total = len;

	if (s->conf.cache_off || strlen(key) >= sizeof(s->cache[0].key) ||
	    len > SRV_CACHE_MAX_BYTES)
		return;
	/* Stale entries go first, then the least recently used until the
	 * new one fits in SRV_CACHE_MAX_BYTES. */
	for (int i = 0; i < SRV_CACHE_SLOTS; i++) {
		struct srv_cache_ent *e = &s->cache[i];

		if (e->body && (!fresh(s, e) || (e->tables == tables && !strcmp(e->key, key))))
			drop(e);
		total += e->len;
	}
	while (total > SRV_CACHE_MAX_BYTES) {
		struct srv_cache_ent *lru = NULL;

		for (int i = 0; i < SRV_CACHE_SLOTS; i++)
			if (s->cache[i].body && (!lru || s->cache[i].used < lru->used))
				lru = &s->cache[i];
		if (!lru)
			break;
		total -= lru->len;
		drop(lru);
	}
	for (int i = 0; i < SRV_CACHE_SLOTS; i++) {
		struct srv_cache_ent *e = &s->cache[i];

		if (!e->body) {
			victim = e;
			break;
		}
		if (!victim || e->used < victim->used)
			victim = e;
	}
	drop(victim);
	if (!(victim->body = malloc(len + 1)))
		return;
	memcpy(victim->body, body, len);
	victim->body[len] = 0;
	victim->len = len;
	victim->tables = tables;
	memcpy(victim->key, key, strlen(key) + 1);
	for (int t = 0; t < SRV_NTABLES; t++)
		victim->gen[t] = s->db->wgen[t];
	victim->used = ++s->cache_tick;
}

void srv_cache_clear(struct srv *s)
{
	for (int i = 0; i < SRV_CACHE_SLOTS; i++)
		drop(&s->cache[i]);
}
