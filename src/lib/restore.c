/* restore.c - writes a restore point back to a file (sparse: zero blocks
 * stay holes) or a block device, fetching and checking every chunk on all
 * cores.  A chunk that fails its check is reported and never written. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsrc.h"

struct rjob {
	struct ferry_repo *repo;
	const struct ferry_restore_opts *opts;
	const char *point_id;
	int fd;
	/* The same target opened with O_DIRECT (-1 if not possible): whole
	 * blocks go from the worker's buffer to the disk, with no copy
	 * into the page cache and nothing left for the final fsync to
	 * flush but the metadata.  DIRECT is cleared when the file system
	 * refuses an O_DIRECT write; the rest then goes through FD. */
	int dfd;
	atomic_int direct;
	uint64_t disk_size;
	uint32_t bs;
	struct ferry_codec_ctx **ctx;
	uint8_t **in, **out;
	uint8_t **rec; /* delta records (kind-2 entries, delta.c) */
	size_t incap;
	pthread_mutex_t mu;
	uint64_t bad, written, blocks_written, compared, unchanged;
	int bad_err;
	int changed_only, is_dev;
	const uint8_t *zeros;
};

struct ritem {
	uint64_t index;
	int kind;
	uint8_t hash[FERRY_HASH_LEN];
};

static void report_bad(struct rjob *j, uint64_t index, const uint8_t *hash,
		       int err, const char *detail)
{
	pthread_mutex_lock(&j->mu);
	j->bad++;
	if (!j->bad_err || err == FERRY_E_MISSING)
		j->bad_err = err;
	if (j->opts && j->opts->bad) {
		struct ferry_bad_block b = { j->point_id, index,
					     index * j->bs, hash, err, detail };

		j->opts->bad(&b, j->opts->bad_arg);
	}
	pthread_mutex_unlock(&j->mu);
}

static int write_err(int r, uint64_t off)
{
	return ferry_error(r == -ENOSPC ? FERRY_E_NOSPC : FERRY_E_TARGET,
			   "write restore target at offset %llu: %s",
			   (unsigned long long)off, strerror(-r));
}

/* Quick rollback: read the target's block and compare it with the
 * point's.  0: equal (or zeroed here), 1: the chunk must be written,
 * < 0: error. */
static int compare_block(struct rjob *j, const struct ritem *it, int worker)
{
	uint64_t off = it->index * j->bs;
	size_t len = j->disk_size - off < j->bs ? (size_t)(j->disk_size - off)
						 : j->bs;
	uint8_t h[FERRY_HASH_LEN];
	ssize_t n = ferry_pread_full(j->fd, j->out[worker], len, (off_t)off);
	int same, r;

	if (n < 0)
		return ferry_error(FERRY_E_TARGET,
				   "read restore target at offset %llu: %s",
				   (unsigned long long)off, strerror((int)-n));
	if ((size_t)n < len) /* a file shorter than the disk reads as zeros */
		memset(j->out[worker] + n, 0, len - (size_t)n);
	if (it->kind == FERRY_ENTRY_ZERO) {
		same = ferry_is_zero(j->out[worker], len);
	} else {
		struct ferry_dbufs b = { j->in[worker], j->rec[worker], j->incap,
					 j->bs };
		uint8_t full[FERRY_HASH_LEN];

		/* A delta block: the id of the whole block, from its record
		 * (a damaged one: the block is written, and reported). */
		r = ferry_entry_block_id(j->repo, j->ctx[worker], it->kind,
					 it->hash, &b, full);
		if (r == FERRY_E_CORRUPT || r == FERRY_E_MISSING)
			return 1;
		if (r)
			return r;
		if ((r = ferry_chunk_id(j->ctx[worker], j->out[worker], len, h)) != 0)
			return r;
		same = !memcmp(h, full, FERRY_HASH_LEN);
	}
	pthread_mutex_lock(&j->mu);
	j->compared += len;
	if (same)
		j->unchanged += len;
	pthread_mutex_unlock(&j->mu);
	if (same)
		return 0;
	if (it->kind != FERRY_ENTRY_ZERO)
		return 1;
	/* A zero block that is not zero on the target: punch a hole in a
	 * file, write zeros to a device. */
	if (j->is_dev || fallocate(j->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				   (off_t)off, (off_t)len) < 0) {
		if ((r = ferry_pwrite_all(j->fd, j->zeros, len, (off_t)off)) != 0)
			return write_err(r, off);
	}
	pthread_mutex_lock(&j->mu);
	j->written += len;
	j->blocks_written++;
	pthread_mutex_unlock(&j->mu);
	return 0;
}

