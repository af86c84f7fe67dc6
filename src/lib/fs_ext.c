/* fs_ext.c - finds the blocks of an ext2/3/4 file system that a backup
 * need not keep: free blocks (libext2fs's block bitmaps) and the data
 * blocks of excluded guest files (extent lookup).  libext2fs reads the
 * disk through an io_manager of ours that calls the source's bounded
 * reader, so the file system is never mounted and never written. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <et/com_err.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include "vmsrc.h"

#define EXT_MAGIC_OFF (1024 + 56)
#define EXCLUDE_DEPTH_MAX 64

/* ---- an io_manager over a ferry_read_fn ------------------------------ */

struct fxio {
	ferry_read_fn rd;
	void *arg;
	uint64_t off, size;
};

static struct struct_io_manager fx_manager;

static errcode_t fx_open(const char *name, int flags, io_channel *channel)
{
	io_channel io = NULL;
	void *p = NULL;
	errcode_t err;

	if (!name || sscanf(name, "ferry-io-%p", &p) != 1 || !p)
		return EXT2_ET_BAD_DEVICE_NAME;
	if (flags & IO_FLAG_RW)
		return EROFS;
	if ((err = ext2fs_get_mem(sizeof(*io), &io)) != 0)
		return err;
	memset(io, 0, sizeof(*io));
	if ((err = ext2fs_get_mem(strlen(name) + 1, &io->name)) != 0) {
		ext2fs_free_mem(&io);
		return err;
	}
	memcpy(io->name, name, strlen(name) + 1);
	io->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	io->manager = &fx_manager;
	io->block_size = 1024;
	io->refcount = 1;
	io->private_data = p;
	*channel = io;
	return 0;
}

static errcode_t fx_close(io_channel io)
{
	if (--io->refcount > 0)
		return 0;
	ext2fs_free_mem(&io->name);
	ext2fs_free_mem(&io);
	return 0;
}

static errcode_t fx_set_blksize(io_channel io, int blksize)
{
	if (blksize <= 0)
		return EXT2_ET_INVALID_ARGUMENT;
	io->block_size = blksize;
	return 0;
}

static errcode_t fx_read_blk64(io_channel io, unsigned long long block,
			       int count, void *data)
{
	struct fxio *f = io->private_data;
	uint64_t n = count < 0 ? (uint64_t)-(int64_t)count
			       : (uint64_t)count * (uint64_t)io->block_size;
	uint64_t off;

	if (block > UINT64_MAX / (uint64_t)io->block_size)
		return EXT2_ET_SHORT_READ;
	off = block * (uint64_t)io->block_size;
	/* Reads stay inside the partition: a corrupt superblock must not
	 * send libext2fs into the next one. */
	if (off > f->size || n > f->size - off || n > (64u << 20))
		return EXT2_ET_SHORT_READ;
	if (f->rd(f->arg, f->off + off, data, (size_t)n) != 0)
		return EIO;
	return 0;
}

static errcode_t fx_read_blk(io_channel io, unsigned long block, int count,
			     void *data)
{
	return fx_read_blk64(io, block, count, data);
}

static errcode_t fx_write_blk64(io_channel io, unsigned long long block,
				int count, const void *data)
{
	(void)io, (void)block, (void)count, (void)data;
	return EROFS;
}

static errcode_t fx_write_blk(io_channel io, unsigned long block, int count,
			      const void *data)
{
	return fx_write_blk64(io, block, count, data);
}

static errcode_t fx_flush(io_channel io)
{
	(void)io;
	return 0;
}

static errcode_t fx_set_option(io_channel io, const char *opt, const char *arg)
{
	(void)io, (void)opt, (void)arg;
	return EXT2_ET_INVALID_ARGUMENT;
}

static struct struct_io_manager fx_manager = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "ferry source",
	.open = fx_open,
	.close = fx_close,
	.set_blksize = fx_set_blksize,
	.read_blk = fx_read_blk,
	.write_blk = fx_write_blk,
	.flush = fx_flush,
	.set_option = fx_set_option,
	.read_blk64 = fx_read_blk64,
	.write_blk64 = fx_write_blk64,
};

