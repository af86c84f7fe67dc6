/* store_smb.c - the repository backend for a folder on an SMB share
 * (smb://[USER@]HOST[:PORT]/SHARE/PATH) through libsmbclient.  Same layout
 * as a local repository (docs/format.md): chunks/XX/<sha256>, points/<id>,
 * config, verify/<id>, plus locks/ for the repository lock.
 *
 * - libsmbclient contexts are not thread-safe: each call borrows one from
 *   a small pool (a new one when none is free), so the backup's worker
 *   threads upload chunks in parallel, each over its own SMB connection.
 *   A context whose connection failed is dropped, not reused.
 * - A chunk or manifest is written under ".tmp-HOST-PID-N" and renamed;
 *   a rename never replaces an existing name (-EEXIST then).
 * - A manifest is written to a local temporary file first and uploaded
 *   at commit, then renamed into points/: committed last, atomically.
 * - Locks are files in locks/: "s-HOST-PID-N" for each shared holder,
 *   "x" for the exclusive one; a holder refreshes their time, and a lock
 *   whose process is gone (same host) or that was not refreshed for
 *   LEASE seconds is stale and removed.
 * - Credentials: a credentials file (mount.cifs style username=,
 *   password=, domain=) named by the "smb-credentials" setting or
 *   FERRY_SMB_CREDENTIALS, else FERRY_SMB_USER / FERRY_SMB_PASSWORD; a
 *   password in the URL is refused. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libsmbclient.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#include "store_smb.h"

pthread_mutex_t smb_global = PTHREAD_MUTEX_INITIALIZER;

/* ---- contexts ------------------------------------------------------- */

static void auth_fn(SMBCCTX *c, const char *srv, const char *shr, char *wg,
		    int wglen, char *un, int unlen, char *pw, int pwlen)
{
	struct smb *s = smbc_getOptionUserData(c);

	(void)srv;
	(void)shr;
	if (!s)
		return;
	if (s->domain[0])
		snprintf(wg, (size_t)wglen, "%s", s->domain);
	snprintf(un, (size_t)unlen, "%s", s->user);
	snprintf(pw, (size_t)pwlen, "%s", s->pass);
}

static SMBCCTX *ctx_new(struct smb *s)
{
	SMBCCTX *c;

	/* Context set-up reads global Samba state: one at a time. */
	pthread_mutex_lock(&smb_global);
	c = smbc_new_context();
	if (c) {
		smbc_setDebug(c, 0);
		smbc_setOptionUserData(c, s);
		smbc_setFunctionAuthDataWithContext(c, auth_fn);
		smbc_setOptionNoAutoAnonymousLogin(c, 1);
		smbc_setOptionUseKerberos(c, 0);
		smbc_setOptionUseCCache(c, 0);
		smbc_setTimeout(c, 30000);
		if (s->port)
			smbc_setPort(c, s->port);
		if (!smbc_init_context(c)) {
			smbc_free_context(c, 0);
			c = NULL;
		}
	}
	pthread_mutex_unlock(&smb_global);
	return c;
}

SMBCCTX *smbfs_get_ctx(struct smb *s)
{
	SMBCCTX *c = NULL;

	pthread_mutex_lock(&s->mu);
	if (s->idle) {
		struct sconn *sc = s->idle;

		s->idle = sc->next;
		s->nidle--;
		c = sc->ctx;
		free(sc);
	}
	pthread_mutex_unlock(&s->mu);
	return c ? c : ctx_new(s);
}

/* Errors after which the context's connection is not trusted again. */
static int conn_error(int e)
{
	return e == ECONNRESET || e == ECONNREFUSED || e == ETIMEDOUT ||
	       e == EPIPE || e == ENOTCONN || e == EIO || e == EHOSTUNREACH ||
	       e == ENETUNREACH || e == ECONNABORTED || e == ENETRESET ||
	       e == ENETDOWN;
}

/* Chunk transfers cut by a lost connection are tried again RETRIES
 * times, after 0.5 s, then 1 s (a server restarting, a link flapping). */
#define RETRIES 2

