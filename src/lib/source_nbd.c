/* source_nbd.c - the network transport: a disk read over NBD with libnbd
 * (nbd://HOST:PORT/EXPORT, nbd+unix:///EXPORT?socket=PATH), or a qcow2
 * image served by a qemu-nbd of our own (qcow2:PATH, read-only, on a
 * private socket, always stopped).  The allocation map skips holes and
 * zero extents without reading them; a QEMU dirty bitmap (change
 * tracking) turns clean blocks into "unchanged" when the chain to the base
 * point is intact (docs/change-tracking.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libnbd.h>

#include "vmsrc.h"

#define ALLOC_CTX "base:allocation"
#define DIRTY_PREFIX "qemu:dirty-bitmap:"
#define STATUS_WINDOW (256ull << 20)
#define STATUS_MAX (1ull << 30)
#define PREAD_MAX (32u << 20)
#define QEMU_DIRTY 1u

/* Extents of one metadata context covering [from, to): extent i ends at
 * end[i] and starts where the one before it ends. */
struct ecache {
	uint64_t from, to;
	size_t n, cap;
	uint64_t *end;
	uint32_t *flags;
	int failed;
};

struct nbd_src {
	struct nbd_handle *h;
	char dirty_ctx[FERRY_NAME_MAX + sizeof(DIRTY_PREFIX) + 1];
	int have_alloc, have_dirty; /* negotiated */
	int use_dirty;              /* chain intact: clean means unchanged */
	int qcow2;
	int bitmap_bad;             /* qcow2: the bitmap is missing or stale */
	int checkpoint_missing;     /* qcow2: no such checkpoint bitmap */
	char bitmap_why[256];
	struct ecache alloc, dirty;
	uint64_t pread_max;
};

int ferry_source_nbd_spec(const char *spec)
{
	return !strncmp(spec, "nbd://", 6) || !strncmp(spec, "nbd+unix://", 11) ||
	       !strncmp(spec, "nbds://", 7) || !strncmp(spec, "nbds+unix://", 12) ||
	       !strncmp(spec, "qcow2:", 6);
}

static int nbd_fail(struct ferry_source *s, const char *what)
{
	return ferry_error(FERRY_E_SOURCE, "%s %s: %s", what, s->spec,
			   nbd_get_error() ? nbd_get_error() : "unknown error");
}

/* ---- the extent caches ------------------------------------------------ */

static int ec_push(struct ecache *c, uint64_t len, uint32_t flags)
{
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 64;
		uint64_t *ne = realloc(c->end, nc * sizeof(*ne));
		uint32_t *nf;

		if (!ne)
			return -1;
		c->end = ne;
		if (!(nf = realloc(c->flags, nc * sizeof(*nf))))
			return -1;
		c->flags = nf;
		c->cap = nc;
	}
	c->to += len;
	c->end[c->n] = c->to;
	c->flags[c->n] = flags;
	c->n++;
	return 0;
}

static int extent_cb(void *ud, const char *ctx, uint64_t offset,
		     uint32_t *entries, size_t nr, int *error)
{
	struct nbd_src *f = ud;
	struct ecache *c = NULL;

	if (!strcmp(ctx, ALLOC_CTX))
		c = &f->alloc;
	else if (f->use_dirty && !strcmp(ctx, f->dirty_ctx))
		c = &f->dirty;
	/* Only extents that continue what the cache holds are taken. */
	if (!c || *error || c->to != offset)
		return 0;
	for (size_t i = 0; i + 1 < nr; i += 2) {
		if (entries[i] == 0)
			break;
		if (ec_push(c, entries[i], entries[i + 1]) != 0) {
			*error = ENOMEM;
			return -1;
		}
	}
	return 0;
}

/* Make C cover [off, end). */
static int ec_ensure(struct ferry_source *s, struct ecache *c, uint64_t off,
		     uint64_t end)
{
	struct nbd_src *f = s->state;
	size_t drop = 0;

	if (c->from <= off && off <= c->to) {
		while (drop < c->n && c->end[drop] <= off)
			drop++;
		if (drop) {
			c->from = c->end[drop - 1];
			memmove(c->end, c->end + drop, (c->n - drop) * sizeof(*c->end));
			memmove(c->flags, c->flags + drop, (c->n - drop) * sizeof(*c->flags));
			c->n -= drop;
		}
	} else {
		c->from = c->to = off;
		c->n = 0;
	}
	while (c->to < end) {
		uint64_t at = c->to, want = end - at;
		nbd_extent_callback cb = { .callback = extent_cb, .user_data = f };

		if (want < STATUS_WINDOW)
			want = STATUS_WINDOW;
		if (want > STATUS_MAX)
			want = STATUS_MAX;
		if (want > s->size - at)
			want = s->size - at;
		if (nbd_block_status(f->h, want, at, cb, 0) == -1)
			return nbd_fail(s, "block status of");
		if (c->to == at)
			return ferry_error(FERRY_E_SOURCE,
					   "%s: the server returned no extents at offset %llu",
					   s->spec, (unsigned long long)at);
	}
	return 0;
}

