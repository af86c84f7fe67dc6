/* store_local.c - the repository backend for a local directory: chunks
 * under chunks/XX/<sha256>, manifests under points/<id>, each made visible
 * only once complete (O_TMPFILE + linkat, or a temporary name + link). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Hardened repository: new chunks wait here until a sync made them
 * durable, then get the immutable attribute (a full list syncs early). */
#define PEND_MAX 8192

struct local {
	int root_fd, chunks_fd, points_fd, lock_fd;
	atomic_uint tmp_seq;
	atomic_int sub_fd[256]; /* chunks/XX, opened on first use; 0 = not yet */
	int imm_days;           /* hardened repository (immutable_days) */
	atomic_int writer;      /* this handle adds data (holds the shared lock) */
	pthread_mutex_t pend_mu;
	uint8_t (*pend)[FERRY_HASH_LEN];
	size_t npend;
};

static struct local *L(struct ferry_repo *r)
{
	return r->state;
}

static void chunk_rel(const uint8_t h[FERRY_HASH_LEN], char out[68])
{
	char hex[65];

	ferry_hash_hex(h, hex);
	out[0] = hex[0];
	out[1] = hex[1];
	out[2] = '/';
	memcpy(out + 3, hex, 65);
}

/* An anonymous file in DIRFD, or a uniquely named one when the file
 * system lacks O_TMPFILE (then *NAME is set). */
static int tmp_open(struct ferry_repo *r, int dirfd, char name[64], int *fd)
{
	unsigned seq;

	name[0] = 0;
	*fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0444);
	if (*fd >= 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	seq = atomic_fetch_add(&L(r)->tmp_seq, 1);
	snprintf(name, 64, ".tmp-%ld-%u", (long)getpid(), seq);
	*fd = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
		     0444);
	return *fd < 0 ? -errno : 0;
}

/* Give the finished temporary file FD its final name; never replaces an
 * existing file (-EEXIST then). */
static int tmp_link(int dirfd, int fd, const char *name, const char *final)
{
	char proc[64];
	int r = 0;

	if (name[0]) {
		if (linkat(dirfd, name, dirfd, final, 0) < 0)
			r = -errno;
		unlinkat(dirfd, name, 0);
		return r;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, dirfd, final, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	return 0;
}

static int pend_add(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN]);

/* Hardened repository, a handle that adds data: a chunk it finds and
 * will reference must carry the attribute too (one a killed backup wrote
 * never got it), once durable. */
static int has_chunk_imm(struct ferry_repo *r, const char *rel,
			 const uint8_t h[FERRY_HASH_LEN])
{
	struct statx st;

	if (statx(L(r)->chunks_fd, rel, 0, STATX_SIZE, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return ferry_error(FERRY_E_IO, "stat chunk %s: %s", rel,
				   strerror(errno));
	}
	if (st.stx_size <= FERRY_CHUNK_HDR)
		return 0;
	if (!(st.stx_attributes & STATX_ATTR_IMMUTABLE)) {
		int e = pend_add(r, h);

		if (e)
			return e;
	}
	return 1;
}

static int local_has_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN])
{
	char rel[68];
	struct stat st;

	chunk_rel(h, rel);
	if (L(r)->imm_days && atomic_load(&L(r)->writer))
		return has_chunk_imm(r, rel, h);
	if (fstatat(L(r)->chunks_fd, rel, &st, 0) < 0) {
		if (errno == ENOENT)
			return 0;
		return ferry_error(FERRY_E_IO, "stat chunk %s: %s", rel,
				   strerror(errno));
	}
	/* A chunk cut short by a power loss is treated as absent, so the
	 * next backup writes it again. */
	return st.st_size > FERRY_CHUNK_HDR;
}

/* The directory chunks/XX for a chunk, kept open for the repository's
 * lifetime (one open per directory instead of one per chunk). */
static int sub_dir(struct ferry_repo *r, uint8_t first)
{
	struct local *l = L(r);
	int fd = atomic_load(&l->sub_fd[first]), expect = 0;
	char sub[3];

	if (fd > 0)
		return fd;
	snprintf(sub, sizeof(sub), "%02x", first);
	fd = openat(l->chunks_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!atomic_compare_exchange_strong(&l->sub_fd[first], &expect, fd)) {
		close(fd);
		fd = expect;
	}
	return fd;
}