/* Sleep before retry TRY+1; nonzero when cancelled instead. */
static int retry_pause(int try)
{
	struct timespec ts = { try ? 1 : 0, try ? 0 : 500 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	return atomic_load(&ferry_cancelled);
}

/* Give a context back; E is the errno of its last call (0: fine). */
void smbfs_put_ctx(struct smb *s, SMBCCTX *c, int e)
{
	struct sconn *sc;

	if (!c)
		return;
	if (conn_error(e) || !(sc = malloc(sizeof(*sc)))) {
		pthread_mutex_lock(&smb_global);
		smbc_free_context(c, 1);
		pthread_mutex_unlock(&smb_global);
		return;
	}
	pthread_mutex_lock(&s->mu);
	if (s->nidle >= POOL_MAX) {
		pthread_mutex_unlock(&s->mu);
		free(sc);
		pthread_mutex_lock(&smb_global);
		smbc_free_context(c, 1);
		pthread_mutex_unlock(&smb_global);
		return;
	}
	sc->ctx = c;
	sc->next = s->idle;
	s->idle = sc;
	s->nidle++;
	pthread_mutex_unlock(&s->mu);
}

/* A ferry error for errno E of an SMB call on WHAT. */
int smbfs_err(struct smb *s, int e, const char *what, const char *name)
{
	switch (e) {
	case EACCES:
	case EPERM:
		return ferry_error(FERRY_E_AUTH,
				   "%s %s on %s: access denied (wrong user or password in the SMB credentials, or no write permission on the share)",
				   what, name, s->shown);
	case ECONNREFUSED:
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ECONNRESET:
	case EPIPE:
	case ENOTCONN:
	case ECONNABORTED:
	case ENETRESET:
	case ENETDOWN:
		return ferry_error(FERRY_E_NET, "%s %s on %s: %s (SMB server unreachable or gone)",
				   what, name, s->shown, strerror(e));
	case ENOSPC:
	case EDQUOT:
		return ferry_error(FERRY_E_NOSPC, "%s %s on %s: %s", what, name,
				   s->shown, strerror(e));
	default:
		return ferry_error(FERRY_E_IO, "%s %s on %s: %s", what, name,
				   s->shown, strerror(e ? e : EIO));
	}
}

void smbfs_url_of(struct smb *s, const char *rel, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s%s", s->base, rel[0] ? "/" : "", rel);
}

/* ---- basic file operations (each borrows a context) ----------------- */

/* Runs one operation with a context, retrying once on a fresh one when
 * the pooled connection turned out to be dead. */
#define WITH_CTX(s, c, e, body)                                            \
	do {                                                               \
		for (int try_ = 0; try_ < 2; try_++) {                     \
			if (!((c) = smbfs_get_ctx(s))) {                         \
				(e) = errno ? errno : ENOMEM;              \
				break;                                     \
			}                                                  \
			errno = 0;                                         \
			body;                                              \
			smbfs_put_ctx((s), (c), (e));                            \
			if (!conn_error(e))                                \
				break;                                     \
		}                                                          \
	} while (0)

/* 0, or -errno. */
int smbfs_stat(struct smb *s, const char *rel, struct stat *st)
{
	char url[4400];
	SMBCCTX *c;
	int e = 0;

	smbfs_url_of(s, rel, url, sizeof(url));
	WITH_CTX(s, c, e, {
		e = LOCKED(int, smbc_getFunctionStat(c)(c, url, st)) < 0 ? (errno ? errno : EIO) : 0;
	});
	return -e;
}

int smbfs_unlink(struct smb *s, const char *rel)
{
	char url[4400];
	SMBCCTX *c;
	int e = 0;

	smbfs_url_of(s, rel, url, sizeof(url));
	WITH_CTX(s, c, e, {
		e = LOCKED(int, smbc_getFunctionUnlink(c)(c, url)) < 0 ? (errno ? errno : EIO) : 0;
	});
	return -e;
}

int smbfs_mkdir(struct smb *s, const char *rel)
{
	char url[4400];
	SMBCCTX *c;
	int e = 0;

	smbfs_url_of(s, rel, url, sizeof(url));
	WITH_CTX(s, c, e, {
		e = LOCKED(int, smbc_getFunctionMkdir(c)(c, url, 0755)) < 0 ? (errno ? errno : EIO) : 0;
	});
	return -e;
}

/* Rename FROM to TO; never replaces TO (-EEXIST then). */
int smbfs_rename(struct smb *s, const char *from, const char *to)
{
	char u1[4400], u2[4400];
	struct stat st;
	SMBCCTX *c;
	int e = 0;

	/* libsmbclient's rename replaces an existing target (it removes it
	 * and renames again), so look first; names written this way are
	 * unique (manifests) or content-addressed (chunks, where a racing
	 * writer stores the same bytes). */
	if ((e = smbfs_stat(s, to, &st)) == 0)
		return -EEXIST;
	if (e != -ENOENT)
		return e;
	smbfs_url_of(s, from, u1, sizeof(u1));
	smbfs_url_of(s, to, u2, sizeof(u2));
	e = 0;
	WITH_CTX(s, c, e, {
		e = LOCKED(int, smbc_getFunctionRename(c)(c, u1, c, u2)) < 0 ? (errno ? errno : EIO) : 0;
	});
	/* A retry after a lost answer finds the rename done. */
	if (e == ENOENT && smbfs_stat(s, from, &st) == -ENOENT &&
	    smbfs_stat(s, to, &st) == 0)
		e = 0;
	return -e;
}

/* Write LEN bytes (or the local file LFD when DATA is NULL) to a new file
 * REL (created exclusively). */
int smbfs_write_new(struct smb *s, const char *rel, const void *data,
		       size_t len, int lfd)
{
	char url[4400];
	SMBCCTX *c;
	SMBCFILE *f;
	int e = 0;

	smbfs_url_of(s, rel, url, sizeof(url));
	for (int try = 0;; try++) {
		/* A retry after a lost answer may find the file made by the
		 * first try: a temporary name is ours alone, so it is taken
		 * over; a lock file is left to the lock code to judge. */
		int fl = O_WRONLY | O_CREAT |
			 (try && strncmp(rel, "locks/", 6) ? O_TRUNC : O_EXCL);

		if (!(c = smbfs_get_ctx(s)))
			return -(errno ? errno : ENOMEM);
		errno = 0;
		f = LOCKED(SMBCFILE *, smbc_getFunctionOpen(c)(c, url, fl, 0644));
		if (f)
			break;
		e = errno ? errno : EIO;
		smbfs_put_ctx(s, c, e);
		/* A pooled connection found dead: once more on a new one. */
		if (try || !conn_error(e))
			return -e;
		e = 0;
	}
	if (data) {
		size_t done = 0;

		while (done < len && !e) {
			ssize_t n = LOCKED(ssize_t, smbc_getFunctionWrite(c)(c, f, (const char *)data + done,
							   len - done));

			if (n <= 0)
				e = errno ? errno : EIO;
			else
				done += (size_t)n;
		}
	} else {
		static const size_t BUF = 1 << 20;
		char *buf = malloc(BUF);
		off_t off = 0;

		if (!buf)
			e = ENOMEM;
		while (!e) {
			ssize_t n = pread(lfd, buf, BUF, off), done = 0;

			if (n < 0) {
				e = errno;
				break;
			}
			if (n == 0)
				break;
			while (done < n && !e) {
				ssize_t w = LOCKED(ssize_t, smbc_getFunctionWrite(c)(c, f, buf + done,
								   (size_t)(n - done)));

				if (w <= 0)
					e = errno ? errno : EIO;
				else
					done += w;
			}
			off += n;
		}
		free(buf);
	}
	/* The close completes the write on the server; its error counts. */
	if (LOCKED(int, smbc_getFunctionClose(c)(c, f)) < 0 && !e)
		e = errno ? errno : EIO;
	smbfs_put_ctx(s, c, e);
	if (e) {
		smbfs_unlink(s, rel);
		return -e;
	}
	return 0;
}

/* Read REL into BUF (at most CAP; -EFBIG when larger), or the whole file
 * into the local file LFD when BUF is NULL.  OFF/N: only N bytes. */
int smbfs_read(struct smb *s, const char *rel, void *buf, size_t cap,
		  size_t *len, int lfd, int head_only)
{
	char url[4400];
	struct stat st;
	SMBCCTX *c;
	SMBCFILE *f;
	size_t done = 0;
	int e = 0;

	smbfs_url_of(s, rel, url, sizeof(url));
	for (int try = 0;; try++) {
		if (!(c = smbfs_get_ctx(s)))
			return -(errno ? errno : ENOMEM);
		errno = 0;
		f = LOCKED(SMBCFILE *, smbc_getFunctionOpen(c)(c, url, O_RDONLY, 0));
		if (f)
			break;
		e = errno ? errno : EIO;
		smbfs_put_ctx(s, c, e);
		if (try || !conn_error(e))
			return -e;
		e = 0;
	}
	if (buf && !head_only) {
		if (LOCKED(int, smbc_getFunctionFstat(c)(c, f, &st)) < 0)
			e = errno ? errno : EIO;
		else if ((uint64_t)st.st_size > cap)
			e = EFBIG;
		else
			cap = (size_t)st.st_size;
	}
	if (buf) {
		while (!e && done < cap) {
			ssize_t n = LOCKED(ssize_t, smbc_getFunctionRead(c)(c, f, (char *)buf + done,
							  cap - done));

			if (n < 0)
				e = errno ? errno : EIO;
			else if (n == 0)
				break;
			else
				done += (size_t)n;
		}
	} else {
		char *tmp = malloc(1 << 20);

		if (!tmp)
			e = ENOMEM;
		while (!e) {
			ssize_t n = LOCKED(ssize_t, smbc_getFunctionRead(c)(c, f, tmp, 1 << 20));

			if (n < 0) {
				e = errno ? errno : EIO;
			} else if (n == 0) {
				break;
			} else {
				int w = ferry_write_all(lfd, tmp, (size_t)n);

				if (w)
					e = -w;
				done += (size_t)n;
			}
		}
		free(tmp);
	}
	LOCKED(int, smbc_getFunctionClose(c)(c, f));
	smbfs_put_ctx(s, c, e);
	if (len)
		*len = done;
	return -e;
}


/* The entries of directory REL (without "." and ".."); *OUT is freed by
 * the caller. */
int smbfs_list(struct smb *s, const char *rel, struct sdirent **out,
		  size_t *n)
{
	char url[4400];
	const struct libsmb_file_info *fi;
	struct sdirent *v = NULL;
	size_t cnt = 0, cap = 0;
	struct stat st;
	SMBCCTX *c;
	SMBCFILE *d;
	int e = 0;

	*out = NULL;
	*n = 0;
	smbfs_url_of(s, rel, url, sizeof(url));
	if (!(c = smbfs_get_ctx(s)))
		return -(errno ? errno : ENOMEM);
	errno = 0;
	d = LOCKED(SMBCFILE *, smbc_getFunctionOpendir(c)(c, url));
	if (!d) {
		e = errno ? errno : EIO;
		smbfs_put_ctx(s, c, e);
		return -e;
	}
	for (;;) {
		errno = 0;
		fi = LOCKED(const struct libsmb_file_info *, smbc_getFunctionReaddirPlus2(c)(c, d, &st));
		if (!fi) {
			if (errno && errno != ENOENT)
				e = errno;
			break;
		}
		if (!fi->name || !strcmp(fi->name, ".") || !strcmp(fi->name, "..") ||
		    strlen(fi->name) >= sizeof(v->name))
			continue;
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct sdirent *nv = realloc(v, nc * sizeof(*v));

			if (!nv) {
				e = ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		snprintf(v[cnt].name, sizeof(v[cnt].name), "%s", fi->name);
		v[cnt].size = fi->size;
		v[cnt].mtime = st.st_mtime;
		cnt++;
	}
	LOCKED(int, smbc_getFunctionClosedir(c)(c, d));
	smbfs_put_ctx(s, c, e);
	if (e) {
		free(v);
		return -e;
	}
	*out = v;
	*n = cnt;
	return 0;
}

static void tmp_name(struct smb *s, const char *dir, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s.tmp-%s-%ld-%u", dir, dir[0] ? "/" : "", s->me,
		 (long)getpid(), atomic_fetch_add(&s->seq, 1));
}

/* A local anonymous file for a manifest on its way up or down. */
static int local_tmp(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4200];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	snprintf(path, sizeof(path), "%s/ferry-smb-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* ---- chunks --------------------------------------------------------- */

static void chunk_rel(const uint8_t h[FERRY_HASH_LEN], char out[80])
{
	char hex[65];

	ferry_hash_hex(h, hex);
	snprintf(out, 80, "chunks/%.2s/%s", hex, hex);
}

static int smb_has_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN])
{
	char rel[80];
	struct stat st;
	int e;

	chunk_rel(h, rel);
	if ((e = smbfs_stat(S(r), rel, &st)) != 0) {
		if (e == -ENOENT)
			return 0;
		return smbfs_err(S(r), -e, "stat", rel);
	}
	/* A chunk cut short is treated as absent and written again. */
	return st.st_size > FERRY_CHUNK_HDR;
}

