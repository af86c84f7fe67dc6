/* internal.h - the types that join libferry's stages: the chunk codec, the
 * repository store vtable, the manifest stream, the source vtable, the
 * target-side pipe vtable, and the worker queue. */
#ifndef FERRY_INTERNAL_H
#define FERRY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/common.h"

#define FERRY_BLOCK_MIN (64u << 10)
#define FERRY_BLOCK_MAX (16u << 20)
#define FERRY_BLOCK_DEFAULT (1u << 20)
/* zstd level 2 costs about what level 1 does (same instruction count on
 * disk images, bench/README.md) and stores 2-3 % less; level 3 costs 60 %
 * more CPU for 1 % less. */
#define FERRY_ZSTD_DEFAULT_LEVEL 2

/* ---- chunks (chunk.c) ------------------------------------------------ */

#define FERRY_CHUNK_MAGIC "FCH1"
#define FERRY_CHUNK_HDR 24

struct ferry_codec_ctx;
struct ferry_codec_ctx *ferry_codec_ctx_new(int codec, int level);
void ferry_codec_ctx_free(struct ferry_codec_ctx *c);
size_t ferry_chunk_bound(size_t len);
/* Encode LEN plaintext bytes into the stored chunk form (header + payload,
 * compressed unless compression does not pay). */
int ferry_chunk_encode(struct ferry_codec_ctx *c, const void *in, size_t len,
		       uint8_t *out, size_t cap, size_t *outlen);
/* Check and decode a stored chunk; when EXPECT is set, the plaintext's
 * SHA-256 must equal it.  Errors say what failed in ferry_last_error(). */
int ferry_chunk_decode(struct ferry_codec_ctx *c, const uint8_t *in,
		       size_t len, uint8_t *out, size_t cap, size_t *outlen,
		       const uint8_t expect[FERRY_HASH_LEN]);
/* Check the stored form without decoding it: the header, then the
 * payload's checksum (what a mover checks of a chunk it receives). */
int ferry_chunk_check(const uint8_t *in, size_t len, uint32_t *raw_len);
/* Parse only the header: raw length and codec, checking its checksum. */
int ferry_chunk_header(const uint8_t *in, size_t len, uint32_t *raw_len,
		       uint32_t *stored_len, int *codec);
void ferry_sha256(const void *buf, size_t len, uint8_t out[FERRY_HASH_LEN]);
/* Encryption at rest (seal.h): a codec context for repository R that
 * seals and keys ids when R is encrypted (NULL with FERRY_E_KEY when R is
 * encrypted and locked); a block's id, SHA-256 or HMAC-SHA-256 with the id
 * key; whether a stored chunk is the sealed form. */
struct ferry_repo;
struct ferry_keys;
struct ferry_codec_ctx *ferry_codec_ctx_for(const struct ferry_repo *r,
					    int codec, int level);
int ferry_codec_ctx_set_keys(struct ferry_codec_ctx *c,
			     const struct ferry_keys *k);
int ferry_chunk_id(struct ferry_codec_ctx *c, const void *buf, size_t len,
		   uint8_t out[FERRY_HASH_LEN]);
int ferry_chunk_is_sealed(const uint8_t *in, size_t len);
/* A block's id in repository R without a codec context (one-shot). */
int ferry_repo_block_id(const struct ferry_repo *r, const void *buf,
			size_t len, uint8_t out[FERRY_HASH_LEN]);
/* The largest stored chunk header (sealed form). */
#define FERRY_CHUNK_HDR_MAX 36
/* FERRY_E_KEY unless R is unencrypted or unlocked. */
int ferry_repo_need_key(const struct ferry_repo *r);
/* The lines a source needs to open R's key ("features = encryption" and
 * the key lines; empty for a plain repository), for the mover's KEYS;
 * and the client's side: take them as R's config (R is then encrypted). */
int ferry_repo_key_text(const struct ferry_repo *r, char *buf, size_t cap,
			size_t *len);
int ferry_repo_key_text_take(struct ferry_repo *r, const char *text,
			     size_t len);
