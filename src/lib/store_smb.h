/* store_smb.h - what the parts of the SMB backend share (store_smb.c:
 * connections, file operations, chunks, manifests; smb_locks.c: the
 * repository lock; smb_conf.c: the URL and credentials). */
#ifndef FERRY_STORE_SMB_H
#define FERRY_STORE_SMB_H

#include <libsmbclient.h>
#include <sys/stat.h>
#include <time.h>

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

extern pthread_mutex_t smb_global;

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

static inline struct smb *S(struct ferry_repo *r)
{
	return r->state;
}


struct sdirent {
	char name[256];
	uint64_t size;
	time_t mtime;
};

/* Connections: a pooled context; E is the errno of its last call. */
SMBCCTX *smbfs_get_ctx(struct smb *s);
void smbfs_put_ctx(struct smb *s, SMBCCTX *c, int e);
void smbfs_url_of(struct smb *s, const char *rel, char *out, size_t cap);
/* A ferry error for errno E of an SMB call on WHAT NAME. */
int smbfs_err(struct smb *s, int e, const char *what, const char *name);
/* File operations on paths relative to the repository: 0 or -errno. */
int smbfs_stat(struct smb *s, const char *rel, struct stat *st);
int smbfs_unlink(struct smb *s, const char *rel);
int smbfs_mkdir(struct smb *s, const char *rel);
int smbfs_rename(struct smb *s, const char *from, const char *to);
int smbfs_write_new(struct smb *s, const char *rel, const void *data,
		    size_t len, int lfd);
int smbfs_read(struct smb *s, const char *rel, void *buf, size_t cap,
	       size_t *len, int lfd, int head_only);
int smbfs_list(struct smb *s, const char *rel, struct sdirent **out,
	       size_t *n);
/* Is a temporary or lock named "HOST-PID-..." (REST) left by a process
 * that is gone, or older than MAX_AGE seconds from another host? */
int smbfs_owner_gone(struct smb *s, const char *rest, time_t mtime,
		     time_t max_age);

/* smb_locks.c */
int smb_lock_shared(struct ferry_repo *r);
int smb_lock_exclusive(struct ferry_repo *r);
/* The same, giving up after TIMEOUT seconds (<= 0: waits on). */
int smb_lock_exclusive_wait(struct ferry_repo *r, double timeout);
void smb_unlock(struct ferry_repo *r);

/* smb_conf.c */
int smb_parse_url(struct smb *s, const char *url);
int smb_load_credentials(struct smb *s);

#endif
