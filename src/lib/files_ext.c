/* files_ext.c - file-level restore: reads an ext2/3/4 file system inside a
 * restore point with libext2fs, whose blocks come through the checked
 * random-access image (no loop device, no mount, no root), and copies
 * files out with their metadata.  Every name from the image is untrusted:
 * output is created only with *at() calls relative to directory fds
 * opened O_NOFOLLOW, with O_EXCL, so nothing lands outside --to. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <et/com_err.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include "vmsrc.h"

#define DEPTH_MAX 256
#define LINK_MAX_LEN 4096

struct ferry_files {
	struct ferry_image *img;
	ext2_filsys fs;
};

static int img_rd(void *arg, uint64_t off, void *buf, size_t len)
{
	return ferry_image_pread(arg, buf, len, off);
}

int ferry_files_open(struct ferry_repo *repo, const char *point, int partno,
		     struct ferry_files **out)
{
	struct ferry_files *f = calloc(1, sizeof(*f));
	struct ferry_image_opts io = { 64, NULL, NULL };
	struct ferry_ptable *pt = NULL;
	uint64_t off = 0, size, disk;
	int e;

	if (!f)
		return FERRY_E_NOMEM;
	if ((e = ferry_image_open(repo, point, &io, &f->img)) != 0)
		goto fail;
	disk = size = ferry_image_point(f->img)->disk_size;
	if (partno != 0) {
		if (!(pt = malloc(sizeof(*pt)))) {
			e = FERRY_E_NOMEM;
			goto fail;
		}
		if ((e = ferry_ptable_read(img_rd, f->img, disk, pt)) != 0)
			goto fail;
		e = FERRY_E_NOTFOUND;
		for (int i = 0; i < pt->count; i++) {
			struct ferry_part *p = &pt->part[i];

			if (partno > 0 ? p->number == partno
				       : ferry_extfs_probe(img_rd, f->img, p->start, p->size)) {
				off = p->start;
				size = p->size;
				e = 0;
				break;
			}
		}
		if (e && partno < 0 && ferry_extfs_probe(img_rd, f->img, 0, disk))
			e = 0; /* no partition table: the whole disk */
		if (e) {
			e = partno > 0 ? ferry_error(FERRY_E_NOTFOUND,
						     "the disk has no partition %d", partno)
				       : ferry_error(FERRY_E_NOTFOUND,
						     "no ext2/3/4 file system found on the disk (give PARTITION:PATH)");
			goto fail;
		}
	}
	if (!ferry_extfs_probe(img_rd, f->img, off, size)) {
		e = ferry_error(FERRY_E_NOTFOUND,
				"no ext2/3/4 file system at offset %llu (only ext2/3/4 can be read)",
				(unsigned long long)off);
		goto fail;
	}
	if ((e = ferry_extfs_open(img_rd, f->img, off, size, &f->fs)) != 0)
		goto fail;
	free(pt);
	*out = f;
	return 0;
fail:
	free(pt);
	ferry_files_free(f);
	return e;
}

/* For fuzz/fuzz_ext.c: the ext file system in the first SIZE bytes that
 * RD reads, without a repository (internal.h). */
int ferry_files_open_rd(ferry_read_fn rd, void *arg, uint64_t size,
			struct ferry_files **out)
{
	struct ferry_files *f = calloc(1, sizeof(*f));
	int e;

	if (!f)
		return FERRY_E_NOMEM;
	if (!ferry_extfs_probe(rd, arg, 0, size))
		e = ferry_error(FERRY_E_NOTFOUND, "no ext2/3/4 file system");
	else
		e = ferry_extfs_open(rd, arg, 0, size, &f->fs);
	if (e) {
		free(f);
		return e;
	}
	*out = f;
	return 0;
}

void ferry_files_free(struct ferry_files *f)
{
	if (!f)
		return;
	ferry_extfs_close(f->fs);
	ferry_image_free(f->img);
	free(f);
}

