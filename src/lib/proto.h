/* proto.h - the protocol between the two data movers (docs/protocol.md):
 * frame limits, message types and their bounded parsers and encoders, the
 * explicit handshake state machines, and the connection layer (TCP, TLS
 * 1.3, timeouts, rate limits) that both the source and the target use. */
#ifndef FERRY_PROTO_H
#define FERRY_PROTO_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <sys/socket.h>

#include "internal.h"

/* ---- frames (proto.c) ------------------------------------------------ */

#define FERRY_PROTO_VERSION 1
#define FERRY_PROTO_MAGIC "FERRYMV1"
#define FERRY_FRAME_HDR 8          /* u32 payload length, u16 type, u16 0 */
#define FERRY_FRAME_PREAUTH 4096   /* any frame before WELCOME */
#define FERRY_FRAME_CTRL (192u << 10) /* frames without chunk data */
#define FERRY_HAVE_MAX 1024        /* hashes per HAVE */
#define FERRY_RECORDS_MAX 4096     /* entries per RECORDS */
#define FERRY_LIST_MAX 4096        /* entries per list answer */
#define FERRY_PIECE_MAX (1u << 20) /* bytes per POINT_DATA */
#define FERRY_MSG_MAX 1024         /* bytes of an ERROR or GOODBYE text */
#define FERRY_AGENT_MAX 64
#define FERRY_SID_LEN 16
#define FERRY_PID_LEN 8            /* binary restore point id */
/* A remote manifest is fetched into memory: at most this much. */
#define FERRY_REMOTE_MANIFEST_MAX (1ull << 30)

enum ferry_msg {
	FM_HELLO = 1, FM_WELCOME = 2, FM_ERROR = 3, FM_PING = 4, FM_PONG = 5,
	FM_GOODBYE = 6,
	/* a backup session */
	FM_BEGIN = 16, FM_RESUME = 17, FM_ATTACH = 18, FM_SESSION = 19,
	FM_HAVE = 20, FM_HAVE_R = 21, FM_PUT = 22, FM_RECORDS = 23,
	FM_ACK = 24, FM_COMMIT = 25, FM_COMMITTED = 26, FM_ABORT = 27,
	FM_PUT_REST = 28,
	/* reading a repository */
	FM_INFO = 32, FM_INFO_R = 33, FM_CHUNK_HAS = 34, FM_CHUNK_HAS_R = 35,
	FM_CHUNK_GET = 36, FM_CHUNK_HEAD = 37, FM_CHUNK_DATA = 38,
	FM_CHUNK_LIST = 39, FM_CHUNK_LIST_R = 40, FM_POINT_LIST = 41,
	FM_POINT_LIST_R = 42, FM_POINT_GET = 43, FM_POINT_DATA = 44,
	FM_END = 45, FM_POINT_STATS = 46, FM_POINT_INFO = 47,
	/* encryption at rest (docs/encryption.md): the repository's key
	 * lines, and a sealed manifest the source uploads in a session */
	FM_KEYS = 50, FM_KEYS_R = 51, FM_SEALED = 29,
	/* the repository's features a client must know of (text lines,
	 * "delta": kind-2 manifest entries; docs/protocol.md) */
	FM_FEATURES = 52, FM_FEATURES_R = 53,
};
#define FERRY_FEATURES_MAX 256 /* bytes of FEATURES_R */
#define FERRY_KEYS_MAX 2048 /* bytes of key lines in KEYS_R */
const char *ferry_msg_name(unsigned type);

/* GOODBYE reasons. */
enum { FERRY_BYE_SHUTDOWN = 1, FERRY_BYE_REPLACED = 2 };

/* Check a frame header before anything is allocated: a known type, a
 * length within that type's limit for a repository of BLOCK_SIZE (0: not
 * known yet), and within LIMIT (what the receiver accepts in its state). */
int ferry_frame_header_parse(const uint8_t hdr[FERRY_FRAME_HDR], uint32_t limit,
			     uint32_t block_size, uint32_t *len, uint16_t *type);
