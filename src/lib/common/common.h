/* common.h - helpers every part of libferry may use and that depend on
 * nothing else of ours: errors, bounded byte readers, file I/O, time. */
#ifndef FERRY_COMMON_H
#define FERRY_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "ferry/ferry.h"

#define FERRY_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Record CODE with a printf-style detail for ferry_last_error(); returns
 * CODE so callers can write `return ferry_error(FERRY_E_IO, ...)`. */
/* One line of a "name = value" file (--config, the server's config), cut
 * in place (util.c): 1 with *NAME and *VALUE stripped of blanks, 0 for a
 * blank or '#' comment line, -1 when the line has no '='. */
int ferry_conf_line(char *line, char **name, char **value);

int ferry_error(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Map an errno value to a FERRY_E_* code. */
int ferry_errno_code(int e, int fallback);
/* Copy this thread's last error into BUF / restore it (worker threads). */
void ferry_error_save(int *code, char *buf, size_t len);
void ferry_error_restore(int code, const char *msg);

/* Bounded little-endian reader over untrusted bytes: every getter checks
 * the remaining length and latches an error instead of reading past it. */
struct ferry_rd {
	const uint8_t *p;
	size_t left;
	int bad;
};
static inline void ferry_rd_init(struct ferry_rd *r, const void *p, size_t n)
{
	r->p = p;
	r->left = n;
	r->bad = 0;
}
int ferry_rd_u8(struct ferry_rd *r, uint8_t *v);
int ferry_rd_u16(struct ferry_rd *r, uint16_t *v);
int ferry_rd_u32(struct ferry_rd *r, uint32_t *v);
int ferry_rd_u64(struct ferry_rd *r, uint64_t *v);
int ferry_rd_bytes(struct ferry_rd *r, void *out, size_t n);
const uint8_t *ferry_rd_ptr(struct ferry_rd *r, size_t n);

/* Little-endian writer into a caller-sized buffer (overflow latches). */
struct ferry_wr {
	uint8_t *p;
	size_t left;
	int bad;
};
static inline void ferry_wr_init(struct ferry_wr *w, void *p, size_t n)
{
	w->p = p;
	w->left = n;
	w->bad = 0;
}
void ferry_wr_u8(struct ferry_wr *w, uint8_t v);
void ferry_wr_u16(struct ferry_wr *w, uint16_t v);
void ferry_wr_u32(struct ferry_wr *w, uint32_t v);
void ferry_wr_u64(struct ferry_wr *w, uint64_t v);
void ferry_wr_bytes(struct ferry_wr *w, const void *v, size_t n);

static inline uint32_t ferry_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline void ferry_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* File helpers: full reads/writes that retry on EINTR and short counts. */
int ferry_write_all(int fd, const void *buf, size_t n);
int ferry_pwrite_all(int fd, const void *buf, size_t n, off_t off);
/* Returns bytes read (< n only at end of file) or a negative errno. */
ssize_t ferry_pread_full(int fd, void *buf, size_t n, off_t off);
int ferry_fsync_dir(const char *path);
int ferry_mkdir_p(const char *path, int mode);

/* Time. */
uint64_t ferry_now_ns(void);      /* realtime */
double ferry_mono_seconds(void);  /* monotonic */

/* Random bytes from the OS (getrandom). */
int ferry_random(void *buf, size_t n);

int ferry_hex_decode(const char *hex, uint8_t *out, size_t n);
int ferry_cpu_count(void);
int ferry_is_zero(const void *buf, size_t n);
/* A set of chunk ids (idset.c); zero-initialised is empty.  add returns 0
 * (also when present) or FERRY_E_NOMEM. */
struct ferry_idset {
	uint8_t (*v)[FERRY_HASH_LEN];
	uint8_t *used;
	size_t cap, n;
};
int ferry_idset_has(const struct ferry_idset *t, const uint8_t h[FERRY_HASH_LEN]);
int ferry_idset_add(struct ferry_idset *t, const uint8_t h[FERRY_HASH_LEN]);
void ferry_idset_clear(struct ferry_idset *t);
void ferry_idset_free(struct ferry_idset *t);
/* CRC-32C (Castagnoli); the portable one is the reference for tests. */
uint32_t ferry_crc32c(const void *buf, size_t n);
uint32_t ferry_crc32c_portable(const void *buf, size_t n);

#endif
