/* mover_parked.c - parked-session storage on the target-side mover: the
 * session files (REPO/sessions/SID; a gateway's in --state-dir) that keep
 * a backup session across a broken link and a mover restart.  Their
 * format (docs/protocol.md "Session files"), creating one, loading one
 * back for RESUME, expiring old ones, and reading one for gc, so that it
 * keeps the chunks a parked session names. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mover.h"

#define SES_MAGIC "FSES"
#define SES_VERSION 1
#define SES_HEADER_MAX 8192

/* ---- the sessions directory ------------------------------------------ */

static int sid_name(const char *n)
{
	if (strlen(n) != 2 * FERRY_SID_LEN)
		return 0;
	return strspn(n, "0123456789abcdef") == 2 * FERRY_SID_LEN;
}

/* Parked sessions older than the TTL are given up (their chunks stay for
 * a later garbage collection to judge). */
void msess_sweep(struct mrepo *r)
{
	int ttl = r->m->o->session_ttl > 0 ? r->m->o->session_ttl : 7 * 86400;
	int dfd = dup(r->ses_fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;
	time_t now = time(NULL);

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (!strncmp(de->d_name, ".tmp-", 5)) {
			unlinkat(r->ses_fd, de->d_name, 0);
			continue;
		}
		if (!sid_name(de->d_name) ||
		    fstatat(r->ses_fd, de->d_name, &st, 0) < 0)
			continue;
		if (now - st.st_mtime > ttl) {
			unlinkat(r->ses_fd, de->d_name, 0);
			mover_log(r->m, "repo=%s session=%.8s expired: parked longer than %d s",
				  r->name, de->d_name, ttl);
		}
	}
	closedir(d);
}

int msess_dir_open(struct mrepo *r)
{
	char dir[4200];
	int e;

	if (r->repo->ops == &ferry_store_local_ops) {
		snprintf(dir, sizeof(dir), "%s/sessions", r->path);
	} else {
		/* A gateway: the share or bucket holds the repository, a
		 * local directory the sessions in progress. */
		if (!r->m->o->state_dir)
			return ferry_error(FERRY_E_INVAL,
					   "%s is not a local directory: give the mover --state-dir DIR for its session files",
					   r->path);
		snprintf(dir, sizeof(dir), "%s/%s", r->m->o->state_dir, r->name);
		if ((e = ferry_mkdir_p(dir, 0700)) != 0)
			return ferry_error(FERRY_E_IO, "create %s: %s", dir,
					   strerror(-e));
		snprintf(dir, sizeof(dir), "%s/%s/sessions", r->m->o->state_dir,
			 r->name);
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ferry_error(FERRY_E_IO, "create %s: %s", dir, strerror(errno));
	r->ses_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->ses_fd < 0)
		return ferry_error(FERRY_E_IO, "open %s: %s", dir, strerror(errno));
	return 0;
}

/* ---- writing and reading a session file ------------------------------ */

static int write_header(struct msess *s)
{
	uint8_t b[SES_HEADER_MAX];
	struct ferry_wr w;
	size_t il = strlen(s->identity), hl;
	int e;

	ferry_wr_init(&w, b, sizeof(b));
	ferry_wr_bytes(&w, SES_MAGIC, 4);
	ferry_wr_u32(&w, SES_VERSION);
	ferry_wr_u32(&w, 0); /* header length, below */
	ferry_wr_u32(&w, 0); /* CRC, below */
	ferry_wr_bytes(&w, s->sid, FERRY_SID_LEN);
	ferry_wr_u64(&w, ferry_now_ns());
	ferry_wr_u16(&w, (uint16_t)il);
	ferry_wr_bytes(&w, s->identity, il);
	ferry_wr_u16(&w, (uint16_t)s->hdr_len);
	ferry_wr_bytes(&w, s->hdr, s->hdr_len);
	if (w.bad)
		return ferry_error(FERRY_E_INVAL, "session header too long");
	hl = sizeof(b) - w.left;
	ferry_put_le32(b + 8, (uint32_t)hl);
	ferry_put_le32(b + 12, ferry_crc32c(b + 16, hl - 16));
	s->entries_off = hl;
	if ((e = ferry_pwrite_all(s->fd, b, hl, 0)) != 0)
		return ferry_error(ferry_errno_code(-e, FERRY_E_IO),
				   "write session file: %s", strerror(-e));
	return 0;
}

