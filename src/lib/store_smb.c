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

#define LEASE 600	/* seconds a lock lives without a refresh */
#define REFRESH 60	/* seconds between refreshes */
#define STALE_TMP 86400	/* another host's temporary older than this */
#define POOL_MAX 32	/* idle contexts kept */

struct sconn {
	SMBCCTX *ctx;
	struct sconn *next;
};

struct smb {
	char *base;	/* smb://HOST/SHARE/PATH, no user, no port */
	char *shown;	/* the URL as given, for messages */
	char host[256], user[256], pass[256], domain[256];
	char me[128];	/* this host's name, in temporary and lock names */
	uint16_t port;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sconn *idle;
	int nidle;
	atomic_uint seq;
	/* locks held: our shared file (empty: none) and the exclusive one */
	char shared_name[200];
	int have_excl;
	pthread_t refresher;
	int refresher_on, stop;
};

static pthread_mutex_t smb_global = PTHREAD_MUTEX_INITIALIZER;

/* libsmbclient keeps process-wide state (its talloc stack frames) unless
 * smbc_thread_posix() is called, which Debian's build does not export:
 * calls into it are serialized by smb_global.  The waits for the server
 * happen inside those calls; compression and hashing stay parallel. */
#define LOCKED(T, call)                                                    \
	({                                                                 \
		T r_;                                                      \
		int e_;                                                    \
		pthread_mutex_lock(&smb_global);                           \
		errno = 0;                                                 \
		r_ = (call);                                               \
		e_ = errno;                                                \
		pthread_mutex_unlock(&smb_global);                         \
		errno = e_;                                                \
		r_;                                                        \
	})

static struct smb *S(struct ferry_repo *r)
{
	return r->state;
}

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

static SMBCCTX *get_ctx(struct smb *s)
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
	       e == ENETUNREACH || e == ECONNABORTED;
}

/* Give a context back; E is the errno of its last call (0: fine). */
static void put_ctx(struct smb *s, SMBCCTX *c, int e)
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
static int smb_err(struct smb *s, int e, const char *what, const char *name)
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

static void url_of(struct smb *s, const char *rel, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s%s", s->base, rel[0] ? "/" : "", rel);
}

/* ---- basic file operations (each borrows a context) ----------------- */

/* Runs one operation with a context, retrying once on a fresh one when
 * the pooled connection turned out to be dead. */
#define WITH_CTX(s, c, e, body)                                            \
	do {                                                               \
		for (int try_ = 0; try_ < 2; try_++) {                     \
			if (!((c) = get_ctx(s))) {                         \
				(e) = errno ? errno : ENOMEM;              \
				break;                                     \
			}                                                  \
			errno = 0;                                         \
			body;                                              \
			put_ctx((s), (c), (e));                            \
			if (!conn_error(e))                                \
				break;                                     \
		}                                                          \
	} while (0)

/* 0, or -errno. */
static int s_stat(struct smb *s, const char *rel, struct stat *st)
{
	char url[4400];
	SMBCCTX *c;
	int e = 0;

	url_of(s, rel, url, sizeof(url));
	WITH_CTX(s, c, e, {
		e = LOCKED(int, smbc_getFunctionStat(c)(c, url, st)) < 0 ? (errno ? errno : EIO) : 0;
	});
	return -e;
}

static int s_unlink(struct smb *s, const char *rel)
{
	char url[4400];
	SMBCCTX *c;
	int e = 0;

	url_of(s, rel, url, sizeof(url));
	WITH_CTX(s, c, e, {
		e = LOCKED(int, smbc_getFunctionUnlink(c)(c, url)) < 0 ? (errno ? errno : EIO) : 0;
	});
	return -e;
}

static int s_mkdir(struct smb *s, const char *rel)
{
	char url[4400];
	SMBCCTX *c;
	int e = 0;

	url_of(s, rel, url, sizeof(url));
	WITH_CTX(s, c, e, {
		e = LOCKED(int, smbc_getFunctionMkdir(c)(c, url, 0755)) < 0 ? (errno ? errno : EIO) : 0;
	});
	return -e;
}

