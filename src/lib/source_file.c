/* source_file.c - the raw transport: a disk image file or a block device,
 * read with large preads, or for an image file straight from a read-only
 * mapping (no copy out of the page cache); holes of sparse files are
 * found with SEEK_DATA/SEEK_HOLE and never read. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsrc.h"

struct file_src {
	int fd;
	int seekable;          /* SEEK_DATA works */
	uint64_t data_until;   /* [.., data_until) known to be data */
	uint64_t hole_until;   /* [.., hole_until) known to be a hole */
	uint64_t known_from;
	const uint8_t *map;    /* the whole file, read-only; or NULL */
	size_t map_len;
};

/* A mapped file that shrinks, or a page the disk cannot read, raises
 * SIGBUS where read() returns an error.  While a thread is inside
 * ferry_map_call() such a SIGBUS returns there instead; anywhere else it
 * kills the process as it would without this handler.  Installed once,
 * and only over the default disposition: a program with its own SIGBUS
 * handler gets no mappings (pread only). */
static __thread sigjmp_buf *map_jb;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_ok;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	sigjmp_buf *jb = map_jb;

	(void)si;
	(void)uc;
	if (jb) {
		map_jb = NULL;
		siglongjmp(*jb, 1);
	}
	signal(sig, SIG_DFL); /* not ours: fault again, the default way */
}

static void guard_install(void)
{
	struct sigaction old, sa;

	if (sigaction(SIGBUS, NULL, &old) < 0 || (old.sa_flags & SA_SIGINFO) ||
	    old.sa_handler != SIG_DFL)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	guard_ok = sigaction(SIGBUS, &sa, NULL) == 0;
}

int ferry_map_call(int (*fn)(void *arg), void *arg)
{
	sigjmp_buf jb;
	int r;

	if (sigsetjmp(jb, 1)) /* SIGBUS: map_jb was cleared */
		return FERRY_MAP_FAULT;
	map_jb = &jb;
	r = fn(arg);
	map_jb = NULL;
	return r;
}

/* Map a regular file whole (address space only: pages are mapped as the
 * workers touch them and dropped after each block, see backup.c). */
static void file_mmap(struct file_src *f, uint64_t size)
{
	const char *no = getenv("FERRY_NO_MMAP");
	void *m;

	pthread_once(&guard_once, guard_install);
	if (!guard_ok || size == 0 || size > SIZE_MAX ||
	    (no && *no && strcmp(no, "0")))
		return;
	m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, f->fd, 0);
	if (m == MAP_FAILED)
		return; /* pread it is */
	f->map = m;
	f->map_len = (size_t)size;
}

static int file_open(struct ferry_source *s, const char *spec)
{
	struct file_src *f = calloc(1, sizeof(*f));
	struct stat st;

	if (!f)
		return FERRY_E_NOMEM;
	s->state = f;
	f->fd = open(spec, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		int e = errno;

		free(f);
		s->state = NULL;
		return ferry_error(e == ENOENT ? FERRY_E_NOTFOUND : FERRY_E_SOURCE,
				   "cannot open source %s: %s", spec, strerror(e));
	}
	if (fstat(f->fd, &st) < 0)
		goto bad;
	if (S_ISREG(st.st_mode)) {
		s->size = (uint64_t)st.st_size;
		f->seekable = 1;
	} else if (S_ISBLK(st.st_mode)) {
		uint64_t sz;

		if (ioctl(f->fd, BLKGETSIZE64, &sz) < 0)
			goto bad;
		s->size = sz;
	} else {
		close(f->fd);
		free(f);
		s->state = NULL;
		return ferry_error(FERRY_E_SOURCE,
				   "source %s is not a disk image file or a block device",
				   spec);
	}
	posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (S_ISREG(st.st_mode))
		file_mmap(f, s->size);
	return 0;
bad:
	{
		int e = errno;

		close(f->fd);
		free(f);
		s->state = NULL;
		return ferry_error(FERRY_E_SOURCE, "cannot inspect source %s: %s",
				   spec, strerror(e));
	}
}

/* Classify [off, off+len): 1 when it is entirely a hole. */
static int in_hole(struct file_src *f, uint64_t off, uint64_t len)
{
	off_t d, h;

	if (!f->seekable)
		return 0;
	if (off >= f->known_from && off + len <= f->hole_until)
		return 1;
	if (off >= f->known_from && off + len <= f->data_until)
		return 0;
	d = lseek(f->fd, (off_t)off, SEEK_DATA);
	if (d < 0) {
		if (errno == ENXIO) { /* only a hole up to the end */
			f->known_from = off;
			f->hole_until = UINT64_MAX;
			f->data_until = 0;
			return 1;
		}
		f->seekable = 0; /* file system without SEEK_DATA */
		return 0;
	}
	f->known_from = off;
	if ((uint64_t)d > off) {
		f->hole_until = (uint64_t)d;
		f->data_until = 0;
		return (uint64_t)d >= off + len;
	}
	h = lseek(f->fd, (off_t)off, SEEK_HOLE);
	f->hole_until = 0;
	f->data_until = h < 0 ? UINT64_MAX : (uint64_t)h;
	return 0;
}

