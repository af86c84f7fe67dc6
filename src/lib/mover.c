/* mover.c - the target-side data mover daemon: accepts authenticated
 * source movers, runs each connection in its own thread through the
 * protocol's state machine (handshake, backup session, read requests),
 * ends a connection that breaks the protocol without harming the others,
 * and on shutdown parks every session so a restart loses nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mover.h"

#define ACK_EVERY (256u << 10)     /* bytes between receipt acks */
#define SYNC_BYTES (16u << 20)     /* sync after this much chunk data */
#define SYNC_AGE 0.1               /* or after this many seconds */
#define TX_BACKLOG (4u << 20)      /* stop reading while this much waits */

void mover_log(struct mover *m, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (m->o->log) {
		m->o->log(line, m->o->log_arg);
	} else {
		char when[32];
		time_t t = time(NULL);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(stderr, "%s ferry-mover: %s\n", when, line);
	}
}

/* ---- handshake ------------------------------------------------------- */

static int hello(struct mconn *mc, const uint8_t *p, size_t n)
{
	struct mover *m = mc->m;
	struct ferry_hello h;
	struct ferry_welcome w;
	struct ferry_repo *repo;
	uint8_t b[128];
	char names[512] = "";
	size_t len;
	int e;

	if ((e = ferry_hello_parse(p, n, &h)) != 0)
		return e;
	if (h.min_version > FERRY_PROTO_VERSION ||
	    h.max_version < FERRY_PROTO_VERSION)
		return ferry_error(FERRY_E_VERSION,
				   "client speaks protocol versions %u-%u; this mover speaks %d",
				   h.min_version, h.max_version, FERRY_PROTO_VERSION);
	for (int i = 0; i < m->nrepos; i++) {
		if (!strcmp(m->repos[i].name, h.repo))
			mc->r = &m->repos[i];
		snprintf(names + strlen(names), sizeof(names) - strlen(names),
			 "%s%s", i ? ", " : "", m->repos[i].name);
	}
	if (!mc->r)
		return ferry_error(FERRY_E_NOTFOUND,
				   "no repository named '%s' here (this mover serves: %s)",
				   h.repo, names);
	repo = mc->r->repo;
	memset(&w, 0, sizeof(w));
	w.version = FERRY_PROTO_VERSION;
	w.format_version = repo->format_version;
	w.block_size = repo->block_size;
	w.codec = (uint8_t)repo->codec;
	w.level = (uint8_t)(repo->level > 0 ? repo->level : 0);
	memcpy(w.repo_id, repo->repo_id, 32);
	w.max_frame = ferry_msg_limit(FM_PUT, repo->block_size);
	w.max_have = FERRY_HAVE_MAX;
	w.max_records = FERRY_RECORDS_MAX;
	len = ferry_welcome_encode(b, sizeof(b), &w);
	/* Authenticated and welcomed: frames may now carry chunks. */
	mc->c->block_size = repo->block_size;
	mc->c->max_frame = w.max_frame > FERRY_FRAME_CTRL ? w.max_frame
							  : FERRY_FRAME_CTRL;
	mover_log(m, "%s repo=%s hello agent=\"%s\" tls=%s", mc->tag, mc->r->name,
		  h.agent, mc->c->ssl ? SSL_get_cipher_name(mc->c->ssl) : "none");
	return ferry_conn_queue(mc->c, FM_WELCOME, b, len, NULL, 0);
}

/* ---- a backup session ---------------------------------------------- */

static int have(struct mconn *mc, const uint8_t *p, size_t n)
{
	struct ferry_repo *repo = mc->r->repo;
	const uint8_t *hashes;
	uint8_t b[6 + FERRY_HAVE_MAX / 8];
	uint32_t qid;
	uint16_t count;
	int e;

	if ((e = ferry_have_parse(p, n, &qid, &count, &hashes)) != 0)
		return e;
	memset(b, 0, sizeof(b));
	ferry_put_le32(b, qid);
	b[4] = (uint8_t)count;
	b[5] = (uint8_t)(count >> 8);
	for (uint16_t i = 0; i < count; i++) {
		if ((e = repo->ops->has_chunk(repo, hashes + (size_t)i * FERRY_HASH_LEN)) < 0)
			return e;
		if (e == 1) {
			b[6 + i / 8] |= (uint8_t)(1u << (i % 8));
			msess_stamp_chunk(mc, hashes + (size_t)i * FERRY_HASH_LEN);
		}
	}
	return ferry_conn_queue(mc->c, FM_HAVE_R, b, 6 + ((size_t)count + 7) / 8,
				NULL, 0);
}