void ferry_frame_header_encode(uint8_t hdr[FERRY_FRAME_HDR], uint16_t type,
			       uint32_t len);
/* The largest payload of TYPE for a repository of BLOCK_SIZE (0: before
 * the handshake told it); 0 for an unknown type. */
uint32_t ferry_msg_limit(unsigned type, uint32_t block_size);

struct ferry_hello {
	uint16_t min_version, max_version;
	char repo[FERRY_NAME_MAX + 1];
	char agent[FERRY_AGENT_MAX + 1];
};
struct ferry_welcome {
	uint16_t version;
	uint32_t format_version, block_size, max_frame;
	uint8_t codec, level;
	char repo_id[33];
	uint16_t max_have, max_records;
};
struct ferry_ack {
	uint64_t frames, bytes;       /* processed on this connection */
	uint64_t frames_durable;      /* synced after processing these */
	uint64_t blocks_durable;      /* manifest entries made durable */
};
struct ferry_stats6 {
	uint64_t bytes_read, bytes_zero, bytes_new, bytes_reused,
		bytes_stored, duration_us;
};

/* Parsers: 0, or FERRY_E_PROTO with the reason in ferry_last_error(). */
int ferry_hello_parse(const uint8_t *p, size_t n, struct ferry_hello *h);
size_t ferry_hello_encode(uint8_t *out, size_t cap, const char *repo,
			  const char *agent);
int ferry_welcome_parse(const uint8_t *p, size_t n, struct ferry_welcome *w);
size_t ferry_welcome_encode(uint8_t *out, size_t cap,
			    const struct ferry_welcome *w);
/* ERROR: CODE is a negative FERRY_E_* value. */
int ferry_error_parse(const uint8_t *p, size_t n, int *code, char *msg,
		      size_t cap);
size_t ferry_error_encode(uint8_t *out, size_t cap, int code, const char *msg);
int ferry_ack_parse(const uint8_t *p, size_t n, struct ferry_ack *a);
size_t ferry_ack_encode(uint8_t *out, size_t cap, const struct ferry_ack *a);
int ferry_have_parse(const uint8_t *p, size_t n, uint32_t *qid,
		     uint16_t *count, const uint8_t **hashes);
int ferry_have_r_parse(const uint8_t *p, size_t n, uint32_t *qid,
		       uint16_t *count, const uint8_t **bitmap);
int ferry_records_parse(const uint8_t *p, size_t n, uint64_t *first,
			uint16_t *count, const uint8_t **entries);
int ferry_put_parse(const uint8_t *p, size_t n, const uint8_t **hash,
		    const uint8_t **chunk, size_t *len);
int ferry_begin_parse(const uint8_t *p, size_t n, struct ferry_point *pt,
		      const uint8_t **hdr, size_t *hdr_len);
/* SESSION: the id, blocks durable, blocks in all, and the chunks the
 * mover holds the first bytes of, from PUTs a broken link cut short (one
 * per stream at most). */
#define FERRY_PARTIALS_MAX 16
struct ferry_session_msg {
	uint8_t sid[FERRY_SID_LEN];
	uint64_t done, nblocks;
	uint32_t npartial;
	struct ferry_partial {
		uint32_t len;
		uint8_t hash[FERRY_HASH_LEN];
	} partial[FERRY_PARTIALS_MAX];
};
int ferry_session_parse(const uint8_t *p, size_t n, struct ferry_session_msg *m);
size_t ferry_session_encode(uint8_t *out, size_t cap,
			    const struct ferry_session_msg *m);
/* PUT_REST: the rest of a chunk from byte OFFSET of its stored form. */
int ferry_put_rest_parse(const uint8_t *p, size_t n, const uint8_t **hash,
			 uint32_t *offset, const uint8_t **rest, size_t *len);
int ferry_stats6_parse(const uint8_t *p, size_t n, struct ferry_stats6 *s);
size_t ferry_stats6_encode(uint8_t *out, size_t cap, const struct ferry_point *p);
/* POINT_INFO: a listed point (header and statistics), or a damaged one
 * (its id only). */