static int smb_put_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN],
			 const void *data, size_t len)
{
	struct smb *s = S(r);
	char rel[80], dir[16], tmp[300];
	int e;

	chunk_rel(h, rel);
	snprintf(dir, sizeof(dir), "%.9s", rel);
	for (int try = 0;; try++) {
		tmp_name(s, dir, tmp, sizeof(tmp));
		if ((e = smbfs_write_new(s, tmp, data, len, -1)) == 0)
			break;
		/* A connection lost mid-file: again, over a new one. */
		if (try == RETRIES || !conn_error(-e) || retry_pause(try))
			return smbfs_err(s, -e, "write chunk", rel + 10);
	}
	e = smbfs_rename(s, tmp, rel);
	if (e == -EEXIST) {
		smbfs_unlink(s, tmp);
		if (smb_has_chunk(r, h) == 1)
			return 1;
		/* A copy cut short: replace it. */
		smbfs_unlink(s, rel);
		return smb_put_chunk(r, h, data, len);
	}
	if (e) {
		smbfs_unlink(s, tmp);
		return smbfs_err(s, -e, "rename chunk", rel + 10);
	}
	return 0;
}

static int smb_get_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN],
			 void *buf, size_t cap, size_t *len)
{
	char rel[80];
	int e;

	chunk_rel(h, rel);
	for (int try = 0;; try++) {
		e = smbfs_read(S(r), rel, buf, cap, len, -1, 0);
		if (!e || try == RETRIES || !conn_error(-e) || retry_pause(try))
			break;
	}
	if (e == -ENOENT)
		return ferry_error(FERRY_E_MISSING, "chunk %s is missing", rel + 10);
	if (e == -EFBIG)
		return ferry_error(FERRY_E_CORRUPT, "chunk %s has an impossible size",
				   rel + 10);
	if (e)
		return smbfs_err(S(r), -e, "read chunk", rel + 10);
	return 0;
}