static int local_put_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN],
			   const void *data, size_t len)
{
	char rel[68], name[64];
	int fd, e, dirfd, again = 0;

	chunk_rel(h, rel);
retry:
	dirfd = sub_dir(r, h[0]);
	if (dirfd < 0)
		return ferry_error(FERRY_E_IO, "open chunk dir for %s: %s", rel,
				   strerror(-dirfd));
	if ((e = tmp_open(r, dirfd, name, &fd)) != 0)
		return ferry_error(ferry_errno_code(-e, FERRY_E_IO),
				   "create chunk %s: %s", rel, strerror(-e));
	e = ferry_write_all(fd, data, len);
	/* Start writing the chunk to the disk now, without waiting for it:
	 * the sync before the manifest commit (sync_chunks) then finds
	 * little left to write, instead of every chunk of the backup
	 * (the kernel would start on its own only at dirty_background_ratio
	 * or after 30 s).  Only a hint: durability still comes from that
	 * sync, which reports any write error. */
	if (e == 0)
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (e == 0) {
		e = tmp_link(dirfd, fd, name, rel + 3);
	} else if (name[0]) {
		unlinkat(dirfd, name, 0);
	}
	close(fd);
	if (e == -EEXIST) {
		/* Same content from a concurrent writer, unless an old copy
		 * was cut short: then replace it. */
		if ((e = local_has_chunk(r, h)) != 0)
			return e < 0 ? e : 1;
		/* A cut-short copy holds nothing anyone can read: in a
		 * hardened repository its attribute is lifted to replace it. */
		if (unlinkat(L(r)->chunks_fd, rel, 0) < 0 && errno == EPERM &&
		    L(r)->imm_days && ferry_imm_at(L(r)->chunks_fd, rel, 0) == 0)
			unlinkat(L(r)->chunks_fd, rel, 0);
		if (again++)
			return ferry_error(FERRY_E_IO,
					   "chunk %s is cut short and cannot be replaced",
					   rel + 3);
		goto retry;
	}
	if (e)
		return ferry_error(ferry_errno_code(-e, FERRY_E_IO),
				   "write chunk %s: %s", rel, strerror(-e));
	if (L(r)->imm_days)
		return pend_add(r, h);
	return 0;
}

