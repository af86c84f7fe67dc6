/* mover.h - the target-side mover's parts: the daemon (mover.c: listener,
 * connections, chunks received, logging), its read requests
 * (mover_read.c) and its backup sessions: mover_session.c (begin, resume,
 * attach, park, abort), mover_commit.c (records, sealed manifest,
 * commit), mover_repo.c (a served repository: group syncs, shared lock)
 * and mover_parked.c (the session files: parked-session storage, expiry,
 * what gc keeps). */
#ifndef FERRY_MOVER_H
#define FERRY_MOVER_H

#include "proto.h"

struct mconn;

/* A repository the mover serves, with its sync thread: one syncfs makes
 * the chunks of every session durable at once (group commit). */
struct mrepo {
	char name[FERRY_NAME_MAX + 1];
	char *path;
	struct ferry_repo *repo;
	int ses_fd;                 /* REPO/sessions */
	pthread_t syncer;
	int syncer_started, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv, done_cv;
	struct mconn **req;         /* connections waiting for a sync */
	size_t nreq, capreq;
	struct mover *m;
	/* The repository's shared lock is held only while sessions that
	 * add data run: HOLDS counts the connections using a session; the
	 * lock is taken on 0 -> 1 and released on 1 -> 0 (hold_mu). */
	pthread_mutex_t hold_mu;
	int holds, hold_init;
};

/* A backup session: in memory while a connection uses it, on disk
 * (REPO/sessions/SID) always. */
struct msess {
	struct msess *next;
	struct mrepo *r;
	uint8_t sid[FERRY_SID_LEN];
	char sidhex[2 * FERRY_SID_LEN + 1];
	char identity[256];
	struct ferry_point p;
	uint8_t hdr[FERRY_MANIFEST_HEADER_MAX];
	size_t hdr_len;
	uint64_t entries_off;       /* where entries start in the file */
	int fd;
	uint64_t recorded;          /* entries written to the file */
	struct mconn *owner;        /* the primary connection, or NULL */
	int refs, loading, dead;
	double parked_at;           /* refs 0: kept in memory since */
	unsigned generation;        /* bumped when a RESUME takes over */
	pthread_mutex_t mu;
	uint64_t chunks_new, chunks_dup, bytes_new;
	/* the first bytes of chunks whose PUTs a broken link cut short */
	struct {
		uint8_t hash[FERRY_HASH_LEN];
		uint8_t *buf;
		uint32_t len;
	} partial[FERRY_PARTIALS_MAX];
	unsigned next_partial;
	/* Encrypted repository: bytes of the sealed manifest the source
	 * uploaded (SEALED), kept after the entries in the session file. */
	uint64_t sealed_len;
};

struct mconn {
	struct mconn *next;         /* in mover->conns */
	pthread_t th;
	int done;                   /* the thread finished (m->mu) */
	struct mover *m;
	struct ferry_conn *c;
	uint64_t id;
	enum ferry_sstate st;
	struct mrepo *r;
	struct msess *s;
	unsigned gen;
	int held;                   /* counts in r->holds */
	int efd;                    /* the syncer wakes us through it */
	/* what was processed, and what a finished sync made durable */
	uint64_t frames, bytes;
	uint64_t durable_frames, durable_blocks; /* under r->mu */
	int sync_state;             /* 0 idle, 1 queued, 2 running (r->mu) */
	int sync_err;               /* a sync failed: FERRY_E_* (r->mu) */
	uint64_t req_frames, req_blocks;         /* under r->mu */
	uint64_t unsynced_bytes, unsynced_frames;
	double unsynced_since;
	struct ferry_ack sent;      /* the last ACK sent */
	int replaced;
	struct ferry_codec_ctx *vctx; /* --verify-chunks */
	uint8_t *vbuf;
	char tag[96];               /* "conn=N peer=... client=..." */
};

struct mover {
	const struct ferry_mover_opts *o;
	SSL_CTX *ctx;
	struct mrepo *repos;
	int nrepos;
	pthread_mutex_t mu;         /* sessions, nconns */
	pthread_cond_t cv;
	struct msess *sessions;
	struct mconn *conns;        /* threads to join */
	int nconns;
	uint64_t conn_seq;
	atomic_int stopping;
};