/* Check the framing of a sealed manifest file of LEN bytes whose first
 * bytes are HEAD (at least 32) for point ID of NBLOCKS blocks, without
 * the key (what a mover can check). */
int ferry_sealed_manifest_check(const uint8_t *head, uint64_t len,
				const char *id, uint64_t nblocks);

/* ---- the repository store (repo.c, store_local.c) -------------------- */

struct ferry_store_ops;
struct ferry_target;

struct ferry_repo {
	const struct ferry_store_ops *ops;
	void *state;
	char *path;
	uint32_t format_version;
	uint32_t block_size;
	int codec, level;
	char repo_id[33];
	/* The config file as read (NUL-terminated), for keys that backends
	 * and features add: see ferry_repo_config(). */
	char *config_text;
	/* Encryption at rest (seal.h): set when the config names the
	 * feature; KEYS once ferry_repo_unlock() opened the wrapped key. */
	int encrypted;
	struct ferry_keys *keys;
	/* HMAC-SHA-256 of KEYS->id prepared once (seal.h), for
	 * ferry_repo_block_id(); made with KEYS. */
	struct ferry_hmac *id_mac;
	/* Feature "delta" (delta.c): kind-2 manifest entries are valid. */
	int delta;
};

typedef int (*ferry_chunk_list_cb)(const uint8_t hash[FERRY_HASH_LEN],
				   uint64_t stored_size, void *arg);
typedef int (*ferry_id_list_cb)(const char *id, void *arg);

/* A repository backend.  Chunk calls are thread-safe. */
struct ferry_store_ops {
	const char *name;
	/* 1 when the chunk is stored, 0 when not, < 0 on error. */
	int (*has_chunk)(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN]);
	/* Store atomically; 1 when it was already there. */
	int (*put_chunk)(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN],
			 const void *data, size_t len);
	/* Read the stored form into BUF (at most CAP bytes). */
	int (*get_chunk)(struct ferry_repo *r, const uint8_t h[FERRY_HASH_LEN],
			 void *buf, size_t cap, size_t *len);
	/* Read the first N bytes of the stored form (the header). */
	int (*get_chunk_head)(struct ferry_repo *r,
			      const uint8_t h[FERRY_HASH_LEN], void *buf,
			      size_t n);
	int (*list_chunks)(struct ferry_repo *r, ferry_chunk_list_cb cb,
			   void *arg);
	/* Make every chunk put so far durable. */
	int (*sync_chunks)(struct ferry_repo *r);
	/* Manifests: written through a temporary, committed atomically. */
	int (*point_create)(struct ferry_repo *r, const char *id, int *fd,
			    char **tmp);
	int (*point_commit)(struct ferry_repo *r, const char *id, int fd,
			    const char *tmp);
	void (*point_abort)(struct ferry_repo *r, int fd, const char *tmp);
	int (*point_open)(struct ferry_repo *r, const char *id, int *fd);
	int (*point_list)(struct ferry_repo *r, ferry_id_list_cb cb, void *arg);
	/* Optional: a point's header and statistics, its manifest checked
	 * where it is stored (FERRY_E_CORRUPT when it fails); saves a remote
	 * listing from fetching every manifest. */
	int (*point_stat)(struct ferry_repo *r, const char *id,
			  struct ferry_point *p);
	/* Optional: a target-side mover of the backend's own (remote). */
	int (*target_new)(struct ferry_repo *r, struct ferry_target **out);
	/* Optional: repository totals computed where the data is (remote). */
	int (*get_info)(struct ferry_repo *r, struct ferry_repo_info *info);
	/* Optional: network counters (remote). */
	int (*net_stats)(struct ferry_repo *r, struct ferry_net_stats *st);
	/* Shared lock for sessions that add data (held until close). */
	int (*lock_shared)(struct ferry_repo *r);
	/* Exclusive lock for removing chunks: waits until no session that
	 * adds data holds the shared lock; released by unlock() or close. */
	int (*lock_exclusive)(struct ferry_repo *r);
	void (*unlock)(struct ferry_repo *r);
	/* Remove a chunk (only under the exclusive lock); 0 when it was
	 * already gone. */
	int (*delete_chunk)(struct ferry_repo *r,
			    const uint8_t h[FERRY_HASH_LEN]);
	/* Remove a committed manifest durably (its directory is synced);
	 * 0 when it was already gone. */
	int (*delete_point)(struct ferry_repo *r, const char *id);
	/* Remove temporaries left by processes that are gone; counts them. */
	int (*remove_stale)(struct ferry_repo *r, uint64_t *files,
			    uint64_t *bytes);
	/* Small per-point records (KIND "verify"): written atomically, read
	 * back (-> FERRY_E_NOTFOUND when absent), removed. */
	int (*record_put)(struct ferry_repo *r, const char *kind,
			  const char *id, const void *data, size_t len);
	int (*record_get)(struct ferry_repo *r, const char *kind,
			  const char *id, void *buf, size_t cap, size_t *len);
	int (*record_delete)(struct ferry_repo *r, const char *kind,
			     const char *id);
	/* The repository's config file: read whole (FERRY_E_NOTREPO when
	 * there is none), and written atomically (by init only). */
	int (*config_get)(struct ferry_repo *r, char *buf, size_t cap,
			  size_t *len);
	int (*config_put)(struct ferry_repo *r, const char *text, size_t len);
	/* Optional: called once the config is parsed (block size known). */
	int (*ready)(struct ferry_repo *r);
	void (*close)(struct ferry_repo *r);
	/* Optional: lock_exclusive giving up after TIMEOUT seconds
	 * (FERRY_E_TIMEOUT, saying so); TIMEOUT <= 0 waits as long as it
	 * takes. */
	int (*lock_exclusive_wait)(struct ferry_repo *r, double timeout);
	/* Optional, hardened repositories (gc's maintenance): give point
	 * ID's manifest and expiry record, or chunk H, the immutable
	 * attribute when they lack it; 1 when it was set, 0 when it was
	 * there already. */
	int (*protect_point)(struct ferry_repo *r, const char *id);
	int (*protect_chunk)(struct ferry_repo *r,
			     const uint8_t h[FERRY_HASH_LEN]);
};

