/* remote.h - the source side of a remote repository: the connection
 * factory and pool shared by the read backend (store_remote.c) and the
 * backup session (target_remote.c). */
#ifndef FERRY_REMOTE_H
#define FERRY_REMOTE_H

#include "proto.h"

#define RS_POOL_MAX 16
#define RS_CACHE 8

struct rstore {
	struct ferry_url url;
	char *cert, *key, *ca;
	struct ferry_remote_opts o;
	SSL_CTX *ctx;
	struct ferry_welcome w;
	struct ferry_rate rate;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ferry_conn *idle[RS_POOL_MAX];
	int nidle, nopen;
	/* committed manifests fetched already (immutable) */
	struct {
		char id[FERRY_ID_LEN + 1];
		int fd;
	} cache[RS_CACHE];
	int cache_next;
	/* the last listing's points, from the mover's checks */
	struct ferry_point *listed;
	size_t nlisted;
	/* counters of closed connections and of sessions */
	atomic_ullong bytes_sent, bytes_received, connects, resumes,
		blocks_resumed_at, chunks_resent;
};

/* Seconds: the silence after which a peer counts as gone, and the time
 * to keep reconnecting after a broken link. */
double rstore_timeout(const struct rstore *rs);
double rstore_retry(const struct rstore *rs);
/* A new connection: TCP, TLS, HELLO and WELCOME. */
int rstore_connect(struct rstore *rs, struct ferry_conn **out);
/* Close C, adding its byte counts to the store's. */
void rstore_close(struct rstore *rs, struct ferry_conn *c);
/* Errors worth reconnecting for. */
int rstore_retryable(int e);
/* Sleep before reconnect attempt N (exponential, capped, jittered);
 * returns early when *STOP becomes set (polled). */
void rstore_backoff(int attempt, const atomic_int *stop);

int ferry_target_remote_new(struct ferry_repo *r, struct ferry_target **out);

#endif
