/* restore_nbd.c - restore into a disk reached over NBD: a qcow2 image
 * (qcow2:PATH, through a writable qemu-nbd of our own on a private
 * socket) or an NBD export (nbd://, nbd+unix://).  Quick rollback reads
 * the target only where it may differ from the point: with a QEMU dirty
 * bitmap that has recorded every write since the point's checkpoint
 * (--bitmap), only its dirty extents are read, compared page by page with
 * the point's checked bytes, and only the pages that differ are written
 * (docs/instant-recovery.md, "Quick rollback"). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libnbd.h>

#include "vmsrc.h"

#define ALLOC_CTX "base:allocation"
#define DIRTY_PREFIX "qemu:dirty-bitmap:"
#define WINDOW (64ull << 20) /* block status asked per window */
#define PAGE 4096u
#define QEMU_DIRTY 1u

struct ext {
	uint64_t start, len;
	uint32_t flags;
};

struct extlist {
	struct ext *v;
	size_t n, cap;
	uint64_t to; /* covered up to here */
};

struct rnbd {
	struct nbd_handle *h;
	const char *spec;
	char dirty_ctx[FERRY_NAME_MAX + sizeof(DIRTY_PREFIX) + 1];
	int have_alloc, use_dirty, can_zero;
	struct extlist alloc, dirty;
	uint64_t size;
};

static int nfail(struct rnbd *r, const char *what)
{
	return ferry_error(FERRY_E_TARGET, "%s %s: %s", what, r->spec,
			   nbd_get_error() ? nbd_get_error() : "unknown error");
}

static int ext_push(struct extlist *l, uint64_t start, uint64_t len,
		    uint32_t flags)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 256;
		struct ext *nv;

		if (nc > (64u << 20) / sizeof(*nv))
			return -1; /* bounded: one window's extents */
		if (!(nv = realloc(l->v, nc * sizeof(*nv))))
			return -1;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = (struct ext){ start, len, flags };
	l->to = start + len;
	return 0;
}

static int extent_cb(void *ud, const char *ctx, uint64_t offset,
		     uint32_t *entries, size_t nr, int *error)
{
	struct rnbd *r = ud;
	struct extlist *l = NULL;

	if (!strcmp(ctx, ALLOC_CTX))
		l = &r->alloc;
	else if (r->use_dirty && !strcmp(ctx, r->dirty_ctx))
		l = &r->dirty;
	if (!l || *error || l->to != offset)
		return 0;
	for (size_t i = 0; i + 1 < nr; i += 2) {
		if (entries[i] == 0)
			break;
		if (ext_push(l, l->to, entries[i], entries[i + 1]) != 0) {
			*error = ENOMEM;
			return -1;
		}
	}
	return 0;
}

/* Fill the extent lists for [off, end). */
static int window_status(struct rnbd *r, uint64_t off, uint64_t end)
{
	r->alloc.n = r->dirty.n = 0;
	r->alloc.to = r->dirty.to = off;
	for (int guard = 0; guard < 100000; guard++) {
		uint64_t at = end;
		nbd_extent_callback cb = { .callback = extent_cb, .user_data = r };

		if (r->have_alloc && r->alloc.to < at)
			at = r->alloc.to;
		if (r->use_dirty && r->dirty.to < at)
			at = r->dirty.to;
		if (at >= end)
			return 0;
		if (nbd_block_status(r->h, end - at, at, cb, 0) == -1)
			return nfail(r, "block status of");
		if ((!r->have_alloc || r->alloc.to <= at) &&
		    (!r->use_dirty || r->dirty.to <= at))
			return ferry_error(FERRY_E_TARGET,
					   "%s: the server returned no extents at offset %llu",
					   r->spec, (unsigned long long)at);
	}
	return ferry_error(FERRY_E_TARGET, "%s: block status does not advance",
			   r->spec);
}

/* 1 when every byte of [off, end) has FLAG in L. */
static int all_have(const struct extlist *l, uint64_t off, uint64_t end,
		    uint32_t flag)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct ext *x = &l->v[i];

		if (x->start + x->len <= off)
			continue;
		if (x->start >= end)
			break;
		if (!(x->flags & flag))
			return 0;
	}
	return 1;
}