static int smb_get_chunk_head(struct ferry_repo *r,
			      const uint8_t h[FERRY_HASH_LEN], void *buf,
			      size_t n)
{
	char rel[80];
	size_t got = 0;
	int e;

	chunk_rel(h, rel);
	e = smbfs_read(S(r), rel, buf, n, &got, -1, 1);
	if (e == -ENOENT)
		return ferry_error(FERRY_E_MISSING, "chunk %s is missing", rel + 10);
	if (e)
		return smbfs_err(S(r), -e, "read chunk", rel + 10);
	if (got != n)
		return ferry_error(FERRY_E_CORRUPT, "chunk %s is truncated", rel + 10);
	return 0;
}

static int smb_list_chunks(struct ferry_repo *r, ferry_chunk_list_cb cb,
			   void *arg)
{
	for (int i = 0; i < 256; i++) {
		char rel[16];
		struct sdirent *v;
		size_t n;
		int e;

		snprintf(rel, sizeof(rel), "chunks/%02x", i);
		if ((e = smbfs_list(S(r), rel, &v, &n)) != 0)
			return smbfs_err(S(r), -e, "list", rel);
		for (size_t k = 0; k < n && e == 0; k++) {
			uint8_t h[FERRY_HASH_LEN];

			if (strlen(v[k].name) != 64 ||
			    ferry_hex_decode(v[k].name, h, FERRY_HASH_LEN) ||
			    h[0] != i)
				continue;
			e = cb(h, v[k].size, arg);
		}
		free(v);
		if (e)
			return e;
	}
	return 0;
}