static int lookup(struct ferry_files *f, const char *path, ext2_ino_t *ino)
{
	errcode_t err;

	while (*path == '/')
		path++;
	if (!*path) {
		*ino = EXT2_ROOT_INO;
		return 0;
	}
	err = ext2fs_namei(f->fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, ino);
	if (err)
		return ferry_error(FERRY_E_NOTFOUND, "/%s: %s", path,
				   error_message(err));
	return 0;
}

static int read_link(ext2_filsys fs, ext2_ino_t ino, struct ext2_inode *in,
		     char *buf, size_t cap)
{
	uint64_t size = EXT2_I_SIZE(in);
	ext2_file_t file;
	unsigned int got = 0;
	errcode_t err;

	if (size >= cap)
		return FERRY_E_CORRUPT;
	if (ext2fs_is_fast_symlink(in)) {
		memcpy(buf, (char *)in->i_block, size);
	} else if (in->i_flags & EXT4_INLINE_DATA_FL) {
		size_t n = cap;

		if (ext2fs_inline_data_get(fs, ino, in, buf, &n) || n < size)
			return FERRY_E_CORRUPT;
	} else {
		if ((err = ext2fs_file_open(fs, ino, 0, &file)) != 0)
			return FERRY_E_CORRUPT;
		err = ext2fs_file_read(file, buf, (unsigned int)size, &got);
		ext2fs_file_close(file);
		if (err || got != size)
			return FERRY_E_CORRUPT;
	}
	buf[size] = 0;
	return 0;
}

static void fill_info(struct ferry_file_info *fi, const char *name,
		      struct ext2_inode *in, const char *link)
{
	memset(fi, 0, sizeof(*fi));
	fi->name = name;
	fi->mode = in->i_mode;
	fi->uid = inode_uid(*in);
	fi->gid = inode_gid(*in);
	fi->nlink = in->i_links_count;
	fi->size = EXT2_I_SIZE(in);
	fi->atime = (int64_t)in->i_atime;
	fi->mtime = (int64_t)in->i_mtime;
	fi->ctime = (int64_t)in->i_ctime;
	fi->link = link;
}

struct list_ctx {
	struct ferry_files *f;
	ferry_file_cb cb;
	void *arg;
	int ret;
};

static int list_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *d,
		   int offset, int blocksize, char *buf, void *priv)
{
	struct list_ctx *c = priv;
	struct ext2_inode in;
	struct ferry_file_info fi;
	char name[256], link[LINK_MAX_LEN];
	int nl = ext2fs_dirent_name_len(d);

	(void)dir, (void)entry, (void)offset, (void)blocksize, (void)buf;
	if (d->inode == 0 || (nl == 1 && d->name[0] == '.') ||
	    (nl == 2 && d->name[0] == '.' && d->name[1] == '.'))
		return 0;
	memcpy(name, d->name, (size_t)nl);
	name[nl] = 0;
	if (ext2fs_read_inode(c->f->fs, d->inode, &in))
		return 0;
	fill_info(&fi, name, &in, LINUX_S_ISLNK(in.i_mode) &&
				  !read_link(c->f->fs, d->inode, &in, link, sizeof(link))
				  ? link : NULL);
	if ((c->ret = c->cb(&fi, c->arg)) != 0)
		return DIRENT_ABORT;
	return 0;
}