static int local_get_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN],
			   void *buf, size_t cap, size_t *len)
{
	char rel[68];
	struct stat st;
	ssize_t n;
	int fd;

	chunk_rel(h, rel);
	fd = openat(L(r)->chunks_fd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return ferry_error(FERRY_E_MISSING, "chunk %s is missing",
					   rel + 3);
		return ferry_error(FERRY_E_IO, "open chunk %s: %s", rel + 3,
				   strerror(errno));
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > cap) {
		close(fd);
		return ferry_error(FERRY_E_CORRUPT,
				   "chunk %s has an impossible size", rel + 3);
	}
	n = ferry_pread_full(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (n < 0)
		return ferry_error(FERRY_E_IO, "read chunk %s: %s", rel + 3,
				   strerror((int)-n));
	*len = (size_t)n;
	return 0;
}

static int local_get_chunk_head(struct ferry_repo *r,
				const uint8_t h[FERRY_HASH_LEN], void *buf,
				size_t n)
{
	char rel[68];
	ssize_t got;
	int fd;

	chunk_rel(h, rel);
	fd = openat(L(r)->chunks_fd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ferry_error(errno == ENOENT ? FERRY_E_MISSING : FERRY_E_IO,
				   "open chunk %s: %s", rel + 3, strerror(errno));
	got = ferry_pread_full(fd, buf, n, 0);
	close(fd);
	if (got != (ssize_t)n)
		return ferry_error(FERRY_E_CORRUPT, "chunk %s is truncated",
				   rel + 3);
	return 0;
}

static int local_list_chunks(struct ferry_repo *r, ferry_chunk_list_cb cb,
			     void *arg)
{
	for (int i = 0; i < 256; i++) {
		char sub[3];
		int dfd, ret = 0;
		DIR *d;
		struct dirent *de;

		snprintf(sub, sizeof(sub), "%02x", i);
		dfd = openat(L(r)->chunks_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return ferry_error(FERRY_E_IO, "open chunks/%s: %s", sub,
					   strerror(errno));
		d = fdopendir(dfd);
		if (!d) {
			close(dfd);
			return FERRY_E_NOMEM;
		}
		while (ret == 0 && (de = readdir(d)) != NULL) {
			uint8_t h[FERRY_HASH_LEN];
			struct stat st;

			if (strlen(de->d_name) != 64 ||
			    ferry_hex_decode(de->d_name, h, FERRY_HASH_LEN) ||
			    h[0] != i)
				continue;
			if (fstatat(dfd, de->d_name, &st, 0) < 0)
				continue;
			ret = cb(h, (uint64_t)st.st_size, arg);
		}
		closedir(d);
		if (ret)
			return ret;
	}
	return 0;
}

static int local_sync_chunks(struct ferry_repo *r)
{
	uint8_t (*batch)[FERRY_HASH_LEN] = NULL;
	struct local *l = L(r);
	size_t n = 0;
	int e = 0;

	if (l->imm_days) {
		/* Only chunks put before this sync started are durable after
		 * it: take them first. */
		pthread_mutex_lock(&l->pend_mu);
		batch = l->pend;
		n = l->npend;
		l->pend = NULL;
		l->npend = 0;
		pthread_mutex_unlock(&l->pend_mu);
	}
	if (syncfs(l->chunks_fd) < 0) {
		e = ferry_error(ferry_errno_code(errno, FERRY_E_IO),
				"sync repository: %s", strerror(errno));
		if (n) {
			/* Back in the list, for the next sync. */
			pthread_mutex_lock(&l->pend_mu);
			if (!l->pend) {
				l->pend = batch;
				l->npend = n;
				batch = NULL;
			}
			pthread_mutex_unlock(&l->pend_mu);
		}
		free(batch);
		return e;
	}
	for (size_t i = 0; i < n; i++) {
		char rel[68];
		int ee;

		chunk_rel(batch[i], rel);
		ee = ferry_imm_at(l->chunks_fd, rel, 1);
		if (ee && ee != -ENOENT && !e)
			e = ferry_error(FERRY_E_IO,
					"cannot make chunk %s immutable: %s (a hardened repository is written as root)",
					rel + 3, strerror(-ee));
	}
	free(batch);
	return e;
}

static int pend_add(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN])
{
	struct local *l = L(r);
	int e;

	pthread_mutex_lock(&l->pend_mu);
	while (l->npend == PEND_MAX) {
		pthread_mutex_unlock(&l->pend_mu);
		if ((e = local_sync_chunks(r)) != 0)
			return e;
		pthread_mutex_lock(&l->pend_mu);
	}
	if (!l->pend && !(l->pend = malloc(PEND_MAX * sizeof(*l->pend)))) {
		pthread_mutex_unlock(&l->pend_mu);
		return FERRY_E_NOMEM;
	}
	memcpy(l->pend[l->npend++], h, FERRY_HASH_LEN);
	pthread_mutex_unlock(&l->pend_mu);
	return 0;
}

static int local_point_create(struct ferry_repo *r, const char *id, int *fd,
			      char **tmp)
{
	char name[64];
	int e;

	(void)id;
	if ((e = tmp_open(r, L(r)->points_fd, name, fd)) != 0)
		return ferry_error(ferry_errno_code(-e, FERRY_E_IO),
				   "create manifest in %s/points: %s", r->path,
				   strerror(-e));
	*tmp = strdup(name);
	if (!*tmp) {
		if (name[0])
			unlinkat(L(r)->points_fd, name, 0);
		close(*fd);
		return FERRY_E_NOMEM;
	}
	return 0;
}

static int expiry_put(struct ferry_repo *r, const char *id);

static int local_point_commit(struct ferry_repo *r, const char *id, int fd,
			      const char *tmp)
{
	int e;

	if (fsync(fd) < 0) {
		e = errno;
		goto fail;
	}
	/* Hardened: the expiry is durable and immutable before the point
	 * exists, so no point is ever without one. */
	if (L(r)->imm_days && (e = expiry_put(r, id)) != 0) {
		if (tmp[0])
			unlinkat(L(r)->points_fd, tmp, 0);
		close(fd);
		return e;
	}
	if ((e = -tmp_link(L(r)->points_fd, fd, tmp, id)) != 0)
		goto fail;
	if (fsync(L(r)->points_fd) < 0) {
		/* Not durable, so not committed: a failed backup leaves no
		 * restore point behind. */
		e = errno;
		close(fd);
		unlinkat(L(r)->points_fd, id, 0);
		return ferry_error(ferry_errno_code(e, FERRY_E_IO),
				   "sync %s/points: %s", r->path, strerror(e));
	}
	if (L(r)->imm_days) {
		/* A link to an immutable file is refused, so the attribute
		 * comes after the link; a point that cannot get it is not
		 * committed (nothing pretends to be protected). */
		if ((e = -ferry_imm_fd(fd, 1)) == 0 && fsync(fd) < 0)
			e = errno;
		if (e) {
			ferry_imm_fd(fd, 0);
			close(fd);
			unlinkat(L(r)->points_fd, id, 0);
			fsync(L(r)->points_fd);
			return ferry_error(FERRY_E_IO,
					   "cannot make restore point %s immutable: %s (a hardened repository is written as root)",
					   id, strerror(e));
		}
	}
	close(fd);
	return 0;
fail:
	if (tmp[0])
		unlinkat(L(r)->points_fd, tmp, 0);
	close(fd);
	return ferry_error(ferry_errno_code(e, FERRY_E_IO),
			   "commit restore point %s: %s", id, strerror(e));
}

static void local_point_abort(struct ferry_repo *r, int fd, const char *tmp)
{
	if (tmp && tmp[0])
		unlinkat(L(r)->points_fd, tmp, 0);
	close(fd);
}

static int local_point_open(struct ferry_repo *r, const char *id, int *fd)
{
	*fd = openat(L(r)->points_fd, id, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		if (errno == ENOENT)
			return ferry_error(FERRY_E_NOTFOUND,
					   "restore point %s not found", id);
		return ferry_error(FERRY_E_IO, "open manifest %s: %s", id,
				   strerror(errno));
	}
	return 0;
}

static int local_point_list(struct ferry_repo *r, ferry_id_list_cb cb,
			    void *arg)
{
	int dfd = openat(L(r)->points_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if (dfd < 0 || !(d = fdopendir(dfd))) {
		if (dfd >= 0)
			close(dfd);
		return ferry_error(FERRY_E_IO, "list %s/points: %s", r->path,
				   strerror(errno));
	}
	while (ret == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && !strncmp(de->d_name, ".tmp-", 5)) {
			/* A temporary left by a killed process: remove it
			 * once its owner is gone. */
			long pid = strtol(de->d_name + 5, NULL, 10);

			if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
				unlinkat(L(r)->points_fd, de->d_name, 0);
			continue;
		}
		if (ferry_point_id_valid(de->d_name))
			ret = cb(de->d_name, arg);
	}
	closedir(d);
	return ret;
}

static int lock_open(struct ferry_repo *r);

static int local_lock_shared(struct ferry_repo *r)
{
	int e;

	if ((e = lock_open(r)) != 0)
		return e;
	atomic_store(&L(r)->writer, 1);
	while (flock(L(r)->lock_fd, LOCK_SH) < 0) {
		if (errno != EINTR)
			return ferry_error(FERRY_E_IO, "lock %s: %s", r->path,
					   strerror(errno));
	}
	return 0;
}

static int lock_open(struct ferry_repo *r)
{
	if (L(r)->lock_fd >= 0)
		return 0;
	L(r)->lock_fd = openat(L(r)->root_fd, "lock",
			       O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (L(r)->lock_fd < 0)
		return ferry_error(FERRY_E_IO, "open %s/lock: %s", r->path,
				   strerror(errno));
	return 0;
}

static int local_lock_exclusive(struct ferry_repo *r)
{
	int e;

	if ((e = lock_open(r)) != 0)
		return e;
	/* Blocks while backups hold the lock shared; a signal (EINTR) with
	 * a cancel request stops the wait. */
	while (flock(L(r)->lock_fd, LOCK_EX) < 0) {
		if (errno != EINTR)
			return ferry_error(FERRY_E_IO, "lock %s: %s", r->path,
					   strerror(errno));
		if (atomic_load(&ferry_cancelled))
			return ferry_error(FERRY_E_INTERRUPTED,
					   "interrupted while waiting for running backups");
	}
	return 0;
}

static int local_lock_exclusive_wait(struct ferry_repo *r, double timeout)
{
	double end = ferry_mono_seconds() + timeout, nap = 0.01;
	int e;

	if (timeout <= 0)
		return local_lock_exclusive(r);
	if ((e = lock_open(r)) != 0)
		return e;
	while (flock(L(r)->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		double now = ferry_mono_seconds();
		struct timespec ts;

		if (errno != EWOULDBLOCK && errno != EINTR)
			return ferry_error(FERRY_E_IO, "lock %s: %s", r->path,
					   strerror(errno));
		if (atomic_load(&ferry_cancelled))
			return ferry_error(FERRY_E_INTERRUPTED,
					   "interrupted while waiting for running backups");
		if (now >= end)
			return ferry_error(FERRY_E_TIMEOUT,
					   "running backups held the lock of %s for %.0f s (--lock-timeout); gave up, nothing removed",
					   r->path, timeout);
		if (nap > end - now)
			nap = end - now;
		ts.tv_sec = (time_t)nap;
		ts.tv_nsec = (long)((nap - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
		if (nap < 0.2)
			nap *= 2;
	}
	return 0;
}

static void local_unlock(struct ferry_repo *r)
{
	if (L(r)->lock_fd >= 0)
		flock(L(r)->lock_fd, LOCK_UN);
}

static int local_delete_chunk(struct ferry_repo *r,
			      const uint8_t h[FERRY_HASH_LEN])
{
	char rel[68];
	int e;

	chunk_rel(h, rel);
	/* gc's mark keeps every chunk an unexpired point references; what
	 * it removes is garbage, whose attribute is lifted first. */
	if (L(r)->imm_days && (e = ferry_imm_at(L(r)->chunks_fd, rel, 0)) != 0 &&
	    e != -ENOENT)
		return ferry_error(FERRY_E_IO,
				   "cannot lift the immutable attribute of chunk %s: %s (maintenance runs as root on the repository's host)",
				   rel + 3, strerror(-e));
	if (unlinkat(L(r)->chunks_fd, rel, 0) < 0 && errno != ENOENT)
		return ferry_error(FERRY_E_IO, "remove chunk %s: %s", rel + 3,
				   strerror(errno));
	return 0;
}

/* Hardened repository: a point is removed only after its expiry, and its
 * attribute is lifted for that; the manifest's time stands in for the
 * creation time when there is no expiry record. */
static int unprotect_point(struct ferry_repo *r, const char *id)
{
	struct stat st;
	uint64_t until, created;
	char when[48];
	int e;

	if (fstatat(L(r)->points_fd, id, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : ferry_error(FERRY_E_IO,
							 "stat restore point %s: %s",
							 id, strerror(errno));
	created = (uint64_t)st.st_mtim.tv_sec * 1000000000ull +
		  (uint64_t)st.st_mtim.tv_nsec;
	if ((e = ferry_point_protected(r, id, created, &until)) < 0)
		return e;
	if (e) {
		ferry_imm_time(until, when, sizeof(when));
		return ferry_error(FERRY_E_IMMUTABLE,
				   "restore point %s is immutable until %s; it cannot be removed before",
				   id, when);
	}
	if ((e = ferry_imm_at(L(r)->points_fd, id, 0)) != 0 && e != -ENOENT)
		return ferry_error(FERRY_E_IO,
				   "cannot lift the immutable attribute of restore point %s: %s (maintenance runs as root on the repository's host)",
				   id, strerror(-e));
	return 0;
}

static int local_record_delete(struct ferry_repo *r, const char *kind,
			       const char *id);

static int local_delete_point(struct ferry_repo *r, const char *id)
{
	int e;

	if (!ferry_point_id_valid(id))
		return ferry_error(FERRY_E_INVAL, "bad restore point id %s", id);
	if (L(r)->imm_days && (e = unprotect_point(r, id)) != 0)
		return e;
	if (unlinkat(L(r)->points_fd, id, 0) < 0) {
		if (errno == ENOENT)
			return 0;
		return ferry_error(FERRY_E_IO, "remove restore point %s: %s", id,
				   strerror(errno));
	}
	/* Durable before anyone acts on its absence (gc removing chunks). */
	if (fsync(L(r)->points_fd) < 0)
		return ferry_error(ferry_errno_code(errno, FERRY_E_IO),
				   "sync %s/points: %s", r->path, strerror(errno));
	if (L(r)->imm_days)
		local_record_delete(r, "expiry", id);
	return 0;
}

/* Remove DIRFD's ".tmp-PID-N" files whose process is gone. */
static void stale_in(int dirfd, uint64_t *files, uint64_t *bytes)
{
	int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (dfd < 0)
		return;
	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		long pid;

		if (strncmp(de->d_name, ".tmp-", 5))
			continue;
		pid = strtol(de->d_name + 5, NULL, 10);
		if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (fstatat(dfd, de->d_name, &st, 0) < 0)
			continue;
		if (unlinkat(dfd, de->d_name, 0) == 0) {
			(*files)++;
			*bytes += (uint64_t)st.st_size;
		}
	}
	closedir(d);
}

/* Hardened repository: expiry records whose point was never committed (a
 * backup killed between writing the record and linking the manifest).
 * Only called under the exclusive lock, so no backup is between the two. */
static void stale_expiry(struct ferry_repo *r, uint64_t *files, uint64_t *bytes)
{
	int dfd = openat(L(r)->root_fd, "expiry", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (dfd < 0)
		return;
	if (!(d = fdopendir(dfd))) {
		close(dfd);
		return;
	}
	stale_in(dfd, files, bytes);
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (!ferry_point_id_valid(de->d_name) ||
		    fstatat(L(r)->points_fd, de->d_name, &st, 0) == 0 ||
		    errno != ENOENT || fstatat(dfd, de->d_name, &st, 0) < 0)
			continue;
		ferry_imm_at(dfd, de->d_name, 0);
		if (unlinkat(dfd, de->d_name, 0) == 0) {
			(*files)++;
			*bytes += (uint64_t)st.st_size;
		}
	}
	closedir(d);
}

static int local_remove_stale(struct ferry_repo *r, uint64_t *files,
			      uint64_t *bytes)
{
	for (int i = 0; i < 256; i++) {
		int fd = sub_dir(r, (uint8_t)i);

		if (fd >= 0)
			stale_in(fd, files, bytes);
	}
	stale_in(L(r)->points_fd, files, bytes);
	stale_in(L(r)->root_fd, files, bytes);
	if (L(r)->imm_days)
		stale_expiry(r, files, bytes);
	return 0;
}

static int record_kind_ok(const char *kind, const char *id)
{
	return (!strcmp(kind, "verify") || !strcmp(kind, "expiry")) &&
	       ferry_point_id_valid(id);
}

static int local_record_put(struct ferry_repo *r, const char *kind,
			    const char *id, const void *data, size_t len)
{
	char tmp[64];
	int dfd, fd, e = 0;

	if (!record_kind_ok(kind, id) || !strcmp(kind, "expiry"))
		return ferry_error(FERRY_E_INVAL, "bad record %s/%s", kind, id);
	if (mkdirat(L(r)->root_fd, kind, 0755) < 0 && errno != EEXIST)
		return ferry_error(ferry_errno_code(errno, FERRY_E_IO),
				   "create %s/%s: %s", r->path, kind,
				   strerror(errno));
	dfd = openat(L(r)->root_fd, kind, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ferry_error(FERRY_E_IO, "open %s/%s: %s", r->path, kind,
				   strerror(errno));
	snprintf(tmp, sizeof(tmp), ".tmp-%ld-%u", (long)getpid(),
		 atomic_fetch_add(&L(r)->tmp_seq, 1));
	fd = openat(dfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0) {
		e = -errno;
	} else {
		/* Renamed into place, not synced: records are advisory, and a
		 * crash may lose the last one but never shows half of one. */
		e = ferry_write_all(fd, data, len);
		close(fd);
		if (e == 0 && renameat(dfd, tmp, dfd, id) < 0)
			e = -errno;
		if (e)
			unlinkat(dfd, tmp, 0);
	}
	close(dfd);
	if (e)
		return ferry_error(ferry_errno_code(-e, FERRY_E_IO),
				   "write %s/%s/%s: %s", r->path, kind, id,
				   strerror(-e));
	return 0;
}

static int local_record_get(struct ferry_repo *r, const char *kind,
			    const char *id, void *buf, size_t cap, size_t *len)
{
	char rel[64];
	ssize_t n;
	int fd;

	if (!record_kind_ok(kind, id))
		return ferry_error(FERRY_E_INVAL, "bad record %s/%s", kind, id);
	snprintf(rel, sizeof(rel), "%s/%s", kind, id);
	fd = openat(L(r)->root_fd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? FERRY_E_NOTFOUND
				       : ferry_error(FERRY_E_IO, "open %s/%s: %s",
						     r->path, rel, strerror(errno));
	n = ferry_pread_full(fd, buf, cap, 0);
	close(fd);
	if (n < 0)
		return ferry_error(FERRY_E_IO, "read %s/%s: %s", r->path, rel,
				   strerror((int)-n));
	*len = (size_t)n;
	return 0;
}

static int local_record_delete(struct ferry_repo *r, const char *kind,
			       const char *id)
{
	char rel[64];

	if (!record_kind_ok(kind, id))
		return ferry_error(FERRY_E_INVAL, "bad record %s/%s", kind, id);
	snprintf(rel, sizeof(rel), "%s/%s", kind, id);
	if (!strcmp(kind, "expiry")) {
		/* Only once the point is gone and its time is up. */
		uint64_t until;
		struct stat st;
		int e;

		if (fstatat(L(r)->points_fd, id, &st, 0) == 0)
			return ferry_error(FERRY_E_IMMUTABLE,
					   "restore point %s still exists", id);
		if ((e = ferry_point_protected(r, id, 0, &until)) != 0)
			return e < 0 ? e : ferry_error(FERRY_E_IMMUTABLE,
						       "expiry record of %s is not expired",
						       id);
		ferry_imm_at(L(r)->root_fd, rel, 0);
	}
	if (unlinkat(L(r)->root_fd, rel, 0) < 0 && errno != ENOENT &&
	    errno != ENOTDIR)
		return ferry_error(FERRY_E_IO, "remove %s/%s: %s", r->path, rel,
				   strerror(errno));
	return 0;
}

/* REPO/expiry/ID: "until_ns=N\ndays=D\n", synced and immutable. */
static int expiry_put(struct ferry_repo *r, const char *id)
{
	uint64_t until = ferry_imm_now_ns() +
			 (uint64_t)L(r)->imm_days * 86400ull * 1000000000ull;
	char text[96], tmp[64];
	int dfd, fd, n, e = 0;

	n = snprintf(text, sizeof(text), "until_ns=%llu\ndays=%d\n",
		     (unsigned long long)until, L(r)->imm_days);
	if (mkdirat(L(r)->root_fd, "expiry", 0755) < 0 && errno != EEXIST)
		return ferry_error(ferry_errno_code(errno, FERRY_E_IO),
				   "create %s/expiry: %s", r->path, strerror(errno));
	dfd = openat(L(r)->root_fd, "expiry", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ferry_error(FERRY_E_IO, "open %s/expiry: %s", r->path,
				   strerror(errno));
	snprintf(tmp, sizeof(tmp), ".tmp-%ld-%u", (long)getpid(),
		 atomic_fetch_add(&L(r)->tmp_seq, 1));
	fd = openat(dfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0444);
	if (fd < 0) {
		e = errno;
	} else {
		if ((e = -ferry_write_all(fd, text, (size_t)n)) == 0 &&
		    fsync(fd) < 0)
			e = errno;
		if (e == 0 && renameat(dfd, tmp, dfd, id) < 0)
			e = errno;
		if (e)
			unlinkat(dfd, tmp, 0);
		else if (fsync(dfd) < 0)
			e = errno;
		else if ((e = -ferry_imm_fd(fd, 1)) == 0 && fsync(fd) < 0)
			e = errno;
		close(fd);
	}
	close(dfd);
	if (e)
		return ferry_error(ferry_errno_code(e, FERRY_E_IO),
				   "record the expiry of restore point %s: %s%s", id,
				   strerror(e),
				   e == EPERM ? " (a hardened repository is written as root)" : "");
	return 0;
}

/* 1 when NAME in DIRFD got the attribute now, 0 when it had it. */
static int protect_at(struct ferry_repo *r, int dirfd, const char *name,
		      const char *what)
{
	int e = ferry_imm_is_at(dirfd, name);

	if (e == -ENOENT || e == 1)
		return 0;
	if (e == 0)
		e = ferry_imm_at(dirfd, name, 1);
	if (e == -ENOENT)
		return 0;
	if (e)
		return ferry_error(FERRY_E_IO, "cannot make %s of %s immutable: %s",
				   what, r->path, strerror(-e));
	return 1;
}

static int local_protect_point(struct ferry_repo *r, const char *id)
{
	char rel[64];
	int a, b;

	if (!L(r)->imm_days || !ferry_point_id_valid(id))
		return 0;
	snprintf(rel, sizeof(rel), "expiry/%s", id);
	if ((a = protect_at(r, L(r)->points_fd, id, "a manifest")) < 0)
		return a;
	if ((b = protect_at(r, L(r)->root_fd, rel, "an expiry record")) < 0)
		return b;
	return a + b;
}

static int local_protect_chunk(struct ferry_repo *r,
			       const uint8_t h[FERRY_HASH_LEN])
{
	char rel[68];

	if (!L(r)->imm_days)
		return 0;
	chunk_rel(h, rel);
	return protect_at(r, L(r)->chunks_fd, rel, "a chunk");
}

static void local_close(struct ferry_repo *r)
{
	struct local *l = L(r);

	if (!l)
		return;
	if (l->root_fd >= 0)
		close(l->root_fd);
	if (l->chunks_fd >= 0)
		close(l->chunks_fd);
	if (l->points_fd >= 0)
		close(l->points_fd);
	if (l->lock_fd >= 0)
		close(l->lock_fd);
	for (int i = 0; i < 256; i++)
		if (l->sub_fd[i] > 0)
			close(l->sub_fd[i]);
	free(l->pend);
	pthread_mutex_destroy(&l->pend_mu);
	free(l);
	r->state = NULL;
}

/* ---- config, attach, create --------------------------------------- */

static int local_config_get(struct ferry_repo *r, char *buf, size_t cap,
			    size_t *len)
{
	int fd = openat(L(r)->root_fd, "config", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR
			       ? ferry_error(FERRY_E_NOTREPO,
					     "%s is not a ferry repository (no config file)",
					     r->path)
			       : ferry_error(FERRY_E_IO, "open %s/config: %s",
					     r->path, strerror(errno));
	n = ferry_pread_full(fd, buf, cap, 0);
	close(fd);
	if (n < 0)
		return ferry_error(FERRY_E_IO, "read %s/config: %s", r->path,
				   strerror((int)-n));
	*len = (size_t)n;
	return 0;
}

/* The config is written last by init: a half-made repository has none
 * and is refused as "not a repository". */
static int local_config_put(struct ferry_repo *r, const char *text,
			    size_t len)
{
	int root = L(r)->root_fd, fd, e;

	fd = openat(root, ".config.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0644);
	if (fd < 0)
		return ferry_error(ferry_errno_code(errno, FERRY_E_IO),
				   "create %s/.config.tmp: %s", r->path,
				   strerror(errno));
	e = ferry_write_all(fd, text, len);
	if (e == 0 && fsync(fd) < 0)
		e = -errno;
	close(fd);
	if (e == 0 && renameat(root, ".config.tmp", root, "config") < 0)
		e = -errno;
	if (e == 0 && fsync(root) < 0)
		e = -errno;
	if (e) {
		unlinkat(root, ".config.tmp", 0);
		return ferry_error(ferry_errno_code(-e, FERRY_E_IO),
				   "write %s/config: %s", r->path, strerror(-e));
	}
	return 0;
}

static int local_ready(struct ferry_repo *r)
{
	struct local *l = L(r);

	l->chunks_fd = openat(l->root_fd, "chunks", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	l->points_fd = openat(l->root_fd, "points", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->chunks_fd < 0 || l->points_fd < 0)
		return ferry_error(FERRY_E_NOTREPO,
				   "%s is not a ferry repository (missing chunks/ or points/)",
				   r->path);
	l->imm_days = ferry_imm_days(r);
	return 0;
}

const struct ferry_store_ops ferry_store_local_ops = {
	.name = "local",
	.has_chunk = local_has_chunk,
	.put_chunk = local_put_chunk,
	.get_chunk = local_get_chunk,
	.get_chunk_head = local_get_chunk_head,
	.list_chunks = local_list_chunks,
	.sync_chunks = local_sync_chunks,
	.point_create = local_point_create,
	.point_commit = local_point_commit,
	.point_abort = local_point_abort,
	.point_open = local_point_open,
	.point_list = local_point_list,
	.lock_shared = local_lock_shared,
	.lock_exclusive = local_lock_exclusive,
	.unlock = local_unlock,
	.delete_chunk = local_delete_chunk,
	.delete_point = local_delete_point,
	.remove_stale = local_remove_stale,
	.record_put = local_record_put,
	.record_get = local_record_get,
	.record_delete = local_record_delete,
	.config_get = local_config_get,
	.config_put = local_config_put,
	.ready = local_ready,
	.close = local_close,
	.lock_exclusive_wait = local_lock_exclusive_wait,
	.protect_point = local_protect_point,
	.protect_chunk = local_protect_chunk,
};

static int local_attach(struct ferry_repo *r)
{
	struct local *l = calloc(1, sizeof(*l));

	if (!l)
		return FERRY_E_NOMEM;
	l->root_fd = l->chunks_fd = l->points_fd = l->lock_fd = -1;
	pthread_mutex_init(&l->pend_mu, NULL);
	r->state = l;
	r->ops = &ferry_store_local_ops;
	l->root_fd = open(r->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->root_fd < 0) {
		int e = errno;

		local_close(r);
		r->ops = NULL;
		return e == ENOENT || e == ENOTDIR
			       ? ferry_error(FERRY_E_NOTREPO,
					     "%s is not a ferry repository (no config file)",
					     r->path)
			       : ferry_error(FERRY_E_IO, "open %s: %s", r->path,
					     strerror(e));
	}
	return 0;
}

static int local_create(struct ferry_repo *r)
{
	const char *path = r->path;
	char buf[4200];
	struct stat st;
	int e;

	if (stat(path, &st) == 0) {
		snprintf(buf, sizeof(buf), "%s/config", path);
		if (access(buf, F_OK) == 0)
			return ferry_error(FERRY_E_EXISTS,
					   "%s is already a ferry repository", path);
		if (!S_ISDIR(st.st_mode) || rmdir(path) < 0)
			return ferry_error(FERRY_E_EXISTS,
					   "%s exists and is not an empty directory",
					   path);
	}
	snprintf(buf, sizeof(buf), "%s/points", path);
	if ((e = ferry_mkdir_p(buf, 0755)) != 0)
		goto fail;
	for (int i = 0; i < 256; i++) {
		snprintf(buf, sizeof(buf), "%s/chunks/%02x", path, i);
		if ((e = ferry_mkdir_p(buf, 0755)) != 0)
			goto fail;
	}
	return local_attach(r);
fail:
	return ferry_error(ferry_errno_code(-e, FERRY_E_IO), "create %s: %s",
			   buf, strerror(-e));
}

const struct ferry_backend ferry_backend_local = {
	.prefix = NULL,
	.create = local_create,
	.attach = local_attach,
};
