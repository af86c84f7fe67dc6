/* ferry.h - the public contract of libferry: repositories, restore points,
 * backup, restore and verify.  The CLI uses nothing else. */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_VERSION_STRING "0.1.0"
#define FERRY_FORMAT_VERSION 1
#define FERRY_HASH_LEN 32
#define FERRY_ID_LEN 16 /* hex characters of a restore point id */
#define FERRY_NAME_MAX 200
#define FERRY_EXTRA_MAX 1024 /* bytes of key=value lines in a manifest */

/* Error codes: values never change; new ones are appended. */
enum ferry_err {
	FERRY_OK = 0,
	FERRY_E_NOMEM = -1,     /* out of memory */
	FERRY_E_IO = -2,        /* I/O error */
	FERRY_E_NOSPC = -3,     /* no space left on device */
	FERRY_E_NOTREPO = -4,   /* path is not a ferry repository */
	FERRY_E_VERSION = -5,   /* unsupported format version */
	FERRY_E_CORRUPT = -6,   /* stored data failed a check */
	FERRY_E_MISSING = -7,   /* a referenced chunk is missing */
	FERRY_E_NOTFOUND = -8,  /* restore point or file not found */
	FERRY_E_INVAL = -9,     /* invalid argument */
	FERRY_E_EXISTS = -10,   /* already exists */
	FERRY_E_SOURCE = -11,   /* the source cannot be read */
	FERRY_E_AMBIGUOUS = -12,/* a point id prefix matches several */
	FERRY_E_INTERRUPTED = -13, /* stopped by a signal */
	FERRY_E_TARGET = -14,   /* the restore target cannot be written */
	FERRY_E_NET = -15,      /* network: connection failed or lost */
	FERRY_E_AUTH = -16,     /* authentication refused (certificates) */
	FERRY_E_PROTO = -17,    /* the peer broke the mover protocol */
	FERRY_E_TIMEOUT = -18,  /* the peer did not answer in time */
	FERRY_E_IMMUTABLE = -19,/* protected: a hardened repository's restore
				 * point before its expiry */
	FERRY_E_KEY = -20,      /* wrong passphrase, or none for an encrypted repository */
};

const char *ferry_strerror(int err);
/* Detail of the last error in this thread (file, block, peer). */
const char *ferry_last_error(void);

/* Compression codecs, as stored in chunk headers (values never change). */
enum ferry_codec {
	FERRY_CODEC_NONE = 0,
	FERRY_CODEC_ZSTD = 1,
	FERRY_CODEC_LZ4 = 2,
};

struct ferry_init_opts {
	uint32_t block_size; /* 0: default (1 MiB) */
	int codec;           /* enum ferry_codec; -1: default */
	int level;           /* codec level; 0: codec default */
	/* More "key = value" lines for the config (features, backend
	 * settings), each ending in a newline; NULL: none. */
	const char *extra_config;
};

/* Settings for repository backends (s3 endpoint, credential file...),
 * set by the command line before a repository is opened; a backend reads
 * them with ferry_backend_opt(KEY), which falls back to the environment
 * variable FERRY_<KEY> (upper case, '-' as '_').  VALUE NULL unsets. */
int ferry_backend_set(const char *key, const char *value);
const char *ferry_backend_opt(const char *key);

struct ferry_repo_info {
	uint32_t format_version;
	uint32_t block_size;
	int codec;
	int level;
	char repo_id[33];
	uint64_t chunk_count;
	uint64_t stored_bytes;   /* bytes of chunk files */
	uint64_t chunk_raw_bytes;/* uncompressed bytes of those chunks */
	uint64_t point_count;
	uint64_t logical_bytes;  /* sum of disk sizes of all points */
	uint64_t referenced_bytes; /* non-zero logical bytes of all points */
};

struct ferry_repo;

/* Create a new repository at PATH (must not exist or be an empty dir). */
int ferry_repo_init(const char *path, const struct ferry_init_opts *opts);
int ferry_repo_open(const char *path, struct ferry_repo **out);
void ferry_repo_free(struct ferry_repo *repo);
int ferry_repo_get_info(struct ferry_repo *repo, struct ferry_repo_info *info);
/* Block size and codec without scanning chunks. */
uint32_t ferry_repo_block_size(const struct ferry_repo *repo);