int ferry_files_list(struct ferry_files *f, const char *path, ferry_file_cb cb,
		     void *arg)
{
	struct list_ctx c = { f, cb, arg, 0 };
	struct ext2_inode in;
	ext2_ino_t ino;
	errcode_t err;
	int e;

	if ((e = lookup(f, path, &ino)) != 0)
		return e;
	if (ext2fs_read_inode(f->fs, ino, &in))
		return ferry_error(FERRY_E_CORRUPT, "%s: cannot read its inode", path);
	if (!LINUX_S_ISDIR(in.i_mode)) {
		struct ferry_file_info fi;
		char link[LINK_MAX_LEN];
		const char *base = strrchr(path, '/');

		fill_info(&fi, base ? base + 1 : path, &in,
			  LINUX_S_ISLNK(in.i_mode) &&
					  !read_link(f->fs, ino, &in, link, sizeof(link))
				  ? link : NULL);
		return cb(&fi, arg);
	}
	err = ext2fs_dir_iterate2(f->fs, ino, 0, NULL, list_cb, &c);
	if (c.ret)
		return c.ret;
	if (err)
		return ferry_error(FERRY_E_CORRUPT, "list %s: %s", path,
				   error_message(err));
	return 0;
}

/* ---- copying out ----------------------------------------------------- */

struct get_ctx {
	struct ferry_files *f;
	void (*warn)(const char *msg, void *arg);
	void *warn_arg;
	struct ferry_files_result *res;
	uint8_t *buf;
	int depth;
	int err;
	struct ferry_inoset dirs;	/* directories entered */
};

static void gwarn(struct get_ctx *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void gwarn(struct get_ctx *g, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	g->res->skipped++;
	if (!g->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	g->warn(msg, g->warn_arg);
}

static int safe_name(const char *n)
{
	return *n && strcmp(n, ".") && strcmp(n, "..") && !strchr(n, '/');
}

/* Seconds (with the epoch bits past 2038) and nanoseconds of a large
 * inode's extra time field. */
static struct timespec xtime(const struct ext2_inode_large *in, uint32_t t,
			     uint32_t extra, int has_extra)
{
	struct timespec ts = { (time_t)(int32_t)t, 0 };

	if (has_extra) {
		ts.tv_sec += (time_t)((uint64_t)(extra & 3) << 32);
		ts.tv_nsec = (long)(extra >> 2);
		if (ts.tv_nsec > 999999999)
			ts.tv_nsec = 0;
	}
	(void)in;
	return ts;
}

static void set_meta(int dfd, const char *name, int fd, struct ext2_inode *ins)
{
	struct ext2_inode_large *in = (struct ext2_inode_large *)ins;
	/* i_ctime_extra, i_mtime_extra, i_atime_extra end 16 bytes past the
	 * 128-byte inode: present when i_extra_isize covers them. */
	int big = in->i_extra_isize >= 16;
	struct timespec ts[2] = {
		xtime(in, in->i_atime, big ? in->i_atime_extra : 0, big),
		xtime(in, in->i_mtime, big ? in->i_mtime_extra : 0, big),
	};
	int r;

	/* Owners only when we may (root); modes and times always. */
	if (fd >= 0) {
		r = fchown(fd, inode_uid(*in), inode_gid(*in));
		(void)r;
		r = fchmod(fd, in->i_mode & 07777);
		(void)r;
		futimens(fd, ts);
	} else {
		r = fchownat(dfd, name, inode_uid(*in), inode_gid(*in),
			     AT_SYMLINK_NOFOLLOW);
		(void)r;
		utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
	}
}

/* Copying a regular file visits only its mapped blocks (a sparse file of
 * any size costs what it holds), in logical order, and never more of them
 * than the file system has: a damaged or hostile block map cannot make it
 * loop or read a block twice over. */
struct copy_ctx {
	struct get_ctx *g;
	int fd;
	const char *name;
	uint64_t size, bs, nblocks, seen;
	int err;
};

static int copy_block(struct copy_ctx *c, uint64_t lb, blk64_t pb)
{
	ext2_filsys fs = c->g->f->fs;
	uint64_t total = ext2fs_blocks_count(fs->super);
	size_t n;

	if (atomic_load(&ferry_cancelled))
		return ferry_error(FERRY_E_INTERRUPTED, "interrupted");
	if (++c->seen > total)
		return ferry_error(FERRY_E_CORRUPT,
				   "%s: the block map names more blocks than the file system has",
				   c->name);
	if (pb == 0 || lb >= c->nblocks)
		return 0; /* a hole, or past the end of the file */
	if (pb >= total)
		return ferry_error(FERRY_E_CORRUPT,
				   "%s: block %llu is outside the file system",
				   c->name, (unsigned long long)pb);
	n = c->size - lb * c->bs < c->bs ? (size_t)(c->size - lb * c->bs) : (size_t)c->bs;
	if (io_channel_read_blk64(fs->io, pb, 1, c->g->buf) != 0)
		return ferry_error(FERRY_E_CORRUPT, "%s: %s", c->name, ferry_last_error());
	if (ferry_pwrite_all(c->fd, c->g->buf, n, (off_t)(lb * c->bs)))
		return ferry_error(FERRY_E_TARGET, "write %s: %s", c->name,
				   strerror(errno));
	c->g->res->bytes += n;
	return 0;
}

static int copy_cb(ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt,
		   blk64_t ref_blk, int ref_offset, void *priv)
{
	struct copy_ctx *c = priv;

	(void)fs, (void)ref_blk, (void)ref_offset;
	if (blockcnt < 0)
		return 0;
	if ((c->err = copy_block(c, (uint64_t)blockcnt, *blocknr)) != 0)
		return BLOCK_ABORT;
	return 0;
}

static int copy_extents(struct copy_ctx *c, ext2_ino_t ino, struct ext2_inode *in)
{
	ext2_extent_handle_t h;
	struct ext2fs_extent ex;
	uint64_t next = 0;
	int op = EXT2_EXTENT_ROOT, e = 0;
	errcode_t err;

	if ((err = ext2fs_extent_open2(c->g->f->fs, ino, in, &h)) != 0)
		return ferry_error(FERRY_E_CORRUPT, "%s: extent tree: %s", c->name,
				   error_message(err));
	while (!e && !(err = ext2fs_extent_get(h, op, &ex))) {
		op = EXT2_EXTENT_NEXT;
		if (!(ex.e_flags & EXT2_EXTENT_FLAGS_LEAF) ||
		    (ex.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT))
			continue;
		if (ex.e_lblk < next) {
			e = ferry_error(FERRY_E_CORRUPT,
					"%s: extents overlap or are out of order", c->name);
			break;
		}
		next = ex.e_lblk + (uint64_t)ex.e_len;
		if (ex.e_flags & EXT2_EXTENT_FLAGS_UNINIT)
			continue; /* allocated, never written: reads as zeros */
		for (uint32_t i = 0; i < ex.e_len && !e && ex.e_lblk + i < c->nblocks; i++)
			e = copy_block(c, ex.e_lblk + i, ex.e_pblk + i);
	}
	ext2fs_extent_free(h);
	if (!e && err != EXT2_ET_EXTENT_NO_NEXT)
		e = ferry_error(FERRY_E_CORRUPT, "%s: extent tree: %s", c->name,
				error_message(err));
	return e;
}

static int copy_file(struct get_ctx *g, ext2_ino_t ino, struct ext2_inode *in,
		     int fd, const char *name)
{
	ext2_filsys fs = g->f->fs;
	uint64_t size = EXT2_I_SIZE(in), bs = fs->blocksize;
	struct copy_ctx c = { g, fd, name, size, bs, size / bs + (size % bs != 0), 0, 0 };
	errcode_t err;

	if (in->i_flags & EXT4_INLINE_DATA_FL) {
		size_t n = bs;

		if (size > bs || ext2fs_inline_data_get(fs, ino, in, g->buf, &n) ||
		    n < size)
			return ferry_error(FERRY_E_CORRUPT, "%s: bad inline data", name);
		if (ferry_pwrite_all(fd, g->buf, (size_t)size, 0))
			return ferry_error(FERRY_E_TARGET, "write %s: %s", name,
					   strerror(errno));
	} else if (in->i_flags & EXT4_EXTENTS_FL) {
		if ((c.err = copy_extents(&c, ino, in)) != 0)
			return c.err;
	} else {
		err = ext2fs_block_iterate3(fs, ino, BLOCK_FLAG_DATA_ONLY | BLOCK_FLAG_READ_ONLY,
					    NULL, copy_cb, &c);
		if (c.err)
			return c.err;
		if (err)
			return ferry_error(FERRY_E_CORRUPT, "%s: block map: %s",
					   name, error_message(err));
	}
	if (ftruncate(fd, (off_t)size) < 0)
		return ferry_error(FERRY_E_TARGET, "size %s: %s", name,
				   strerror(errno));
	return 0;
}

static int get_inode(struct get_ctx *g, int dfd, const char *name,
		     ext2_ino_t ino);

struct dir_get {
	struct get_ctx *g;
	int dfd;
};

static int get_dir_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *d,
		      int offset, int blocksize, char *buf, void *priv)
{
	struct dir_get *c = priv;
	char name[256];
	int nl = ext2fs_dirent_name_len(d);

	(void)dir, (void)entry, (void)offset, (void)blocksize, (void)buf;
	if (d->inode == 0)
		return 0;
	memcpy(name, d->name, (size_t)nl);
	name[nl] = 0;
	if ((nl == 1 && name[0] == '.') ||
	    (nl == 2 && name[0] == '.' && name[1] == '.'))
		return 0; /* the real ones: "." and ".." of every directory */
	if (!safe_name(name) || strlen(name) != (size_t)nl) {
		gwarn(c->g, "skipped an entry with an unsafe name ('%s')", name);
		return 0;
	}
	if (get_inode(c->g, c->dfd, name, d->inode) != 0)
		return DIRENT_ABORT;
	return 0;
}

/* Create NAME in DFD from inode INO; 0, or < 0 to stop everything. */
static int get_inode(struct get_ctx *g, int dfd, const char *name,
		     ext2_ino_t ino)
{
	struct ext2_inode_large big;
	struct ext2_inode *inp = (struct ext2_inode *)&big;
#define in (*inp)
	int fd, e = 0;

	memset(&big, 0, sizeof(big));
	if (atomic_load(&ferry_cancelled))
		return g->err = ferry_error(FERRY_E_INTERRUPTED, "interrupted");
	if (ext2fs_read_inode_full(g->f->fs, ino, inp, sizeof(big))) {
		gwarn(g, "%s: cannot read inode %u", name, ino);
		return 0;
	}
	if (LINUX_S_ISREG(in.i_mode)) {
		fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
					       O_CLOEXEC, 0600);
		if (fd < 0) {
			gwarn(g, "%s: not created: %s", name, strerror(errno));
			return 0;
		}
		e = copy_file(g, ino, &in, fd, name);
		if (e == 0) {
			set_meta(dfd, name, fd, &in);
			g->res->files++;
		}
		close(fd);
		if (e == FERRY_E_CORRUPT || e == FERRY_E_MISSING) {
			/* (copy_file's errors begin with the file's name) */
			gwarn(g, "%s (the partial file was removed)",
			      ferry_last_error());
			unlinkat(dfd, name, 0);
			g->err = e;
			return 0;
		}
		return g->err = e;
	}
	if (LINUX_S_ISLNK(in.i_mode)) {
		char link[LINK_MAX_LEN];

		if (read_link(g->f->fs, ino, &in, link, sizeof(link))) {
			gwarn(g, "%s: unreadable symbolic link", name);
			return 0;
		}
		/* The target is stored as it is: it is never followed here. */
		if (symlinkat(link, dfd, name) < 0) {
			gwarn(g, "%s: not created: %s", name, strerror(errno));
			return 0;
		}
		set_meta(dfd, name, -1, &in);
		g->res->symlinks++;
		return 0;
	}
	if (LINUX_S_ISDIR(in.i_mode)) {
		struct dir_get c = { g, -1 };
		errcode_t err;

		int seen = ferry_inoset_add(&g->dirs, ino);

		if (seen < 0)
			return g->err = FERRY_E_NOMEM;
		if (seen == 0) {
			gwarn(g, "%s: directory inode %u is linked more than once (a damaged file system): skipped",
			      name, ino);
			return 0;
		}
		if (g->depth >= DEPTH_MAX) {
			gwarn(g, "%s: nested deeper than %d directories", name, DEPTH_MAX);
			return 0;
		}
		if (mkdirat(dfd, name, 0700) < 0 && errno != EEXIST) {
			gwarn(g, "%s: not created: %s", name, strerror(errno));
			return 0;
		}
		/* O_NOFOLLOW: a symlink of the same name is never entered. */
		c.dfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (c.dfd < 0) {
			gwarn(g, "%s: not a directory here: %s", name, strerror(errno));
			return 0;
		}
		g->depth++;
		err = ext2fs_dir_iterate2(g->f->fs, ino, 0, NULL, get_dir_cb, &c);
		g->depth--;
		if (err && !g->err)
			gwarn(g, "%s: cannot list: %s", name, error_message(err));
		set_meta(dfd, name, c.dfd, &in);
		close(c.dfd);
		g->res->dirs++;
		return g->err && g->err != FERRY_E_CORRUPT && g->err != FERRY_E_MISSING
			       ? g->err : 0;
	}
	gwarn(g, "%s: special file (device, fifo or socket) not restored", name);
	return 0;
#undef in
}

int ferry_files_get(struct ferry_files *f, const char *path, const char *dest,
		    void (*warn)(const char *msg, void *arg), void *warn_arg,
		    struct ferry_files_result *res)
{
	struct get_ctx g = { f, warn, warn_arg, res, NULL, 0, 0, { NULL, 0, 0 } };
	struct ext2_inode in;
	char name[256];
	const char *base;
	size_t bl;
	ext2_ino_t ino;
	int dfd, e;

	memset(res, 0, sizeof(*res));
	if ((e = lookup(f, path, &ino)) != 0)
		return e;
	dfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ferry_error(FERRY_E_TARGET, "--to %s: %s (give an existing directory)",
				   dest, strerror(errno));
	if (!(g.buf = malloc(f->fs->blocksize))) {
		close(dfd);
		return FERRY_E_NOMEM;
	}
	for (bl = strlen(path); bl > 1 && path[bl - 1] == '/'; bl--)
		;
	base = path + bl;
	while (base > path && base[-1] != '/')
		base--;
	snprintf(name, sizeof(name), "%.*s", (int)(path + bl - base), base);
	if (ino == EXT2_ROOT_INO || !safe_name(name)) {
		/* The root (or "x/.."): its contents go into DEST itself. */
		struct dir_get c = { &g, dfd };

		if (ferry_inoset_add(&g.dirs, ino) < 0)
			e = FERRY_E_NOMEM;
		else if (ext2fs_read_inode(f->fs, ino, &in) || !LINUX_S_ISDIR(in.i_mode))
			e = ferry_error(FERRY_E_NOTFOUND, "%s: not a directory", path);
		else if (ext2fs_dir_iterate2(f->fs, ino, 0, NULL, get_dir_cb, &c) && !g.err)
			e = ferry_error(FERRY_E_CORRUPT, "%s: cannot list", path);
	} else {
		e = get_inode(&g, dfd, name, ino);
	}
	if (!e)
		e = g.err;
	if (e == FERRY_E_CORRUPT || e == FERRY_E_MISSING)
		e = ferry_error(e, "%llu item(s) could not be restored (damaged blocks); see above",
				(unsigned long long)res->skipped);
	ferry_inoset_free(&g.dirs);
	free(g.buf);
	close(dfd);
	return e;
}