static int file_read(struct ferry_source *s, uint64_t off, void *buf,
		     size_t len, int *kind)
{
	struct file_src *f = s->state;
	ssize_t n;

	if (in_hole(f, off, len)) {
		*kind = FERRY_BLK_ZERO;
		return 0;
	}
	*kind = FERRY_BLK_DATA;
	n = ferry_pread_full(f->fd, buf, len, (off_t)off);
	if (n < 0)
		return ferry_error(FERRY_E_SOURCE,
				   "read source %s at offset %llu: %s", s->spec,
				   (unsigned long long)off, strerror((int)-n));
	if ((size_t)n != len)
		return ferry_error(FERRY_E_SOURCE,
				   "source %s shrank while reading (offset %llu)",
				   s->spec, (unsigned long long)off);
	return 0;
}

static int file_map(struct ferry_source *s, uint64_t off, size_t len,
		    const uint8_t **p, int *kind)
{
	struct file_src *f = s->state;

	*p = NULL;
	if (in_hole(f, off, len)) {
		*kind = FERRY_BLK_ZERO;
		return 0;
	}
	*kind = FERRY_BLK_DATA;
	if (f->map && off <= f->map_len && len <= f->map_len - off)
		*p = f->map + off;
	return 0;
}

static int file_pread(struct ferry_source *s, uint64_t off, void *buf,
		      size_t len)
{
	struct file_src *f = s->state;
	ssize_t n = ferry_pread_full(f->fd, buf, len, (off_t)off);

	if (n < 0)
		return ferry_error(FERRY_E_SOURCE,
				   "read source %s at offset %llu: %s", s->spec,
				   (unsigned long long)off, strerror((int)-n));
	if ((size_t)n != len)
		return ferry_error(FERRY_E_SOURCE,
				   "read source %s at offset %llu: end of file",
				   s->spec, (unsigned long long)off);
	return 0;
}

static void file_close(struct ferry_source *s)
{
	struct file_src *f = s->state;

	if (!f)
		return;
	if (f->map)
		munmap((void *)f->map, f->map_len);
	close(f->fd);
	free(f);
	s->state = NULL;
}

const struct ferry_source_ops ferry_source_file_ops = {
	.name = "file",
	.open = file_open,
	.read = file_read,
	.pread = file_pread,
	.close = file_close,
	.map = file_map,
};

void ferry_source_warn(struct ferry_source *s, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->warn)
		s->warn(msg, s->warn_arg);
}

int ferry_source_open(const char *spec, const struct ferry_backup_opts *opts,
		      struct ferry_source **out)
{
	struct ferry_source *s = calloc(1, sizeof(*s));
	int e;

	if (!s || !(s->spec = strdup(spec))) {
		free(s);
		return FERRY_E_NOMEM;
	}
	s->opts = opts;
	if (opts) {
		s->warn = opts->warn;
		s->warn_arg = opts->warn_arg;
	}
	/* The transport mode is chosen by the spec: NBD exports and qcow2
	 * images (source_nbd.c), else a raw file or block device. */
	s->ops = ferry_source_nbd_spec(spec) ? &ferry_source_nbd_ops
					     : &ferry_source_file_ops;
	if ((e = s->ops->open(s, spec)) != 0) {
		free(s->spec);
		free(s);
		return e;
	}
	/* Filters over any transport. */
	if ((e = ferry_filter_unused_wrap(&s, opts)) != 0) {
		ferry_source_free(s);
		return e;
	}
	*out = s;
	return 0;
}

int ferry_source_pread(struct ferry_source *s, uint64_t off, void *buf,
		       size_t len)
{
	int kind = FERRY_BLK_DATA, e;

	if (s->ops->pread)
		return s->ops->pread(s, off, buf, len);
	if ((e = s->ops->read(s, off, buf, len, &kind)) != 0)
		return e;
	if (kind == FERRY_BLK_ZERO)
		memset(buf, 0, len);
	else if (kind != FERRY_BLK_DATA)
		return ferry_error(FERRY_E_SOURCE,
				   "source %s cannot read bytes it reports unchanged",
				   s->spec);
	return 0;
}

void ferry_source_free(struct ferry_source *s)
{
	if (!s)
		return;
	s->ops->close(s);
	free(s->spec);
	free(s);
}