/* ---- opening the target ----------------------------------------------- */

struct fd_rd {
	int fd;
};

static int fd_read(void *arg, uint64_t off, void *buf, size_t len)
{
	struct fd_rd *f = arg;
	ssize_t n = ferry_pread_full(f->fd, buf, len, (off_t)off);

	if (n < 0 || (size_t)n != len)
		return ferry_error(FERRY_E_CORRUPT, "short read of the image header");
	return 0;
}

/* Is BITMAP in the qcow2 image PATH and consistent?  1 yes, 0 no (WHY). */
static int qcow2_bitmap_ok(const char *path, const char *bitmap, char *why,
			   size_t wl)
{
	struct ferry_qcow2_bitmap b;
	struct fd_rd f = { open(path, O_RDONLY | O_CLOEXEC) };
	struct stat st;
	int e;

	if (f.fd < 0 || fstat(f.fd, &st) != 0) {
		snprintf(why, wl, "cannot read %.400s: %s", path, strerror(errno));
		if (f.fd >= 0)
			close(f.fd);
		return 0;
	}
	e = ferry_qcow2_find_bitmap(fd_read, &f, (uint64_t)st.st_size, bitmap, &b);
	close(f.fd);
	if (e < 0) {
		snprintf(why, wl, "%s", ferry_last_error());
		return 0;
	}
	if (e == 0) {
		snprintf(why, wl, "the image has no bitmap '%s'", bitmap);
		return 0;
	}
	if (b.flags & FERRY_QCOW2_BITMAP_IN_USE) {
		snprintf(why, wl, "bitmap '%s' is inconsistent (QEMU did not close the image cleanly)",
			 bitmap);
		return 0;
	}
	return 1;
}