void mover_log(struct mover *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* mover_read.c: a request of a connection in READY that reads the
 * repository (INFO, CHUNK_*, POINT_*, KEYS, FEATURES); < 0 ends the
 * connection. */
int mover_read_request(struct mconn *mc, unsigned type, const uint8_t *p,
		       size_t n);

/* the sessions (mover_session.c, mover_commit.c, mover_repo.c,
 * mover_parked.c) */
int msess_repo_open(struct mrepo *r);   /* sessions dir, sweep, syncer */
void msess_repo_close(struct mrepo *r);
/* Remove parked session files older than the TTL. */
void msess_sweep(struct mrepo *r);
int msess_begin(struct mconn *mc, const uint8_t *p, size_t n);
int msess_resume(struct mconn *mc, const uint8_t *p, size_t n);
int msess_attach(struct mconn *mc, const uint8_t *p, size_t n);
int msess_records(struct mconn *mc, const uint8_t *p, size_t n);
/* SEALED: a piece of the sealed manifest (encrypted repository). */
int msess_sealed(struct mconn *mc, const uint8_t *p, size_t n);
int msess_commit(struct mconn *mc, const uint8_t *p, size_t n);
void msess_abort(struct mconn *mc);
/* Let go of the session: make what arrived durable and close it. */
void msess_release(struct mconn *mc);
/* Keep the start of a chunk a broken PUT delivered (TAKE is freed or
 * kept); hand it back for PUT_REST. */
void msess_stash(struct mconn *mc, const uint8_t *hash, uint8_t *take,
		 uint32_t len);
uint8_t *msess_unstash(struct mconn *mc, const uint8_t *hash, uint32_t *len);
/* Forget sessions parked in memory longer than AGE seconds (they stay
 * on disk); AGE < 0: all of them. */
void msess_reap(struct mover *m, double age);
/* Ask the repository's syncer to make this connection's work durable. */
void msess_sync_request(struct mconn *mc);
/* Wait until no sync for MC is queued or running. */
void msess_sync_forget(struct mconn *mc);
/* Stamp chunk H, which MC's session counts on without writing it, so
 * that gc keeps it while the session is parked (mover_parked.c). */
void msess_stamp_chunk(struct mconn *mc, const uint8_t *h);

/* ---- shared by the session files only (mover.c uses what is above) --- */

#define MSESS_IOBUF (64u << 10)     /* a session file is read by this much */
/* as much in whole entries */
#define MSESS_ENTRY_IOBUF (MSESS_IOBUF - MSESS_IOBUF % FERRY_ENTRY_LEN)

/* mover_session.c: answer COMMITTED with point ID. */
int msess_reply_committed(struct mconn *mc, const char *id);
/* The session has ended (committed or aborted): remove its file and let
 * MC's reference go. */
void msess_drop(struct mconn *mc);

/* mover_repo.c: count MC among the connections whose session adds data
 * to its repository; the first takes the repository's shared lock
 * (waiting while gc holds it exclusively). */
int msess_hold(struct mconn *mc);
/* The last one lets the lock go. */
void msess_let_go(struct mconn *mc);

/* mover_parked.c: parked-session storage (docs/protocol.md "Session
 * files"): a session file is its header, then at S->entries_off one
 * entry per block recorded, then (encrypted repository) the sealed
 * manifest's bytes. */
/* Create the repository's sessions directory if need be; open it into
 * R->ses_fd. */
int msess_dir_open(struct mrepo *r);
/* Create S's file (named S->sidhex) with its header, durably; sets
 * S->fd and S->entries_off. */
int msess_create_file(struct msess *s);
/* Read S's file (named S->sidhex) back after a restart: its header, then
 * every entry whose chunk is held, cutting off the rest; sets S->fd,
 * S->recorded and the fields of the header. */
int msess_load(struct msess *s);
/* Read delta chunk ID's record (a kind-2 entry's, delta.c) for the id of
 * its base chunk (BASE); errors as ferry_delta_load's. */
int msess_delta_base(struct ferry_repo *repo, const uint8_t *id,
		     uint8_t base[FERRY_HASH_LEN]);

#endif