int ferry_inoset_add(struct ferry_inoset *s, uint32_t ino)
{
	size_t i;

	if (ino == 0)
		return 0;
	if (2 * (s->n + 1) > s->cap) {
		struct ferry_inoset t = { calloc(s->cap ? 2 * s->cap : 64, sizeof(uint32_t)),
					  s->cap ? 2 * s->cap : 64, 0 };

		if (!t.v)
			return -1;
		for (i = 0; i < s->cap; i++)
			if (s->v[i])
				ferry_inoset_add(&t, s->v[i]);
		free(s->v);
		*s = t;
	}
	for (i = (ino * 2654435761u) & (s->cap - 1); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == ino)
			return 0;
	s->v[i] = ino;
	s->n++;
	return 1;
}

void ferry_inoset_free(struct ferry_inoset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

int ferry_extfs_probe(ferry_read_fn rd, void *arg, uint64_t off,
		      uint64_t size)
{
	uint8_t m[2];

	if (size < 2048 || rd(arg, off + EXT_MAGIC_OFF, m, 2) != 0)
		return 0;
	return m[0] == 0x53 && m[1] == 0xef;
}

/* What libext2fs trusts in the superblock and ferry checks first: the
 * file system fits its partition, and its first data block is the one
 * mke2fs writes (1 for 1 KiB blocks without bigalloc, else 0): another
 * value made Debian's libext2fs 1.47.0 write past a bitmap buffer
 * (found by fuzz/fuzz_ext.c). */
static int geometry_ok(ext2_filsys fs, uint64_t size)
{
	struct ext2_super_block *sb = fs->super;
	unsigned first = fs->blocksize == 1024 && !ext2fs_has_feature_bigalloc(sb);

	if (ext2fs_blocks_count(sb) > size / fs->blocksize)
		return ferry_error(FERRY_E_CORRUPT,
				   "the ext file system (%llu blocks of %u bytes) is larger than its partition",
				   (unsigned long long)ext2fs_blocks_count(sb), fs->blocksize);
	if (sb->s_first_data_block != first)
		return ferry_error(FERRY_E_CORRUPT,
				   "the ext file system's superblock is damaged (first data block %u, not %u)",
				   sb->s_first_data_block, first);
	return 0;
}

int ferry_extfs_open(ferry_read_fn rd, void *arg, uint64_t off, uint64_t size,
		     struct struct_ext2_filsys **out)
{
	struct fxio *io = malloc(sizeof(*io));
	ext2_filsys fs = NULL;
	char name[64];
	errcode_t err;
	int e;

	if (!io)
		return FERRY_E_NOMEM;
	io->rd = rd;
	io->arg = arg;
	io->off = off;
	io->size = size;
	initialize_ext2_error_table();
	snprintf(name, sizeof(name), "ferry-io-%p", (void *)io);
	err = ext2fs_open2(name, NULL, EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP, 0, 0,
			   &fx_manager, &fs);
	if (err) {
		free(io);
		return ferry_error(FERRY_E_CORRUPT, "cannot open the ext file system: %s",
				   error_message(err));
	}
	if ((e = geometry_ok(fs, size)) != 0) {
		ferry_extfs_close(fs);
		return e;
	}
	*out = fs;
	return 0;
}

void ferry_extfs_close(struct struct_ext2_filsys *fs)
{
	void *io;

	if (!fs)
		return;
	io = fs->io ? fs->io->private_data : NULL;
	ext2fs_close_free(&fs);
	free(io);
}

/* ---- walking the file system ----------------------------------------- */

struct walk {
	const struct ferry_extfs_req *req;
	ext2_filsys fs;
	uint64_t bs;
	blk64_t run_start, run_len; /* a pending run of excluded blocks */
	int err;
	int depth;
	struct ferry_inoset dirs;	/* directories entered */
	uint64_t mapped;		/* blocks of the file seen so far */
};

static int flush_run(struct walk *w)
{
	int r = 0;

	if (w->run_len)
		r = w->req->add(w->req->add_arg, w->req->off + w->run_start * w->bs,
				w->run_len * w->bs, FERRY_RANGE_EXCLUDED);
	w->run_len = 0;
	return r;
}

static int block_cb(ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt,
		    blk64_t ref_blk, int ref_offset, void *priv)
{
	struct walk *w = priv;
	blk64_t b = *blocknr;

	(void)ref_blk, (void)ref_offset;
	/* No file maps more blocks than the file system has: a block map
	 * naming the same blocks over and over (2^30 times with 4 KiB
	 * triple-indirect blocks) is damaged, not walked to its end. */
	if (++w->mapped > ext2fs_blocks_count(fs->super)) {
		w->err = FERRY_E_CORRUPT;
		return BLOCK_ABORT;
	}
	if (blockcnt < 0 || b == 0)
		return 0;
	if (b < fs->super->s_first_data_block ||
	    b >= ext2fs_blocks_count(fs->super)) {
		w->err = FERRY_E_CORRUPT;
		return BLOCK_ABORT;
	}
	if (w->run_len && w->run_start + w->run_len == b) {
		w->run_len++;
		return 0;
	}
	if (flush_run(w) != 0) {
		w->err = FERRY_E_NOMEM;
		return BLOCK_ABORT;
	}
	w->run_start = b;
	w->run_len = 1;
	return 0;
}

static int exclude_inode(struct walk *w, ext2_ino_t ino, const char *path);

struct dir_ctx {
	struct walk *w;
	const char *path;
};

static int dir_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *d,
		  int offset, int blocksize, char *buf, void *priv)
{
	struct dir_ctx *c = priv;
	int nl = ext2fs_dirent_name_len(d);

	(void)dir, (void)entry, (void)offset, (void)blocksize, (void)buf;
	if (d->inode == 0 || (nl == 1 && d->name[0] == '.') ||
	    (nl == 2 && d->name[0] == '.' && d->name[1] == '.'))
		return 0;
	if (exclude_inode(c->w, d->inode, c->path) != 0)
		return DIRENT_ABORT;
	return 0;
}

