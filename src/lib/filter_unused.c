/* filter_unused.c - a source filter (it wraps any transport, like an
 * nbdkit filter calling next) that drops the blocks a guest does not use:
 * swap partitions but their header page, free ext2/3/4 blocks, and the
 * data of excluded guest files.  What it cannot prove unused it reads. */
#include <stdio.h>
#include <stdlib.h>

#include "vmsrc.h"

#define RANGES_MAX (16u << 20) /* beyond this, keep reading (bounded memory) */

struct range {
	uint64_t off, len;
	int reason;
};

struct ufilter {
	struct ferry_source *next;
	struct range *r;
	size_t n, cap;
	size_t cursor;   /* first range that may overlap the next read */
	int capped;
	char config[160]; /* the "filter=" extra line's value */
};

static int src_rd(void *arg, uint64_t off, void *buf, size_t len)
{
	struct ferry_source *s = arg;

	if (off > s->size || len > s->size - off)
		return ferry_error(FERRY_E_SOURCE,
				   "read of %zu bytes at %llu is past the end of the disk",
				   len, (unsigned long long)off);
	return ferry_source_pread(s, off, buf, len);
}

static int add_range(void *arg, uint64_t off, uint64_t len, int reason)
{
	struct ufilter *f = arg;

	if (!len)
		return 0;
	if (f->n && f->r[f->n - 1].reason == reason &&
	    f->r[f->n - 1].off + f->r[f->n - 1].len == off) {
		f->r[f->n - 1].len += len;
		return 0;
	}
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 256;
		struct range *nr;

		if (f->cap >= RANGES_MAX) {
			f->capped = 1; /* keeping a range is always safe */
			return 0;
		}
		if (!(nr = realloc(f->r, nc * sizeof(*nr))))
			return FERRY_E_NOMEM;
		f->r = nr;
		f->cap = nc;
	}
	f->r[f->n].off = off;
	f->r[f->n].len = len;
	f->r[f->n].reason = reason;
	f->n++;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Sort and make the ranges disjoint (a later overlapping range is cut). */
static void normalize(struct ufilter *f)
{
	size_t o = 0;

	if (!f->n)
		return;
	qsort(f->r, f->n, sizeof(*f->r), cmp_range);
	for (size_t i = 0; i < f->n; i++) {
		struct range c = f->r[i];

		if (o) {
			struct range *p = &f->r[o - 1];
			uint64_t pend = p->off + p->len;

			if (c.off < pend) {
				if (c.off + c.len <= pend)
					continue;
				c.len -= pend - c.off;
				c.off = pend;
			}
			if (p->reason == c.reason && pend == c.off) {
				p->len += c.len;
				continue;
			}
		}
		f->r[o++] = c;
	}
	f->n = o;
}

struct warn_ctx {
	struct ferry_source *s;
	const char *where;
};

static void fs_warn(void *arg, const char *fmt, ...)
{
	struct warn_ctx *w = arg;
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ferry_source_warn(w->s, "%s: %s", w->where, msg);
}

static int scan_fs(struct ufilter *f, struct ferry_source *next,
		   const struct ferry_backup_opts *o, int *found, int partno,
		   uint64_t off, uint64_t size, const char *where)
{
	struct warn_ctx wc = { next, where };
	struct ferry_extfs_req req = {
		.rd = src_rd, .rd_arg = next, .off = off, .size = size,
		.partno = partno, .want_free = !o->keep_free,
		.exclude = o->exclude, .exclude_count = o->exclude_count,
		.exclude_found = found, .add = add_range, .add_arg = f,
		.warn = fs_warn, .warn_arg = &wc,
	};
	size_t before = f->n;
	int e;

	if (!ferry_extfs_probe(src_rd, next, off, size))
		return 0;
	if ((e = ferry_extfs_unused(&req)) == FERRY_E_NOMEM)
		return e;
	if (e) {
		/* Nothing of a file system we cannot trust is skipped. */
		f->n = before;
		ferry_source_warn(next, "%s: %s; reading all of its blocks", where,
				  ferry_last_error());
	}
	return 0;
}