/* ---- encryption at rest (seal.c, repo_key.c; docs/encryption.md) ---- */
/* Like ferry_repo_init, and the repository is encrypted: a random master
 * key and id key, wrapped by a key derived from PASS with scrypt. */
int ferry_repo_init_encrypted(const char *path,
			      const struct ferry_init_opts *opts,
			      const char *pass, size_t passlen);
/* 1 when the repository is encrypted (its config says so). */
int ferry_repo_encrypted(const struct ferry_repo *repo);
/* Unwrap the keys with PASS: FERRY_E_KEY when it is wrong.  Until then,
 * reading or writing chunks and manifests fails with FERRY_E_KEY. */
int ferry_repo_unlock(struct ferry_repo *repo, const char *pass,
		      size_t passlen);
/* Rewrap the (unlocked) keys with NEWPASS and rewrite the config
 * atomically; chunks and manifests are untouched. */
int ferry_repo_change_passphrase(struct ferry_repo *repo, const char *newpass,
				 size_t newlen);
/* The key derivation function (docs/encryption.md): KDF "argon2id" (the
 * default when NULL) or "scrypt".  Init with it; or change the passphrase
 * and switch to it (NULL keeps the repository's KDF and cost). */
int ferry_repo_init_encrypted_kdf(const char *path,
				  const struct ferry_init_opts *opts,
				  const char *pass, size_t passlen,
				  const char *kdf);
int ferry_repo_change_passphrase_kdf(struct ferry_repo *repo,
				     const char *newpass, size_t newlen,
				     const char *kdf);
/* "argon2id (3 passes, 64 MiB)" into BUF and the bare name into *NAME
 * (may be NULL), from the config; no passphrase needed. */
int ferry_repo_kdf_describe(const struct ferry_repo *repo, char *buf,
			    size_t cap, const char **name);

struct ferry_point {
	char id[FERRY_ID_LEN + 1];
	char name[FERRY_NAME_MAX + 1];
	char source[1024];
	uint64_t created_ns;  /* unix time, nanoseconds */
	uint64_t disk_size;
	uint32_t block_size;
	uint64_t nblocks;
	uint64_t bytes_read, bytes_zero, bytes_new, bytes_reused, bytes_stored;
	uint64_t duration_us;
	/* "key=value\n" lines: how the point was taken (change-tracking
	 * bitmap and generation, base point, skipped bytes per reason). */
	char extra[FERRY_EXTRA_MAX + 1];
	int corrupt;          /* listing only: manifest failed its checks */
	/* Listing only: the last `ferry verify` that covered this point
	 * (REPO/verify/ID): 0 never verified, 1 passed, -1 found damage. */
	int verified;
	uint64_t verified_ns;   /* when it ran (unix time, nanoseconds) */
	int verified_sample;    /* percent of chunks it read (100: all) */
	/* Listing only, hardened repository (docs/hardened-repository.md):
	 * until when the point cannot be removed (unix ns); 0 otherwise. */
	uint64_t immutable_until_ns;
};

typedef int (*ferry_point_cb)(const struct ferry_point *p, void *arg);
/* Calls CB for each restore point (of NAME if not NULL), oldest first. */
int ferry_points_list(struct ferry_repo *repo, const char *name,
		      ferry_point_cb cb, void *arg);
/* Resolve an id, an id prefix (>= 4 chars), or a NAME (its latest point). */
int ferry_point_resolve(struct ferry_repo *repo, const char *spec,
			struct ferry_point *out);

/* Progress: called from the calling thread, at most a few times a second. */
struct ferry_progress {
	uint64_t done, total; /* bytes of the disk walked */
	double seconds;
};
typedef void (*ferry_progress_cb)(const struct ferry_progress *p, void *arg);

struct ferry_backup_opts {
	const char *name;     /* NULL: base name of the source */
	int threads;          /* 0: number of online CPUs */
	ferry_progress_cb progress;
	void *progress_arg;
	/* Non-fatal warnings (e.g. a fallback to a full read). */
	void (*warn)(const char *msg, void *arg);
	void *warn_arg;