/* Check a chunk the source sent and store it. */
static int store(struct mconn *mc, const uint8_t *h, const uint8_t *chunk,
		 size_t len)
{
	struct ferry_repo *repo = mc->r->repo;
	struct msess *s = mc->s;
	uint32_t raw;
	int e;
	char hex[65];

	ferry_hash_hex(h, hex);
	/* Damage in transit (possible on plain TCP; TLS authenticates every
	 * byte) ends this connection: the source sends the chunk again after
	 * it reconnects. */
	if ((e = ferry_chunk_check(chunk, len, &raw)) != 0)
		return ferry_error(FERRY_E_NET, "chunk %s arrived damaged: %s", hex,
				   ferry_last_error());
	if (raw > repo->block_size)
		return ferry_error(FERRY_E_PROTO,
				   "chunk %s holds %u bytes, more than a block", hex,
				   raw);
	/* The form must match the repository: sealed chunks only in an
	 * encrypted one (the mover cannot open them, only check their
	 * framing above), plain chunks only in a plain one. */
	if (ferry_chunk_is_sealed(chunk, len) != ferry_repo_encrypted(repo))
		return ferry_error(FERRY_E_PROTO,
				   "chunk %s is %s, and repository %s is %s", hex,
				   ferry_chunk_is_sealed(chunk, len) ? "sealed" : "not sealed",
				   mc->r->name,
				   ferry_repo_encrypted(repo) ? "encrypted" : "not encrypted");
	if (mc->m->o->verify_chunks) {
		size_t out;

		if (!mc->vctx) {
			mc->vctx = ferry_codec_ctx_new(FERRY_CODEC_NONE, 0);
			mc->vbuf = malloc(repo->block_size);
			if (!mc->vctx || !mc->vbuf)
				return FERRY_E_NOMEM;
		}
		if ((e = ferry_chunk_decode(mc->vctx, chunk, len, mc->vbuf,
					    repo->block_size, &out, h)) != 0)
			return ferry_error(FERRY_E_CORRUPT,
					   "chunk %s does not hold what its name says: %s",
					   hex, ferry_last_error());
	}
	if ((e = repo->ops->put_chunk(repo, h, chunk, len)) < 0)
		return e;
	if (e == 1)
		msess_stamp_chunk(mc, h);
	pthread_mutex_lock(&s->mu);
	if (e == 1) {
		s->chunks_dup++;
	} else {
		s->chunks_new++;
		s->bytes_new += len;
	}
	pthread_mutex_unlock(&s->mu);
	mc->unsynced_bytes += len;
	return 0;
}

static int put(struct mconn *mc, const uint8_t *p, size_t n)
{
	const uint8_t *h, *chunk;
	size_t len;
	int e;

	if ((e = ferry_put_parse(p, n, &h, &chunk, &len)) != 0)
		return e;
	return store(mc, h, chunk, len);
}

/* The rest of a chunk whose start arrived before the link broke. */
static int put_rest(struct mconn *mc, const uint8_t *p, size_t n)
{
	const uint8_t *h, *rest;
	uint32_t off, have = 0;
	size_t len;
	uint8_t *b, *nb;
	int e;

	if ((e = ferry_put_rest_parse(p, n, &h, &off, &rest, &len)) != 0)
		return e;
	b = msess_unstash(mc, h, &have);
	if (!b || have != off) {
		free(b);
		/* The source hears of no partial chunk when it reconnects,
		 * and sends it whole. */
		return ferry_error(FERRY_E_NET,
				   "PUT_REST from byte %u of a chunk the mover holds %u bytes of",
				   off, have);
	}
	if ((size_t)off + len > ferry_chunk_bound(mc->r->repo->block_size)) {
		free(b);
		return ferry_error(FERRY_E_PROTO, "PUT_REST makes a chunk too large");
	}
	if (!(nb = realloc(b, off + len))) {
		free(b);
		return FERRY_E_NOMEM;
	}
	memcpy(nb + off, rest, len);
	e = store(mc, h, nb, off + len);
	free(nb);
	return e;
}

/* A broken link cut a PUT short: keep what arrived of the chunk, so the
 * source sends only the rest after it resumes. */
static void stash_partial(struct mconn *mc)
{
	struct ferry_conn *c = mc->c;
	uint32_t have = 0, off, add;
	uint8_t *b, *nb;

	if (!mc->s || (mc->st != FS_SESSION && mc->st != FS_STREAM) ||
	    c->rx_ready || c->hdr_got != FERRY_FRAME_HDR)
		return;
	if (c->rx_type == FM_PUT && c->rx_got > FERRY_HASH_LEN + FERRY_CHUNK_HDR) {
		add = (uint32_t)(c->rx_got - FERRY_HASH_LEN);
		if ((b = malloc(add))) {
			memcpy(b, c->rx + FERRY_HASH_LEN, add);
			msess_stash(mc, c->rx, b, add);
			have = add;
		}
	} else if (c->rx_type == FM_PUT_REST && c->rx_got > FERRY_HASH_LEN + 4) {
		off = ferry_le32(c->rx + FERRY_HASH_LEN);
		add = (uint32_t)(c->rx_got - FERRY_HASH_LEN - 4);
		b = msess_unstash(mc, c->rx, &have);
		if (!b)
			return;
		if (have == off && (nb = realloc(b, (size_t)have + add))) {
			memcpy(nb + have, c->rx + FERRY_HASH_LEN + 4, add);
			b = nb;
			have += add;
		}
		msess_stash(mc, c->rx, b, have);
	}
	if (have)
		mover_log(mc->m, "%s session=%.8s kept the first %u bytes of a chunk cut short",
			  mc->tag, mc->s->sidhex, have);
}

/* ---- one frame ------------------------------------------------------- */

static int handle(struct mconn *mc)
{
	struct ferry_conn *c = mc->c;
	unsigned type = c->rx_type;
	const uint8_t *p = c->rx;
	size_t n = c->rx_len;
	int e;

	if ((e = ferry_server_accepts(mc->st, type)) != 0)
		return e;
	switch (type) {
	case FM_HELLO:
		e = hello(mc, p, n);
		break;
	case FM_PING:
		if (n != 8)
			return ferry_error(FERRY_E_PROTO, "malformed PING message");
		e = ferry_conn_queue(c, FM_PONG, p, n, NULL, 0);
		break;
	case FM_BEGIN:
		e = msess_begin(mc, p, n);
		break;
	case FM_RESUME:
		e = msess_resume(mc, p, n);
		break;
	case FM_ATTACH:
		e = msess_attach(mc, p, n);
		break;
	case FM_HAVE:
		e = have(mc, p, n);
		break;
	case FM_PUT:
		e = put(mc, p, n);
		break;
	case FM_PUT_REST:
		e = put_rest(mc, p, n);
		break;
	case FM_RECORDS:
		e = msess_records(mc, p, n);
		break;
	case FM_COMMIT:
		e = msess_commit(mc, p, n);
		break;
	case FM_SEALED:
		e = msess_sealed(mc, p, n);
		break;
	case FM_ABORT:
		if (n)
			return ferry_error(FERRY_E_PROTO, "malformed ABORT message");
		msess_abort(mc);
		break;
	default:
		e = mover_read_request(mc, type, p, n);
	}
	if (e)
		return e;
	mc->st = ferry_server_next(mc->st, type);
	if ((mc->st == FS_SESSION || mc->st == FS_STREAM) && !mc->s)
		mc->st = FS_READY; /* RESUME of a session committed earlier */
	return 0;
}

/* ---- acknowledgements ------------------------------------------------- */

static void maybe_sync(struct mconn *mc, double now)
{
	if (!mc->s || !mc->unsynced_frames)
		return;
	if (!mc->unsynced_since)
		mc->unsynced_since = now;
	if (mc->unsynced_bytes >= SYNC_BYTES || now - mc->unsynced_since >= SYNC_AGE)
		msess_sync_request(mc);
}

static int maybe_ack(struct mconn *mc, int drained)
{
	struct ferry_ack a;
	uint8_t b[32];
	int e;

	if (mc->st != FS_SESSION && mc->st != FS_STREAM)
		return 0;
	a.frames = mc->frames;
	a.bytes = mc->bytes;
	pthread_mutex_lock(&mc->r->mu);
	a.frames_durable = mc->durable_frames;
	a.blocks_durable = mc->durable_blocks;
	e = mc->sync_err;
	pthread_mutex_unlock(&mc->r->mu);
	/* Nothing more can be acknowledged: the source must hear it. */
	if (e)
		return ferry_error(e, "the repository cannot be made durable (sync failed)");
	if (a.frames_durable == mc->sent.frames_durable &&
	    a.blocks_durable == mc->sent.blocks_durable &&
	    a.bytes - mc->sent.bytes < ACK_EVERY &&
	    !(drained && a.frames != mc->sent.frames))
		return 0;
	mc->sent = a;
	ferry_ack_encode(b, sizeof(b), &a);
	return ferry_conn_queue(mc->c, FM_ACK, b, sizeof(b), NULL, 0);
}

static void goodbye(struct mconn *mc, const char *why)
{
	uint8_t b[8 + FERRY_MSG_MAX];
	size_t n;

	if (mc->st == FS_SESSION || mc->st == FS_STREAM)
		maybe_ack(mc, 1);
	n = ferry_error_encode(b, sizeof(b), -FERRY_BYE_SHUTDOWN, why);
	if (ferry_conn_queue(mc->c, FM_GOODBYE, b, n, NULL, 0) == 0)
		ferry_conn_send_wait(mc->c, ferry_mono_seconds() + 2);
}

/* ---- a connection's thread ------------------------------------------ */

/* Close without a reset: a peer whose last bytes we never read would
 * otherwise get an RST that can swallow our refusal (the TLS alert or
 * ERROR frame telling it why). */
static void linger_close(struct ferry_conn *c)
{
	double until = ferry_mono_seconds() + 0.2;
	char junk[4096];

	shutdown(c->fd, SHUT_WR);
	while (ferry_mono_seconds() < until) {
		struct pollfd p = { c->fd, POLLIN, 0 };

		if (poll(&p, 1, 50) <= 0)
			continue;
		if (read(c->fd, junk, sizeof(junk)) <= 0)
			break;
	}
}

static int allowed(struct mover *m, const char *who)
{
	if (!m->o->nallow)
		return 1;
	for (int i = 0; i < m->o->nallow; i++)
		if (!strcmp(m->o->allow[i], who))
			return 1;
	return 0;
}

static int serve(struct mconn *mc)
{
	struct mover *m = mc->m;
	struct ferry_conn *c = mc->c;
	double hs = m->o->handshake_timeout > 0 ? m->o->handshake_timeout : 10;
	double idle = m->o->idle_timeout > 0 ? m->o->idle_timeout : 120;
	double drain_until = 0;
	int e;

	for (;;) {
		struct pollfd pf[2];
		double now;
		int budget = 64, drained = 0, ms = 200;
		enum ferry_sstate was;

		if (atomic_load(&m->stopping)) {
			if (mc->s && mc->s->owner == mc)
				msess_release(mc);
			goodbye(mc, "the mover is shutting down; sessions are parked");
			return 0;
		}
		if (mc->s && mc->s->generation != mc->gen) {
			/* The session resumes on a new link.  What this one
			 * still carries counts: take it until the source's
			 * close arrives, or for 2 s if the link is dead. */
			if (!drain_until)
				drain_until = ferry_mono_seconds() + 2;
			else if (ferry_mono_seconds() > drain_until)
				return ferry_error(FERRY_E_NET,
						   "replaced by a newer connection of session %.8s",
						   mc->s->sidhex);
		}
		while (budget-- > 0 && ferry_conn_backlog(c) < TX_BACKLOG) {
			e = ferry_conn_recv(c);
			if (e == 0) {
				drained = 1;
				break;
			}
			if (e < 0)
				return e;
			was = mc->st;
			if ((e = handle(mc)) != 0)
				return e;
			if (was == FS_READY &&
			    (mc->st == FS_SESSION || mc->st == FS_STREAM)) {
				/* Acknowledgements count the frames that
				 * follow BEGIN, RESUME or ATTACH. */
				mc->frames = mc->bytes = 0;
				memset(&mc->sent, 0, sizeof(mc->sent));
				pthread_mutex_lock(&mc->r->mu);
				mc->durable_frames = mc->durable_blocks = 0;
				pthread_mutex_unlock(&mc->r->mu);
				continue;
			}
			mc->frames++;
			mc->bytes += FERRY_FRAME_HDR + c->rx_len;
			if (mc->s)
				mc->unsynced_frames++;
		}
		now = ferry_mono_seconds();
		maybe_sync(mc, now);
		if ((e = maybe_ack(mc, drained)) != 0)
			return e;
		if ((e = ferry_conn_flush(c)) < 0)
			return e;
		if (!drained && budget < 0 && ferry_conn_backlog(c) < TX_BACKLOG)
			continue;
		if (now - c->last_rx > (mc->st == FS_HELLO ? hs : idle))
			return ferry_error(FERRY_E_TIMEOUT,
					   "timed out: nothing received for %.0f s",
					   now - c->last_rx);
		if (mc->unsynced_frames && mc->unsynced_since)
			ms = 1 + (int)((SYNC_AGE - (now - mc->unsynced_since)) * 1000);
		if (ms < 1)
			ms = 1;
		if (ms > 200)
			ms = 200;
		if (c->rate_wait_ms && c->rate_wait_ms < ms)
			ms = c->rate_wait_ms;
		pf[0].fd = c->fd;
		pf[0].events = ferry_conn_events(c);
		if (ferry_conn_backlog(c) >= TX_BACKLOG)
			pf[0].events &= (short)~POLLIN;
		pf[1].fd = mc->efd;
		pf[1].events = POLLIN;
		if (ferry_conn_pending(c))
			ms = 0;
		if (poll(pf, 2, ms) < 0 && errno != EINTR)
			return ferry_error(FERRY_E_NET, "poll: %s", strerror(errno));
		if (pf[1].revents & POLLIN) {
			uint64_t v;

			if (read(mc->efd, &v, sizeof(v)) < 0) {
				/* nothing: it is only a wake-up */
			}
		}
	}
}