/* ---- backends (chosen by URL prefix in repo.c) ----------------------- */

/* A repository backend.  R->path holds the URL (or local path) when these
 * run; both set R->ops and R->state.  Backends read their own settings
 * (endpoints, credential files) with ferry_backend_opt(). */
struct ferry_backend {
	const char *prefix;	/* "s3://", "smb://"; NULL: a local path */
	/* Make an empty repository (no config yet) and attach to it;
	 * FERRY_E_EXISTS when a repository is there already. */
	int (*create)(struct ferry_repo *r);
	/* Attach to an existing repository (its config is read next). */
	int (*attach)(struct ferry_repo *r);
};

extern const struct ferry_backend ferry_backend_local;
/* smb://[USER@]HOST[:PORT]/SHARE/PATH through libsmbclient (store_smb.c). */
extern const struct ferry_backend ferry_backend_smb;
extern const struct ferry_store_ops ferry_store_smb_ops;
/* The backend for PATH (never NULL: local when no prefix matches). */
const struct ferry_backend *ferry_backend_for(const char *path);
/* The value of a config key the repository was created with (init's
 * extra lines), copied into BUF; NULL when absent. */
const char *ferry_repo_config(const struct ferry_repo *r, const char *key,
			      char *buf, size_t cap);

extern const struct ferry_store_ops ferry_store_local_ops;
extern const struct ferry_store_ops ferry_store_remote_ops;

int ferry_point_id_valid(const char *id);

/* ---- object storage (store_s3.c) ------------------------------------- */

extern const struct ferry_backend ferry_backend_s3;
extern const struct ferry_store_ops ferry_store_s3_ops;
/* What delete_chunk/delete_point return for an object kept by the store
 * (an Object Lock retention that has not expired): nothing was removed. */
#define FERRY_STORE_KEPT 2

/* ---- retention (retention.c) ----------------------------------------- */

/* The policy applied to one name's points V[0..N) sorted oldest first:
 * KEEP[i] is set to 1 when point i stays, and REASONS[i] (at least
 * FERRY_REASON_MAX bytes) says why ("last", "daily", ...).  Times are
 * bucketed in local time, as the operator reads them. */
#define FERRY_REASON_MAX 96
void ferry_retention_apply(const struct ferry_point *v, size_t n,
			   const struct ferry_forget_opts *o, int *keep,
			   char (*reasons)[FERRY_REASON_MAX]);
int ferry_name_valid(const char *name);

/* ---- manifests (manifest.c) ------------------------------------------ */

enum {
	FERRY_ENTRY_ZERO = 0,
	FERRY_ENTRY_DATA = 1,
	/* 2 is reserved for a block described by sub-block deltas. */
};
#define FERRY_ENTRY_LEN 33
#define FERRY_MANIFEST_MAGIC "FMAN"
#define FERRY_MANIFEST_END "FEND"
#define FERRY_MANIFEST_FOOTER (4 + 6 * 8 + FERRY_HASH_LEN)
#define FERRY_MANIFEST_HEADER_MAX 4096

/* Encode/decode the header; parse checks every field against limits. */
int ferry_manifest_header_encode(const struct ferry_point *p, uint8_t *out,
				 size_t cap, size_t *len);
int ferry_manifest_header_parse(const uint8_t *buf, size_t len,
				struct ferry_point *p, size_t *header_len);
/* Parse and check a whole manifest held in memory (the fuzz target). */
int ferry_manifest_parse_buffer(const uint8_t *buf, size_t len,
				struct ferry_point *p);
/* The statistics of a manifest's footer (its last FERRY_MANIFEST_FOOTER
 * bytes; the checksum in it is not checked here). */
int ferry_manifest_footer_parse(const uint8_t *buf, struct ferry_point *p);

struct ferry_mwriter;
int ferry_mwriter_begin(struct ferry_repo *r, const struct ferry_point *p,
			struct ferry_mwriter **out);
int ferry_mwriter_add(struct ferry_mwriter *w, int kind,
		      const uint8_t hash[FERRY_HASH_LEN]);
/* Writes the footer with the stats in P, syncs chunks, commits. */
int ferry_mwriter_commit(struct ferry_mwriter *w, const struct ferry_point *p);
void ferry_mwriter_free(struct ferry_mwriter *w); /* aborts if uncommitted */
/* The same manifest written to the caller's FD (a remote source builds
 * an encrypted repository's sealed manifest this way); commit then only
 * finishes the file: no sync, no point made, FD stays open. */
int ferry_mwriter_begin_fd(struct ferry_repo *r, const struct ferry_point *p,
			   int fd, struct ferry_mwriter **out);

struct ferry_mreader;
/* Open and fully check a manifest (checksum first), then stream entries. */
int ferry_mreader_open(struct ferry_repo *r, const char *id,
		       struct ferry_mreader **out, struct ferry_point *p);
/* 1 with an entry, 0 at the end, < 0 on error. */
int ferry_mreader_next(struct ferry_mreader *m, int *kind,
		       uint8_t hash[FERRY_HASH_LEN]);
/* Random access (thread-safe, one pread): entry INDEX of the checked
 * manifest, at header_len + 33 * INDEX (docs/format.md). */
int ferry_mreader_entry(struct ferry_mreader *m, uint64_t index, int *kind,
		       uint8_t hash[FERRY_HASH_LEN]);
void ferry_mreader_free(struct ferry_mreader *m);

/* ---- sources (source_file.c, and one file per transport) ------------- */

/* What a source says about a block it was asked for. */
enum ferry_blk {
	FERRY_BLK_DATA = 0,  /* BUF holds the block (filters may have zeroed
			      * parts they proved unused) */
	FERRY_BLK_ZERO,      /* reads as zeros; not read (hole, zero extent,
			      * or excluded / free / swap: see skipped[]) */
	FERRY_BLK_UNCHANGED, /* change tracking says it equals the base
			      * point's block: its entry is copied */
};

enum { FERRY_SKIP_SWAP, FERRY_SKIP_FREE, FERRY_SKIP_EXCLUDED, FERRY_SKIP_N };

struct ferry_source;
struct ferry_source_ops {
	const char *name;
	int (*open)(struct ferry_source *s, const char *spec);
	/* Optional, before the first read: BASE is the latest point of this
	 * disk's name (NULL if none).  Return 1 when blocks may be reported
	 * UNCHANGED against BASE (its change-tracking chain is intact), 0
	 * for a full read; append the new point's extra lines to s->extra. */
	int (*prepare)(struct ferry_source *s, const struct ferry_point *base);
	/* Read LEN bytes at OFF into BUF and classify the block (*kind). */
	int (*read)(struct ferry_source *s, uint64_t off, void *buf,
		    size_t len, int *kind);
	/* Optional: LEN bytes at OFF, whatever change tracking or the
	 * allocation map says (filters reading partition tables and file
	 * system metadata).  Without it, read() is used and holes read as
	 * zeros. */
	int (*pread)(struct ferry_source *s, uint64_t off, void *buf,
		     size_t len);
	void (*close)(struct ferry_source *s);
	/* Optional, instead of read(): classify the block at OFF like
	 * read() and, for FERRY_BLK_DATA, point *P at its bytes in a
	 * read-only mapping of the source (no copy); *P NULL means "call
	 * read() for it".  The bytes are touched only inside
	 * ferry_map_call(). */
	int (*map)(struct ferry_source *s, uint64_t off, size_t len,
		   const uint8_t **p, int *kind);
};
struct ferry_source {
	const struct ferry_source_ops *ops;
	void *state;
	uint64_t size;
	char *spec;
	const struct ferry_backup_opts *opts;
	uint64_t skipped[FERRY_SKIP_N]; /* bytes not read, per reason */
	char extra[FERRY_EXTRA_MAX + 1];
	void (*warn)(const char *msg, void *arg); /* non-fatal fallbacks */
	void *warn_arg;
};
int ferry_source_open(const char *spec, const struct ferry_backup_opts *opts,
		      struct ferry_source **out);
void ferry_source_free(struct ferry_source *s);
void ferry_source_warn(struct ferry_source *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Bytes of S at OFF (through ops->pread, or read() with holes as zeros). */
int ferry_source_pread(struct ferry_source *s, uint64_t off, void *buf,
		       size_t len);
extern const struct ferry_source_ops ferry_source_file_ops;
/* Run FN(ARG), which reads bytes of a source mapping (source_file.c):
 * its result, or FERRY_MAP_FAULT when touching them raised SIGBUS (the
 * file shrank, or the disk failed to read): read them with read() then,
 * for the real error. */
#define FERRY_MAP_FAULT 1000
int ferry_map_call(int (*fn)(void *arg), void *arg);

/* ---- the pipe to the target-side data mover (target_local.c) --------- */

struct ferry_target;
struct ferry_target_ops {
	/* Start a restore point with P's header fields. */
	int (*begin)(struct ferry_target *t, const struct ferry_point *p);
	/* Thread-safe: 1 when the target holds the chunk. */
	int (*have)(struct ferry_target *t, const uint8_t h[FERRY_HASH_LEN]);
	/* Thread-safe: store a chunk (stored form); 1 when it was a dup. */
	int (*put)(struct ferry_target *t, const uint8_t h[FERRY_HASH_LEN],
		   const void *chunk, size_t len);
	/* In block order: the manifest entry of the next block. */
	int (*record)(struct ferry_target *t, int kind,
		      const uint8_t h[FERRY_HASH_LEN]);
	/* Optional, after the last record and before commit: wait until
	 * every put is resolved, and move the blocks of puts the target
	 * turned out to hold already from new to reused in RES (a remote
	 * target answers its dedup queries after put returned). */
	int (*settle)(struct ferry_target *t, struct ferry_backup_result *res);
	/* Make everything durable and commit the point (stats in P). */
	int (*commit)(struct ferry_target *t, const struct ferry_point *p);
	void (*free)(struct ferry_target *t); /* aborts if uncommitted */
	/* Optional, thread-safe: put without a copy.  *BUF (CAP bytes,
	 * malloc'd) holds the chunk; the target may keep it and leave
	 * another buffer of CAP bytes in *BUF.  Returns as put. */
	int (*put_own)(struct ferry_target *t, const uint8_t h[FERRY_HASH_LEN],
		       uint8_t **buf, size_t cap, size_t len);
};
struct ferry_target {
	const struct ferry_target_ops *ops;
	void *state;
};
int ferry_target_local_new(struct ferry_repo *r, struct ferry_target **out);
/* The target-side mover for R: its backend's own (a remote mover) when it
 * has one, else the in-process one. */
int ferry_target_new(struct ferry_repo *r, struct ferry_target **out);

/* ---- backup copy between different keys (copy_reseal.c) ------------- */

/* 1 when chunks of FROM cannot be copied to TO as stored (one side is
 * encrypted, or both are with different keys). */
int ferry_copy_reseal_needed(const struct ferry_repo *from,
			     const struct ferry_repo *to);
/* Copy point SP re-encoding each chunk for TO; BASE_ID (or NULL) is an
 * earlier point both sides hold, whose manifests give the target ids of
 * unchanged blocks. */
struct ferry_copy_opts;
struct ferry_copy_result;
struct ferry_copy_opts;
struct ferry_copy_result;
struct ferry_point;
struct ferry_target;
struct ferry_backup_result;
/* Shared by both copy paths (copy.c). */
void ferry_copy_progress(const struct ferry_copy_opts *o,
			 const struct ferry_point *p, uint64_t done,
			 uint64_t walked, uint64_t total, double t0,
			 double *last);
int ferry_copy_commit(struct ferry_target **t, struct ferry_backup_result *br,
		      struct ferry_point *p, struct ferry_copy_result *res);
struct ferry_mreader;
/* What one chunk job sent: SENT 1 when put (STORED bytes as stored, RAW
 * plaintext), 0 when the target held it. */
struct ferry_copy_sent {
	uint32_t stored, raw;
	int sent;
};
/* Put chunk H (LEN bytes as stored, RAW plaintext) to T, which may find
 * it holds it already; S counts what was sent. */
int ferry_copy_put(struct ferry_target *t, const uint8_t h[FERRY_HASH_LEN],
		   const void *data, size_t len, size_t raw, struct ferry_copy_sent *s);
/* A job's S counted: sent into BR, else as present in RES. */
void ferry_copy_tally(const struct ferry_copy_sent *s, struct ferry_backup_result *br,
		      struct ferry_copy_result *res);
/* Chunk H of point ID read from FROM into IN (INCAP; *LEN bytes) and
 * checked by decoding it into OUT (OUTCAP; *PLAIN bytes); errors name the
 * point and, when it is damaged, the chunk. */
int ferry_copy_read(struct ferry_repo *from, struct ferry_codec_ctx *codec, const char *id,
		    const uint8_t h[FERRY_HASH_LEN], uint8_t *in, size_t incap, size_t *len,
		    uint8_t *out, size_t outcap, size_t *plain);
/* E again, saying a delta block of point ID is damaged in the source. */
int ferry_copy_delta_bad(int e, const char *id);
/* The next entry of P's manifest M, which must have one; an error too
 * when the copy is interrupted. */
int ferry_copy_next(struct ferry_mreader *m, const struct ferry_point *p, int *kind,
		    uint8_t h[FERRY_HASH_LEN]);
/* A target on TO, begun for point P: 0 with *T, or an error (*T NULL). */
int ferry_copy_begin(struct ferry_repo *to, struct ferry_point *p, struct ferry_target **t);
/* Point ID opened on TO after its commit; an error says the copy does not
 * read back. */
int ferry_copy_read_back(struct ferry_repo *to, const char *id, struct ferry_mreader **m,
			 struct ferry_point *p);
/* One buffer of SIZE bytes per worker (THREADS), or NULL. */
uint8_t **ferry_copy_bufs_new(int threads, size_t size);
void ferry_copy_bufs_free(uint8_t **b, int threads);
/* One codec context for R's chunks per worker, or NULL. */
struct ferry_codec_ctx **ferry_copy_codecs_new(const struct ferry_repo *r, int threads);
void ferry_copy_codecs_free(struct ferry_codec_ctx **c, int threads);
int ferry_copy_point_reseal(struct ferry_repo *from, struct ferry_repo *to,
			    const struct ferry_point *sp, const char *base_id,
			    int threads, const struct ferry_copy_opts *o,
			    uint64_t walked, uint64_t total, double t0,
			    struct ferry_copy_result *res);

/* ---- ferry info's local cache of chunk sizes (info_cache.c) ---------- */

/* NULL when R has no cache (not object storage, no cache directory).
 * LOOKUP is called in listing order: 1 with RAW when (H, SIZE) is
 * cached; ADD in the same order; FINISH keeps the new file only when the
 * walk was COMPLETE and in ascending order. */
struct ferry_info_cache;
struct ferry_info_cache *ferry_info_cache_open(const struct ferry_repo *r);
int ferry_info_cache_lookup(struct ferry_info_cache *c,
			    const uint8_t h[FERRY_HASH_LEN], uint64_t size,
			    uint32_t *raw);
void ferry_info_cache_add(struct ferry_info_cache *c,
			  const uint8_t h[FERRY_HASH_LEN], uint64_t size,
			  uint32_t raw);
void ferry_info_cache_finish(struct ferry_info_cache *c, int complete);

/* ---- worker queue (workq.c) ------------------------------------------ */

/* HANDLER runs on a pool thread for each pushed item; WORKER is the
 * thread's index, for per-thread contexts.  The first error stops it. */
typedef int (*ferry_work_fn)(void *item, int worker, void *arg);
struct ferry_workq;
int ferry_workq_new(int threads, size_t item_size, size_t capacity,
		    ferry_work_fn fn, void *arg, struct ferry_workq **out);
/* Copies ITEM into the queue; blocks while full.  Returns the latched
 * error once a handler failed. */
int ferry_workq_push(struct ferry_workq *q, const void *item);
/* Waits for every item, joins the threads, frees; returns the first
 * error (its message restored into this thread). */
int ferry_workq_finish(struct ferry_workq *q);
/* Runs FN over N items of ITEM_SIZE bytes at ITEMS on min(THREADS, N)
 * threads, start to finish; returns the first error. */
int ferry_workq_run(int threads, const void *items, size_t item_size,
		    size_t n, ferry_work_fn fn, void *arg);

/* Cancellation, set from a signal handler through ferry_cancel(). */
extern atomic_int ferry_cancelled;
void ferry_cancel(void);

/* ---- hardened repository (immutable.c, docs/hardened-repository.md) -- */

#define FERRY_IMM_DAYS_MAX 36500
/* The clock expiry is judged by: now, or FERRY_NOW (tests only). */
uint64_t ferry_imm_now_ns(void);
/* The repository's immutable_days (0: not a hardened repository). */
int ferry_imm_days(const struct ferry_repo *r);
/* Set (ON 1) or lift (ON 0) the immutable attribute; -errno on failure. */
int ferry_imm_fd(int fd, int on);
int ferry_imm_at(int dirfd, const char *name, int on);
/* 1 when NAME carries the attribute, 0 when not, -errno. */
int ferry_imm_is_at(int dirfd, const char *name);
/* Whether the file system where PATH is (or will be made) lets this
 * process set the attribute; a clear error when not. */
int ferry_imm_probe(const char *path);
/* When point ID's protection ends (its "expiry" record; else CREATED_NS
 * plus the repository's days; UINT64_MAX when neither is known); 0 when
 * the repository is not hardened. */
int ferry_point_expiry(struct ferry_repo *r, const char *id,
		       uint64_t created_ns, uint64_t *until_ns);
/* 1 when point ID may not be removed yet (UNTIL_NS says until when), 0
 * when it may, < 0 on error. */
int ferry_point_protected(struct ferry_repo *r, const char *id,
			  uint64_t created_ns, uint64_t *until_ns);
void ferry_imm_time(uint64_t ns, char *buf, size_t cap);

/* ---- mover session files, for gc (mover_parked.c) -------------------- */
/* Call CB with the chunk id of every data entry of the session file NAME
 * in the directory DFD (REPO/sessions), counting them in *REFS, and give
 * the session's start (*CREATED_NS, unix ns); reads bounded pieces.
 * FERRY_E_NOTFOUND when it is gone or not a session file's name,
 * FERRY_E_CORRUPT when its header fails its checks. */
int ferry_session_file_chunks(int dfd, const char *name,
			      void (*cb)(const uint8_t *h, void *arg),
			      void *arg, uint64_t *refs, uint64_t *created_ns);

/* ---- sub-block deltas (delta.c; docs/format.md "Delta blocks") ------- */

/* Manifest entry kind 2: the id names a delta chunk (feature "delta"). */
#define FERRY_ENTRY_DELTA 2
#define FERRY_FEATURE_DELTA "delta"
#define FERRY_DELTA_MAGIC "FDL1"
#define FERRY_DELTA_HDR 76
#define FERRY_DELTA_PAGE 4096u
/* A parsed delta record (pointers into the caller's buffer). */
struct ferry_delta {
	uint32_t block_len, n;
	uint8_t full[FERRY_HASH_LEN], base[FERRY_HASH_LEN];
	const uint8_t *ext, *data;
	size_t data_len;
};
/* Check a delta record's every field against its limits (fuzz_delta). */
int ferry_delta_parse(const uint8_t *buf, size_t len, struct ferry_delta *d);
/* Overwrite BLOCK's changed pages (BLOCK holds the base's plaintext). */
void ferry_delta_apply(const struct ferry_delta *d, uint8_t *block);
/* The record turning BASE into BLK (LEN bytes each) into OUT; 0 when more
 * than MAX_DATA bytes changed (or none, or it does not fit CAP). */
size_t ferry_delta_build(const uint8_t *base, const uint8_t *blk, size_t len,
			 const uint8_t full[FERRY_HASH_LEN],
			 const uint8_t base_id[FERRY_HASH_LEN], size_t max_data,
			 uint8_t *out, size_t cap);
/* Buffers a reader of kind-2 entries needs: a stored chunk and a record. */
struct ferry_dbufs {
	uint8_t *in, *rec;
	size_t incap, reccap;
};
int ferry_dbufs_init(struct ferry_dbufs *b, uint32_t block_size);
void ferry_dbufs_free(struct ferry_dbufs *b);
/* Fetch, check and parse delta chunk ID into B->rec. */
int ferry_delta_load(struct ferry_repo *r, struct ferry_codec_ctx *c,
		     const uint8_t id[FERRY_HASH_LEN], uint8_t *in,
		     size_t incap, uint8_t *rec, size_t reccap,
		     struct ferry_delta *d);
/* The plaintext of the block of entry (KIND, ID), kind 1 or 2, checked
 * (a kind-2 block is rebuilt and checked against its recorded id);
 * errors name the chunk that failed. */
int ferry_block_read(struct ferry_repo *r, struct ferry_codec_ctx *c,
		     int kind, const uint8_t id[FERRY_HASH_LEN],
		     struct ferry_dbufs *b, uint8_t *out, size_t cap,
		     size_t *raw);
/* The id of the whole block of entry (KIND, ID): ID itself for kind 1,
 * the delta record's for kind 2 (reads the delta chunk). */
int ferry_entry_block_id(struct ferry_repo *r, struct ferry_codec_ctx *c,
			 int kind, const uint8_t id[FERRY_HASH_LEN],
			 struct ferry_dbufs *b, uint8_t full[FERRY_HASH_LEN]);
/* Whether R's config announces feature "delta" (kind-2 entries allowed;
 * new backups may write them). */
int ferry_repo_delta(const struct ferry_repo *r);

/* INFO cleared, then R's own fields in it (format, block size, codec,
 * level, id): the start of every get_info. */
void ferry_repo_info_start(const struct ferry_repo *r, struct ferry_repo_info *info);

/* ---- fuzz entry point (files_ext.c; fuzz/fuzz_ext.c) ---------------- */
/* File-level restore's view of the ext2/3/4 file system in the first
 * SIZE bytes RD reads (no repository); free with ferry_files_free(). */
struct ferry_files;
int ferry_files_open_rd(int (*rd)(void *arg, uint64_t off, void *buf, size_t len),
			void *arg, uint64_t size, struct ferry_files **out);

#endif