	/* Change tracking (NBD and qcow2: sources, docs/change-tracking.md).
	 * BITMAP: the QEMU dirty bitmap holding the writes since the base
	 * point; only its dirty extents are read when the chain is intact.
	 * CHECKPOINT: the bitmap that records the writes after this point
	 * (NULL: BITMAP itself), which the next backup names as its
	 * BITMAP. */
	const char *bitmap;
	const char *checkpoint;

	/* Unused blocks (docs/vm-sources.md).  Zero values are the defaults:
	 * swap partitions (all but their header page) and free ext2/3/4
	 * blocks are not read and restore as zeros. */
	int keep_swap;           /* 1: read swap partitions too */
	int keep_free;           /* 1: read free file-system blocks too */
	/* Guest files and directories ("[PART:]/path") whose data blocks are
	 * not kept (they restore as zeros; the file system stays valid). */
	const char *const *exclude;
	size_t exclude_count;

	/* Guest interaction (docs/vm-sources.md): sh -c commands run as
	 * pre-script, [freeze], snapshot-script, [thaw], read, [thaw],
	 * post-script; the post-script always runs once the pre-script ran. */
	const char *pre_script;
	const char *snapshot_script;
	const char *post_script;
	int script_timeout;      /* seconds per script; 0: 600 */
	const char *quiesce;     /* "qga:SOCKET": freeze through qemu-guest-agent */
	int quiesce_timeout;     /* seconds per agent command; 0: 30 */
};

struct ferry_backup_result {
	struct ferry_point point;
	uint64_t bytes_total, bytes_read, bytes_zero, bytes_new, bytes_reused,
		bytes_stored;
	uint64_t blocks_total, blocks_zero, blocks_new, blocks_reused;
	uint64_t bytes_unchanged; /* not read: change tracking said unchanged */
	uint64_t bytes_skipped_swap, bytes_skipped_free, bytes_skipped_excluded;
	char base_id[FERRY_ID_LEN + 1]; /* point unchanged blocks came from */
	double seconds;
};

int ferry_backup(struct ferry_repo *repo, const char *source,
		 const struct ferry_backup_opts *opts,
		 struct ferry_backup_result *res);

/* A bad block found by restore or verify. */
struct ferry_bad_block {
	const char *point_id;   /* NULL when checking the chunk store alone */
	uint64_t block;         /* block index in the point, or UINT64_MAX */
	uint64_t offset;        /* byte offset in the disk */
	const uint8_t *hash;    /* chunk id */
	int err;                /* FERRY_E_CORRUPT or FERRY_E_MISSING */
	const char *detail;
};
typedef void (*ferry_bad_cb)(const struct ferry_bad_block *b, void *arg);

struct ferry_restore_opts {
	int threads;
	ferry_progress_cb progress;
	void *progress_arg;
	ferry_bad_cb bad;
	void *bad_arg;
	/* Quick rollback: TARGET exists (a file or device holding an older or
	 * newer state of the disk); each of its blocks is read and hashed,
	 * and only blocks that differ from POINT are written. */
	int changed_only;
	/* Quick rollback with change tracking (restore_nbd.c): TARGET is
	 * qcow2:PATH or an NBD URL exporting the QEMU dirty bitmap BITMAP,
	 * which has recorded every write since POINT was taken (POINT names
	 * it as its checkpoint).  Only its dirty extents are read; if it
	 * cannot be trusted, WARN says why and every block is compared. */
	const char *bitmap;
	void (*warn)(const char *msg, void *arg);
	void *warn_arg;
};

struct ferry_restore_result {
	uint64_t bytes_total, bytes_written, bytes_zero;
	uint64_t bad_blocks;
	double seconds;
	/* changed_only: bytes of the target read and found equal. */
	uint64_t bytes_compared, bytes_unchanged;
	uint64_t blocks_written;
	/* bitmap: bytes not read because the bitmap says they are clean. */
	uint64_t bytes_clean;
	int bitmap_used;
};

