/* vmsrc.h - the parts of libferry that read virtual machine disks: the NBD
 * transport, partition tables, ext2/3/4 block maps, the unused-block
 * filter, and guest interaction (scripts, qemu-guest-agent). */
#ifndef FERRY_VMSRC_H
#define FERRY_VMSRC_H

#include "internal.h"

/* A bounded reader of the disk: LEN bytes at OFF, or a negative
 * FERRY_E_* (reads past the end fail). */
typedef int (*ferry_read_fn)(void *arg, uint64_t off, void *buf, size_t len);

/* ---- partition tables (partition.c) --------------------------------- */

enum { FERRY_PT_NONE, FERRY_PT_MBR, FERRY_PT_GPT };
enum {
	FERRY_PART_OTHER,
	FERRY_PART_SWAP,  /* MBR 0x82, GPT Linux swap */
	FERRY_PART_LINUX, /* MBR 0x83, GPT Linux data or root */
};
#define FERRY_PART_MAX 256
#define FERRY_GPT_ENTRIES_MAX 1024

struct ferry_part {
	int number;     /* as Linux names it: MBR 1-4 primary, 5.. logical;
			 * GPT entry index + 1 */
	uint64_t start; /* bytes */
	uint64_t size;  /* bytes */
	int kind;       /* FERRY_PART_* */
	uint8_t mbr_type;
	uint8_t gpt_type[16]; /* as stored */
};

struct ferry_ptable {
	int scheme;           /* FERRY_PT_* */
	uint32_t sector;      /* logical sector size the table uses */
	int count;
	struct ferry_part part[FERRY_PART_MAX];
};

/* Read the partition table of a disk of DISK_SIZE bytes.  0 with
 * scheme NONE when there is none; FERRY_E_CORRUPT (detail in
 * ferry_last_error()) when a table is there but fails a check: bad CRC,
 * an entry outside the disk, overlapping partitions, a looping chain of
 * logical partitions.  Nothing may be skipped on that disk then. */
int ferry_ptable_read(ferry_read_fn rd, void *arg, uint64_t disk_size,
		      struct ferry_ptable *pt);
const char *ferry_ptable_scheme_name(int scheme);

/* The swap header page of a Linux swap area starting at OFF: its size in
 * bytes (the page size found by the SWAPSPACE2 signature), or 0 when the
 * area holds no plain swap signature (e.g. a hibernation image). */
uint32_t ferry_swap_header_size(ferry_read_fn rd, void *arg, uint64_t off,
				uint64_t size);

/* ---- ext2/3/4 (fs_ext.c) --------------------------------------------- */

enum { FERRY_RANGE_SWAP = FERRY_SKIP_SWAP, FERRY_RANGE_FREE = FERRY_SKIP_FREE,
       FERRY_RANGE_EXCLUDED = FERRY_SKIP_EXCLUDED };
/* Receives one unused byte range of the disk; nonzero stops. */
typedef int (*ferry_range_fn)(void *arg, uint64_t off, uint64_t len,
			      int reason);

/* 1 when an ext2/3/4 superblock magic sits at OFF + 1024. */
int ferry_extfs_probe(ferry_read_fn rd, void *arg, uint64_t off,
		      uint64_t size);

/* Open the ext file system in [OFF, OFF+SIZE) read-only through RD
 * (file-level restore); close with ferry_extfs_close(). */
struct struct_ext2_filsys;
int ferry_extfs_open(ferry_read_fn rd, void *arg, uint64_t off, uint64_t size,
		     struct struct_ext2_filsys **out);
void ferry_extfs_close(struct struct_ext2_filsys *fs);

/* A set of inode numbers (directories entered once: a damaged or hostile
 * file system can link a directory under itself).  Zeroed to start;
 * ferry_inoset_add() is 1 when INO was new, 0 when present, < 0 out of
 * memory. */
struct ferry_inoset {
	uint32_t *v;
	size_t cap, n;
};
int ferry_inoset_add(struct ferry_inoset *s, uint32_t ino);
void ferry_inoset_free(struct ferry_inoset *s);