static int build_map(struct ufilter *f, struct ferry_source *next,
		     const struct ferry_backup_opts *o)
{
	struct ferry_ptable *pt = calloc(1, sizeof(*pt));
	int *found = calloc(o->exclude_count + 1, sizeof(int));
	int e = 0;

	if (!pt || !found) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	if ((e = ferry_ptable_read(src_rd, next, next->size, pt)) != 0) {
		if (e == FERRY_E_NOMEM)
			goto out;
		ferry_source_warn(next, "%s; reading the whole disk", ferry_last_error());
		e = 0;
		goto out;
	}
	if (pt->scheme == FERRY_PT_NONE) {
		/* A file system on the whole disk. */
		e = scan_fs(f, next, o, found, 0, 0, next->size, "disk");
		goto report;
	}
	for (int i = 0; i < pt->count; i++) {
		const struct ferry_part *p = &pt->part[i];
		char where[32];

		snprintf(where, sizeof(where), "partition %d", p->number);
		if (p->kind == FERRY_PART_SWAP) {
			uint32_t hs;

			if (o->keep_swap)
				continue;
			hs = ferry_swap_header_size(src_rd, next, p->start, p->size);
			if (!hs) {
				ferry_source_warn(next,
						  "%s is a swap partition without a swap signature (a hibernation image?); reading it",
						  where);
				continue;
			}
			if ((e = add_range(f, p->start + hs, p->size - hs,
					   FERRY_RANGE_SWAP)) != 0)
				goto out;
			continue;
		}
		if ((e = scan_fs(f, next, o, found, p->number, p->start, p->size,
				 where)) != 0)
			goto out;
	}
report:
	if (e)
		goto out;
	for (size_t i = 0; i < o->exclude_count; i++)
		if (!found[i])
			ferry_source_warn(next,
					  "exclude %s: not found on any ext file system of the disk",
					  o->exclude[i]);
	if (f->capped)
		ferry_source_warn(next,
				  "more than %u unused ranges: the rest of the unused blocks are read",
				  RANGES_MAX);
	normalize(f);
out:
	free(pt);
	free(found);
	return e;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The filter settings a point was taken with: a change-tracked backup
 * may copy the base's entries only when the base kept at least what this
 * one keeps, i.e. it was taken with the same settings or none. */
static int make_config(struct ufilter *f, const struct ferry_backup_opts *o)
{
	const char **v = NULL;
	char hex[17] = "";

	if (o->exclude_count) {
		uint8_t h[FERRY_HASH_LEN];
		size_t total = 0, at = 0;
		char *buf;

		if (!(v = malloc(o->exclude_count * sizeof(*v))))
			return FERRY_E_NOMEM;
		for (size_t i = 0; i < o->exclude_count; i++) {
			v[i] = o->exclude[i];
			total += strlen(v[i]) + 1;
		}
		qsort(v, o->exclude_count, sizeof(*v), cmp_str);
		if (!(buf = malloc(total))) {
			free(v);
			return FERRY_E_NOMEM;
		}
		for (size_t i = 0; i < o->exclude_count; i++) {
			memcpy(buf + at, v[i], strlen(v[i]) + 1);
			at += strlen(v[i]) + 1;
		}
		ferry_sha256(buf, total, h);
		for (int i = 0; i < 8; i++)
			snprintf(hex + 2 * i, 3, "%02x", h[i]);
		free(buf);
		free(v);
	}
	snprintf(f->config, sizeof(f->config), "%s%s%s%s%s",
		 o->keep_swap ? "" : "swap,", o->keep_free ? "" : "free,",
		 hex[0] ? "exclude:" : "", hex, hex[0] ? "," : "");
	if (f->config[0])
		f->config[strlen(f->config) - 1] = 0; /* the last comma */
	return 0;
}

/* The value of KEY in EXTRA's "key=value\n" lines (NULL: absent). */
static const char *extra_get(const char *extra, const char *key, char *out,
			     size_t len)
{
	size_t kl = strlen(key);

	for (const char *p = extra; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);

		if (ll > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			size_t vl = ll - kl - 1;

			if (vl >= len)
				vl = len - 1;
			memcpy(out, p + kl + 1, vl);
			out[vl] = 0;
			return out;
		}
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static void append_extra(struct ferry_source *s, const char *key,
			 const char *val)
{
	size_t n = strlen(s->extra);

	if (n + strlen(key) + strlen(val) + 2 <= FERRY_EXTRA_MAX)
		snprintf(s->extra + n, sizeof(s->extra) - n, "%s=%s\n", key, val);
}

static int uf_prepare(struct ferry_source *s, const struct ferry_point *base)
{
	struct ufilter *f = s->state;
	struct ferry_source *next = f->next;
	char old[160];
	int r = 0;

	if (base && next->ops->prepare) {
		const char *bc = extra_get(base->extra, "filter", old, sizeof(old));

		if (bc && *bc && strcmp(bc, f->config)) {
			ferry_source_warn(s,
					  "the base point %s was taken with other unused-block settings (%s, now %s): reading everything",
					  base->id, bc, f->config[0] ? f->config : "none");
			base = NULL;
		}
	}
	if (next->ops->prepare && (r = next->ops->prepare(next, base)) < 0)
		return r;
	memcpy(s->extra, next->extra, sizeof(s->extra));
	append_extra(s, "filter", f->config);
	return r;
}

static int uf_read(struct ferry_source *s, uint64_t off, void *buf,
		   size_t len, int *kind)
{
	struct ufilter *f = s->state;
	uint64_t end = off + len, per[FERRY_SKIP_N] = { 0 }, covered = 0;
	size_t i;
	int e;

	/* Reads come in disk order; seek back when they do not. */
	if (f->cursor > 0 && f->cursor <= f->n &&
	    f->r[f->cursor - 1].off + f->r[f->cursor - 1].len > off)
		f->cursor = 0;
	while (f->cursor < f->n && f->r[f->cursor].off + f->r[f->cursor].len <= off)
		f->cursor++;
	for (i = f->cursor; i < f->n && f->r[i].off < end; i++) {
		uint64_t a = f->r[i].off > off ? f->r[i].off : off;
		uint64_t b = f->r[i].off + f->r[i].len < end ? f->r[i].off + f->r[i].len
							      : end;

		per[f->r[i].reason] += b - a;
		covered += b - a;
	}
	if (covered == len) {
		*kind = FERRY_BLK_ZERO;
		for (int k = 0; k < FERRY_SKIP_N; k++)
			s->skipped[k] += per[k];
		return 0;
	}
	if ((e = f->next->ops->read(f->next, off, buf, len, kind)) != 0)
		return e;
	if (*kind != FERRY_BLK_DATA || !covered)
		return 0;
	for (i = f->cursor; i < f->n && f->r[i].off < end; i++) {
		uint64_t a = f->r[i].off > off ? f->r[i].off : off;
		uint64_t b = f->r[i].off + f->r[i].len < end ? f->r[i].off + f->r[i].len
							      : end;

		memset((uint8_t *)buf + (a - off), 0, (size_t)(b - a));
	}
	for (int k = 0; k < FERRY_SKIP_N; k++)
		s->skipped[k] += per[k];
	return 0;
}

/* Like uf_read without reading: a block wholly unused is zero, one with
 * no unused byte comes from the next source's mapping, and one partly
 * unused is left to uf_read (*p NULL), which zeroes the unused part. */
static int uf_map(struct ferry_source *s, uint64_t off, size_t len,
		  const uint8_t **p, int *kind)
{
	struct ufilter *f = s->state;
	uint64_t end = off + len, per[FERRY_SKIP_N] = { 0 }, covered = 0;
	size_t i;

	*p = NULL;
	*kind = FERRY_BLK_DATA;
	if (f->cursor > 0 && f->cursor <= f->n &&
	    f->r[f->cursor - 1].off + f->r[f->cursor - 1].len > off)
		f->cursor = 0;
	while (f->cursor < f->n && f->r[f->cursor].off + f->r[f->cursor].len <= off)
		f->cursor++;
	for (i = f->cursor; i < f->n && f->r[i].off < end; i++) {
		uint64_t a = f->r[i].off > off ? f->r[i].off : off;
		uint64_t b = f->r[i].off + f->r[i].len < end ? f->r[i].off + f->r[i].len
							      : end;

		per[f->r[i].reason] += b - a;
		covered += b - a;
	}
	if (covered == len) {
		*kind = FERRY_BLK_ZERO;
		for (int k = 0; k < FERRY_SKIP_N; k++)
			s->skipped[k] += per[k];
		return 0;
	}
	if (covered || !f->next->ops->map)
		return 0;
	return f->next->ops->map(f->next, off, len, p, kind);
}

static int uf_pread(struct ferry_source *s, uint64_t off, void *buf, size_t len)
{
	struct ufilter *f = s->state;

	return ferry_source_pread(f->next, off, buf, len);
}

static void uf_close(struct ferry_source *s)
{
	struct ufilter *f = s->state;

	if (!f)
		return;
	ferry_source_free(f->next);
	free(f->r);
	free(f);
	s->state = NULL;
}

static const struct ferry_source_ops uf_ops = {
	.name = "unused-block filter",
	.prepare = uf_prepare,
	.read = uf_read,
	.pread = uf_pread,
	.close = uf_close,
	.map = uf_map,
};

int ferry_filter_unused_wrap(struct ferry_source **sp,
			     const struct ferry_backup_opts *o)
{
	struct ferry_source *next = *sp, *s;
	struct ufilter *f;
	int e;

	if (!o || (o->keep_swap && o->keep_free && !o->exclude_count))
		return 0;
	if (!(f = calloc(1, sizeof(*f))))
		return FERRY_E_NOMEM;
	f->next = next;
	if ((e = make_config(f, o)) != 0 || (e = build_map(f, next, o)) != 0) {
		free(f->r);
		free(f);
		return e;
	}
	if (!(s = calloc(1, sizeof(*s))) || !(s->spec = strdup(next->spec))) {
		free(s);
		free(f->r);
		free(f);
		return FERRY_E_NOMEM;
	}
	s->ops = &uf_ops;
	s->state = f;
	s->size = next->size;
	s->opts = next->opts;
	s->warn = next->warn;
	s->warn_arg = next->warn_arg;
	*sp = s;
	return 0;
}