/* Restore POINT (any form ferry_point_resolve takes) to TARGET: a file,
 * created sparse, or a block device (opts->changed_only: an existing one,
 * written only where it differs).  Bad blocks are reported through
 * opts->bad and never written; the call then fails with FERRY_E_CORRUPT or
 * FERRY_E_MISSING. */
int ferry_restore(struct ferry_repo *repo, const char *point,
		  const char *target, const struct ferry_restore_opts *opts,
		  struct ferry_restore_result *res);

struct ferry_verify_opts {
	int threads;
	/* Read only this percent of the chunks (1-100; 0: all), picked at
	 * random each run.  Manifests and the presence of every referenced
	 * chunk are always checked in full. */
	int sample;
	ferry_progress_cb progress;
	void *progress_arg;
	ferry_bad_cb bad;
	void *bad_arg;
};

struct ferry_verify_result {
	uint64_t points_checked, points_bad;
	uint64_t chunks_checked, chunks_bad, chunks_missing;
	uint64_t bytes_checked;
	double seconds;
};

/* Verify every chunk of POINT, or of the whole repository when NULL.
 * The outcome for each point checked is recorded in the repository
 * (REPO/verify/ID; ferry_points_list reports it); a repository that
 * cannot be written is still verified. */
int ferry_verify(struct ferry_repo *repo, const char *point,
		 const struct ferry_verify_opts *opts,
		 struct ferry_verify_result *res);

/* ---- retention and garbage collection (docs/gc.md) ---------------- */

/* Keep rules, as restic's `forget`: the newest KEEP_LAST points, and the
 * newest point of each of the newest KEEP_DAILY days, KEEP_WEEKLY ISO
 * weeks, KEEP_MONTHLY months and KEEP_YEARLY years that have points (per
 * name, in local time).  A point kept by no rule is forgotten: its
 * manifest is removed; its chunks stay until `ferry gc`.  Points whose
 * manifest is damaged are never removed. */
struct ferry_forget_opts {
	const char *name;        /* NULL: every name, each on its own */
	int keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly,
		keep_yearly;
	int dry_run;             /* decide and report, remove nothing */
	/* Instead of keep rules: remove only the points whose manifest
	 * fails its checks (each reported with keep 0; a hardened
	 * repository's unexpired ones are kept, reason "immutable until"). */
	int damaged;
};

/* One decision: called for every point, per name oldest first. */
struct ferry_forget_item {
	const struct ferry_point *point;
	int keep;
	const char *reasons;     /* "last,daily,monthly"; "" when forgotten */
};
typedef int (*ferry_forget_cb)(const struct ferry_forget_item *it, void *arg);

struct ferry_forget_result {
	uint64_t kept, removed, damaged_kept;
	/* of kept: points forget would remove that the store keeps (an
	 * Object Lock retention not yet expired) */
	uint64_t locked;
	/* Hardened repository: points the policy drops that stay until
	 * their expiry (reason "immutable until ..."). */
	uint64_t immutable_kept;
};

int ferry_forget(struct ferry_repo *repo, const struct ferry_forget_opts *opts,
		 ferry_forget_cb cb, void *arg, struct ferry_forget_result *res);

struct ferry_gc_opts {
	int dry_run;             /* count what would go; take no lock */
	ferry_progress_cb progress;
	void *progress_arg;
	/* Seconds to wait for running backups to release the repository
	 * lock before giving up (FERRY_E_TIMEOUT, nothing removed); 0: wait
	 * as long as it takes. */
	double lock_timeout;
};

