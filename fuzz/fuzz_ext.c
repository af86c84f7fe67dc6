/* fuzz_ext.c - libFuzzer target for what ferry reads of an ext2/3/4 file
 * system inside a guest's disk (the guest owns those bytes): the
 * unused-block scan a backup makes (fs_ext.c: free blocks from the
 * bitmaps, the blocks of excluded files) and file-level restore
 * (files_ext.c: list, then copy the whole tree out into a temp dir).
 * The input is the start of a 1 MiB disk that reads as zeros beyond it.
 * Whatever the bytes, every call returns; a reported range lies inside
 * the disk; nothing is created outside the temp dir.  libext2fs itself
 * is not instrumented: its crashes show, its coverage does not. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmsrc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_DISK (1u << 20)

#include "fuzz_img.h"

static int add(void *arg, uint64_t off, uint64_t len, int reason)
{
	(void)arg, (void)reason;
	if (len == 0 || off > FUZZ_DISK || len > FUZZ_DISK - off)
		abort();
	return 0;
}

static void warn_fs(void *arg, const char *fmt, ...)
{
	(void)arg, (void)fmt;
}

static int list_one(const struct ferry_file_info *fi, void *arg)
{
	(void)arg;
	if (!fi->name || strlen(fi->name) > 255)
		abort();
	if (fi->link && strlen(fi->link) >= 4096)
		abort();
	return 0;
}

static void warn_get(const char *msg, void *arg)
{
	(void)msg, (void)arg;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const excl[] = { "/a", "/d/f", "1:/d", "/d/l", "/nope" };
	static char top[64], dest[96];
	static unsigned run;
	int found[5] = { 0 };
	struct img m = { data, size < FUZZ_DISK ? size : FUZZ_DISK };
	struct ferry_extfs_req req = {
		.rd = rd, .rd_arg = &m, .off = 0, .size = FUZZ_DISK,
		.partno = 0, .want_free = 1, .exclude = excl,
		.exclude_count = 5, .exclude_found = found,
		.add = add, .add_arg = NULL, .warn = warn_fs,
	};
	struct ferry_files *f = NULL;
	struct ferry_files_result res;
	int e;

	if (!top[0]) {
		snprintf(top, sizeof(top), "/tmp/fuzz-ext-XXXXXX");
		if (!mkdtemp(top))
			abort();
	}
	(void)ferry_extfs_unused(&req);
	if (ferry_files_open_rd(rd, &m, FUZZ_DISK, &f) != 0)
		return 0;
	(void)ferry_files_list(f, "/", list_one, NULL);
	(void)ferry_files_list(f, "/d", list_one, NULL);
	snprintf(dest, sizeof(dest), "%s/%u", top, run++);
	if (mkdir(dest, 0700))
		abort();
	e = ferry_files_get(f, "/", dest, warn_get, NULL, &res);
	(void)e;
	ferry_files_free(f);
	if (nftw(dest, rm_one, 16, FTW_DEPTH | FTW_PHYS))
		abort();
	/* Nothing but DEST's tree may appear in TOP. */
	if (rmdir(top))
		abort();
	if (mkdir(top, 0700))
		abort();
	return 0;
}