/* 1 when every byte of [off, end) has FLAG (all = 1) or any byte has it
 * (all = 0). */
static int ec_test(const struct ecache *c, uint64_t off, uint64_t end,
		   uint32_t flag, int all)
{
	for (size_t i = 0; i < c->n; i++) {
		uint64_t start = i ? c->end[i - 1] : c->from;

		if (c->end[i] <= off)
			continue;
		if (start >= end)
			break;
		if (all && !(c->flags[i] & flag))
			return 0;
		if (!all && (c->flags[i] & flag))
			return 1;
	}
	return all;
}

/* ---- opening ------------------------------------------------------------ */

struct fd_rd {
	int fd;
};

static int fd_read(void *arg, uint64_t off, void *buf, size_t len)
{
	struct fd_rd *r = arg;
	ssize_t n = ferry_pread_full(r->fd, buf, len, (off_t)off);

	if (n < 0 || (size_t)n != len)
		return ferry_error(FERRY_E_CORRUPT, "short read of the image header");
	return 0;
}

/* Is BITMAP usable in the image at PATH?  Sets f->bitmap_bad and why. */
static int qcow2_check_bitmap(struct nbd_src *f, const char *path,
			      const char *bitmap, int *present)
{
	struct ferry_qcow2_bitmap b;
	struct fd_rd r = { open(path, O_RDONLY | O_CLOEXEC) };
	struct stat st;
	int e;

	*present = 0;
	if (r.fd < 0)
		return ferry_error(errno == ENOENT ? FERRY_E_NOTFOUND : FERRY_E_SOURCE,
				   "cannot open %s: %s", path, strerror(errno));
	if (fstat(r.fd, &st) != 0) {
		close(r.fd);
		return ferry_error(FERRY_E_SOURCE, "cannot inspect %s: %s", path,
				   strerror(errno));
	}
	e = ferry_qcow2_find_bitmap(fd_read, &r, (uint64_t)st.st_size, bitmap, &b);
	close(r.fd);
	if (e == FERRY_E_NOMEM)
		return e;
	if (e < 0) {
		snprintf(f->bitmap_why, sizeof(f->bitmap_why), "%s", ferry_last_error());
		return 0;
	}
	if (e == 0) {
		snprintf(f->bitmap_why, sizeof(f->bitmap_why),
			 "the image has no bitmap '%s'", bitmap);
		return 0;
	}
	if (b.flags & FERRY_QCOW2_BITMAP_IN_USE) {
		snprintf(f->bitmap_why, sizeof(f->bitmap_why),
			 "bitmap '%s' is inconsistent (QEMU did not close the image cleanly)",
			 bitmap);
		return 0;
	}
	*present = 1;
	return 0;
}

static int open_qcow2(struct ferry_source *s, struct nbd_src *f,
		      const char *path)
{
	const struct ferry_backup_opts *o = s->opts;
	const char *bin = getenv("FERRY_QEMU_NBD");
	char abs[PATH_MAX], *canon;
	char *argv[12];
	int argc = 0, e, present = 0;

	if (!realpath(path, abs))
		return ferry_error(errno == ENOENT ? FERRY_E_NOTFOUND : FERRY_E_SOURCE,
				   "cannot open %s: %s", path, strerror(errno));
	if (asprintf(&canon, "qcow2:%s", abs) < 0)
		return FERRY_E_NOMEM;
	free(s->spec);
	s->spec = canon;
	if (o && o->bitmap) {
		if ((e = qcow2_check_bitmap(f, abs, o->bitmap, &present)) != 0)
			return e;
		f->bitmap_bad = !present;
	}
	if (o && o->checkpoint && (!o->bitmap || strcmp(o->checkpoint, o->bitmap))) {
		struct nbd_src tmp;

		memset(&tmp, 0, sizeof(tmp));
		if ((e = qcow2_check_bitmap(&tmp, abs, o->checkpoint, &present)) != 0)
			return e;
		if (!present) {
			ferry_source_warn(s,
					  "checkpoint: %s; the next backup will read everything",
					  tmp.bitmap_why);
			f->checkpoint_missing = 1;
		}
	}
	argv[argc++] = (char *)(bin && *bin ? bin : "qemu-nbd");
	argv[argc++] = "--read-only";
	argv[argc++] = "--format=qcow2";
	argv[argc++] = "--shared=1";
	if (o && o->bitmap && !f->bitmap_bad) {
		argv[argc++] = "-B";
		argv[argc++] = (char *)o->bitmap;
	}
	argv[argc++] = abs;
	argv[argc] = NULL;
	f->qcow2 = 1;
	if (f->bitmap_bad)
		f->dirty_ctx[0] = 0;
	if (f->dirty_ctx[0] && nbd_add_meta_context(f->h, f->dirty_ctx) == -1)
		return nbd_fail(s, "NBD");
	/* libnbd makes the private socket, starts qemu-nbd on it (socket
	 * activation) and stops it when the handle is closed; qemu-nbd also
	 * exits by itself when we go away. */
	if (nbd_connect_systemd_socket_activation(f->h, argv) == -1)
		return nbd_fail(s, "cannot start qemu-nbd for");
	return 0;
}