struct ferry_gc_result {
	uint64_t points;          /* manifests marked */
	uint64_t points_late;     /* of which committed during the mark phase */
	uint64_t references;      /* data entries read from them */
	uint64_t chunks, chunk_bytes; /* in the store before the sweep */
	uint64_t chunks_removed, bytes_removed;
	uint64_t stale_files, stale_bytes; /* temporaries of dead processes */
	uint64_t filter_bytes;    /* memory of the mark structure */
	double seconds, wait_seconds; /* wait: for running backups to end */
	/* unreferenced chunks the store keeps (Object Lock retention not
	 * yet expired): not removed, not counted in chunks_removed */
	uint64_t chunks_locked, bytes_locked;
	/* Hardened repository: points still protected (their chunks are
	 * kept by the mark), and the earliest expiry among them (unix ns;
	 * 0 when none).  Chunks gc removes have their immutable attribute
	 * lifted first. */
	uint64_t points_protected, protected_until_ns;
	/* Files of unexpired points (manifests, expiry records, chunks they
	 * reference) that lacked the immutable attribute and got it (a
	 * process killed between a commit and setting it). */
	uint64_t files_protected;
	/* Parked mover sessions (REPO/sessions/) whose chunks were marked
	 * (their data entries in session_refs), and session files whose
	 * header failed its checks: skipped (a mover refuses to resume
	 * them, so their chunks are not needed). */
	uint64_t sessions, session_refs, sessions_damaged;
	/* Unmarked chunks kept because they changed after the earliest
	 * parked session began (acknowledged to its source by PUT or HAVE
	 * beyond the session file's entries). */
	uint64_t chunks_session;
};

/* Mark every chunk a committed manifest references, take the repository
 * lock exclusively (waiting for running backups), mark manifests
 * committed meanwhile, and remove every chunk left unmarked. */
int ferry_gc(struct ferry_repo *repo, const struct ferry_gc_opts *opts,
	     struct ferry_gc_result *res);
/* ---- random access to a restore point (image.c) ---------------------
 * For instant recovery and file-level restore: blocks are fetched,
 * checked against their SHA-256 and decoded on demand, through a small
 * bounded cache.  Every call is thread-safe. */
struct ferry_image;
struct ferry_image_opts {
	uint32_t cache_blocks; /* decoded blocks kept; 0: 16 */
	ferry_bad_cb bad;      /* a block failed its check (each time) */
	void *bad_arg;
};
int ferry_image_open(struct ferry_repo *repo, const char *point,
		     const struct ferry_image_opts *opts,
		     struct ferry_image **out);
/* LEN bytes at OFF (inside the disk).  A damaged block fails the call
 * with FERRY_E_CORRUPT or FERRY_E_MISSING; nothing unchecked is copied. */
int ferry_image_pread(struct ferry_image *img, void *buf, size_t len,
		      uint64_t off);
/* The manifest entry of block INDEX: 0 zero block, 1 data (HASH set). */
int ferry_image_entry(struct ferry_image *img, uint64_t index,
		      uint8_t hash[FERRY_HASH_LEN]);
const struct ferry_point *ferry_image_point(const struct ferry_image *img);
void ferry_image_free(struct ferry_image *img);

/* ---- instant recovery: an NBD server over a restore point (nbd_serve.c) */
struct ferry_serve_opts {
	const char *listen;   /* "unix:PATH" or "HOST:PORT" */
	int writable;         /* 1: writes go to an overlay file */
	const char *overlay;  /* overlay path; NULL: an unlinked temp file */
	uint32_t cache_mib;   /* decoded-block cache; 0: 64 MiB */
	int threads;          /* request threads per client; 0: 4 */
	int max_clients;      /* 0: 64 */
	/* Log lines (client connect, bad blocks); NULL: silent. */
	void (*log)(const char *msg, void *arg);
	void *log_arg;
	/* Called once the socket listens (e.g. print "ready"). */
	void (*ready)(const char *where, const struct ferry_point *p, void *arg);
	void *ready_arg;
};
/* Serve POINT until ferry_cancel(); the repository is only read. */
int ferry_serve(struct ferry_repo *repo, const char *point,
		const struct ferry_serve_opts *opts);

/* ---- file-level restore from ext2/3/4 inside a point (files_ext.c) --- */
struct ferry_files;
/* PARTNO: partition number as Linux names it, 0 the whole disk, -1 the
 * first partition (or the whole disk) holding an ext file system. */
int ferry_files_open(struct ferry_repo *repo, const char *point, int partno,
		     struct ferry_files **out);
void ferry_files_free(struct ferry_files *f);
struct ferry_file_info {
	const char *name;    /* entry name as stored (may hold any byte) */
	uint32_t mode, uid, gid, nlink;
	uint64_t size;
	int64_t atime, mtime, ctime; /* seconds */
	const char *link;    /* symlink target, else NULL */
};
typedef int (*ferry_file_cb)(const struct ferry_file_info *fi, void *arg);
/* The entries of directory PATH (or PATH itself when not a directory). */
int ferry_files_list(struct ferry_files *f, const char *path, ferry_file_cb cb,
		     void *arg);