size_t ferry_point_info_encode(uint8_t *out, size_t cap, const struct ferry_point *p);
int ferry_point_info_parse(const uint8_t *p, size_t n, struct ferry_point *pt);
/* Point ids travel as 8 bytes. */
int ferry_pid_from_hex(const char *id, uint8_t out[FERRY_PID_LEN]);
void ferry_pid_to_hex(const uint8_t in[FERRY_PID_LEN], char out[FERRY_ID_LEN + 1]);

/* The handshake and session state machines (docs/protocol.md). */
enum ferry_sstate {
	FS_TLS,      /* accepted; TLS handshake running */
	FS_HELLO,    /* waiting for HELLO */
	FS_READY,    /* welcomed: BEGIN, RESUME, ATTACH or a read request */
	FS_SESSION,  /* a backup session: HAVE, PUT, RECORDS, COMMIT, ABORT */
	FS_STREAM,   /* an extra stream of a session: PUT only */
	FS_CLOSED,
};
/* 0 when a client may send TYPE in STATE, else FERRY_E_PROTO. */
int ferry_server_accepts(enum ferry_sstate state, unsigned type);
/* The state after the server handled TYPE successfully in STATE. */
enum ferry_sstate ferry_server_next(enum ferry_sstate state, unsigned type);

/* ---- connections (net.c, tls.c) ------------------------------------- */

/* A token bucket, shared by the streams of one session. */
struct ferry_rate {
	pthread_mutex_t mu;
	uint64_t rate;   /* bytes per second; 0: unlimited */
	double tokens, burst, last;
};
void ferry_rate_init(struct ferry_rate *r, uint64_t rate);
void ferry_rate_release(struct ferry_rate *r);
/* Bytes that may go now (at most WANT), else 0 and *WAIT_MS set. */
size_t ferry_rate_take(struct ferry_rate *r, size_t want, int *wait_ms);

struct ferry_url {
	char host[256];
	char port[8];
	char repo[FERRY_NAME_MAX + 1];
};
int ferry_url_parse(const char *url, struct ferry_url *u);
/* "HOST:PORT" or "[V6]:PORT". */
int ferry_hostport_parse(const char *s, char *host, size_t hcap, char *port,
			 size_t pcap);
int ferry_addr_is_loopback(const struct sockaddr *sa);
void ferry_addr_text(const struct sockaddr *sa, char *out, size_t cap);

#define FERRY_TXREF_MAX 64        /* payloads queued by reference */
struct ferry_conn {
	int fd;
	SSL *ssl;
	char peer[80];        /* "ip:port" */
	char identity[256];   /* the peer certificate's CN ("" on plain TCP) */
	struct ferry_rate *rate;
	uint64_t bytes_in, bytes_out;
	double last_rx;       /* monotonic seconds of the last byte read */
	int broken;           /* an error was seen; drop the connection */
	int eof;              /* the peer closed between two frames */
	/* receiving: header, then a payload of at most max_frame bytes */
	uint32_t max_frame, block_size;
	uint8_t hdr[FERRY_FRAME_HDR];
	size_t hdr_got;
	uint8_t *rx;
	size_t rx_cap, rx_len, rx_got;
	uint16_t rx_type;
	int rx_ready;
	/* sending */
	uint8_t *tx;
	size_t tx_cap, tx_len, tx_off;
	/* payloads sent from the caller's memory instead of copies (see
	 * ferry_conn_queue_ref): LEN bytes from P go at offset AT of tx */
	struct ferry_txref {
		size_t at;
		const uint8_t *p;
		size_t len;
	} txr[FERRY_TXREF_MAX];
	unsigned txr_head, txr_n;
	size_t txr_off, txr_bytes;
	int want_write;       /* TLS needs the socket writable to go on */
	int rate_wait_ms;
};

/* TLS contexts: TLS 1.3 only, peer certificate required and checked
 * against CA; a server may restrict client names to ALLOW. */
