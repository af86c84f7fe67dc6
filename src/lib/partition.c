/* partition.c - reads MBR (with its chain of logical partitions) and GPT
 * partition tables through bounded readers, so the unused-block filter
 * knows where swap areas and file systems start; a table that fails any
 * check is reported corrupt, never half used. */
#include <stdlib.h>
#include <zlib.h>

#include "vmsrc.h"

#define MBR_SIG_OFF 510
#define MBR_PART_OFF 446
#define LOGICAL_MAX 128
#define GPT_ENTRIES_BYTES_MAX (1u << 20)

/* GUIDs as stored on disk (the first three fields little endian). */
static const uint8_t gpt_swap[16] = {
	0x6d, 0xfd, 0x57, 0x06, 0xab, 0xa4, 0xc4, 0x43,
	0x84, 0xe5, 0x09, 0x33, 0xc8, 0x4b, 0x4f, 0x4f }; /* 0657FD6D-A4AB-43C4-84E5-0933C84B4F4F */
static const uint8_t gpt_linux[16] = {
	0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
	0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4 }; /* 0FC63DAF-8483-4772-8E79-3D69D8477DE4 */
static const uint8_t gpt_root_x86_64[16] = {
	0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d,
	0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84, 0xb7, 0x09 }; /* 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 */

const char *ferry_ptable_scheme_name(int scheme)
{
	switch (scheme) {
	case FERRY_PT_MBR: return "MBR";
	case FERRY_PT_GPT: return "GPT";
	default: return "none";
	}
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)ferry_le32(p) | (uint64_t)ferry_le32(p + 4) << 32;
}

static int add_part(struct ferry_ptable *pt, int number, uint64_t start,
		    uint64_t size, uint8_t mbr_type, const uint8_t *guid)
{
	struct ferry_part *p;

	if (pt->count >= FERRY_PART_MAX)
		return ferry_error(FERRY_E_CORRUPT,
				   "partition table: more than %d partitions",
				   FERRY_PART_MAX);
	p = &pt->part[pt->count++];
	memset(p, 0, sizeof(*p));
	p->number = number;
	p->start = start;
	p->size = size;
	p->mbr_type = mbr_type;
	p->kind = FERRY_PART_OTHER;
	if (guid) {
		memcpy(p->gpt_type, guid, 16);
		if (!memcmp(guid, gpt_swap, 16))
			p->kind = FERRY_PART_SWAP;
		else if (!memcmp(guid, gpt_linux, 16) ||
			 !memcmp(guid, gpt_root_x86_64, 16))
			p->kind = FERRY_PART_LINUX;
	} else if (mbr_type == 0x82) {
		p->kind = FERRY_PART_SWAP;
	} else if (mbr_type == 0x83) {
		p->kind = FERRY_PART_LINUX;
	}
	return 0;
}