/* Rename FROM to TO; never replaces TO (-EEXIST then). */
static int s_rename(struct smb *s, const char *from, const char *to)
{
	char u1[4400], u2[4400];
	struct stat st;
	SMBCCTX *c;
	int e = 0;

	/* libsmbclient's rename replaces an existing target (it removes it
	 * and renames again), so look first; names written this way are
	 * unique (manifests) or content-addressed (chunks, where a racing
	 * writer stores the same bytes). */
	if ((e = s_stat(s, to, &st)) == 0)
		return -EEXIST;
	if (e != -ENOENT)
		return e;
	url_of(s, from, u1, sizeof(u1));
	url_of(s, to, u2, sizeof(u2));
	e = 0;
	WITH_CTX(s, c, e, {
		e = LOCKED(int, smbc_getFunctionRename(c)(c, u1, c, u2)) < 0 ? (errno ? errno : EIO) : 0;
	});
	return -e;
}

/* Write LEN bytes (or the local file LFD when DATA is NULL) to a new file
 * REL (created exclusively). */
static int s_write_new(struct smb *s, const char *rel, const void *data,
		       size_t len, int lfd)
{
	char url[4400];
	SMBCCTX *c;
	SMBCFILE *f;
	int e = 0;

	url_of(s, rel, url, sizeof(url));
	for (int try = 0;; try++) {
		if (!(c = get_ctx(s)))
			return -(errno ? errno : ENOMEM);
		errno = 0;
		f = LOCKED(SMBCFILE *, smbc_getFunctionOpen(c)(c, url, O_WRONLY | O_CREAT | O_EXCL,
					    0644));
		if (f)
			break;
		e = errno ? errno : EIO;
		put_ctx(s, c, e);
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
	put_ctx(s, c, e);
	if (e) {
		s_unlink(s, rel);
		return -e;
	}
	return 0;
}

/* Read REL into BUF (at most CAP; -EFBIG when larger), or the whole file
 * into the local file LFD when BUF is NULL.  OFF/N: only N bytes. */
static int s_read(struct smb *s, const char *rel, void *buf, size_t cap,
		  size_t *len, int lfd, int head_only)
{
	char url[4400];
	struct stat st;
	SMBCCTX *c;
	SMBCFILE *f;
	size_t done = 0;
	int e = 0;

	url_of(s, rel, url, sizeof(url));
	for (int try = 0;; try++) {
		if (!(c = get_ctx(s)))
			return -(errno ? errno : ENOMEM);
		errno = 0;
		f = LOCKED(SMBCFILE *, smbc_getFunctionOpen(c)(c, url, O_RDONLY, 0));
		if (f)
			break;
		e = errno ? errno : EIO;
		put_ctx(s, c, e);
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
	put_ctx(s, c, e);
	if (len)
		*len = done;
	return -e;
}

struct sdirent {
	char name[256];
	uint64_t size;
	time_t mtime;
};

/* The entries of directory REL (without "." and ".."); *OUT is freed by
 * the caller. */
static int s_list(struct smb *s, const char *rel, struct sdirent **out,
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
	url_of(s, rel, url, sizeof(url));
	if (!(c = get_ctx(s)))
		return -(errno ? errno : ENOMEM);
	errno = 0;
	d = LOCKED(SMBCFILE *, smbc_getFunctionOpendir(c)(c, url));
	if (!d) {
		e = errno ? errno : EIO;
		put_ctx(s, c, e);
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
	put_ctx(s, c, e);
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
	if ((e = s_stat(S(r), rel, &st)) != 0) {
		if (e == -ENOENT)
			return 0;
		return smb_err(S(r), -e, "stat", rel);
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
	tmp_name(s, dir, tmp, sizeof(tmp));
	if ((e = s_write_new(s, tmp, data, len, -1)) != 0)
		return smb_err(s, -e, "write chunk", rel + 10);
	e = s_rename(s, tmp, rel);
	if (e == -EEXIST) {
		s_unlink(s, tmp);
		if (smb_has_chunk(r, h) == 1)
			return 1;
		/* A copy cut short: replace it. */
		s_unlink(s, rel);
		return smb_put_chunk(r, h, data, len);
	}
	if (e) {
		s_unlink(s, tmp);
		return smb_err(s, -e, "rename chunk", rel + 10);
	}
	return 0;
}

static int smb_get_chunk(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN],
			 void *buf, size_t cap, size_t *len)
{
	char rel[80];
	int e;

	chunk_rel(h, rel);
	e = s_read(S(r), rel, buf, cap, len, -1, 0);
	if (e == -ENOENT)
		return ferry_error(FERRY_E_MISSING, "chunk %s is missing", rel + 10);
	if (e == -EFBIG)
		return ferry_error(FERRY_E_CORRUPT, "chunk %s has an impossible size",
				   rel + 10);
	if (e)
		return smb_err(S(r), -e, "read chunk", rel + 10);
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
	e = s_read(S(r), rel, buf, n, &got, -1, 1);
	if (e == -ENOENT)
		return ferry_error(FERRY_E_MISSING, "chunk %s is missing", rel + 10);
	if (e)
		return smb_err(S(r), -e, "read chunk", rel + 10);
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
		if ((e = s_list(S(r), rel, &v, &n)) != 0)
			return smb_err(S(r), -e, "list", rel);
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
	e = s_write_new(s, up, NULL, 0, fd);
	close(fd);
	if (e)
		return smb_err(s, -e, "upload manifest", id);
	/* The uploaded size is checked before the manifest gets its name. */
	if ((e = s_stat(s, up, &st)) != 0 || st.st_size != lst.st_size) {
		s_unlink(s, up);
		return e ? smb_err(s, -e, "check uploaded manifest", id)
			 : ferry_error(FERRY_E_IO,
				       "manifest %s: %lld bytes on the share, %lld written",
				       id, (long long)st.st_size, (long long)lst.st_size);
	}
	if ((e = s_rename(s, up, rel)) != 0) {
		s_unlink(s, up);
		return e == -EEXIST ? ferry_error(FERRY_E_EXISTS,
						  "restore point %s exists already on %s",
						  id, s->shown)
				    : smb_err(s, -e, "commit restore point", id);
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
	e = s_read(S(r), rel, NULL, 0, NULL, *fd, 0);
	if (e) {
		close(*fd);
		*fd = -1;
		if (e == -ENOENT)
			return ferry_error(FERRY_E_NOTFOUND,
					   "restore point %s not found", id);
		return smb_err(S(r), -e, "read manifest", id);
	}
	return 0;
}

/* Is the temporary or lock NAME (".tmp-HOST-PID-N", "s-HOST-PID-N")
 * left by a process that is gone? */
static int owner_gone(struct smb *s, const char *rest, time_t mtime,
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

	if ((e = s_list(S(r), "points", &v, &n)) != 0)
		return smb_err(S(r), -e, "list", "points");
	for (size_t k = 0; k < n && e == 0; k++) {
		if (!strncmp(v[k].name, ".tmp-", 5)) {
			if (owner_gone(S(r), v[k].name + 5, v[k].mtime, STALE_TMP)) {
				char rel[300];

				snprintf(rel, sizeof(rel), "points/%s", v[k].name);
				s_unlink(S(r), rel);
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
	if ((e = s_unlink(S(r), rel)) != 0 && e != -ENOENT)
		return smb_err(S(r), -e, "remove chunk", rel + 10);
	return 0;
}

static int smb_delete_point(struct ferry_repo *r, const char *id)
{
	char rel[64];
	int e;

	if (!ferry_point_id_valid(id))
		return ferry_error(FERRY_E_INVAL, "bad restore point id %s", id);
	snprintf(rel, sizeof(rel), "points/%s", id);
	if ((e = s_unlink(S(r), rel)) != 0 && e != -ENOENT)
		return smb_err(S(r), -e, "remove restore point", id);
	return 0;
}

static void stale_in(struct smb *s, const char *dir, uint64_t *files,
		     uint64_t *bytes)
{
	struct sdirent *v;
	size_t n;

	if (s_list(s, dir, &v, &n))
		return;
	for (size_t k = 0; k < n; k++) {
		char rel[400];

		if (strncmp(v[k].name, ".tmp-", 5) ||
		    !owner_gone(s, v[k].name + 5, v[k].mtime, STALE_TMP))
			continue;
		snprintf(rel, sizeof(rel), "%s%s%s", dir, dir[0] ? "/" : "",
			 v[k].name);
		if (s_unlink(s, rel) == 0) {
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

/* ---- locks -------------------------------------------------------------- */

static void *refresher_main(void *arg)
{
	struct ferry_repo *r = arg;
	struct smb *s = S(r);

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		struct timespec ts;
		char names[2][220];
		int nn = 0;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += REFRESH;
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		if (s->stop)
			break;
		if (s->shared_name[0])
			snprintf(names[nn++], sizeof(names[0]), "locks/%s", s->shared_name);
		if (s->have_excl)
			snprintf(names[nn++], sizeof(names[0]), "locks/x");
		pthread_mutex_unlock(&s->mu);
		for (int i = 0; i < nn; i++) {
			char url[4400];
			SMBCCTX *c = get_ctx(s);

			if (!c)
				continue;
			url_of(s, names[i], url, sizeof(url));
			errno = 0;
			put_ctx(s, c, LOCKED(int, smbc_getFunctionUtimes(c)(c, url, NULL)) < 0 ? errno : 0);
		}
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void refresher_start(struct ferry_repo *r)
{
	struct smb *s = S(r);

	if (!s->refresher_on && pthread_create(&s->refresher, NULL, refresher_main, r) == 0)
		s->refresher_on = 1;
}

/* Is lock file NAME (in locks/) held by a live holder?  Stale ones are
 * removed. */
static int lock_live(struct smb *s, const struct sdirent *d)
{
	const char *rest = d->name[0] == 'x' ? NULL : d->name + 2;
	char rel[300];

	snprintf(rel, sizeof(rel), "locks/%s", d->name);
	if (rest) {
		if (!owner_gone(s, rest, d->mtime, LEASE))
			return 1;
	} else {
		char text[300];
		size_t len = 0;

		/* "x" holds "HOST-PID\n". */
		if (s_read(s, rel, text, sizeof(text) - 1, &len, -1, 0) != 0)
			return 0;
		text[len] = 0;
		text[strcspn(text, "\n")] = 0;
		if (!owner_gone(s, text, d->mtime, LEASE))
			return 1;
	}
	s_unlink(s, rel);
	return 0;
}

static int excl_present(struct smb *s, int *live)
{
	struct sdirent d;
	struct stat st;
	int e = s_stat(s, "locks/x", &st);

	*live = 0;
	if (e == -ENOENT)
		return 0;
	if (e)
		return smb_err(s, -e, "stat", "locks/x");
	snprintf(d.name, sizeof(d.name), "x");
	d.mtime = st.st_mtime;
	d.size = (uint64_t)st.st_size;
	*live = lock_live(s, &d);
	return 0;
}

static int wait_a_bit(void)
{
	struct timespec ts = { 0, 500 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	if (atomic_load(&ferry_cancelled))
		return ferry_error(FERRY_E_INTERRUPTED,
				   "interrupted while waiting for the repository lock");
	return 0;
}

static int smb_lock_shared(struct ferry_repo *r)
{
	struct smb *s = S(r);
	char name[200], rel[220];
	int e, live;

	if (s->shared_name[0] || s->have_excl)
		return 0;
	snprintf(name, sizeof(name), "s-%s-%ld-%u", s->me, (long)getpid(),
		 atomic_fetch_add(&s->seq, 1));
	snprintf(rel, sizeof(rel), "locks/%s", name);
	for (;;) {
		if ((e = s_write_new(s, rel, "", 0, -1)) != 0)
			return smb_err(s, -e, "create lock", rel);
		/* Announced first, then checked: an exclusive holder that
		 * came first is waited for (gc is removing chunks). */
		if ((e = excl_present(s, &live)) != 0) {
			s_unlink(s, rel);
			return e;
		}
		if (!live)
			break;
		s_unlink(s, rel);
		if ((e = wait_a_bit()) != 0)
			return e;
	}
	pthread_mutex_lock(&s->mu);
	snprintf(s->shared_name, sizeof(s->shared_name), "%s", name);
	pthread_mutex_unlock(&s->mu);
	refresher_start(r);
	return 0;
}

static int smb_lock_exclusive(struct ferry_repo *r)
{
	struct smb *s = S(r);
	char text[200];
	int e, live;

	if (s->have_excl)
		return 0;
	snprintf(text, sizeof(text), "%s-%ld\n", s->me, (long)getpid());
	for (;;) {
		e = s_write_new(s, "locks/x", text, strlen(text), -1);
		if (e == 0)
			break;
		if (e != -EEXIST)
			return smb_err(s, -e, "create lock", "locks/x");
		if ((e = excl_present(s, &live)) != 0)
			return e;
		if (live && (e = wait_a_bit()) != 0)
			return e;
	}
	pthread_mutex_lock(&s->mu);
	s->have_excl = 1;
	pthread_mutex_unlock(&s->mu);
	refresher_start(r);
	/* Then wait until no session that adds data holds the shared lock. */
	for (;;) {
		struct sdirent *v;
		size_t n;
		int busy = 0;

		if ((e = s_list(s, "locks", &v, &n)) != 0) {
			e = smb_err(s, -e, "list", "locks");
			goto fail;
		}
		for (size_t k = 0; k < n; k++)
			if (!strncmp(v[k].name, "s-", 2) &&
			    strcmp(v[k].name, s->shared_name) && lock_live(s, &v[k]))
				busy = 1;
		free(v);
		if (!busy)
			return 0;
		if ((e = wait_a_bit()) != 0) {
			if (e == FERRY_E_INTERRUPTED)
				ferry_error(e, "interrupted while waiting for running backups");
			goto fail;
		}
	}
fail:
	s_unlink(s, "locks/x");
	pthread_mutex_lock(&s->mu);
	s->have_excl = 0;
	pthread_mutex_unlock(&s->mu);
	return e;
}

static void smb_unlock(struct ferry_repo *r)
{
	struct smb *s = S(r);
	char rel[220];

	pthread_mutex_lock(&s->mu);
	rel[0] = 0;
	if (s->shared_name[0])
		snprintf(rel, sizeof(rel), "locks/%s", s->shared_name);
	s->shared_name[0] = 0;
	if (s->have_excl) {
		s->have_excl = 0;
		pthread_mutex_unlock(&s->mu);
		s_unlink(s, "locks/x");
	} else {
		pthread_mutex_unlock(&s->mu);
	}
	if (rel[0])
		s_unlink(s, rel);
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
	if ((e = s_mkdir(s, kind)) != 0 && e != -EEXIST)
		return smb_err(s, -e, "create", kind);
	snprintf(rel, sizeof(rel), "%s/%s", kind, id);
	tmp_name(s, kind, tmp, sizeof(tmp));
	if ((e = s_write_new(s, tmp, data, len, -1)) != 0)
		return smb_err(s, -e, "write", rel);
	/* Records are advisory: the old one goes first. */
	s_unlink(s, rel);
	if ((e = s_rename(s, tmp, rel)) != 0) {
		s_unlink(s, tmp);
		return smb_err(s, -e, "write", rel);
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
	e = s_read(S(r), rel, buf, cap, len, -1, 0);
	if (e == -ENOENT || e == -ENOTDIR)
		return FERRY_E_NOTFOUND;
	if (e == -EFBIG)
		return ferry_error(FERRY_E_CORRUPT, "record %s is too large", rel);
	if (e)
		return smb_err(S(r), -e, "read", rel);
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
	if ((e = s_unlink(S(r), rel)) != 0 && e != -ENOENT && e != -ENOTDIR)
		return smb_err(S(r), -e, "remove", rel);
	return 0;
}

/* ---- config, attach, create ------------------------------------------- */

static int smb_config_get(struct ferry_repo *r, char *buf, size_t cap,
			  size_t *len)
{
	int e = s_read(S(r), "config", buf, cap, len, -1, 0);

	if (e == -ENOENT || e == -ENOTDIR)
		return ferry_error(FERRY_E_NOTREPO,
				   "%s is not a ferry repository (no config file)",
				   S(r)->shown);
	if (e == -EFBIG)
		return ferry_error(FERRY_E_NOTREPO,
				   "%s is not a ferry repository (bad config)",
				   S(r)->shown);
	if (e)
		return smb_err(S(r), -e, "read", "config");
	return 0;
}

static int smb_config_put(struct ferry_repo *r, const char *text, size_t len)
{
	struct smb *s = S(r);
	int e;

	s_unlink(s, ".config.tmp");
	if ((e = s_write_new(s, ".config.tmp", text, len, -1)) != 0)
		return smb_err(s, -e, "write", ".config.tmp");
	if ((e = s_rename(s, ".config.tmp", "config")) != 0) {
		s_unlink(s, ".config.tmp");
		return e == -EEXIST ? ferry_error(FERRY_E_EXISTS,
						  "%s is already a ferry repository",
						  s->shown)
				    : smb_err(s, -e, "write", "config");
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

/* One "key=value" line of a credentials file into S. */
static void cred_line(struct smb *s, char *line, int *have_pass)
{
	char *eq = strchr(line, '='), *k = line, *v;
	size_t n;

	if (!eq)
		return;
	*eq = 0;
	v = eq + 1;
	while (*k == ' ' || *k == '\t')
		k++;
	for (n = strlen(k); n && (k[n - 1] == ' ' || k[n - 1] == '\t'); n--)
		k[n - 1] = 0;
	n = strlen(v);
	while (n && (v[n - 1] == '\n' || v[n - 1] == '\r'))
		v[--n] = 0;
	if (!strcmp(k, "username") || !strcmp(k, "user")) {
		if (!s->user[0])
			snprintf(s->user, sizeof(s->user), "%s", v);
	} else if (!strcmp(k, "password") || !strcmp(k, "pass")) {
		snprintf(s->pass, sizeof(s->pass), "%s", v);
		*have_pass = 1;
	} else if (!strcmp(k, "domain") || !strcmp(k, "workgroup")) {
		snprintf(s->domain, sizeof(s->domain), "%s", v);
	}
}

static int load_credentials(struct smb *s)
{
	const char *file = ferry_backend_opt("smb-credentials");
	const char *env;
	int have_pass = 0;

	if (file && *file) {
		char line[1024];
		FILE *f = fopen(file, "re");

		if (!f)
			return ferry_error(FERRY_E_AUTH,
					   "SMB credentials file %s: %s", file,
					   strerror(errno));
		while (fgets(line, sizeof(line), f))
			if (line[0] != '#')
				cred_line(s, line, &have_pass);
		explicit_bzero(line, sizeof(line));
		fclose(f);
	}
	if (!s->user[0] && (env = ferry_backend_opt("smb-user")) && *env)
		snprintf(s->user, sizeof(s->user), "%s", env);
	if (!have_pass && (env = ferry_backend_opt("smb-password")))
		snprintf(s->pass, sizeof(s->pass), "%s", env);
	if (!s->user[0])
		return ferry_error(FERRY_E_AUTH,
				   "%s: no SMB user: give smb://USER@HOST/..., a credentials file (FERRY_SMB_CREDENTIALS=FILE with username= and password= lines), or FERRY_SMB_USER",
				   s->shown);
	return 0;
}

/* smb://[USER@]HOST[:PORT]/SHARE/PATH into S. */
static int parse_url(struct smb *s, const char *url)
{
	const char *p = url + 6, *at, *slash, *colon, *hend;
	char share_path[4096];
	size_t n;

	slash = strchr(p, '/');
	if (!slash)
		goto bad;
	at = memchr(p, '@', (size_t)(slash - p));
	if (at) {
		n = (size_t)(at - p);
		if (memchr(p, ':', n))
			return ferry_error(FERRY_E_INVAL,
					   "%s: a password in the URL is refused; put it in a credentials file (FERRY_SMB_CREDENTIALS) or FERRY_SMB_PASSWORD",
					   "smb:// URL");
		if (n == 0 || n >= sizeof(s->user))
			goto bad;
		memcpy(s->user, p, n);
		s->user[n] = 0;
		p = at + 1;
	}
	hend = slash;
	colon = memchr(p, ':', (size_t)(slash - p));
	if (colon) {
		char *end;
		unsigned long port = strtoul(colon + 1, &end, 10);

		if (end != slash || port == 0 || port > 65535)
			goto bad;
		s->port = (uint16_t)port;
		hend = colon;
	}
	n = (size_t)(hend - p);
	if (n == 0 || n >= sizeof(s->host))
		goto bad;
	memcpy(s->host, p, n);
	s->host[n] = 0;
	snprintf(share_path, sizeof(share_path), "%s", slash + 1);
	n = strlen(share_path);
	while (n && share_path[n - 1] == '/')
		share_path[--n] = 0;
	if (!n || share_path[0] == '/')
		goto bad;
	for (char *q = share_path; *q; q++)
		if (!strncmp(q, "..", 2) && (q == share_path || q[-1] == '/') &&
		    (q[2] == '/' || !q[2]))
			goto bad;
	n += strlen(s->host) + 16;
	if (!(s->base = malloc(n)))
		return FERRY_E_NOMEM;
	snprintf(s->base, n, "smb://%s/%s", s->host, share_path);
	return 0;
bad:
	return ferry_error(FERRY_E_INVAL,
			   "bad SMB repository URL '%s' (want smb://[USER@]HOST[:PORT]/SHARE/PATH)",
			   url);
}

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
	if ((e = parse_url(s, r->path)) != 0 || (e = load_credentials(s)) != 0)
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
	int e = s_stat(S(r), "", &st);

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
		return smb_err(S(r), -e, "reach", "the repository folder");
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
				if (e && e != EEXIST) {
					e = smb_err(s, e, "create folder", url);
					goto fail;
				}
			}
		}
	}
	if (s_stat(s, "config", &st) == 0) {
		e = ferry_error(FERRY_E_EXISTS, "%s is already a ferry repository",
				s->shown);
		goto fail;
	}
	static const char *const dirs[] = { "points", "chunks", "locks", "verify" };
	for (size_t i = 0; i < 4; i++)
		if ((e = s_mkdir(s, dirs[i])) != 0 && e != -EEXIST) {
			e = smb_err(s, -e, "create", dirs[i]);
			goto fail;
		}
	for (int i = 0; i < 256; i++) {
		snprintf(rel, sizeof(rel), "chunks/%02x", i);
		if ((e = s_mkdir(s, rel)) != 0 && e != -EEXIST) {
			e = smb_err(s, -e, "create", rel);
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