/* Each chunk was closed before its rename, and the server acknowledged
 * every write: what the server does with its cache is the share's
 * setting (docs/backends.md: "sync always"). */
static int smb_sync_chunks(struct ferry_repo *r)
{
	(void)r;
	return 0;
}

/* ---- manifests -------------------------------------------------------- */

static int smb_point_create(struct ferry_repo *r, const char *id, int *fd,
			    char **tmp)
{
	(void)id;
	*fd = local_tmp();
	if (*fd < 0)
		return ferry_error(ferry_errno_code(errno, FERRY_E_IO),
				   "create a local temporary file for manifest %s: %s",
				   id, strerror(errno));
	if (!(*tmp = strdup(""))) {
		close(*fd);
		return FERRY_E_NOMEM;
	}
	(void)r;
	return 0;
}

static int smb_point_commit(struct ferry_repo *r, const char *id, int fd,
			    const char *tmp)
{
	struct smb *s = S(r);
	char rel[64], up[300];
	struct stat st, lst;
	int e;

	(void)tmp;
	snprintf(rel, sizeof(rel), "points/%s", id);
	tmp_name(s, "points", up, sizeof(up));
	if (fstat(fd, &lst) < 0) {
		e = -errno;
		close(fd);
		return ferry_error(FERRY_E_IO, "stat manifest %s: %s", id, strerror(-e));
	}
	e = smbfs_write_new(s, up, NULL, 0, fd);
	close(fd);
	if (e)
		return smbfs_err(s, -e, "upload manifest", id);
	/* The uploaded size is checked before the manifest gets its name. */
	if ((e = smbfs_stat(s, up, &st)) != 0 || st.st_size != lst.st_size) {
		smbfs_unlink(s, up);
		return e ? smbfs_err(s, -e, "check uploaded manifest", id)
			 : ferry_error(FERRY_E_IO,
				       "manifest %s: %lld bytes on the share, %lld written",
				       id, (long long)st.st_size, (long long)lst.st_size);
	}
	if ((e = smbfs_rename(s, up, rel)) != 0) {
		smbfs_unlink(s, up);
		return e == -EEXIST ? ferry_error(FERRY_E_EXISTS,
						  "restore point %s exists already on %s",
						  id, s->shown)
				    : smbfs_err(s, -e, "commit restore point", id);
	}
	return 0;
}

static void smb_point_abort(struct ferry_repo *r, int fd, const char *tmp)
{
	(void)r;
	(void)tmp;
	close(fd);
}

static int smb_point_open(struct ferry_repo *r, const char *id, int *fd)
{
	char rel[64];
	int e;

	if (!ferry_point_id_valid(id))
		return ferry_error(FERRY_E_NOTFOUND, "restore point %s not found", id);
	snprintf(rel, sizeof(rel), "points/%s", id);
	if ((*fd = local_tmp()) < 0)
		return ferry_error(FERRY_E_IO,
				   "create a local temporary file for manifest %s: %s",
				   id, strerror(errno));
	e = smbfs_read(S(r), rel, NULL, 0, NULL, *fd, 0);
	if (e) {
		close(*fd);
		*fd = -1;
		if (e == -ENOENT)
			return ferry_error(FERRY_E_NOTFOUND,
					   "restore point %s not found", id);
		return smbfs_err(S(r), -e, "read manifest", id);
	}
	return 0;
}