/* The data blocks of a regular file, or of every regular file below a
 * directory.  Directories, symbolic links and metadata blocks (extent
 * tree, indirect blocks) are kept: the restored file system stays
 * consistent and the excluded files read as zeros. */
static int exclude_inode(struct walk *w, ext2_ino_t ino, const char *path)
{
	struct ext2_inode in;
	errcode_t err;

	if (ino < EXT2_FIRST_INODE(w->fs->super) && ino != EXT2_ROOT_INO)
		return 0;
	if ((err = ext2fs_read_inode(w->fs, ino, &in)) != 0) {
		w->req->warn(w->req->warn_arg,
			     "exclude %s: cannot read inode %u: %s", path, ino,
			     error_message(err));
		return 0;
	}
	if (LINUX_S_ISREG(in.i_mode)) {
		if (in.i_flags & EXT4_INLINE_DATA_FL)
			return 0;
		w->err = 0;
		w->mapped = 0;
		err = ext2fs_block_iterate3(w->fs, ino,
					    BLOCK_FLAG_DATA_ONLY | BLOCK_FLAG_READ_ONLY,
					    NULL, block_cb, w);
		if (w->err == FERRY_E_NOMEM)
			return FERRY_E_NOMEM;
		if (flush_run(w) != 0)
			return FERRY_E_NOMEM;
		if (err || w->err)
			w->req->warn(w->req->warn_arg,
				     "exclude %s: the block map of inode %u is damaged; part of it is kept",
				     path, ino);
		w->err = 0;
		return 0;
	}
	if (LINUX_S_ISDIR(in.i_mode)) {
		struct dir_ctx c = { w, path };
		int r = 0;

		int seen = ferry_inoset_add(&w->dirs, ino);

		if (seen < 0)
			return FERRY_E_NOMEM;
		if (seen == 0) {
			w->req->warn(w->req->warn_arg,
				     "exclude %s: directory inode %u is linked more than once (a damaged file system): entered once",
				     path, ino);
			return 0;
		}
		if (w->depth >= EXCLUDE_DEPTH_MAX) {
			w->req->warn(w->req->warn_arg,
				     "exclude %s: directories nested deeper than %d are kept",
				     path, EXCLUDE_DEPTH_MAX);
			return 0;
		}
		w->depth++;
		err = ext2fs_dir_iterate2(w->fs, ino, 0, NULL, dir_cb, &c);
		w->depth--;
		if (w->err == FERRY_E_NOMEM)
			r = FERRY_E_NOMEM;
		else if (err)
			w->req->warn(w->req->warn_arg,
				     "exclude %s: cannot list directory inode %u: %s",
				     path, ino, error_message(err));
		return r;
	}
	return 0;
}

