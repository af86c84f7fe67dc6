/* fuse_mount.c - `ferry mount`: a restore point as read-only image files
 * in a FUSE file system (libfuse3, high-level API): one file for the whole
 * disk and one per partition, so that any tool the operator trusts (fsck,
 * debugfs, mount -o loop,ro, ntfs-3g, qemu) reads it.  Reads go through
 * the checked, cached random-access image (image.c): a damaged block is
 * EIO for the reads that touch it, logged, never wrong bytes. */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse.h>

#include "vmsrc.h"

#define MOUNT_FILES_MAX (FERRY_PART_MAX + 1)
#define FILE_NAME_MAX (FERRY_NAME_MAX + 32)
#define PF_THREADS_MAX 8
#define PF_QUEUE 64

static _Thread_local int in_prefetch; /* a prefetch thread's own reads */

struct mnt {
	struct ferry_image *img;
	const struct ferry_mount_opts *opts;
	struct ferry_point point;
	struct ferry_mount_file files[MOUNT_FILES_MAX];
	char names[MOUNT_FILES_MAX][FILE_NAME_MAX];
	size_t nfiles;
	const char *table;
	pthread_mutex_t log_mu;
	uid_t uid;
	gid_t gid;
	/* Read-ahead of whole blocks for a sequential reader, decoded into
	 * the image's cache by PF_N threads while the reader uses the last. */
	pthread_mutex_t pf_mu;
	pthread_cond_t pf_cv;
	pthread_t pf_th[PF_THREADS_MAX];
	int pf_n, pf_stop;
	uint64_t pf_queue[PF_QUEUE];
	unsigned pf_head, pf_count;
	uint64_t seq_end;     /* where the last read ended (disk offset) */
	uint64_t pf_upto;     /* blocks below this were queued */
	uint32_t pf_depth;
};

static void mlog(struct mnt *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void mlog(struct mnt *m, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;

	if (!m->opts->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&m->log_mu);
	m->opts->log(msg, m->opts->log_arg);
	pthread_mutex_unlock(&m->log_mu);
}

static struct mnt *M(void)
{
	return fuse_get_context()->private_data;
}

/* Index of the file PATH names, or -1. */
static int find_file(struct mnt *m, const char *path)
{
	if (*path != '/')
		return -1;
	for (size_t i = 0; i < m->nfiles; i++)
		if (!strcmp(path + 1, m->files[i].name))
			return (int)i;
	return -1;
}

static void set_times(struct stat *st, const struct ferry_point *p)
{
	st->st_mtim.tv_sec = (time_t)(p->created_ns / 1000000000ull);
	st->st_mtim.tv_nsec = (long)(p->created_ns % 1000000000ull);
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

static int m_getattr(const char *path, struct stat *st,
		     struct fuse_file_info *fi)
{
	struct mnt *m = M();
	int i;

	(void)fi;
	memset(st, 0, sizeof(*st));
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	set_times(st, &m->point);
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	}
	if ((i = find_file(m, path)) < 0)
		return -ENOENT;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = (off_t)m->files[i].size;
	st->st_blksize = (blksize_t)m->point.block_size;
	st->st_blocks = (blkcnt_t)((m->files[i].size + 511) / 512);
	return 0;
}

static int m_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		     off_t off, struct fuse_file_info *fi,
		     enum fuse_readdir_flags flags)
{
	struct mnt *m = M();

	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/"))
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	for (size_t i = 0; i < m->nfiles; i++)
		if (fill(buf, m->files[i].name, NULL, 0, 0))
			break;
	return 0;
}

static int m_open(const char *path, struct fuse_file_info *fi)
{
	struct mnt *m = M();
	int i = find_file(m, path);

	if (i < 0)
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	fi->fh = (uint64_t)i;
	fi->keep_cache = 1; /* a restore point never changes */
	return 0;
}

static void *pf_main(void *arg)
{
	struct mnt *m = arg;
	uint8_t byte;

	in_prefetch = 1;
	pthread_mutex_lock(&m->pf_mu);
	for (;;) {
		uint64_t index;

		while (!m->pf_stop && !m->pf_count)
			pthread_cond_wait(&m->pf_cv, &m->pf_mu);
		if (m->pf_stop)
			break;
		index = m->pf_queue[m->pf_head];
		m->pf_head = (m->pf_head + 1) % PF_QUEUE;
		m->pf_count--;
		pthread_mutex_unlock(&m->pf_mu);
		/* One byte brings the whole checked block into the cache; a
		 * bad block is the reader's to report, when it gets there. */
		(void)ferry_image_pread(m->img, &byte, 1,
					index * m->point.block_size);
		pthread_mutex_lock(&m->pf_mu);
	}
	pthread_mutex_unlock(&m->pf_mu);
	return NULL;
}

/* A read of [OFF, END) of the disk: if it continues the last one, queue
 * the next blocks. */
static void prefetch(struct mnt *m, uint64_t off, uint64_t end)
{
	uint32_t bs = m->point.block_size;
	uint64_t nblocks = m->point.nblocks;

	if (!m->pf_n)
		return;
	pthread_mutex_lock(&m->pf_mu);
	/* Readahead requests of the kernel may come a little out of order. */
	if (off + 2ull * bs >= m->seq_end && off <= m->seq_end + bs) {
		uint64_t want = end / bs + 1 + m->pf_depth;

		if (m->pf_upto < end / bs + 1)
			m->pf_upto = end / bs + 1;
		while (m->pf_upto < want && m->pf_upto < nblocks &&
		       m->pf_count < PF_QUEUE) {
			m->pf_queue[(m->pf_head + m->pf_count) % PF_QUEUE] = m->pf_upto++;
			m->pf_count++;
		}
		pthread_cond_broadcast(&m->pf_cv);
	} else {
		m->pf_upto = 0; /* a jump: no longer sequential */
	}
	if (end > m->seq_end || m->pf_upto == 0)
		m->seq_end = end;
	pthread_mutex_unlock(&m->pf_mu);
}

static void prefetch_start(struct mnt *m)
{
	int n = ferry_cpu_count();

	if (n > PF_THREADS_MAX)
		n = PF_THREADS_MAX;
	if (n < 2)
		n = 2;
	m->pf_depth = (uint32_t)n * 2;
	for (int i = 0; i < n; i++) {
		if (pthread_create(&m->pf_th[i], NULL, pf_main, m) != 0)
			break;
		m->pf_n++;
	}
}

static void prefetch_stop(struct mnt *m)
{
	pthread_mutex_lock(&m->pf_mu);
	m->pf_stop = 1;
	pthread_cond_broadcast(&m->pf_cv);
	pthread_mutex_unlock(&m->pf_mu);
	for (int i = 0; i < m->pf_n; i++)
		pthread_join(m->pf_th[i], NULL);
	m->pf_n = 0;
}

static int m_read(const char *path, char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi)
{
	struct mnt *m = M();
	const struct ferry_mount_file *f;
	int e;

	(void)path;
	if (fi->fh >= m->nfiles || off < 0)
		return -EINVAL;
	f = &m->files[fi->fh];
	if ((uint64_t)off >= f->size)
		return 0;
	if (size > f->size - (uint64_t)off)
		size = (size_t)(f->size - (uint64_t)off);
	prefetch(m, f->start + (uint64_t)off, f->start + (uint64_t)off + size);
	if ((e = ferry_image_pread(m->img, buf, size,
				   f->start + (uint64_t)off)) != 0) {
		mlog(m, "read of %zu bytes at %lld of %s failed (I/O error to the reader): %s",
		     size, (long long)off, f->name, ferry_last_error());
		return e == FERRY_E_NOMEM ? -ENOMEM : -EIO;
	}
	return (int)size;
}

static int m_statfs(const char *path, struct statvfs *sv)
{
	struct mnt *m = M();

	(void)path;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = m->point.block_size;
	sv->f_frsize = 512;
	sv->f_blocks = (fsblkcnt_t)((m->point.disk_size + 511) / 512);
	sv->f_files = m->nfiles + 1;
	sv->f_namemax = FILE_NAME_MAX - 1;
	sv->f_flag = ST_RDONLY;
	return 0;
}

static void *m_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->kernel_cache = 1;
	cfg->entry_timeout = 3600;
	cfg->attr_timeout = 3600;
	cfg->negative_timeout = 3600;
	conn->max_readahead = 1u << 20;
	return fuse_get_context()->private_data;
}

static const struct fuse_operations mount_ops = {
	.getattr = m_getattr,
	.open = m_open,
	.read = m_read,
	.statfs = m_statfs,
	.readdir = m_readdir,
	.init = m_init,
};

/* ---- the files: the disk and its partitions --------------------------- */

static int img_rd(void *arg, uint64_t off, void *buf, size_t len)
{
	return ferry_image_pread(arg, buf, len, off);
}

/* The point's name without an image extension: "vm1.qcow2" -> "vm1". */
static void base_name(const char *name, char *out, size_t len)
{
	static const char *const ext[] = { ".img", ".raw", ".qcow2", ".vmdk",
					   ".vdi", ".vhd", ".vhdx" };
	size_t n = strlen(name);

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(ext); i++) {
		size_t el = strlen(ext[i]);

		if (n > el && !strcasecmp(name + n - el, ext[i])) {
			n -= el;
			break;
		}
	}
	if (n == 0 || (n <= 2 && !strncmp(name, "..", n))) {
		snprintf(out, len, "disk");
		return;
	}
	snprintf(out, len, "%.*s", (int)n, name);
}

static int add_file(struct mnt *m, const char *base, int partno,
		    uint64_t start, uint64_t size)
{
	size_t i = m->nfiles;

	if (i >= MOUNT_FILES_MAX)
		return 0;
	if (partno)
		snprintf(m->names[i], FILE_NAME_MAX, "%s-part%d.img", base, partno);
	else
		snprintf(m->names[i], FILE_NAME_MAX, "%s.img", base);
	m->files[i].name = m->names[i];
	m->files[i].partno = partno;
	m->files[i].start = start;
	m->files[i].size = size;
	m->nfiles++;
	return 0;
}

static int build_files(struct mnt *m)
{
	struct ferry_ptable *pt = malloc(sizeof(*pt));
	char base[FERRY_NAME_MAX + 1];
	int e;

	if (!pt)
		return FERRY_E_NOMEM;
	base_name(m->point.name, base, sizeof(base));
	add_file(m, base, 0, 0, m->point.disk_size);
	e = ferry_ptable_read(img_rd, m->img, m->point.disk_size, pt);
	if (e == FERRY_E_CORRUPT || e == FERRY_E_MISSING) {
		/* The disk stays readable; its table cannot be trusted. */
		mlog(m, "partition table not used: %s; only the whole disk is shown",
		     ferry_last_error());
		m->table = "damaged";
		e = 0;
	} else if (e == 0) {
		m->table = ferry_ptable_scheme_name(pt->scheme);
		for (int i = 0; i < pt->count; i++)
			if (pt->part[i].size)
				add_file(m, base, pt->part[i].number,
					 pt->part[i].start, pt->part[i].size);
	}
	free(pt);
	return e;
}

/* ---- mounting and serving ---------------------------------------------- */

static void bad_block(const struct ferry_bad_block *b, void *arg)
{
	struct mnt *m = arg;

	if (in_prefetch)
		return;
	mlog(m, "bad block %llu (offset %llu) of restore point %s: %s",
	     (unsigned long long)b->block, (unsigned long long)b->offset,
	     b->point_id ? b->point_id : "?", b->detail ? b->detail : "");
}

/* The child that serves a background mount: no terminal, own session. */
static void detach(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	setsid();
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
}

int ferry_mount(struct ferry_repo *repo, const char *point, const char *dir,
		const struct ferry_mount_opts *opts)
{
	struct ferry_mount_opts dflt = { 0 };
	struct ferry_image_opts io = { 0 };
	struct ferry_mount_info mi;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config lc;
	struct fuse *fuse = NULL;
	struct stat st;
	struct mnt *m;
	char mo[256];
	uint32_t cache_mib;
	int e, mounted = 0;

	if (!opts)
		opts = &dflt;
	if (!(m = calloc(1, sizeof(*m))))
		return FERRY_E_NOMEM;
	pthread_mutex_init(&m->log_mu, NULL);
	pthread_mutex_init(&m->pf_mu, NULL);
	pthread_cond_init(&m->pf_cv, NULL);
	m->opts = opts;
	m->uid = getuid();
	m->gid = getgid();
	if (stat(dir, &st) != 0) {
		e = ferry_error(errno == ENOENT ? FERRY_E_NOTFOUND : FERRY_E_INVAL,
				"mount point %s: %s", dir, strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		e = ferry_error(FERRY_E_INVAL, "mount point %s is not a directory",
				dir);
		goto out;
	}
	cache_mib = opts->cache_mib ? opts->cache_mib : 64;
	io.bad = bad_block;
	io.bad_arg = m;
	io.cache_blocks = (uint32_t)(((uint64_t)cache_mib << 20) /
				     ferry_repo_block_size(repo));
	if (!io.cache_blocks)
		io.cache_blocks = 1;
	if ((e = ferry_image_open(repo, point, &io, &m->img)) != 0)
		goto out;
	m->point = *ferry_image_point(m->img);
	m->table = "none";
	if ((e = build_files(m)) != 0)
		goto out;

	snprintf(mo, sizeof(mo), "ro,default_permissions,fsname=ferry:%s,subtype=ferry%s",
		 m->point.id, opts->allow_other ? ",allow_other" : "");
	if (fuse_opt_add_arg(&args, "ferry") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, mo)) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	if (!(fuse = fuse_new(&args, &mount_ops, sizeof(mount_ops), m))) {
		e = ferry_error(FERRY_E_INVAL, "FUSE refused its options (%s)", mo);
		goto out;
	}
	if (fuse_mount(fuse, dir) != 0) {
		e = ferry_error(FERRY_E_IO,
				"cannot mount on %s (FUSE: is /dev/fuse there, is fusermount3 installed, is %s already a mount point?)",
				dir, dir);
		goto out;
	}
	mounted = 1;
	/* Before anyone is told: a signal from then on unmounts cleanly. */
	if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0) {
		e = ferry_error(FERRY_E_IO, "cannot install the signal handlers");
		goto out;
	}
	memset(&mi, 0, sizeof(mi));
	mi.dir = dir;
	mi.point = &m->point;
	mi.table = m->table;
	mi.files = m->files;
	mi.nfiles = m->nfiles;
	mi.pid = (long)getpid();
	if (!opts->foreground) {
		pid_t pid = fork();

		if (pid < 0) {
			e = ferry_error(FERRY_E_IO, "fork: %s", strerror(errno));
			goto out;
		}
		if (pid > 0) {
			/* The child serves the mount; it is no longer ours. */
			mi.pid = (long)pid;
			if (opts->ready)
				opts->ready(&mi, opts->ready_arg);
			return 1;
		}
		detach();
	} else if (opts->ready) {
		opts->ready(&mi, opts->ready_arg);
	}
	memset(&lc, 0, sizeof(lc));
	lc.clone_fd = 0;
	lc.max_idle_threads = opts->threads > 0 ? (unsigned)opts->threads : 8;
	prefetch_start(m);
	e = fuse_loop_mt(fuse, &lc);
	prefetch_stop(m);
	if (e < 0)
		e = ferry_error(FERRY_E_IO, "FUSE: %s", strerror(-e));
	else if (e > 0)
		e = 0; /* stopped by a signal: unmounted below */
	mlog(m, "stopped serving %s", dir);
out:
	if (fuse) {
		if (mounted) {
			fuse_remove_signal_handlers(fuse_get_session(fuse));
			fuse_unmount(fuse);
		}
		fuse_destroy(fuse);
	}
	fuse_opt_free_args(&args);
	ferry_image_free(m->img);
	pthread_mutex_destroy(&m->log_mu);
	pthread_mutex_destroy(&m->pf_mu);
	pthread_cond_destroy(&m->pf_cv);
	free(m);
	return e;
}