static void nbd_src_free(struct nbd_src *f)
{
	if (!f)
		return;
	if (f->h) {
		if (nbd_aio_is_ready(f->h))
			nbd_shutdown(f->h, 0);
		nbd_close(f->h);
	}
	free(f->alloc.end);
	free(f->alloc.flags);
	free(f->dirty.end);
	free(f->dirty.flags);
	free(f);
}

static int nbd_open(struct ferry_source *s, const char *spec)
{
	const struct ferry_backup_opts *o = s->opts;
	struct nbd_src *f = calloc(1, sizeof(*f));
	int64_t size, mx;
	int e;

	if (!f)
		return FERRY_E_NOMEM;
	s->state = f;
	if (!(f->h = nbd_create())) {
		e = nbd_fail(s, "cannot create an NBD handle for");
		goto fail;
	}
	if (nbd_add_meta_context(f->h, ALLOC_CTX) == -1) {
		e = nbd_fail(s, "NBD");
		goto fail;
	}
	if (o && o->bitmap) {
		if (strlen(o->bitmap) > FERRY_NAME_MAX || !*o->bitmap) {
			e = ferry_error(FERRY_E_INVAL, "bitmap name '%s' is invalid", o->bitmap);
			goto fail;
		}
		snprintf(f->dirty_ctx, sizeof(f->dirty_ctx), DIRTY_PREFIX "%s", o->bitmap);
	}
	if (!strncmp(spec, "qcow2:", 6)) {
		if ((e = open_qcow2(s, f, spec + 6)) != 0)
			goto fail;
	} else {
		if (f->dirty_ctx[0] && nbd_add_meta_context(f->h, f->dirty_ctx) == -1) {
			e = nbd_fail(s, "NBD");
			goto fail;
		}
		if (nbd_connect_uri(f->h, spec) == -1) {
			e = nbd_fail(s, "cannot connect to");
			goto fail;
		}
	}
	if ((size = nbd_get_size(f->h)) < 0) {
		e = nbd_fail(s, "cannot get the size of");
		goto fail;
	}
	s->size = (uint64_t)size;
	f->have_alloc = nbd_can_meta_context(f->h, ALLOC_CTX) == 1;
	f->have_dirty = f->dirty_ctx[0] && nbd_can_meta_context(f->h, f->dirty_ctx) == 1;
	mx = nbd_get_block_size(f->h, LIBNBD_SIZE_MAXIMUM);
	f->pread_max = mx > 0 && mx < PREAD_MAX ? (uint64_t)mx : PREAD_MAX;
	return 0;
fail:
	nbd_src_free(f);
	s->state = NULL;
	return e;
}

/* ---- change tracking ---------------------------------------------------- */

const char *ferry_extra_val(const char *extra, const char *key, char *out,
			    size_t len)
{
	size_t kl = strlen(key);

	for (const char *p = extra; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);

		if (ll > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			size_t vl = ll - kl - 1 < len - 1 ? ll - kl - 1 : len - 1;

			memcpy(out, p + kl + 1, vl);
			out[vl] = 0;
			return out;
		}
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static void put_extra(struct ferry_source *s, const char *key, const char *val)
{
	size_t n = strlen(s->extra);

	if (n + strlen(key) + strlen(val) + 2 <= FERRY_EXTRA_MAX)
		snprintf(s->extra + n, sizeof(s->extra) - n, "%s=%s\n", key, val);
}

/* Why the dirty bitmap cannot stand for the changes since BASE, or NULL. */
static const char *chain_broken(struct ferry_source *s,
				const struct ferry_point *base, char *why,
				size_t len, unsigned long long *gen)
{
	struct nbd_src *f = s->state;
	const char *bm = s->opts->bitmap;
	char cp[FERRY_NAME_MAX + 1], g[32];

	if (f->bitmap_bad) {
		snprintf(why, len, "%s", f->bitmap_why);
		return why;
	}
	if (!f->have_dirty) {
		snprintf(why, len, "the source does not export bitmap '%s' (missing, or not exported: qemu-nbd -B / block-export-add bitmaps)",
			 bm);
		return why;
	}
	if (!base)
		return NULL; /* the first point: a full read, nothing to say */
	if (!ferry_extra_val(base->extra, "checkpoint", cp, sizeof(cp)) ||
	    !ferry_extra_val(base->extra, "bitmap_generation", g, sizeof(g))) {
		snprintf(why, len,
			 "the base point %s names no checkpoint bitmap (it was not taken with change tracking, or its bitmap was missing)",
			 base->id);
		return why;
	}
	if (strcmp(cp, bm)) {
		snprintf(why, len,
			 "the base point %s says the writes after it are in bitmap '%s', not '%s' (broken chain)",
			 base->id, cp, bm);
		return why;
	}
	if (strcmp(base->source, s->spec)) {
		snprintf(why, len, "the base point %s was taken from another source (%.300s)",
			 base->id, base->source);
		return why;
	}
	if (base->disk_size != s->size) {
		snprintf(why, len, "the disk size changed since the base point %s (%llu to %llu bytes)",
			 base->id, (unsigned long long)base->disk_size,
			 (unsigned long long)s->size);
		return why;
	}
	*gen = strtoull(g, NULL, 10) + 1;
	return NULL;
}

static int nbd_prepare(struct ferry_source *s, const struct ferry_point *base)
{
	struct nbd_src *f = s->state;
	const struct ferry_backup_opts *o = s->opts;
	const char *cp = o ? (o->checkpoint ? o->checkpoint : o->bitmap) : NULL;
	unsigned long long gen = 0;
	char why[512], num[32];

	if (o && o->bitmap) {
		if (chain_broken(s, base, why, sizeof(why), &gen)) {
			ferry_source_warn(s, "change tracking: %s; reading everything", why);
			gen = 0;
		} else if (base) {
			f->use_dirty = 1;
		}
	}
	if (f->use_dirty)
		put_extra(s, "bitmap", o->bitmap);
	/* A checkpoint is recorded only when its bitmap is known to exist:
	 * one made later would miss the writes in between. */
	if (cp && ((o->bitmap && !strcmp(cp, o->bitmap))
			   ? f->bitmap_bad || !f->have_dirty
			   : f->checkpoint_missing))
		cp = NULL;
	if (cp) {
		snprintf(num, sizeof(num), "%llu", gen);
		put_extra(s, "bitmap_generation", num);
		put_extra(s, "checkpoint", cp);
	}
	return f->use_dirty;
}

/* ---- reading ------------------------------------------------------------ */

static int nbd_pread_src(struct ferry_source *s, uint64_t off, void *buf,
			 size_t len)
{
	struct nbd_src *f = s->state;
	uint8_t *p = buf;

	while (len) {
		size_t n = len < f->pread_max ? len : (size_t)f->pread_max;

		if (nbd_pread(f->h, p, n, off, 0) == -1)
			return ferry_error(FERRY_E_SOURCE, "read %s at offset %llu: %s",
					   s->spec, (unsigned long long)off,
					   nbd_get_error() ? nbd_get_error() : "error");
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int nbd_read(struct ferry_source *s, uint64_t off, void *buf,
		    size_t len, int *kind)
{
	struct nbd_src *f = s->state;
	uint64_t end = off + len;

	if (atomic_load(&ferry_cancelled))
		return ferry_error(FERRY_E_INTERRUPTED, "backup interrupted");
	/* A block that reads as zeros is zero whatever the bitmap says. */
	if (f->have_alloc && !f->alloc.failed) {
		if (ec_ensure(s, &f->alloc, off, end) != 0) {
			ferry_source_warn(s, "allocation map: %s; reading every block",
					  ferry_last_error());
			f->alloc.failed = 1;
		} else if (ec_test(&f->alloc, off, end, LIBNBD_STATE_ZERO, 1)) {
			*kind = FERRY_BLK_ZERO;
			return 0;
		}
	}
	if (f->use_dirty) {
		/* Without the bitmap's word, a block is read: never assumed. */
		if (ec_ensure(s, &f->dirty, off, end) != 0) {
			ferry_source_warn(s, "change tracking: %s; reading the rest of the disk",
					  ferry_last_error());
			f->use_dirty = 0;
		} else if (!ec_test(&f->dirty, off, end, QEMU_DIRTY, 0)) {
			*kind = FERRY_BLK_UNCHANGED;
			return 0;
		}
	}
	*kind = FERRY_BLK_DATA;
	return nbd_pread_src(s, off, buf, len);
}

static void nbd_close_src(struct ferry_source *s)
{
	nbd_src_free(s->state);
	s->state = NULL;
}

const struct ferry_source_ops ferry_source_nbd_ops = {
	.name = "nbd",
	.open = nbd_open,
	.prepare = nbd_prepare,
	.read = nbd_read,
	.pread = nbd_pread_src,
	.close = nbd_close_src,
};