/* "[PART:]/path": the path when it applies to partition PARTNO. */
static const char *exclude_path(const char *spec, int partno)
{
	char *end;
	long n;

	if (spec[0] == '/')
		return spec;
	n = strtol(spec, &end, 10);
	if (end == spec || *end != ':' || end[1] != '/')
		return NULL;
	return n == partno ? end + 1 : NULL;
}

static int free_blocks(struct walk *w)
{
	ext2_filsys fs = w->fs;
	blk64_t b = fs->super->s_first_data_block;
	blk64_t end = ext2fs_blocks_count(fs->super) - 1;
	blk64_t z, nz;
	int r;

	while (b <= end) {
		if (ext2fs_find_first_zero_block_bitmap2(fs->block_map, b, end, &z))
			break;
		if (ext2fs_find_first_set_block_bitmap2(fs->block_map, z, end, &nz))
			nz = end + 1;
		if (nz <= z)
			return ferry_error(FERRY_E_CORRUPT, "ext: block bitmap walk did not advance");
		if ((r = w->req->add(w->req->add_arg, w->req->off + z * w->bs,
				     (nz - z) * w->bs, FERRY_RANGE_FREE)) != 0)
			return r;
		b = nz;
	}
	return 0;
}

int ferry_extfs_unused(const struct ferry_extfs_req *req)
{
	struct fxio io = { req->rd, req->rd_arg, req->off, req->size };
	struct walk w;
	ext2_filsys fs = NULL;
	struct ext2_super_block *sb;
	char name[64];
	errcode_t err;
	int r = 0;

	memset(&w, 0, sizeof(w));
	w.req = req;
	initialize_ext2_error_table();
	snprintf(name, sizeof(name), "ferry-io-%p", (void *)&io);
	err = ext2fs_open2(name, NULL, EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP, 0, 0,
			   &fx_manager, &fs);
	if (err)
		return ferry_error(FERRY_E_CORRUPT, "cannot open the ext file system: %s",
				   error_message(err));
	sb = fs->super;
	w.fs = fs;
	w.bs = (uint64_t)fs->blocksize;
	if ((r = geometry_ok(fs, req->size)) != 0)
		goto out;
	/* Free-block bitmaps are the truth only for a file system that was
	 * left consistent on disk (cleanly unmounted, or frozen). */
	if (sb->s_state & EXT2_ERROR_FS) {
		r = ferry_error(FERRY_E_CORRUPT, "the ext file system is marked as having errors");
		goto out;
	}
	if (!(sb->s_state & EXT2_VALID_FS)) {
		r = ferry_error(FERRY_E_CORRUPT,
				"the ext file system was not cleanly unmounted (run e2fsck, or quiesce the guest)");
		goto out;
	}
	if (ext2fs_has_feature_journal_needs_recovery(sb)) {
		r = ferry_error(FERRY_E_CORRUPT,
				"the ext file system needs journal recovery (mounted and not frozen: quiesce the guest)");
		goto out;
	}
	if ((err = ext2fs_read_block_bitmap(fs)) != 0) {
		r = ferry_error(FERRY_E_CORRUPT, "cannot read the ext block bitmaps: %s",
				error_message(err));
		goto out;
	}
	if (req->want_free && (r = free_blocks(&w)) != 0)
		goto out;
	for (size_t i = 0; i < req->exclude_count; i++) {
		const char *path = exclude_path(req->exclude[i], req->partno);
		ext2_ino_t ino;

		if (!path)
			continue;
		if (ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path + 1, &ino))
			continue;
		req->exclude_found[i] = 1;
		if ((r = exclude_inode(&w, ino, path)) != 0)
			goto out;
	}
out:
	ferry_inoset_free(&w.dirs);
	ext2fs_close_free(&fs);
	return r;
}