int msess_create_file(struct msess *s)
{
	struct mrepo *r = s->r;
	int e;

	s->fd = openat(r->ses_fd, s->sidhex,
		       O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (s->fd < 0)
		return ferry_error(ferry_errno_code(errno, FERRY_E_IO),
				   "create session file in %s/sessions: %s", r->path,
				   strerror(errno));
	if ((e = write_header(s)) != 0 || fsync(s->fd) < 0 ||
	    fsync(r->ses_fd) < 0) {
		if (!e)
			e = ferry_error(FERRY_E_IO, "sync session file: %s",
					strerror(errno));
		unlinkat(r->ses_fd, s->sidhex, 0);
		return e;
	}
	return 0;
}

/* The header of a session file (B: its first GOT bytes): checks, then
 * the session id, the client's identity (IDCAP bytes with its NUL), the
 * manifest header (HDR, up to FERRY_MANIFEST_HEADER_MAX bytes) and the
 * restore point it opens; *HL: where the entries start. */
static int parse_header(const uint8_t *b, size_t got, uint8_t *sid,
			char *identity, size_t idcap, uint8_t *hdr,
			size_t *hdr_len, struct ferry_point *p, uint32_t *hl)
{
	struct ferry_rd rd;
	uint8_t magic[4];
	uint32_t ver, crc;
	uint64_t created;
	uint16_t il, ml;
	size_t used;

	if (got < 16)
		return -1;
	ferry_rd_init(&rd, b, got);
	ferry_rd_bytes(&rd, magic, 4);
	ferry_rd_u32(&rd, &ver);
	ferry_rd_u32(&rd, hl);
	ferry_rd_u32(&rd, &crc);
	if (rd.bad || memcmp(magic, SES_MAGIC, 4) || ver != SES_VERSION ||
	    *hl < 16 || *hl > got || crc != ferry_crc32c(b + 16, *hl - 16))
		return -1;
	ferry_rd_init(&rd, b + 16, *hl - 16);
	ferry_rd_bytes(&rd, sid, FERRY_SID_LEN);
	ferry_rd_u64(&rd, &created);
	if (ferry_rd_u16(&rd, &il) || il >= idcap ||
	    ferry_rd_bytes(&rd, identity, il))
		return -1;
	identity[il] = 0;
	if (ferry_rd_u16(&rd, &ml) || ml > FERRY_MANIFEST_HEADER_MAX ||
	    ferry_rd_bytes(&rd, hdr, ml) || rd.left)
		return -1;
	*hdr_len = ml;
	if (ferry_manifest_header_parse(hdr, ml, p, &used) || used != ml)
		return -1;
	return 0;
}

int msess_delta_base(struct ferry_repo *repo, const uint8_t *id,
		     uint8_t base[FERRY_HASH_LEN])
{
	struct ferry_codec_ctx *c;
	struct ferry_dbufs b;
	struct ferry_delta d;
	int e;

	if ((e = ferry_dbufs_init(&b, repo->block_size)) != 0)
		return e;
	if (!(c = ferry_codec_ctx_new(FERRY_CODEC_NONE, 0))) {
		ferry_dbufs_free(&b);
		return FERRY_E_NOMEM;
	}
	e = ferry_delta_load(repo, c, id, b.in, b.incap, b.rec, b.reccap, &d);
	if (e == 0)
		memcpy(base, d.base, FERRY_HASH_LEN);
	ferry_codec_ctx_free(c);
	ferry_dbufs_free(&b);
	return e;
}

/* 1 when delta chunk ID reads and its base chunk is held (a parked
 * session's delta whose base gc removed is cut off and sent again), 0
 * when not, < 0 on error. */
static int delta_base_present(struct ferry_repo *repo, const uint8_t *id)
{
	uint8_t base[FERRY_HASH_LEN];
	int e;

	if (ferry_repo_encrypted(repo))
		return 1; /* sealed: not readable here (see delta_base_held) */
	e = msess_delta_base(repo, id, base);
	if (e == 0)
		e = repo->ops->has_chunk(repo, base);
	else if (e == FERRY_E_CORRUPT || e == FERRY_E_MISSING)
		e = 0;
	return e;
}

/* Read a session file back: header checks, then every entry (a data
 * entry counts only while its chunk is present: anything after a lost
 * chunk is cut off and will be sent again). */
int msess_load(struct msess *s)
{
	struct mrepo *r = s->r;
	const char *sidhex = s->sidhex;
	uint8_t b[SES_HEADER_MAX], *buf = NULL;
	uint8_t sid[FERRY_SID_LEN];
	uint32_t hl;
	uint64_t size, nent, good = 0;
	struct stat st;
	ssize_t got;
	int e = 0;

	s->fd = openat(r->ses_fd, sidhex, O_RDWR | O_CLOEXEC);
	if (s->fd < 0)
		return errno == ENOENT ? FERRY_E_NOTFOUND
				       : ferry_error(FERRY_E_IO, "open session %s: %s",
						     sidhex, strerror(errno));
	got = ferry_pread_full(s->fd, b, sizeof(b), 0);
	if (got < 16 || fstat(s->fd, &st) < 0)
		goto corrupt;
	if (parse_header(b, (size_t)got, sid, s->identity, sizeof(s->identity),
			 s->hdr, &s->hdr_len, &s->p, &hl) ||
	    memcmp(sid, s->sid, sizeof(sid)))
		goto corrupt;
	s->entries_off = hl;
	size = (uint64_t)st.st_size;
	nent = (size - hl) / FERRY_ENTRY_LEN;
	if (nent > s->p.nblocks)
		nent = s->p.nblocks;
	if (!(buf = malloc(MSESS_ENTRY_IOBUF)))
		return FERRY_E_NOMEM;
	while (good < nent) {
		size_t want = MSESS_ENTRY_IOBUF;
		uint64_t left = (nent - good) * FERRY_ENTRY_LEN;
		int stop = 0;

		if (want > left)
			want = (size_t)left;
		got = ferry_pread_full(s->fd, buf, want,
				       (off_t)(hl + good * FERRY_ENTRY_LEN));
		if (got != (ssize_t)want) {
			e = ferry_error(FERRY_E_IO, "read session %s", sidhex);
			break;
		}
		for (size_t i = 0; i < want; i += FERRY_ENTRY_LEN) {
			const uint8_t *en = buf + i;

			if (en[0] == FERRY_ENTRY_ZERO &&
			    ferry_is_zero(en + 1, FERRY_HASH_LEN)) {
				good++;
				continue;
			}
			if ((en[0] != FERRY_ENTRY_DATA &&
			     !(en[0] == FERRY_ENTRY_DELTA &&
			       ferry_repo_delta(r->repo))) ||
			    r->repo->ops->has_chunk(r->repo, en + 1) != 1 ||
			    (en[0] == FERRY_ENTRY_DELTA &&
			     delta_base_present(r->repo, en + 1) != 1)) {
				stop = 1;
				break;
			}
			good++;
		}
		if (stop)
			break;
	}
	free(buf);
	if (e)
		return e;
	if (hl + good * FERRY_ENTRY_LEN != size &&
	    ftruncate(s->fd, (off_t)(hl + good * FERRY_ENTRY_LEN)) < 0)
		return ferry_error(FERRY_E_IO, "truncate session %s: %s", sidhex,
				   strerror(errno));
	s->recorded = good;
	return 0;
corrupt:
	return ferry_error(FERRY_E_CORRUPT, "session file %s/sessions/%s is damaged",
			   r->path, sidhex);
}

/* ---- for gc: the chunks parked sessions name ------------------------- */

/* A chunk this session counts on without writing it (HAVE answered
 * present, a PUT of one held already): stamp it, so that a gc while the
 * session is parked keeps it (gc.c, session_recent; the session file,
 * read below, names only the entries recorded).  Best effort: an
 * immutable chunk (hardened repository) belongs to an unexpired point
 * anyway. */
void msess_stamp_chunk(struct mconn *mc, const uint8_t *h)
{
	char hex[65], path[4200];

	if (mc->r->repo->ops != &ferry_store_local_ops)
		return;
	ferry_hash_hex(h, hex);
	snprintf(path, sizeof(path), "%s/chunks/%.2s/%s", mc->r->path, hex, hex);
	utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW);
}