SSL_CTX *ferry_tls_server_ctx(const char *cert, const char *key,
			      const char *ca);
SSL_CTX *ferry_tls_client_ctx(const char *cert, const char *key,
			      const char *ca);
/* Run the TLS handshake on C within DEADLINE (monotonic seconds); for a
 * client HOST is the name the server certificate must carry. */
int ferry_tls_accept(struct ferry_conn *c, SSL_CTX *ctx, double deadline);
int ferry_tls_connect(struct ferry_conn *c, SSL_CTX *ctx, const char *host,
		      double deadline);
/* Non-blocking transfers: > 0 bytes, 0 at the end of the stream,
 * -EAGAIN (c->want_write says for what), or a negative FERRY_E_*. */
ssize_t ferry_tls_read(struct ferry_conn *c, void *buf, size_t n);
ssize_t ferry_tls_write(struct ferry_conn *c, const void *buf, size_t n);
void ferry_tls_close(struct ferry_conn *c);
/* Received bytes inside TLS or its read buffer (poll cannot see them). */
int ferry_tls_pending(const struct ferry_conn *c);

/* TCP: connect within DEADLINE; listen; accept (non-blocking fds). */
int ferry_tcp_connect(const char *host, const char *port, double deadline,
		      int *fd, char *peer, size_t peer_cap, int *loopback);
int ferry_tcp_listen(const char *host, const char *port, int *fd,
		     char *bound, size_t cap, int *loopback);

struct ferry_conn *ferry_conn_new(int fd, const char *peer);
void ferry_conn_free(struct ferry_conn *c);
/* Receive: 1 with a frame in c->rx_type / c->rx / c->rx_len, 0 when more
 * bytes are needed, < 0 on error or end of stream.  Call again after
 * using the frame. */
int ferry_conn_recv(struct ferry_conn *c);
/* Queue one frame (PARTS of LENS bytes, concatenated). */
int ferry_conn_queue(struct ferry_conn *c, uint16_t type, const void *a,
		     size_t alen, const void *b, size_t blen);
/* Send queued bytes: 0 when all went, 1 when some wait (poll for
 * ferry_conn_events), < 0 on error. */
int ferry_conn_flush(struct ferry_conn *c);
/* Like ferry_conn_queue, but B (the large payload) is not copied: it is
 * sent from the caller's memory, which must stay unchanged until
 * ferry_conn_refs(c, B, BLEN) says 0 (or the connection is freed).  For
 * chunks, which the source keeps until the target acknowledged them. */
int ferry_conn_queue_ref(struct ferry_conn *c, uint16_t type, const void *a,
			 size_t alen, const void *b, size_t blen);
/* 1 when queued bytes still point into [P, P + LEN). */
int ferry_conn_refs(const struct ferry_conn *c, const void *p, size_t len);
/* Bytes queued and not yet sent (copied and by reference). */
size_t ferry_conn_backlog(const struct ferry_conn *c);
short ferry_conn_events(const struct ferry_conn *c);
/* Whether received bytes wait inside TLS (poll would not show them). */
int ferry_conn_pending(const struct ferry_conn *c);
/* Blocking helpers with a deadline (monotonic seconds). */
int ferry_conn_send_wait(struct ferry_conn *c, double deadline);
int ferry_conn_recv_wait(struct ferry_conn *c, double deadline);
/* Queue and send one frame, then wait for an answer frame. */
int ferry_conn_call(struct ferry_conn *c, uint16_t type, const void *a,
		    size_t alen, const void *b, size_t blen, double deadline);
/* An ERROR frame's code with its text as the last error. */
int ferry_conn_peer_error(struct ferry_conn *c);
/* Tell the peer why, then stop (best effort, bounded). */
void ferry_conn_send_error(struct ferry_conn *c, int code, const char *msg);
/* End a healthy connection with a FIN, not a reset: unread input would
 * make the kernel reset it, and the peer would lose what it had not read
 * yet.  Reads and drops input for at most MS milliseconds. */
void ferry_conn_close_soft(struct ferry_conn *c, int ms);

#endif