static int cmp_part(const void *a, const void *b)
{
	const struct ferry_part *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Partitions must not overlap (after sorting by start). */
static int check_overlap(struct ferry_ptable *pt)
{
	qsort(pt->part, (size_t)pt->count, sizeof(pt->part[0]), cmp_part);
	for (int i = 1; i < pt->count; i++) {
		const struct ferry_part *a = &pt->part[i - 1], *b = &pt->part[i];

		if (a->start + a->size > b->start)
			return ferry_error(FERRY_E_CORRUPT,
					   "partition table: partitions %d and %d overlap",
					   a->number, b->number);
	}
	return 0;
}

static int is_extended(uint8_t t)
{
	return t == 0x05 || t == 0x0f || t == 0x85;
}

/* The chain of EBRs inside the extended partition [ext, ext + ext_n)
 * (sectors): each holds one logical partition (relative to itself) and a
 * link to the next (relative to the extended partition's start). */
static int read_logical(ferry_read_fn rd, void *arg, struct ferry_ptable *pt,
			uint64_t ext, uint64_t ext_n)
{
	uint8_t s[512];
	uint64_t ebr = ext;
	int number = 5, e;

	for (int n = 0; n < LOGICAL_MAX; n++) {
		const uint8_t *l, *nx;
		uint64_t ls, ln, next;

		if ((e = rd(arg, ebr * 512, s, sizeof(s))) != 0)
			return e;
		if (s[MBR_SIG_OFF] != 0x55 || s[MBR_SIG_OFF + 1] != 0xaa)
			return ferry_error(FERRY_E_CORRUPT,
					   "MBR: logical partition table at sector %llu has no signature",
					   (unsigned long long)ebr);
		l = s + MBR_PART_OFF;
		nx = l + 16;
		ls = ferry_le32(l + 8);
		ln = ferry_le32(l + 12);
		if (l[4] != 0) {
			if (ls == 0 || ln == 0 || ebr + ls + ln > ext + ext_n)
				return ferry_error(FERRY_E_CORRUPT,
						   "MBR: logical partition %d lies outside its extended partition",
						   number);
			if ((e = add_part(pt, number, (ebr + ls) * 512, ln * 512,
					  l[4], NULL)) != 0)
				return e;
		}
		number++;
		if (nx[4] == 0)
			return 0;
		if (!is_extended(nx[4]))
			return ferry_error(FERRY_E_CORRUPT,
					   "MBR: logical partition chain links to type 0x%02x",
					   nx[4]);
		next = ext + ferry_le32(nx + 8);
		/* Links only go forward: no chain can loop. */
		if (next <= ebr || next >= ext + ext_n)
			return ferry_error(FERRY_E_CORRUPT,
					   "MBR: logical partition chain goes backwards or out of its extended partition");
		ebr = next;
	}
	return ferry_error(FERRY_E_CORRUPT, "MBR: more than %d logical partitions",
			   LOGICAL_MAX);
}

static int read_mbr(ferry_read_fn rd, void *arg, const uint8_t *s,
		    uint64_t nsect, struct ferry_ptable *pt)
{
	int e, extended = 0;

	/* Boot flags other than 0 and 0x80 mean a file system's boot sector
	 * (FAT, NTFS on the whole disk), not a partition table. */
	for (int i = 0; i < 4; i++) {
		uint8_t b = s[MBR_PART_OFF + 16 * i];

		if (b != 0 && b != 0x80)
			return 0;
	}
	pt->scheme = FERRY_PT_MBR;
	pt->sector = 512;
	for (int i = 0; i < 4; i++) {
		const uint8_t *p = s + MBR_PART_OFF + 16 * i;
		uint64_t start = ferry_le32(p + 8), n = ferry_le32(p + 12);

		if (p[4] == 0)
			continue;
		if (start == 0 || n == 0 || start + n > nsect)
			return ferry_error(FERRY_E_CORRUPT,
					   "MBR: partition %d (sectors %llu+%llu) lies outside the disk (%llu sectors)",
					   i + 1, (unsigned long long)start,
					   (unsigned long long)n,
					   (unsigned long long)nsect);
		if (is_extended(p[4])) {
			if (extended++)
				return ferry_error(FERRY_E_CORRUPT,
						   "MBR: more than one extended partition");
			if ((e = read_logical(rd, arg, pt, start, n)) != 0)
				return e;
			continue;
		}
		if ((e = add_part(pt, i + 1, start * 512, n * 512, p[4], NULL)) != 0)
			return e;
	}
	return check_overlap(pt);
}

/* GPT header at LBA 1 with sector size SS, then its entry array. */
static int read_gpt(ferry_read_fn rd, void *arg, uint32_t ss,
		    uint64_t disk_size, struct ferry_ptable *pt)
{
	uint8_t h[4096];
	uint8_t *ents = NULL;
	uint64_t nsect = disk_size / ss, first, last, elba, bytes;
	uint32_t hsize, hcrc, nent, esize, ecrc;
	int e;

	if ((e = rd(arg, ss, h, ss)) != 0)
		return e;
	hsize = ferry_le32(h + 12);
	hcrc = ferry_le32(h + 16);
	if (hsize < 92 || hsize > ss)
		return ferry_error(FERRY_E_CORRUPT, "GPT: header size %u is invalid",
				   hsize);
	memset(h + 16, 0, 4);
	if ((uint32_t)crc32(0, h, hsize) != hcrc)
		return ferry_error(FERRY_E_CORRUPT, "GPT: header checksum mismatch");
	if (le64(h + 24) != 1)
		return ferry_error(FERRY_E_CORRUPT, "GPT: header is not the primary one");
	first = le64(h + 40);
	last = le64(h + 48);
	elba = le64(h + 72);
	nent = ferry_le32(h + 80);
	esize = ferry_le32(h + 84);
	ecrc = ferry_le32(h + 88);
	if (first > last || last >= nsect || first < 2)
		return ferry_error(FERRY_E_CORRUPT,
				   "GPT: usable sectors %llu-%llu do not fit the disk (%llu sectors)",
				   (unsigned long long)first, (unsigned long long)last,
				   (unsigned long long)nsect);
	if (esize < 128 || esize % 8 || esize > 4096 || nent > FERRY_GPT_ENTRIES_MAX)
		return ferry_error(FERRY_E_CORRUPT,
				   "GPT: %u entries of %u bytes is invalid", nent, esize);
	bytes = (uint64_t)nent * esize;
	if (bytes > GPT_ENTRIES_BYTES_MAX || elba < 2 || elba >= nsect ||
	    elba * ss + bytes > disk_size)
		return ferry_error(FERRY_E_CORRUPT,
				   "GPT: the entry array lies outside the disk");
	pt->scheme = FERRY_PT_GPT;
	pt->sector = ss;
	if (bytes == 0)
		return 0;
	if (!(ents = malloc(bytes)))
		return FERRY_E_NOMEM;
	if ((e = rd(arg, elba * ss, ents, bytes)) != 0)
		goto out;
	if ((uint32_t)crc32(0, ents, (uInt)bytes) != ecrc) {
		e = ferry_error(FERRY_E_CORRUPT, "GPT: entry array checksum mismatch");
		goto out;
	}
	for (uint32_t i = 0; i < nent; i++) {
		const uint8_t *p = ents + (size_t)i * esize;
		uint64_t s = le64(p + 32), l = le64(p + 40);
		static const uint8_t none[16];

		if (!memcmp(p, none, 16))
			continue;
		if (s > l || s < first || l > last) {
			e = ferry_error(FERRY_E_CORRUPT,
					"GPT: partition %u (sectors %llu-%llu) lies outside the usable area",
					i + 1, (unsigned long long)s,
					(unsigned long long)l);
			goto out;
		}
		if ((e = add_part(pt, (int)i + 1, s * ss, (l - s + 1) * ss, 0, p)) != 0)
			goto out;
	}
	e = check_overlap(pt);
out:
	free(ents);
	return e;
}

int ferry_ptable_read(ferry_read_fn rd, void *arg, uint64_t disk_size,
		      struct ferry_ptable *pt)
{
	uint8_t s[512], sig[8];
	int e, protective = 0;

	memset(pt, 0, sizeof(*pt));
	if (disk_size < 1024)
		return 0;
	if ((e = rd(arg, 0, s, sizeof(s))) != 0)
		return e;
	for (int i = 0; i < 4; i++)
		if (s[MBR_PART_OFF + 16 * i + 4] == 0xee)
			protective = 1;
	/* GPT: "EFI PART" at LBA 1, with 512- or 4096-byte sectors. */
	for (uint32_t ss = 512; ss <= 4096; ss *= 8) {
		if (disk_size < (uint64_t)ss * 3)
			break;
		if ((e = rd(arg, ss, sig, sizeof(sig))) != 0)
			return e;
		if (!memcmp(sig, "EFI PART", 8)) {
			if ((e = read_gpt(rd, arg, ss, disk_size, pt)) != 0) {
				memset(pt, 0, sizeof(*pt));
				return e;
			}
			return 0;
		}
	}
	if (s[MBR_SIG_OFF] != 0x55 || s[MBR_SIG_OFF + 1] != 0xaa)
		return 0;
	if (protective)
		return ferry_error(FERRY_E_CORRUPT,
				   "protective MBR found but no valid GPT header");
	if ((e = read_mbr(rd, arg, s, disk_size / 512, pt)) != 0) {
		memset(pt, 0, sizeof(*pt));
		return e;
	}
	return 0;
}

uint32_t ferry_swap_header_size(ferry_read_fn rd, void *arg, uint64_t off,
				uint64_t size)
{
	char sig[10];

	for (uint32_t ps = 4096; ps <= 65536; ps *= 2) {
		if (size < ps)
			break;
		if (rd(arg, off + ps - 10, sig, sizeof(sig)) != 0)
			return 0;
		if (!memcmp(sig, "SWAPSPACE2", 10))
			return ps;
	}
	return 0;
}