/* Is the temporary or lock NAME (".tmp-HOST-PID-N", "s-HOST-PID-N")
 * left by a process that is gone? */
int smbfs_owner_gone(struct smb *s, const char *rest, time_t mtime,
		      time_t max_age)
{
	size_t ml = strlen(s->me);

	if (!strncmp(rest, s->me, ml) && rest[ml] == '-') {
		long pid = strtol(rest + ml + 1, NULL, 10);

		return pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
	}
	return mtime > 0 && time(NULL) - mtime > max_age;
}

static int smb_point_list(struct ferry_repo *r, ferry_id_list_cb cb, void *arg)
{
	struct sdirent *v;
	size_t n;
	int e;

	if ((e = smbfs_list(S(r), "points", &v, &n)) != 0)
		return smbfs_err(S(r), -e, "list", "points");
	for (size_t k = 0; k < n && e == 0; k++) {
		if (!strncmp(v[k].name, ".tmp-", 5)) {
			if (smbfs_owner_gone(S(r), v[k].name + 5, v[k].mtime, STALE_TMP)) {
				char rel[300];

				snprintf(rel, sizeof(rel), "points/%s", v[k].name);
				smbfs_unlink(S(r), rel);
			}
			continue;
		}
		if (ferry_point_id_valid(v[k].name))
			e = cb(v[k].name, arg);
	}
	free(v);
	return e;
}

static int smb_delete_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN])
{
	char rel[80];
	int e;

	chunk_rel(h, rel);
	if ((e = smbfs_unlink(S(r), rel)) != 0 && e != -ENOENT)
		return smbfs_err(S(r), -e, "remove chunk", rel + 10);
	return 0;
}

static int smb_delete_point(struct ferry_repo *r, const char *id)
{
	char rel[64];
	int e;

	if (!ferry_point_id_valid(id))
		return ferry_error(FERRY_E_INVAL, "bad restore point id %s", id);
	snprintf(rel, sizeof(rel), "points/%s", id);
	if ((e = smbfs_unlink(S(r), rel)) != 0 && e != -ENOENT)
		return smbfs_err(S(r), -e, "remove restore point", id);
	return 0;
}

static void stale_in(struct smb *s, const char *dir, uint64_t *files,
		     uint64_t *bytes)
{
	struct sdirent *v;
	size_t n;

	if (smbfs_list(s, dir, &v, &n))
		return;
	for (size_t k = 0; k < n; k++) {
		char rel[400];

		if (strncmp(v[k].name, ".tmp-", 5) ||
		    !smbfs_owner_gone(s, v[k].name + 5, v[k].mtime, STALE_TMP))
			continue;
		snprintf(rel, sizeof(rel), "%s%s%s", dir, dir[0] ? "/" : "",
			 v[k].name);
		if (smbfs_unlink(s, rel) == 0) {
			(*files)++;
			*bytes += v[k].size;
		}
	}
	free(v);
}

static int smb_remove_stale(struct ferry_repo *r, uint64_t *files,
			    uint64_t *bytes)
{
	for (int i = 0; i < 256; i++) {
		char rel[16];

		snprintf(rel, sizeof(rel), "chunks/%02x", i);
		stale_in(S(r), rel, files, bytes);
	}
	stale_in(S(r), "points", files, bytes);
	stale_in(S(r), "verify", files, bytes);
	stale_in(S(r), "", files, bytes);
	return 0;
}

/* ---- records ---------------------------------------------------------- */

static int record_kind_ok(const char *kind, const char *id)
{
	return !strcmp(kind, "verify") && ferry_point_id_valid(id);
}

static int smb_record_put(struct ferry_repo *r, const char *kind,
			  const char *id, const void *data, size_t len)
{
	struct smb *s = S(r);
	char rel[64], tmp[300];
	int e;

	if (!record_kind_ok(kind, id))
		return ferry_error(FERRY_E_INVAL, "bad record %s/%s", kind, id);
	if ((e = smbfs_mkdir(s, kind)) != 0 && e != -EEXIST)
		return smbfs_err(s, -e, "create", kind);
	snprintf(rel, sizeof(rel), "%s/%s", kind, id);
	tmp_name(s, kind, tmp, sizeof(tmp));
	if ((e = smbfs_write_new(s, tmp, data, len, -1)) != 0)
		return smbfs_err(s, -e, "write", rel);
	/* Records are advisory: the old one goes first. */
	smbfs_unlink(s, rel);
	if ((e = smbfs_rename(s, tmp, rel)) != 0) {
		smbfs_unlink(s, tmp);
		return smbfs_err(s, -e, "write", rel);
	}
	return 0;
}