static int restore_block(void *item, int worker, void *arg)
{
	struct rjob *j = arg;
	struct ritem *it = item;
	uint64_t off = it->index * j->bs;
	struct ferry_dbufs b = { j->in[worker], j->rec[worker], j->incap, j->bs };
	size_t raw;
	int r;

	if (atomic_load(&ferry_cancelled))
		return ferry_error(FERRY_E_INTERRUPTED, "restore interrupted");
	if (j->changed_only && (r = compare_block(j, it, worker)) != 1)
		return r;
	/* A whole chunk, or a delta block rebuilt and checked (delta.c). */
	r = ferry_block_read(j->repo, j->ctx[worker], it->kind, it->hash, &b,
			     j->out[worker], j->bs, &raw);
	if (r == 0 && raw != (j->disk_size - off < j->bs ? j->disk_size - off
							   : j->bs))
		r = ferry_error(FERRY_E_CORRUPT,
				"chunk length does not fit the block");
	if (r == FERRY_E_CORRUPT || r == FERRY_E_MISSING) {
		report_bad(j, it->index, it->hash, r, ferry_last_error());
		return 0;
	}
	if (r)
		return r;
	r = -EINVAL;
	if (raw == j->bs) {
		if (atomic_load(&j->direct) &&
		    (r = ferry_pwrite_all(j->dfd, j->out[worker], raw,
					  (off_t)off)) == -EINVAL)
			atomic_store(&j->direct, 0); /* and write it buffered */
	}
	if (r == -EINVAL)
		r = ferry_pwrite_all(j->fd, j->out[worker], raw, (off_t)off);
	if (r)
		return write_err(r, off);
	pthread_mutex_lock(&j->mu);
	j->written += raw;
	j->blocks_written++;
	pthread_mutex_unlock(&j->mu);
	return 0;
}

/* Zero a range of a block device (a file target keeps its holes). */
static int zero_range(int fd, uint64_t off, uint64_t len, const uint8_t *zeros,
		      uint32_t bs)
{
	uint64_t range[2] = { off, len };

	if (ioctl(fd, BLKZEROOUT, range) == 0)
		return 0;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < bs ? (size_t)(len - done) : bs;
		int r = ferry_pwrite_all(fd, zeros, n, (off_t)(off + done));

		if (r)
			return r;
		done += n;
	}
	return 0;
}

static int open_target(const char *target, uint64_t size, int *fd, int *is_dev,
		       int changed_only)
{
	struct stat st;
	int mode = changed_only ? O_RDWR : O_WRONLY;

	*is_dev = 0;
	if (changed_only && stat(target, &st) < 0)
		return ferry_error(FERRY_E_TARGET,
				   "--changed-only: %s: %s (give an existing disk to roll back)",
				   target, strerror(errno));
	if (stat(target, &st) == 0 && S_ISBLK(st.st_mode)) {
		uint64_t dsz = 0;

		*fd = open(target, mode | O_CLOEXEC);
		if (*fd < 0)
			goto fail;
		if (ioctl(*fd, BLKGETSIZE64, &dsz) == 0 && dsz < size) {
			close(*fd);
			return ferry_error(FERRY_E_TARGET,
					   "block device %s has %llu bytes, the restore point needs %llu",
					   target, (unsigned long long)dsz,
					   (unsigned long long)size);
		}
		*is_dev = 1;
		return 0;
	}
	if (stat(target, &st) == 0 && !S_ISREG(st.st_mode))
		return ferry_error(FERRY_E_TARGET,
				   "restore target %s is neither a file nor a block device",
				   target);
	*fd = open(target, changed_only ? O_RDWR | O_CLOEXEC
					: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		   0644);
	if (*fd < 0)
		goto fail;
	if (ftruncate(*fd, (off_t)size) < 0) {
		int e = errno;

		close(*fd);
		return ferry_error(e == ENOSPC || e == EFBIG ? FERRY_E_NOSPC
							     : FERRY_E_TARGET,
				   "size restore target %s: %s", target,
				   strerror(e));
	}
	return 0;
fail:
	return ferry_error(FERRY_E_TARGET, "cannot open restore target %s: %s",
			   target, strerror(errno));
}

/* Entries read ahead of the workers, whose data blocks get their disk
 * space in one fallocate per run (a file target, whole restore). */
#define RESTORE_BATCH 256

/* Allocate the runs of data blocks among B[0..N) in a file target before
 * the workers write them.  O_DIRECT writes that fill holes make ext4
 * allocate block by block and take the inode's lock for each; into
 * allocated (unwritten) extents they run side by side: on bench/run's
 * disk a restore took 2.3-2.9 s instead of 3.2-3.7 s.  Zero blocks stay
 * holes.  Only a hint, except that a full disk is told now, before any
 * write: ENOSPC is an error, other refusals (a file system without
 * fallocate) are not. */