struct ferry_files_result {
	uint64_t files, dirs, symlinks, bytes, skipped;
};
/* Copy PATH (file, symlink, or directory tree) into the directory DEST
 * under its base name, keeping modes, owners (when allowed), times,
 * symlinks and holes.  Nothing is ever written outside DEST: names with
 * '/' or that are "." or "..", and anything that would pass through a
 * symlink, are skipped and reported through WARN. */
int ferry_files_get(struct ferry_files *f, const char *path, const char *dest,
		    void (*warn)(const char *msg, void *arg), void *warn_arg,
		    struct ferry_files_result *res);
/* ---- ferry mount: a restore point as read-only image files (FUSE,
 * fuse_mount.c).  One file for the whole disk and one per partition of
 * its GPT or MBR table; reads are fetched and checked on demand through
 * the random-access image; a damaged block is EIO on its range. */
struct ferry_mount_file {
	const char *name;     /* "vm1.img", "vm1-part2.img" */
	int partno;           /* 0: the whole disk */
	uint64_t start, size; /* bytes of the disk */
};
struct ferry_mount_info {
	const char *dir;
	const struct ferry_point *point;
	const char *table;    /* "GPT", "MBR", "none", or "damaged" */
	const struct ferry_mount_file *files;
	size_t nfiles;
	long pid;             /* the process serving the mount */
};
struct ferry_mount_opts {
	uint32_t cache_mib;   /* decoded-block cache; 0: 64 MiB */
	int foreground;       /* 0: serve from a child once mounted */
	int allow_other;      /* other users may read (FUSE allow_other) */
	int threads;          /* FUSE worker threads kept idle; 0: 8 */
	/* Log lines (bad blocks, failed reads); NULL: silent. */
	void (*log)(const char *msg, void *arg);
	void *log_arg;
	/* Called once mounted (in the parent when going to the background). */
	void (*ready)(const struct ferry_mount_info *mi, void *arg);
	void *ready_arg;
};
/* Mount POINT read-only on DIR and serve it until unmounted
 * (`fusermount3 -u DIR`, umount) or SIGINT/SIGTERM/SIGHUP (handled while
 * their disposition is the default one; the mount is then removed).
 * Returns 0 once unmounted, < 0 on error, and 1 in the parent when a
 * child took over (background): the caller must then leave at once with
 * _exit(), without closing the repository the child now uses. */
int ferry_mount(struct ferry_repo *repo, const char *point, const char *dir,
		const struct ferry_mount_opts *opts);
/* ---- remote repositories and the mover daemon (docs/protocol.md) ---- */

/* How to reach a repository served by `ferry mover`: ferry://HOST:PORT/NAME
 * (ferry_repo_open takes such a URL too, with default options). */
struct ferry_remote_opts {
	const char *cert, *key, *ca; /* PEM files: mutual TLS 1.3 */
	int insecure;         /* plain TCP; refused unless HOST is loopback */
	uint64_t limit_rate;  /* bytes per second sent; 0: unlimited */
	int streams;          /* parallel connections of a backup; 0: 1 */
	int retry_seconds;    /* keep reconnecting this long; 0: 600 */
	int timeout_seconds;  /* a peer silent this long is gone; 0: 60 */
};
int ferry_repo_open_remote(const char *url, const struct ferry_remote_opts *o,
			   struct ferry_repo **out);
int ferry_is_remote_url(const char *path);

/* Network counters of a remote repository handle (all connections). */
struct ferry_net_stats {
	uint64_t bytes_sent, bytes_received; /* protocol bytes, before TLS */
	uint64_t connects;       /* successful connections, first one included */
	uint64_t resumes;        /* sessions resumed after a broken link */
	uint64_t blocks_resumed_at; /* block the last resume continued from */
	uint64_t chunks_resent;  /* chunks sent again after a broken link */
};
/* FERRY_E_INVAL for a local repository. */
int ferry_repo_net_stats(struct ferry_repo *repo, struct ferry_net_stats *st);