static void warn(const struct ferry_restore_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void warn(const struct ferry_restore_opts *o, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!o || !o->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o->warn(msg, o->warn_arg);
}

/* Connect to TARGET; *CANON: the spec a backup of it records. */
static int img_rd(void *arg, uint64_t off, void *buf, size_t len)
{
	return ferry_image_pread(arg, buf, len, off);
}

/* Could the unused-block filter have dropped anything of P: does it hold
 * a swap partition or an ext file system? */
static int may_have_dropped(struct ferry_image *img, const struct ferry_point *p)
{
	struct ferry_ptable *pt = malloc(sizeof(*pt));
	int r = 1;

	if (!pt)
		return 1;
	if (ferry_ptable_read(img_rd, img, p->disk_size, pt) == 0) {
		r = ferry_extfs_probe(img_rd, img, 0, p->disk_size);
		for (int i = 0; i < pt->count && !r; i++)
			r = pt->part[i].kind == FERRY_PART_SWAP ||
			    ferry_extfs_probe(img_rd, img, pt->part[i].start,
					      pt->part[i].size);
	}
	free(pt);
	return r;
}

static int target_open(struct rnbd *r, const char *target,
		       const struct ferry_point *p, struct ferry_image *img,
		       const struct ferry_restore_opts *o, char **canon)
{
	const char *bm = o ? o->bitmap : NULL;
	char why[600] = "", cp[FERRY_NAME_MAX + 1];
	int want_dirty = 0;
	int64_t size;

	if (!(r->h = nbd_create()))
		return nfail(r, "cannot create an NBD handle for");
	if (nbd_add_meta_context(r->h, ALLOC_CTX) == -1)
		return nfail(r, "NBD");
	if (bm) {
		if (!*bm || strlen(bm) > FERRY_NAME_MAX)
			return ferry_error(FERRY_E_INVAL, "bitmap name '%s' is invalid", bm);
		snprintf(r->dirty_ctx, sizeof(r->dirty_ctx), DIRTY_PREFIX "%s", bm);
		want_dirty = 1;
	}
	if (!strncmp(target, "qcow2:", 6)) {
		const char *bin = getenv("FERRY_QEMU_NBD");
		char abs[PATH_MAX], *argv[10];
		int argc = 0;

		if (!realpath(target + 6, abs))
			return ferry_error(errno == ENOENT ? FERRY_E_NOTFOUND : FERRY_E_TARGET,
					   "restore target %s: %s", target + 6,
					   strerror(errno));
		if (asprintf(canon, "qcow2:%s", abs) < 0)
			return FERRY_E_NOMEM;
		if (want_dirty && !qcow2_bitmap_ok(abs, bm, why, sizeof(why)))
			want_dirty = 0;
		argv[argc++] = (char *)(bin && *bin ? bin : "qemu-nbd");
		argv[argc++] = "--format=qcow2";
		argv[argc++] = "--shared=1";
		argv[argc++] = "--discard=unmap";
		if (want_dirty) {
			argv[argc++] = "-B";
			argv[argc++] = (char *)bm;
		}
		argv[argc++] = abs;
		argv[argc] = NULL;
		if (want_dirty && nbd_add_meta_context(r->h, r->dirty_ctx) == -1)
			return nfail(r, "NBD");
		if (nbd_connect_systemd_socket_activation(r->h, argv) == -1)
			return ferry_error(FERRY_E_TARGET,
					   "cannot open %s through qemu-nbd (is a VM still running on it? qemu-nbd's own message is above): %s",
					   target, nbd_get_error() ? nbd_get_error() : "unknown error");
	} else {
		if (!(*canon = strdup(target)))
			return FERRY_E_NOMEM;
		if (want_dirty && nbd_add_meta_context(r->h, r->dirty_ctx) == -1)
			return nfail(r, "NBD");
		if (nbd_connect_uri(r->h, target) == -1)
			return nfail(r, "cannot connect to");
	}
	if (nbd_is_read_only(r->h) == 1)
		return ferry_error(FERRY_E_TARGET, "restore target %s is read-only", target);
	if ((size = nbd_get_size(r->h)) < 0)
		return nfail(r, "cannot get the size of");
	r->size = (uint64_t)size;
	if (r->size != p->disk_size)
		return ferry_error(FERRY_E_TARGET,
				   "restore target %s has %llu bytes, the restore point %llu (an NBD target is not resized)",
				   target, (unsigned long long)r->size,
				   (unsigned long long)p->disk_size);
	r->have_alloc = nbd_can_meta_context(r->h, ALLOC_CTX) == 1;
	r->can_zero = nbd_can_zero(r->h) == 1;
	if (!bm)
		return 0;
	/* May the bitmap stand for every write since the point? */
	if (!want_dirty) {
		/* WHY says it */
	} else if (nbd_can_meta_context(r->h, r->dirty_ctx) != 1) {
		snprintf(why, sizeof(why), "the target does not export bitmap '%s' (missing, or not exported: qemu-nbd -B / block-export-add bitmaps)",
			 bm);
	} else if (!ferry_extra_val(p->extra, "checkpoint", cp, sizeof(cp))) {
		snprintf(why, sizeof(why), "restore point %s names no checkpoint bitmap (it was not taken with change tracking)",
			 p->id);
	} else if (strcmp(cp, bm)) {
		snprintf(why, sizeof(why), "restore point %s says the writes after it are in bitmap '%s', not '%s'",
			 p->id, cp, bm);
	} else if (strcmp(p->source, *canon)) {
		snprintf(why, sizeof(why), "restore point %s was taken from another disk (%.300s)",
			 p->id, p->source);
	} else {
		r->use_dirty = 1;
	}
	if (!r->use_dirty)
		warn(o, "bitmap: %s; comparing every block", why);
	else if (ferry_extra_val(p->extra, "filter", cp, sizeof(cp)) && *cp &&
		 strcmp(cp, "none") && may_have_dropped(img, p))
		warn(o, "restore point %s dropped unused blocks (filter=%s): where the VM did not write, they keep the disk's content instead of the point's zeros (the file systems are the same)",
		     p->id, cp);
	return 0;
}

/* ---- the walk ------------------------------------------------------------ */

struct walk {
	struct rnbd *r;
	struct ferry_image *img;
	const struct ferry_repo *repo; /* its id key, when encrypted */
	const struct ferry_restore_opts *o;
	struct ferry_restore_result *res;
	const struct ferry_point *p;
	uint8_t *pbuf, *tbuf;
	uint64_t bad;
	int bad_err;
};

static int put(struct walk *w, const uint8_t *src, uint64_t len, uint64_t off)
{
	int rc = w->r->can_zero && ferry_is_zero(src, (size_t)len)
			 ? nbd_zero(w->r->h, len, off, 0)
			 : nbd_pwrite(w->r->h, src, (size_t)len, off, 0);

	if (rc == -1)
		return ferry_error(FERRY_E_TARGET, "write %s at offset %llu: %s",
				   w->r->spec, (unsigned long long)off,
				   nbd_get_error() ? nbd_get_error() : "error");
	w->res->bytes_written += len;
	return 0;
}

/* The target's [a, b) into tbuf (block at B0); extents it reports as
 * zeros are not read. */
static int read_range(struct walk *w, uint64_t b0, uint64_t a, uint64_t b)
{
	uint8_t *tp = w->tbuf + (a - b0);
	uint64_t len = b - a;

	if (w->r->have_alloc && all_have(&w->r->alloc, a, b, LIBNBD_STATE_ZERO)) {
		memset(tp, 0, (size_t)len);
		return 0;
	}
	if (nbd_pread(w->r->h, tp, (size_t)len, a, 0) == -1)
		return ferry_error(FERRY_E_TARGET, "read %s at offset %llu: %s",
				   w->r->spec, (unsigned long long)a,
				   nbd_get_error() ? nbd_get_error() : "error");
	w->res->bytes_compared += len;
	return 0;
}

/* Compare [a, b) of the block at B0 (point bytes in pbuf, the target's
 * in tbuf) and write the pages that differ.  1 when anything was
 * written. */
static int diff_write(struct walk *w, uint64_t b0, uint64_t a, uint64_t b)
{
	uint8_t *pp = w->pbuf + (a - b0), *tp = w->tbuf + (a - b0);
	uint64_t len = b - a, run = 0, at = 0, written = 0;
	int wrote = 0, e;

	/* Runs of differing pages. */
	for (uint64_t o = 0; o < len; o += PAGE) {
		uint64_t n = len - o < PAGE ? len - o : PAGE;
		int diff = memcmp(pp + o, tp + o, (size_t)n) != 0;

		if (diff) {
			if (!run)
				at = o;
			run += n;
		}
		if (run && (!diff || o + n == len)) {
			if ((e = put(w, pp + at, run, a + at)) != 0)
				return e;
			written += run;
			wrote = 1;
			run = 0;
		}
	}
	w->res->bytes_unchanged += len - written;
	return wrote;
}

static int do_block(struct walk *w, uint64_t index, int changed_only)
{
	const struct ferry_point *p = w->p;
	uint64_t b0 = index * p->block_size;
	uint64_t blen = p->disk_size - b0 < p->block_size ? p->disk_size - b0
							  : p->block_size;
	uint8_t hash[FERRY_HASH_LEN];
	uint64_t dirty_len = 0;
	int kind, e, wrote = 0;

	if ((kind = ferry_image_entry(w->img, index, hash)) < 0) {
		if (kind != FERRY_E_CORRUPT && kind != FERRY_E_MISSING)
			return kind;
		/* A damaged delta record: reported, never written. */
		w->bad++;
		if (!w->bad_err || kind == FERRY_E_MISSING)
			w->bad_err = kind;
		return 0;
	}
	if (kind == 0)
		w->res->bytes_zero += blen;
	if (changed_only && w->r->use_dirty &&
	    !all_have(&w->r->dirty, b0, b0 + blen, QEMU_DIRTY)) {
		/* Any dirty byte at all? */
		int any = 0;

		for (size_t i = 0; i < w->r->dirty.n && !any; i++) {
			const struct ext *x = &w->r->dirty.v[i];

			if (x->start + x->len > b0 && x->start < b0 + blen &&
			    (x->flags & QEMU_DIRTY))
				any = 1;
		}
		if (!any) {
			w->res->bytes_clean += blen;
			return 0;
		}
	}
	if (changed_only && !w->r->use_dirty) {
		/* No bitmap: the target's block is read and hashed first; the
		 * point's block is fetched only when they differ. */
		uint8_t th[FERRY_HASH_LEN];
		int same;

		if ((e = read_range(w, b0, b0, b0 + blen)) != 0)
			return e;
		if (kind == 0) {
			same = ferry_is_zero(w->tbuf, (size_t)blen);
		} else {
			if ((e = ferry_repo_block_id(w->repo, w->tbuf, (size_t)blen,
						     th)) != 0)
				return e;
			same = !memcmp(th, hash, FERRY_HASH_LEN);
		}
		if (same) {
			w->res->bytes_unchanged += blen;
			return 0;
		}
	}
	if (kind == 0) {
		memset(w->pbuf, 0, (size_t)blen);
	} else if ((e = ferry_image_pread(w->img, w->pbuf, (size_t)blen, b0)) != 0) {
		if (e != FERRY_E_CORRUPT && e != FERRY_E_MISSING)
			return e;
		/* Reported through the image's callback; never written. */
		w->bad++;
		if (!w->bad_err || e == FERRY_E_MISSING)
			w->bad_err = e;
		return 0;
	}
	if (!changed_only) {
		if ((e = put(w, w->pbuf, blen, b0)) != 0)
			return e;
		w->res->blocks_written++;
		return 0;
	}
	if (!w->r->use_dirty) {
		wrote = diff_write(w, b0, b0, b0 + blen);
	} else {
		/* Only the dirty extents: the rest is as it was at the point. */
		for (size_t i = 0; i < w->r->dirty.n && wrote >= 0; i++) {
			const struct ext *x = &w->r->dirty.v[i];
			uint64_t a = x->start > b0 ? x->start : b0;
			uint64_t b = x->start + x->len < b0 + blen ? x->start + x->len
								   : b0 + blen;
			int r;

			if (a >= b || !(x->flags & QEMU_DIRTY))
				continue;
			dirty_len += b - a;
			r = read_range(w, b0, a, b);
			if (r == 0)
				r = diff_write(w, b0, a, b);
			wrote = r < 0 ? r : wrote | r;
		}
		w->res->bytes_clean += blen - dirty_len;
	}
	if (wrote < 0)
		return wrote;
	if (wrote)
		w->res->blocks_written++;
	return 0;
}

static void on_bad(const struct ferry_bad_block *b, void *arg)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	const struct ferry_restore_opts *o = arg;

	if (o && o->bad) {
		pthread_mutex_lock(&mu); /* workers report one at a time */
		o->bad(b, o->bad_arg);
		pthread_mutex_unlock(&mu);
	}
}

struct pwalk {
	struct walk *w; /* one per worker */
	int changed_only;
};

static int work_fn(void *item, int worker, void *arg)
{
	struct pwalk *pw = arg;

	if (atomic_load(&ferry_cancelled))
		return ferry_error(FERRY_E_INTERRUPTED, "restore interrupted");
	return do_block(&pw->w[worker], *(uint64_t *)item, pw->changed_only);
}

static void add_res(struct ferry_restore_result *to,
		    const struct ferry_restore_result *r)
{
	to->bytes_written += r->bytes_written;
	to->bytes_zero += r->bytes_zero;
	to->bytes_compared += r->bytes_compared;
	to->bytes_unchanged += r->bytes_unchanged;
	to->blocks_written += r->blocks_written;
	to->bytes_clean += r->bytes_clean;
}

int ferry_restore_nbd(struct ferry_repo *repo, const char *spec,
		      const char *target, const struct ferry_restore_opts *opts,
		      struct ferry_restore_result *res)
{
	struct ferry_image_opts io = { 16, on_bad, (void *)opts };
	struct ferry_image *img = NULL;
	const struct ferry_point *p = NULL;
	struct ferry_restore_result *acc = NULL;
	struct walk *ws = NULL;
	struct pwalk pw;
	struct rnbd r;
	char *canon = NULL;
	double t0 = ferry_mono_seconds(), last = 0;
	int threads = opts && opts->threads > 0 ? opts->threads : ferry_cpu_count();
	uint64_t bad = 0, per_win;
	int e, bad_err = 0;

	/* The CPU work (hashing, decoding, comparing) runs in parallel; the
	 * one NBD connection carries every worker's requests. */
	if (threads > 8)
		threads = 8;
	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	r.spec = target;
	if ((e = ferry_image_open(repo, spec, &io, &img)) != 0)
		goto out;
	p = ferry_image_point(img);
	if ((e = target_open(&r, target, p, img, opts, &canon)) != 0)
		goto out;
	res->bitmap_used = r.use_dirty;
	ws = calloc((size_t)threads, sizeof(*ws));
	acc = calloc((size_t)threads, sizeof(*acc));
	if (!ws || !acc) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	for (int k = 0; k < threads; k++) {
		ws[k].r = &r;
		ws[k].img = img;
		ws[k].repo = repo;
		ws[k].o = opts;
		ws[k].p = p;
		ws[k].res = &acc[k];
		if (!(ws[k].pbuf = malloc(p->block_size)) ||
		    !(ws[k].tbuf = malloc(p->block_size))) {
			e = FERRY_E_NOMEM;
			goto out;
		}
	}
	pw.w = ws;
	pw.changed_only = opts && opts->changed_only;
	/* Windows of whole blocks: a block's extents are all in one; the
	 * extent lists stay unchanged while the window's blocks are done. */
	per_win = WINDOW / p->block_size ? WINDOW / p->block_size : 1;
	for (uint64_t i0 = 0; i0 < p->nblocks; i0 += per_win) {
		uint64_t off = i0 * p->block_size;
		uint64_t i1 = i0 + per_win < p->nblocks ? i0 + per_win : p->nblocks;
		uint64_t end = i1 * p->block_size < p->disk_size ? i1 * p->block_size
								 : p->disk_size;
		struct ferry_workq *q;
		int qe;

		if (pw.changed_only && (e = window_status(&r, off, end)) != 0)
			goto out;
		if ((e = ferry_workq_new(threads, sizeof(uint64_t), (size_t)threads * 2,
					 work_fn, &pw, &q)) != 0)
			goto out;
		for (uint64_t i = i0; i < i1 && e == 0; i++)
			e = ferry_workq_push(q, &i);
		qe = ferry_workq_finish(q);
		if (qe)
			e = qe;
		if (e)
			goto out;
		if (opts && opts->progress) {
			double now = ferry_mono_seconds();

			if (now - last >= 0.25 || end == p->disk_size) {
				struct ferry_progress pr = { end, p->disk_size, now - t0 };

				opts->progress(&pr, opts->progress_arg);
				last = now;
			}
		}
	}
	if (nbd_flush(r.h, 0) == -1 && nbd_can_flush(r.h) == 1) {
		e = nfail(&r, "flush");
		goto out;
	}
out:
	for (int k = 0; ws && k < threads; k++) {
		add_res(res, &acc[k]);
		bad += ws[k].bad;
		if (ws[k].bad_err && (!bad_err || ws[k].bad_err == FERRY_E_MISSING))
			bad_err = ws[k].bad_err;
		free(ws[k].pbuf);
		free(ws[k].tbuf);
	}
	if (!e && bad)
		e = ferry_error(bad_err,
				"%llu block(s) of restore point %s could not be restored; they were not written",
				(unsigned long long)bad, p->id);
	res->bytes_total = p ? p->disk_size : 0;
	res->bad_blocks = bad;
	res->seconds = ferry_mono_seconds() - t0;
	if (r.h) {
		if (nbd_aio_is_ready(r.h))
			nbd_shutdown(r.h, 0);
		nbd_close(r.h);
	}
	free(r.alloc.v);
	free(r.dirty.v);
	free(ws);
	free(acc);
	free(canon);
	ferry_image_free(img);
	return e;
}