static int smb_record_get(struct ferry_repo *r, const char *kind,
			  const char *id, void *buf, size_t cap, size_t *len)
{
	char rel[64];
	int e;

	if (!record_kind_ok(kind, id))
		return ferry_error(FERRY_E_INVAL, "bad record %s/%s", kind, id);
	snprintf(rel, sizeof(rel), "%s/%s", kind, id);
	e = smbfs_read(S(r), rel, buf, cap, len, -1, 0);
	if (e == -ENOENT || e == -ENOTDIR)
		return FERRY_E_NOTFOUND;
	if (e == -EFBIG)
		return ferry_error(FERRY_E_CORRUPT, "record %s is too large", rel);
	if (e)
		return smbfs_err(S(r), -e, "read", rel);
	return 0;
}

static int smb_record_delete(struct ferry_repo *r, const char *kind,
			     const char *id)
{
	char rel[64];
	int e;

	if (!record_kind_ok(kind, id))
		return ferry_error(FERRY_E_INVAL, "bad record %s/%s", kind, id);
	snprintf(rel, sizeof(rel), "%s/%s", kind, id);
	if ((e = smbfs_unlink(S(r), rel)) != 0 && e != -ENOENT && e != -ENOTDIR)
		return smbfs_err(S(r), -e, "remove", rel);
	return 0;
}

/* ---- config, attach, create ------------------------------------------- */

static int smb_config_get(struct ferry_repo *r, char *buf, size_t cap,
			  size_t *len)
{
	int e = smbfs_read(S(r), "config", buf, cap, len, -1, 0);

	if (e == -ENOENT || e == -ENOTDIR)
		return ferry_error(FERRY_E_NOTREPO,
				   "%s is not a ferry repository (no config file)",
				   S(r)->shown);
	if (e == -EFBIG)
		return ferry_error(FERRY_E_NOTREPO,
				   "%s is not a ferry repository (bad config)",
				   S(r)->shown);
	if (e)
		return smbfs_err(S(r), -e, "read", "config");
	return 0;
}

static int smb_config_put(struct ferry_repo *r, const char *text, size_t len)
{
	struct smb *s = S(r);
	int e;

	smbfs_unlink(s, ".config.tmp");
	if ((e = smbfs_write_new(s, ".config.tmp", text, len, -1)) != 0)
		return smbfs_err(s, -e, "write", ".config.tmp");
	if ((e = smbfs_rename(s, ".config.tmp", "config")) != 0) {
		smbfs_unlink(s, ".config.tmp");
		return e == -EEXIST ? ferry_error(FERRY_E_EXISTS,
						  "%s is already a ferry repository",
						  s->shown)
				    : smbfs_err(s, -e, "write", "config");
	}
	return 0;
}

static void smb_close(struct ferry_repo *r)
{
	struct smb *s = S(r);

	if (!s)
		return;
	if (s->refresher_on) {
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->refresher, NULL);
	}
	smb_unlock(r);
	while (s->idle) {
		struct sconn *sc = s->idle;

		s->idle = sc->next;
		pthread_mutex_lock(&smb_global);
		smbc_free_context(sc->ctx, 1);
		pthread_mutex_unlock(&smb_global);
		free(sc);
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	explicit_bzero(s->pass, sizeof(s->pass));
	free(s->base);
	free(s->shown);
	free(s);
	r->state = NULL;
}

const struct ferry_store_ops ferry_store_smb_ops = {
	.name = "smb",
	.has_chunk = smb_has_chunk,
	.put_chunk = smb_put_chunk,
	.get_chunk = smb_get_chunk,
	.get_chunk_head = smb_get_chunk_head,
	.list_chunks = smb_list_chunks,
	.sync_chunks = smb_sync_chunks,
	.point_create = smb_point_create,
	.point_commit = smb_point_commit,
	.point_abort = smb_point_abort,
	.point_open = smb_point_open,
	.point_list = smb_point_list,
	.lock_shared = smb_lock_shared,
	.lock_exclusive = smb_lock_exclusive,
	.lock_exclusive_wait = smb_lock_exclusive_wait,
	.unlock = smb_unlock,
	.delete_chunk = smb_delete_chunk,
	.delete_point = smb_delete_point,
	.remove_stale = smb_remove_stale,
	.record_put = smb_record_put,
	.record_get = smb_record_get,
	.record_delete = smb_record_delete,
	.config_get = smb_config_get,
	.config_put = smb_config_put,
	.close = smb_close,
};