int ferry_session_file_chunks(int dfd, const char *name,
			      void (*cb)(const uint8_t *h, void *arg),
			      void *arg, uint64_t *refs, uint64_t *created_ns)
{
	static const size_t want_max = MSESS_ENTRY_IOBUF;
	uint8_t b[SES_HEADER_MAX], sid[FERRY_SID_LEN], *buf, *hdr;
	char identity[256];
	struct ferry_point p;
	size_t hdr_len;
	uint32_t hl;
	uint64_t off, end;
	struct stat st;
	ssize_t got;
	int fd, e = 0;

	if (!sid_name(name))
		return FERRY_E_NOTFOUND;
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? FERRY_E_NOTFOUND
				       : ferry_error(FERRY_E_IO, "open session %s: %s",
						     name, strerror(errno));
	hdr = malloc(FERRY_MANIFEST_HEADER_MAX);
	buf = malloc(want_max);
	if (!hdr || !buf) {
		e = FERRY_E_NOMEM;
		goto out;
	}
	got = ferry_pread_full(fd, b, sizeof(b), 0);
	if (got < 16 || fstat(fd, &st) < 0 ||
	    parse_header(b, (size_t)got, sid, identity, sizeof(identity), hdr,
			 &hdr_len, &p, &hl)) {
		e = ferry_error(FERRY_E_CORRUPT, "session file %s is damaged", name);
		goto out;
	}
	*created_ns = ferry_le32(b + 16 + FERRY_SID_LEN) |
		      (uint64_t)ferry_le32(b + 20 + FERRY_SID_LEN) << 32;
	end = ((uint64_t)st.st_size - hl) / FERRY_ENTRY_LEN;
	if (end > p.nblocks)
		end = p.nblocks;
	end = hl + end * FERRY_ENTRY_LEN;
	for (off = hl; off < end;) {
		size_t want = end - off < want_max ? (size_t)(end - off) : want_max;

		got = ferry_pread_full(fd, buf, want, (off_t)off);
		if (got < 0) {
			e = ferry_error(FERRY_E_IO, "read session %s", name);
			break;
		}
		/* A file cut short meanwhile (the session resumed and
		 * truncated it, or ended): what is left was marked. */
		want = (size_t)got - (size_t)got % FERRY_ENTRY_LEN;
		for (size_t i = 0; i < want; i += FERRY_ENTRY_LEN)
			if (buf[i] == FERRY_ENTRY_DATA ||
			    buf[i] == FERRY_ENTRY_DELTA) {
				cb(buf + i + 1, arg);
				(*refs)++;
			}
		if (want == 0)
			break;
		off += want;
	}
out:
	free(hdr);
	free(buf);
	close(fd);
	return e;
}