static void *conn_main(void *arg)
{
	struct mconn *mc = arg;
	struct mover *m = mc->m;
	double hs = m->o->handshake_timeout > 0 ? m->o->handshake_timeout : 10;
	int e = 0;

	snprintf(mc->tag, sizeof(mc->tag), "conn=%llu peer=%s",
		 (unsigned long long)mc->id, mc->c->peer);
	if (m->ctx) {
		e = ferry_tls_accept(mc->c, m->ctx, ferry_mono_seconds() + hs);
		if (e) {
			mover_log(m, "%s refused before any repository access: %s",
				  mc->tag, ferry_last_error());
			linger_close(mc->c);
			goto out;
		}
		if (!allowed(m, mc->c->identity)) {
			ferry_error(FERRY_E_AUTH,
				    "client certificate name '%s' is not allowed here",
				    mc->c->identity);
			mover_log(m, "%s refused before any repository access: %s",
				  mc->tag, ferry_last_error());
			ferry_conn_send_error(mc->c, FERRY_E_AUTH, ferry_last_error());
			linger_close(mc->c);
			goto out;
		}
		snprintf(mc->tag + strlen(mc->tag), sizeof(mc->tag) - strlen(mc->tag),
			 " client=%s", mc->c->identity);
	}
	mc->st = FS_HELLO;
	mc->c->last_rx = ferry_mono_seconds();
	e = serve(mc);
	if (e)
		stash_partial(mc);
	if (e && mc->c->eof && mc->st == FS_READY)
		e = 0; /* a client that is done */
	if (e) {
		/* One line, and the peer hears why (unless the link is gone). */
		char msg[1100];

		snprintf(msg, sizeof(msg), "%s", ferry_last_error());
		if (mc->s)
			mover_log(m, "%s session=%.8s error: %s", mc->tag,
				  mc->s->sidhex, msg);
		else
			mover_log(m, "%s %s: %s", mc->tag,
				  mc->st == FS_HELLO ? "refused" : "error", msg);
		if (e != FERRY_E_NET && e != FERRY_E_TIMEOUT) {
			ferry_conn_send_error(mc->c, e, msg);
			linger_close(mc->c);
		}
	}
out:
	msess_release(mc);
	msess_sync_forget(mc);
	ferry_conn_free(mc->c);
	close(mc->efd);
	ferry_codec_ctx_free(mc->vctx);
	free(mc->vbuf);
	ERR_clear_error();
	pthread_mutex_lock(&m->mu);
	m->nconns--;
	mc->done = 1; /* joined and freed by the main thread */
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

/* ---- the daemon ------------------------------------------------------- */

static int open_repos(struct mover *m)
{
	const struct ferry_mover_opts *o = m->o;
	int e;

	if (o->nrepos < 1)
		return ferry_error(FERRY_E_INVAL, "give at least one --repo");
	m->repos = calloc((size_t)o->nrepos, sizeof(*m->repos));
	if (!m->repos)
		return FERRY_E_NOMEM;
	for (int i = 0; i < o->nrepos; i++) {
		struct mrepo *r = &m->repos[i];
		const char *spec = o->repos[i], *eq = strchr(spec, '=');
		char tmp[4096];

		r->ses_fd = -1;
		r->m = m;
		if (eq && (size_t)(eq - spec) <= FERRY_NAME_MAX) {
			memcpy(r->name, spec, (size_t)(eq - spec));
			r->name[eq - spec] = 0;
			spec = eq + 1;
		} else {
			snprintf(tmp, sizeof(tmp), "%s", spec);
			while (strlen(tmp) > 1 && tmp[strlen(tmp) - 1] == '/')
				tmp[strlen(tmp) - 1] = 0;
			snprintf(r->name, sizeof(r->name), "%s", basename(tmp));
		}
		if (!ferry_name_valid(r->name))
			return ferry_error(FERRY_E_INVAL, "bad repository name '%s'",
					   r->name);
		for (int j = 0; j < i; j++)
			if (!strcmp(m->repos[j].name, r->name))
				return ferry_error(FERRY_E_INVAL,
						   "two repositories are named '%s': use NAME=PATH",
						   r->name);
		if (ferry_is_remote_url(spec))
			return ferry_error(FERRY_E_INVAL,
					   "%s: a mover serves local repositories only", spec);
		m->nrepos = i + 1;
		if (!(r->path = strdup(spec)))
			return FERRY_E_NOMEM;
		if ((e = ferry_repo_open(spec, &r->repo)) != 0)
			return e;
		/* A mover holds no key: it cannot decode what it receives
		 * (docs/encryption.md). */
		if (ferry_repo_encrypted(r->repo) && m->o->verify_chunks)
			return ferry_error(FERRY_E_INVAL,
					   "%s is encrypted: --verify-chunks needs the key, which a mover does not have (it still checks each sealed chunk's framing and checksum)",
					   spec);
		if ((e = msess_repo_open(r)) != 0)
			return e;
	}
	return 0;
}

static void close_repos(struct mover *m)
{
	for (int i = 0; i < m->nrepos; i++) {
		msess_repo_close(&m->repos[i]);
		ferry_repo_free(m->repos[i].repo);
		free(m->repos[i].path);
	}
	free(m->repos);
}

static void accept_one(struct mover *m, int lfd, struct ferry_rate *rate)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char peer[80];
	struct mconn *mc;
	pthread_attr_t attr;
	int fd;

	fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	ferry_addr_text((struct sockaddr *)&ss, peer, sizeof(peer));
	if (m->o->insecure && !ferry_addr_is_loopback((struct sockaddr *)&ss)) {
		mover_log(m, "peer=%s refused: plain TCP (--insecure) serves loopback only",
			  peer);
		close(fd);
		return;
	}
	pthread_mutex_lock(&m->mu);
	if (m->nconns >= (m->o->max_conns > 0 ? m->o->max_conns : 64)) {
		pthread_mutex_unlock(&m->mu);
		mover_log(m, "peer=%s refused: %d connections already", peer,
			  m->nconns);
		close(fd);
		return;
	}
	m->nconns++;
	pthread_mutex_unlock(&m->mu);
	mc = calloc(1, sizeof(*mc));
	if (!mc || !(mc->c = ferry_conn_new(fd, peer)) ||
	    (mc->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		goto fail;
	{
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	mc->m = m;
	mc->id = ++m->conn_seq;
	mc->c->rate = rate;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1u << 20);
	pthread_mutex_lock(&m->mu);
	if (pthread_create(&mc->th, &attr, conn_main, mc) != 0) {
		pthread_mutex_unlock(&m->mu);
		pthread_attr_destroy(&attr);
		close(mc->efd);
		goto fail;
	}
	mc->next = m->conns;
	m->conns = mc;
	pthread_mutex_unlock(&m->mu);
	pthread_attr_destroy(&attr);
	return;
fail:
	mover_log(m, "peer=%s refused: out of resources", peer);
	if (mc && mc->c)
		ferry_conn_free(mc->c);
	else
		close(fd);
	free(mc);
	pthread_mutex_lock(&m->mu);
	m->nconns--;
	pthread_mutex_unlock(&m->mu);
}

/* Join the threads of finished connections. */
static void reap_conns(struct mover *m)
{
	struct mconn *done = NULL;

	pthread_mutex_lock(&m->mu);
	for (struct mconn **pp = &m->conns; *pp;) {
		struct mconn *mc = *pp;

		if (mc->done) {
			*pp = mc->next;
			mc->next = done;
			done = mc;
		} else {
			pp = &mc->next;
		}
	}
	pthread_mutex_unlock(&m->mu);
	while (done) {
		struct mconn *mc = done;

		done = mc->next;
		pthread_join(mc->th, NULL);
		free(mc);
	}
}

int ferry_mover_run(const struct ferry_mover_opts *o)
{
	struct mover m;
	struct ferry_rate rate;
	char host[256], port[8], bound[80];
	double last_reap = ferry_mono_seconds(), last_sweep = last_reap;
	int e, lfd = -1, loop = 0;

	memset(&m, 0, sizeof(m));
	m.o = o;
	pthread_mutex_init(&m.mu, NULL);
	pthread_cond_init(&m.cv, NULL);
	ferry_rate_init(&rate, o->limit_rate);
	if (!o->listen || ferry_hostport_parse(o->listen, host, sizeof(host), port,
					       sizeof(port))) {
		e = ferry_error(FERRY_E_INVAL, "--listen wants HOST:PORT");
		goto out;
	}
	if (!o->insecure && !(m.ctx = ferry_tls_server_ctx(o->cert, o->key, o->ca))) {
		e = ferry_last_error()[0] ? FERRY_E_AUTH : FERRY_E_INVAL;
		goto out;
	}
	if ((e = ferry_tcp_listen(host, port, &lfd, bound, sizeof(bound), &loop)) != 0)
		goto out;
	if (o->insecure && !loop) {
		e = ferry_error(FERRY_E_INVAL,
				"--insecure (plain TCP) listens on loopback only, not %s",
				bound);
		goto out;
	}
	if ((e = open_repos(&m)) != 0)
		goto out;
	for (int i = 0; i < m.nrepos; i++)
		mover_log(&m, "serving repo=%s path=%s block_size=%u", m.repos[i].name,
			  m.repos[i].path, m.repos[i].repo->block_size);
	mover_log(&m, "listening on %s (%s)", bound,
		  o->insecure ? "plain TCP, loopback only" : "TLS 1.3, client certificates required");
	if (o->ready)
		o->ready(bound, o->ready_arg);
	while (!atomic_load(&ferry_cancelled)) {
		struct pollfd p = { lfd, POLLIN, 0 };
		double now = ferry_mono_seconds();

		if (poll(&p, 1, 200) > 0)
			accept_one(&m, lfd, &rate);
		reap_conns(&m);
		if (now - last_reap > 10) {
			msess_reap(&m, 600);
			last_reap = now;
		}
		if (now - last_sweep > 3600) {
			for (int i = 0; i < m.nrepos; i++)
				msess_sweep(&m.repos[i]);
			last_sweep = now;
		}
	}
	mover_log(&m, "stopping: parking sessions");
	atomic_store(&m.stopping, 1);
	close(lfd);
	lfd = -1;
	pthread_mutex_lock(&m.mu);
	{
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 30;
		while (m.nconns > 0 &&
		       pthread_cond_timedwait(&m.cv, &m.mu, &until) == 0)
			;
	}
	e = m.nconns ? ferry_error(FERRY_E_TIMEOUT, "%d connections did not stop",
				   m.nconns)
		     : 0;
	pthread_mutex_unlock(&m.mu);
	if (e == 0)
		mover_log(&m, "stopped");
out:
	if (lfd >= 0)
		close(lfd);
	if (!m.nconns) {
		reap_conns(&m);
		msess_reap(&m, -1);
		close_repos(&m);
		SSL_CTX_free(m.ctx);
		ferry_rate_release(&rate);
		pthread_mutex_destroy(&m.mu);
		pthread_cond_destroy(&m.cv);
	}
	return e;
}