static int smb_attach_only(struct ferry_repo *r)
{
	struct smb *s = calloc(1, sizeof(*s));
	int e;

	if (!s)
		return FERRY_E_NOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	r->state = s;
	r->ops = &ferry_store_smb_ops;
	if (!(s->shown = strdup(r->path))) {
		e = FERRY_E_NOMEM;
		goto fail;
	}
	if (gethostname(s->me, sizeof(s->me) - 1) < 0 || !s->me[0])
		snprintf(s->me, sizeof(s->me), "host");
	for (char *q = s->me; *q; q++)
		if (*q == '-' || *q == '/' || *q == '\\' || *q == ' ')
			*q = '_';
	if ((e = smb_parse_url(s, r->path)) != 0 || (e = smb_load_credentials(s)) != 0)
		goto fail;
	return 0;
fail:
	smb_close(r);
	r->ops = NULL;
	return e;
}

/* Reach the share: the repository's folder must be there. */
static int smb_check_root(struct ferry_repo *r, int want_dir)
{
	struct stat st;
	int e = smbfs_stat(S(r), "", &st);

	if (e == 0 && !S_ISDIR(st.st_mode))
		return ferry_error(FERRY_E_NOTREPO, "%s is not a folder", S(r)->shown);
	if (e == -ENOENT || e == -ENOTDIR)
		return want_dir ? ferry_error(FERRY_E_NOTREPO,
					      "%s is not a ferry repository (no such folder on the share)",
					      S(r)->shown)
				: 1;
	if (e == -EACCES || e == -EPERM)
		return ferry_error(FERRY_E_AUTH,
				   "%s: SMB login or access refused for user '%s' (wrong user or password in the SMB credentials?)",
				   S(r)->shown, S(r)->user);
	if (e)
		return smbfs_err(S(r), -e, "reach", "the repository folder");
	return 0;
}

static int smb_attach(struct ferry_repo *r)
{
	int e;

	if ((e = smb_attach_only(r)) != 0)
		return e;
	if ((e = smb_check_root(r, 1)) != 0) {
		smb_close(r);
		r->ops = NULL;
	}
	return e;
}

static int smb_create(struct ferry_repo *r)
{
	struct smb *s;
	struct stat st;
	char rel[4200], *path;
	int e;

	if ((e = smb_attach_only(r)) != 0)
		return e;
	s = S(r);
	if ((e = smb_check_root(r, 0)) < 0)
		goto fail;
	if (e == 1) {
		/* Make the folder, one level at a time below the share. */
		char *base = s->base, *q;
		int level = 0;

		path = strchr(base + 6, '/');
		path = path ? strchr(path + 1, '/') : NULL;
		for (q = path ? path + 1 : NULL; q && *q; q++) {
			if (*q != '/' && q[1])
				continue;
			{
				char url[4400];
				size_t n = (size_t)(q - base) + (*q == '/' ? 0 : 1);
				SMBCCTX *c;

				snprintf(url, sizeof(url), "%.*s", (int)n, base);
				e = 0;
				WITH_CTX(s, c, e, {
					e = LOCKED(int, smbc_getFunctionMkdir(c)(c, url, 0755)) < 0
						    ? (errno ? errno : EIO) : 0;
				});
				if (e == ENOENT && !level) {
					/* The first level below the share: the
					 * share itself is not there. */
					e = ferry_error(FERRY_E_IO,
							"%s: no share '%.*s' on %s (or user '%s' cannot see it)",
							s->shown, (int)(path - strchr(base + 6, '/') - 1),
							strchr(base + 6, '/') + 1, s->host, s->user);
					goto fail;
				}
				if (e && e != EEXIST) {
					e = smbfs_err(s, e, "create folder", url);
					goto fail;
				}
				level++;
			}
		}
	}
	if (smbfs_stat(s, "config", &st) == 0) {
		e = ferry_error(FERRY_E_EXISTS, "%s is already a ferry repository",
				s->shown);
		goto fail;
	}
	static const char *const dirs[] = { "points", "chunks", "locks", "verify" };
	for (size_t i = 0; i < 4; i++)
		if ((e = smbfs_mkdir(s, dirs[i])) != 0 && e != -EEXIST) {
			e = smbfs_err(s, -e, "create", dirs[i]);
			goto fail;
		}
	for (int i = 0; i < 256; i++) {
		snprintf(rel, sizeof(rel), "chunks/%02x", i);
		if ((e = smbfs_mkdir(s, rel)) != 0 && e != -EEXIST) {
			e = smbfs_err(s, -e, "create", rel);
			goto fail;
		}
	}
	return 0;
fail:
	smb_close(r);
	r->ops = NULL;
	return e;
}

const struct ferry_backend ferry_backend_smb = {
	.prefix = "smb://",
	.create = smb_create,
	.attach = smb_attach,
};