static int prealloc_runs(const struct rjob *j, const struct ritem *b, size_t n,
			 const char *target)
{
	for (size_t k = 0; k < n;) {
		uint64_t off, end;
		size_t e = k;

		if (b[k].kind == FERRY_ENTRY_ZERO) {
			k++;
			continue;
		}
		while (e + 1 < n && b[e + 1].kind != FERRY_ENTRY_ZERO &&
		       b[e + 1].index == b[e].index + 1)
			e++;
		off = b[k].index * j->bs;
		end = (b[e].index + 1) * j->bs;
		if (end > j->disk_size)
			end = j->disk_size;
		if (fallocate(j->fd, FALLOC_FL_KEEP_SIZE, (off_t)off,
			      (off_t)(end - off)) < 0 && errno == ENOSPC)
			return ferry_error(FERRY_E_NOSPC,
					   "restore target %s: no space left for %llu bytes at offset %llu",
					   target, (unsigned long long)(end - off),
					   (unsigned long long)off);
		k = e + 1;
	}
	return 0;
}

int ferry_restore(struct ferry_repo *repo, const char *spec,
		  const char *target, const struct ferry_restore_opts *opts,
		  struct ferry_restore_result *res)
{
	struct ferry_point p;
	struct ferry_mreader *m = NULL;
	struct ferry_workq *q = NULL;
	struct ritem *batch = NULL;
	size_t bi = 0, bn = 0;
	int eof = 0;
	struct rjob j;
	uint8_t *zeros = NULL;
	/* Two workers per CPU by default: a worker waits for its O_DIRECT
	 * write (1 MiB: 2-4 ms on the bench's virtio disk), the other one
	 * of the pair decodes and checks meanwhile, and the disk gets
	 * several writes at once (two 1 MiB O_DIRECT streams there: 680
	 * MB/s against 360 MB/s for one).  Each worker costs its two
	 * block buffers (about 2 MiB). */
	int threads = opts && opts->threads > 0 ? opts->threads
						: 2 * ferry_cpu_count();
	double t0 = ferry_mono_seconds(), last = 0;
	int e, qe, is_dev = 0;

	if (ferry_source_nbd_spec(target))
		return ferry_restore_nbd(repo, spec, target, opts, res);
	if (opts && opts->bitmap) {
		memset(res, 0, sizeof(*res));
		return ferry_error(FERRY_E_INVAL,
				   "--bitmap needs a target that exports the bitmap: qcow2:PATH or an NBD URL, not %s",
				   target);
	}
	memset(res, 0, sizeof(*res));
	memset(&j, 0, sizeof(j));
	j.fd = -1;
	j.dfd = -1;
	atomic_init(&j.direct, 0);
	pthread_mutex_init(&j.mu, NULL);
	if ((e = ferry_repo_need_key(repo)) != 0)
		goto out;
	if ((e = ferry_point_resolve(repo, spec, &p)) != 0)
		goto out;
	if ((e = ferry_mreader_open(repo, p.id, &m, &p)) != 0)
		goto out;
	j.repo = repo;
	j.opts = opts;
	j.point_id = p.id;
	j.disk_size = p.disk_size;
	j.bs = p.block_size;
	j.incap = ferry_chunk_bound(p.block_size);
	j.ctx = calloc((size_t)threads, sizeof(*j.ctx));
	j.in = calloc((size_t)threads, sizeof(*j.in));
	j.out = calloc((size_t)threads, sizeof(*j.out));
	j.rec = calloc((size_t)threads, sizeof(*j.rec));
	if (!j.ctx || !j.in || !j.out || !j.rec) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	for (int k = 0; k < threads; k++) {
		j.ctx[k] = ferry_codec_ctx_for(repo, FERRY_CODEC_NONE, 0);
		j.in[k] = malloc(j.incap);
		/* Aligned for O_DIRECT. */
		if (posix_memalign((void **)&j.out[k], 4096, p.block_size))
			j.out[k] = NULL;
		if (repo->delta)
			j.rec[k] = malloc(p.block_size);
		if (!j.ctx[k] || !j.in[k] || !j.out[k] ||
		    (repo->delta && !j.rec[k])) {
			e = FERRY_E_NOMEM;
			goto out;
		}
	}
	j.changed_only = opts && opts->changed_only;
	if ((e = open_target(target, p.disk_size, &j.fd, &is_dev,
			     j.changed_only)) != 0)
		goto out;
	j.is_dev = is_dev;
	/* A whole restore writes every data block once: straight to the
	 * disk (file systems without O_DIRECT, like tmpfs, refuse the
	 * open; then the page cache it is).  --changed-only reads the
	 * target through the page cache, so it writes through it too. */
	if (!j.changed_only && p.block_size % 4096 == 0 &&
	    (j.dfd = open(target, O_WRONLY | O_DIRECT | O_CLOEXEC)) >= 0)
		atomic_store(&j.direct, 1);
	if ((is_dev || j.changed_only) && !(zeros = calloc(1, p.block_size))) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	j.zeros = zeros;
	if ((e = ferry_workq_new(threads, sizeof(struct ritem), (size_t)threads * 4,
				 restore_block, &j, &q)) != 0)
		goto out;
	if (!(batch = malloc(RESTORE_BATCH * sizeof(*batch)))) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	for (uint64_t i = 0;; i++) {
		struct ritem it;
		int kind;

		if (bi == bn) {
			/* The next entries, and their space (see
			 * prealloc_runs). */
			for (bi = bn = 0; !eof && bn < RESTORE_BATCH; bn++) {
				e = ferry_mreader_next(m, &kind, batch[bn].hash);
				if (e <= 0) {
					eof = 1;
					break;
				}
				batch[bn].index = i + bn;
				batch[bn].kind = kind;
			}
			if (e < 0 || bn == 0)
				break;
			e = 0;
			if (!is_dev && !j.changed_only &&
			    (e = prealloc_runs(&j, batch, bn, target)) != 0)
				break;
		}
		it = batch[bi++];
		kind = it.kind;
		if (j.changed_only) {
			if (kind == FERRY_ENTRY_ZERO)
				res->bytes_zero += p.disk_size - i * p.block_size < p.block_size
							   ? p.disk_size - i * p.block_size
							   : p.block_size;
			if ((e = ferry_workq_push(q, &it)) != 0)
				break;
		} else if (kind == FERRY_ENTRY_ZERO) {
			uint64_t off = i * p.block_size;
			uint64_t len = p.disk_size - off < p.block_size
					       ? p.disk_size - off
					       : p.block_size;

			res->bytes_zero += len;
			if (is_dev && (e = zero_range(j.fd, off, len, zeros,
						      p.block_size)) != 0) {
				e = ferry_error(FERRY_E_TARGET,
						"zero restore target at %llu: %s",
						(unsigned long long)off,
						strerror(-e));
				break;
			}
		} else if ((e = ferry_workq_push(q, &it)) != 0) {
			break;
		}
		if (opts && opts->progress) {
			double now = ferry_mono_seconds();

			if (now - last >= 0.25) {
				struct ferry_progress pr = {
					(i + 1) * (uint64_t)p.block_size,
					p.disk_size, now - t0
				};

				if (pr.done > pr.total)
					pr.done = pr.total;
				opts->progress(&pr, opts->progress_arg);
				last = now;
			}
		}
		if (atomic_load(&ferry_cancelled)) {
			e = ferry_error(FERRY_E_INTERRUPTED, "restore interrupted");
			break;
		}
	}
	qe = ferry_workq_finish(q);
	q = NULL;
	if (qe)
		e = qe;
	if (e)
		goto out;
	if (fsync(j.fd) < 0) {
		e = ferry_error(errno == ENOSPC ? FERRY_E_NOSPC : FERRY_E_TARGET,
				"sync restore target %s: %s", target,
				strerror(errno));
		goto out;
	}
	if (j.bad) {
		e = ferry_error(j.bad_err,
				"%llu block(s) of restore point %s could not be restored; they were not written",
				(unsigned long long)j.bad, p.id);
	}
out:
	if (q)
		ferry_workq_finish(q);
	res->bytes_total = j.disk_size;
	res->bytes_written = j.written;
	res->blocks_written = j.blocks_written;
	res->bytes_compared = j.compared;
	res->bytes_unchanged = j.unchanged;
	res->bad_blocks = j.bad;
	res->seconds = ferry_mono_seconds() - t0;
	if (j.fd >= 0)
		close(j.fd);
	if (j.dfd >= 0)
		close(j.dfd);
	ferry_mreader_free(m);
	for (int k = 0; j.ctx && k < threads; k++)
		ferry_codec_ctx_free(j.ctx[k]);
	for (int k = 0; j.in && k < threads; k++)
		free(j.in[k]);
	for (int k = 0; j.out && k < threads; k++)
		free(j.out[k]);
	for (int k = 0; j.rec && k < threads; k++)
		free(j.rec[k]);
	free(j.rec);
	free(j.ctx);
	free(j.in);
	free(j.out);
	free(zeros);
	free(batch);
	pthread_mutex_destroy(&j.mu);
	return e;
}