/* The target-side mover: serves repositories to authenticated source
 * movers until ferry_cancel() (SIGTERM), then parks its sessions. */
struct ferry_mover_opts {
	const char *listen;        /* HOST:PORT (PORT 0: any free port) */
	const char *const *repos;  /* PATH or NAME=PATH; NAME defaults to
				    * PATH's base name */
	int nrepos;
	const char *cert, *key, *ca;
	const char *const *allow;  /* client certificate names allowed;
				    * none: any the CA signed */
	int nallow;
	int insecure;              /* plain TCP, loopback only */
	int max_conns;             /* 0: 64 */
	int handshake_timeout;     /* seconds; 0: 10 */
	int idle_timeout;          /* seconds; 0: 120 */
	int session_ttl;           /* seconds a parked session is kept; 0: 7 days */
	int verify_chunks;         /* decode and hash every chunk received */
	uint64_t limit_rate;       /* bytes per second sent per connection */
	/* One line per event (session id first); NULL: stderr. */
	void (*log)(const char *line, void *arg);
	void *log_arg;
	/* Called once listening, with the bound HOST:PORT. */
	void (*ready)(const char *addr, void *arg);
	void *ready_arg;
	/* A local directory for session files of repositories that are not
	 * local directories (smb://, s3://): STATE_DIR/NAME/sessions.
	 * NULL: such repositories are refused. */
	const char *state_dir;
};
int ferry_mover_run(const struct ferry_mover_opts *o);

/* Certificates for movers: a small CA, and certificates it signs (EC
 * P-256, SHA-256).  NAME becomes the CN and a DNS or IP subjectAltName. */
int ferry_cert_make_ca(const char *cert_path, const char *key_path,
		       const char *name, int days);
int ferry_cert_issue(const char *ca_cert, const char *ca_key, const char *name,
		     int days, const char *cert_path, const char *key_path);

/* ---- backup copy (copy.c) ---- */
/* Copy restore points from one repository to another of any backend
 * (local, smb://, ferry:// through a mover): only points the target lacks
 * (a point keeps its id), only chunks the target lacks, in their stored
 * form; every chunk read is checked (checksum, SHA-256); each point is
 * committed after its chunks are durable on the target, then its
 * manifest is read back and compared.  Both repositories must have the
 * same block size.  A killed copy run again goes on where it stopped. */
struct ferry_copy_opts {
	const char *name;          /* only this name's points; NULL: all */
	const char *const *points; /* or these (ids, prefixes, names) */
	int npoints;
	int threads;               /* 0: default */
	ferry_progress_cb progress;/* bytes of disks walked, all points */
	void *progress_arg;
	/* After each point: COPIED 1, or 0 when the target had it. */
	void (*point_done)(const struct ferry_point *p, int copied, void *arg);
	void *point_done_arg;
};
struct ferry_copy_result {
	uint64_t points_copied, points_present;
	uint64_t chunks_sent;      /* chunks the target did not have */
	uint64_t chunks_present;   /* chunks it had already */
	uint64_t bytes_sent;       /* their stored (compressed) bytes */
	uint64_t bytes_raw_sent;   /* their uncompressed bytes */
	double seconds;
	/* Copy between different keys: source chunks read and re-encoded
	 * (unchanged blocks of a point whose base is on both sides are
	 * not read). */
	uint64_t chunks_read;
};
int ferry_copy(struct ferry_repo *from, struct ferry_repo *to,
	       const struct ferry_copy_opts *o, struct ferry_copy_result *res);

/* Ask running operations to stop cleanly (async-signal-safe). */
void ferry_cancel(void);

/* Helpers shared by the CLI. */
void ferry_hash_hex(const uint8_t hash[FERRY_HASH_LEN], char out[65]);
const char *ferry_codec_name(int codec);
/* Parse "zstd", "zstd:5", "lz4", "none". */
int ferry_codec_parse(const char *s, int *codec, int *level);
/* Parse sizes such as 1M, 256K, 4MiB, 1048576. */
int ferry_size_parse(const char *s, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif
