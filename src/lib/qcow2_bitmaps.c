/* qcow2_bitmaps.c - reads the persistent dirty bitmap directory of a qcow2
 * v3 image (big endian, bounded reads), so a `qcow2:` backup can tell a
 * missing or inconsistent bitmap before it asks qemu-nbd to export it. */
#include <stdlib.h>

#include "vmsrc.h"

#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_AUTOCLEAR_BITMAPS 1u
#define DIR_MAX (1u << 20)
#define EXT_MAX 64

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	       (uint32_t)p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

int ferry_qcow2_find_bitmap(ferry_read_fn rd, void *arg, uint64_t file_size,
			    const char *name, struct ferry_qcow2_bitmap *out)
{
	uint8_t h[104], e[24], *dir = NULL;
	uint64_t off, dsize = 0, doff = 0;
	uint32_t hlen, nb = 0;
	size_t nl = strlen(name), at;
	int r, found_ext = 0;

	if (file_size < sizeof(h) || (r = rd(arg, 0, h, sizeof(h))) != 0)
		return ferry_error(FERRY_E_CORRUPT, "not a qcow2 image (too short)");
	if (memcmp(h, "QFI\xfb", 4))
		return ferry_error(FERRY_E_CORRUPT, "not a qcow2 image");
	if (be32(h + 4) < 3)
		return 0; /* version 2 has no persistent bitmaps */
	hlen = be32(h + 100);
	if (hlen < 104 || hlen > 65536)
		return ferry_error(FERRY_E_CORRUPT, "qcow2: header length %u is invalid", hlen);
	/* Header extensions: type, length, data padded to 8 bytes. */
	off = hlen;
	for (int i = 0; i < EXT_MAX; i++) {
		uint32_t type, len;

		if (off + 8 > file_size || off > 65536 + 8 * 65536)
			return ferry_error(FERRY_E_CORRUPT, "qcow2: header extensions run past the end");
		if ((r = rd(arg, off, e, 8)) != 0)
			return r;
		type = be32(e);
		len = be32(e + 4);
		if (type == 0)
			break;
		if (type == QCOW2_EXT_BITMAPS) {
			if (len < 24 || off + 8 + 24 > file_size)
				return ferry_error(FERRY_E_CORRUPT, "qcow2: bitmaps extension is too short");
			if ((r = rd(arg, off + 8, e, 24)) != 0)
				return r;
			nb = be32(e);
			dsize = be64(e + 8);
			doff = be64(e + 16);
			found_ext = 1;
		}
		off += 8 + (((uint64_t)len + 7) & ~7ull);
	}
	if (!found_ext)
		return 0;
	/* An older QEMU that opened the image read-write without knowing
	 * bitmaps clears this bit: every bitmap is then stale. */
	if (!(be64(h + 88) & QCOW2_AUTOCLEAR_BITMAPS))
		return ferry_error(FERRY_E_CORRUPT,
				   "qcow2: the bitmaps are stale (the image was written by a program that does not keep them)");
	if (dsize == 0 || dsize > DIR_MAX || doff > file_size ||
	    dsize > file_size - doff || nb > 65535)
		return ferry_error(FERRY_E_CORRUPT, "qcow2: bitmap directory lies outside the image");
	if (!(dir = malloc(dsize)))
		return FERRY_E_NOMEM;
	if ((r = rd(arg, doff, dir, dsize)) != 0)
		goto out;
	at = 0;
	r = 0;
	for (uint32_t i = 0; i < nb; i++) {
		uint32_t flags, extra;
		uint16_t ns;
		size_t entry;

		if (dsize - at < 24) {
			r = ferry_error(FERRY_E_CORRUPT, "qcow2: bitmap directory entry %u is truncated", i);
			goto out;
		}
		flags = be32(dir + at + 12);
		ns = (uint16_t)(dir[at + 18] << 8 | dir[at + 19]);
		extra = be32(dir + at + 20);
		if (extra > dsize || ns > 1023 || 24 + (size_t)extra + ns > dsize - at) {
			r = ferry_error(FERRY_E_CORRUPT, "qcow2: bitmap directory entry %u is truncated", i);
			goto out;
		}
		if (ns == nl && !memcmp(dir + at + 24 + extra, name, nl)) {
			memset(out, 0, sizeof(*out));
			memcpy(out->name, name, nl);
			out->flags = flags;
			out->granularity_bits = dir[at + 17];
			r = 1;
			goto out;
		}
		entry = (24 + (size_t)extra + ns + 7) & ~(size_t)7;
		if (entry > dsize - at)
			break;
		at += entry;
	}
out:
	free(dir);
	return r;
}