struct ferry_extfs_req {
	ferry_read_fn rd;
	void *rd_arg;
	uint64_t off, size;     /* the partition (or whole disk) */
	int partno;             /* for "[PART:]path" excludes; 0: whole disk */
	int want_free;          /* report free blocks */
	const char *const *exclude;
	size_t exclude_count;
	int *exclude_found;     /* [exclude_count]: set to 1 when found here */
	ferry_range_fn add;
	void *add_arg;
	/* Non-fatal problems with one exclude path. */
	void (*warn)(void *arg, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
	void *warn_arg;
};
/* Report the free blocks and the data blocks of excluded files of the
 * ext file system in REQ's range.  FERRY_E_CORRUPT when the file system
 * cannot be trusted (bad superblock or group descriptors, a block bitmap
 * failing its checksum, needs journal recovery, has errors): then nothing
 * was reported. */
int ferry_extfs_unused(const struct ferry_extfs_req *req);

/* ---- the unused-block filter (filter_unused.c) ---------------------- */

/* Wrap *S (any transport) in the filter that drops swap, free and
 * excluded blocks as OPTS asks; *S becomes the filter, which owns the
 * transport.  Leaves *S alone when OPTS asks for nothing. */
int ferry_filter_unused_wrap(struct ferry_source **s,
			     const struct ferry_backup_opts *opts);

/* ---- NBD transport (source_nbd.c) ------------------------------------ */

/* 1 when SPEC names an NBD export or a qcow2 image. */
int ferry_source_nbd_spec(const char *spec);
extern const struct ferry_source_ops ferry_source_nbd_ops;

/* qcow2 persistent bitmaps (qcow2_bitmaps.c): the bitmap directory of a
 * qcow2 v3 header held in BUF (the image's first bytes, and the directory
 * read through RD). */
#define FERRY_QCOW2_BITMAP_IN_USE 1u /* inconsistent: QEMU did not close it */
#define FERRY_QCOW2_BITMAP_AUTO 2u   /* enabled: records writes */
struct ferry_qcow2_bitmap {
	char name[1024];
	uint32_t flags;
	uint8_t granularity_bits;
};
/* Look NAME up in the image's bitmap directory: 1 found (*out filled),
 * 0 not there (or no bitmaps), < 0 not a qcow2 image or corrupt. */
int ferry_qcow2_find_bitmap(ferry_read_fn rd, void *arg, uint64_t file_size,
			    const char *name, struct ferry_qcow2_bitmap *out);

/* ---- restore into a disk over NBD (restore_nbd.c) ------------------ */

/* ferry_restore() for a TARGET that ferry_source_nbd_spec() accepts:
 * qcow2:PATH (a writable qemu-nbd of our own) or an NBD URL; the target
 * keeps its size, which must be the point's.  With opts->changed_only
 * only what differs is written; with opts->bitmap too, only the bitmap's
 * dirty extents are read. */
int ferry_restore_nbd(struct ferry_repo *repo, const char *spec,
		      const char *target, const struct ferry_restore_opts *opts,
		      struct ferry_restore_result *res);

/* ---- guest interaction (quiesce.c, guest.c) -------------------------- */

struct ferry_qga;
/* Connect to qemu-guest-agent's unix socket; every command waits at most
 * TIMEOUT_MS for its answer.  Syncs the stream (guest-sync-delimited). */
int ferry_qga_open(const char *path, int timeout_ms, struct ferry_qga **out);
void ferry_qga_free(struct ferry_qga *q);
int ferry_qga_ping(struct ferry_qga *q);
/* The agent's version ("7.2.22"), from guest-info. */
int ferry_qga_info(struct ferry_qga *q, char *version, size_t len);
/* Freeze / thaw every guest file system; *N: how many. */
int ferry_qga_freeze(struct ferry_qga *q, int *n);
int ferry_qga_thaw(struct ferry_qga *q, int *n);
/* Parse one agent reply line: 0 with "return" (its integer in *ival when
 * it is one, else the raw value in VAL), FERRY_E_SOURCE with the error's
 * class and description in ferry_last_error(), FERRY_E_CORRUPT when it is
 * not a reply. */
int ferry_qga_parse_reply(const char *line, size_t len, long long *ival,
			  char *val, size_t vlen);

struct ferry_guest;
/* Runs the pre-script, freezes, runs the snapshot script and thaws (the
 * freeze is held through the read when there is no snapshot script).
 * On failure every step taken is undone: thawed, post-script run. */
int ferry_guest_begin(const struct ferry_backup_opts *o, const char *source,
		      struct ferry_guest **out);
/* The read is over: thaw if still frozen. */
int ferry_guest_read_done(struct ferry_guest *g);
/* Thaw if needed and run the post-script with the result; frees G.
 * Returns the first error of these steps (the backup's own result is
 * RESULT). */
int ferry_guest_end(struct ferry_guest *g, int result, const char *point_id);

/* The value of KEY in a manifest's extra "key=value" lines, copied into
 * OUT (LEN bytes, truncated); NULL when absent (source_nbd.c). */
const char *ferry_extra_val(const char *extra, const char *key, char *out,
			    size_t len);

#endif
