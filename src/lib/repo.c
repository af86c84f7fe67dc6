/* repo.c - opening and creating repositories (the config file, its format
 * version), listing and resolving restore points, and repository totals. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "seal.h"

#include <zstd.h>

#define CONFIG_MAX 4096

int ferry_point_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n != FERRY_ID_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return 1;
}

int ferry_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > FERRY_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
			return 0;
	}
	return 1;
}

/* ---- backends ------------------------------------------------------- */

/* Backends by URL prefix; a path no prefix matches is a local directory.
 * (ferry:// repositories are opened by ferry_repo_open_remote.) */
static const struct ferry_backend *const backends[] = {
	&ferry_backend_s3,
	&ferry_backend_smb,
	NULL,
};

const struct ferry_backend *ferry_backend_for(const char *path)
{
	for (size_t i = 0; backends[i]; i++)
		if (!strncmp(path, backends[i]->prefix, strlen(backends[i]->prefix)))
			return backends[i];
	return &ferry_backend_local;
}

#define BOPT_MAX 32
static struct {
	char *key, *value;
} bopts[BOPT_MAX];
static pthread_mutex_t bopt_lock = PTHREAD_MUTEX_INITIALIZER;

int ferry_backend_set(const char *key, const char *value)
{
	int e = 0, i, slot = -1;

	pthread_mutex_lock(&bopt_lock);
	for (i = 0; i < BOPT_MAX; i++) {
		if (bopts[i].key && !strcmp(bopts[i].key, key))
			break;
		if (!bopts[i].key && slot < 0)
			slot = i;
	}
	if (i < BOPT_MAX) {
		free(bopts[i].value);
		bopts[i].value = NULL;
		slot = i;
	}
	if (!value) {
		if (i < BOPT_MAX) {
			free(bopts[i].key);
			bopts[i].key = NULL;
		}
	} else if (slot < 0) {
		e = ferry_error(FERRY_E_INVAL, "too many backend settings");
	} else if (!bopts[slot].key && !(bopts[slot].key = strdup(key))) {
		e = FERRY_E_NOMEM;
	} else if (!(bopts[slot].value = strdup(value))) {
		e = FERRY_E_NOMEM;
	}
	pthread_mutex_unlock(&bopt_lock);
	return e;
}

/* Values live until the process ends or the key is set again: callers
 * read them while opening a repository, not across a later set. */
const char *ferry_backend_opt(const char *key)
{
	const char *v = NULL;
	char env[96];
	size_t n = 0;

	pthread_mutex_lock(&bopt_lock);
	for (int i = 0; i < BOPT_MAX; i++)
		if (bopts[i].key && !strcmp(bopts[i].key, key)) {
			v = bopts[i].value;
			break;
		}
	pthread_mutex_unlock(&bopt_lock);
	if (v)
		return v;
	n = (size_t)snprintf(env, sizeof(env), "FERRY_");
	for (const char *k = key; *k && n + 1 < sizeof(env); k++)
		env[n++] = *k == '-' ? '_' : (char)toupper((unsigned char)*k);
	env[n] = 0;
	return getenv(env);
}

const char *ferry_repo_config(const struct ferry_repo *r, const char *key,
			      char *buf, size_t cap)
{
	size_t kl = strlen(key);

	if (!r->config_text || cap == 0)
		return NULL;
	for (const char *l = r->config_text; *l;) {
		const char *nl = strchr(l, '\n'), *p = l, *end;

		end = nl ? nl : l + strlen(l);
		while (p < end && *p == ' ')
			p++;
		if (!strncmp(p, key, kl)) {
			const char *q = p + kl;

			while (q < end && *q == ' ')
				q++;
			if (q < end && *q == '=') {
				size_t n;

				q++;
				while (q < end && *q == ' ')
					q++;
				while (end > q && end[-1] == ' ')
					end--;
				n = (size_t)(end - q);
				if (n >= cap)
					n = cap - 1;
				memcpy(buf, q, n);
				buf[n] = 0;
				return buf;
			}
		}
		if (!nl)
			break;
		l = nl + 1;
	}
	return NULL;
}

/* Features a repository may require (config "features = a,b"): one this
 * ferry does not know makes it refuse the repository rather than misread
 * it.  Add a name here when its code lands. */
static const char *const known_features[] = {
	"immutable", /* hardened repository: docs/hardened-repository.md */
	FERRY_FEATURE_ENCRYPTION, /* seal.h, docs/encryption.md */
	FERRY_FEATURE_DELTA, /* delta.c, docs/format.md "Delta blocks" */
	NULL,
};

static int check_features(const struct ferry_repo *r, const char *list)
{
	char one[64];

	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ", ");
		int known = 0;

		if (n) {
			snprintf(one, sizeof(one), "%.*s", (int)(n < 63 ? n : 63), p);
			for (size_t i = 0; known_features[i]; i++)
				if (!strcmp(known_features[i], one))
					known = 1;
			if (!known)
				return ferry_error(FERRY_E_VERSION,
						   "%s needs the repository feature \"%s\", which this ferry does not have",
						   r->path, one);
		}
		p += n;
		p += strspn(p, ", ");
	}
	return 0;
}

static int write_config(struct ferry_repo *r, const char *extra)
{
	char text[CONFIG_MAX];
	int n;

	n = snprintf(text, sizeof(text),
		     "# ferry repository: do not edit (see docs/format.md)\n"
		     "format = ferry-repository\n"
		     "version = %u\n"
		     "id = %s\n"
		     "block_size = %u\n"
		     "compression = %s\n"
		     "level = %d\n"
		     "%s",
		     r->format_version, r->repo_id, r->block_size,
		     ferry_codec_name(r->codec), r->level, extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(text))
		return ferry_error(FERRY_E_INVAL, "repository config too long");
	return r->ops->config_put(r, text, (size_t)n);
}

/* FERRY_E_NOTREPO with WHY (what is wrong with the config) filled. */
static int bad_config(char *why, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad_config(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return FERRY_E_NOTREPO;
}

static int hex_id(const char *v)
{
	size_t n = strspn(v, "0123456789abcdef");

	return n == 32 && !v[n];
}

static int parse_config(struct ferry_repo *r, char *text, char *why, size_t cap)
{
	int have_format = 0, have_version = 0, have_bs = 0, have_codec = 0;
	int have_id = 0;
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq, *k, *v, *end;

		if (line[0] == '#' || !line[0])
			continue;
		eq = strchr(line, '=');
		if (!eq)
			return bad_config(why, cap, "a line without '=': '%.40s'", line);
		*eq = 0;
		k = line;
		v = eq + 1;
		while (*k == ' ')
			k++;
		for (end = eq; end > k && end[-1] == ' '; end--)
			end[-1] = 0;
		while (*v == ' ')
			v++;
		if (!strcmp(k, "format")) {
			if (strcmp(v, "ferry-repository"))
				return bad_config(why, cap, "format '%.40s'", v);
			have_format = 1;
		} else if (!strcmp(k, "version")) {
			unsigned long ver = strtoul(v, &end, 10);

			if (*end || !*v)
				return bad_config(why, cap, "version '%.40s'", v);
			if (ver != FERRY_FORMAT_VERSION)
				return ferry_error(FERRY_E_VERSION,
						   "%s has repository format version %lu; this ferry reads version %d",
						   r->path, ver, FERRY_FORMAT_VERSION);
			r->format_version = (uint32_t)ver;
			have_version = 1;
		} else if (!strcmp(k, "id")) {
			if (!hex_id(v))
				return bad_config(why, cap, "id '%.40s' is not 32 hex digits", v);
			memcpy(r->repo_id, v, 33);
			have_id = 1;
		} else if (!strcmp(k, "block_size")) {
			unsigned long bs = strtoul(v, &end, 10);

			/* A power of two, as manifests (manifest.c) and
			 * movers (proto.c) require. */
			if (*end || !*v || bs < FERRY_BLOCK_MIN || bs > FERRY_BLOCK_MAX ||
			    (bs & (bs - 1)))
				return bad_config(why, cap,
						  "block_size '%.40s' (give a power of two from %u to %u)",
						  v, FERRY_BLOCK_MIN, FERRY_BLOCK_MAX);
			r->block_size = (uint32_t)bs;
			have_bs = 1;
		} else if (!strcmp(k, "compression")) {
			int lv;

			if (ferry_codec_parse(v, &r->codec, &lv))
				return bad_config(why, cap, "compression '%.40s'", v);
			have_codec = 1;
		} else if (!strcmp(k, "level")) {
			/* 0 (lz4, none) or a zstd level: it goes to the
			 * compressor and, as one byte, to a mover peer. */
			long lv = strtol(v, &end, 10);

			if (*end || !*v || lv < 0 || lv > ZSTD_maxCLevel())
				return bad_config(why, cap,
						  "level '%.40s' (give 0 to %d)", v,
						  ZSTD_maxCLevel());
			r->level = (int)lv;
		} else if (!strcmp(k, "features")) {
			int e = check_features(r, v);

			if (e)
				return e;
			if (ferry_features_has(v, FERRY_FEATURE_ENCRYPTION))
				r->encrypted = 1;
			if (ferry_features_has(v, FERRY_FEATURE_DELTA))
				r->delta = 1;
		}
	}
	if (!have_format || !have_version || !have_bs || !have_codec || !have_id)
		return bad_config(why, cap, "no %s line",
				  !have_format ? "format" : !have_version ? "version" :
				  !have_bs ? "block_size" : !have_codec ? "compression" : "id");
	return 0;
}

/* A hardened repository (immutable_days in the extra config) needs a
 * local directory on a file system that takes the immutable attribute
 * from this process: tried on a test file before anything is made. */
static int check_immutable(struct ferry_repo *r, const struct ferry_backend *be,
			   const struct ferry_init_opts *opts)
{
	struct ferry_repo tmp = { 0 };
	char buf[32];

	tmp.config_text = (char *)opts->extra_config;
	if (!ferry_repo_config(&tmp, "immutable_days", buf, sizeof(buf)))
		return 0;
	if (!ferry_imm_days(&tmp))
		return ferry_error(FERRY_E_INVAL,
				   "immutable_days = %s: give whole days from 1 to %d",
				   buf, FERRY_IMM_DAYS_MAX);
	if (be != &ferry_backend_local)
		return ferry_error(FERRY_E_INVAL,
				   "--immutable-days needs a local directory on Linux; %s is not one",
				   r->path);
	return ferry_imm_probe(r->path);
}
static int repo_create(const char *path, const struct ferry_init_opts *opts,
		       const char *pass, size_t passlen, int kdf);

int ferry_repo_init(const char *path, const struct ferry_init_opts *opts)
{
	return repo_create(path, opts, NULL, 0, 0);
}

int ferry_repo_init_encrypted(const char *path,
			      const struct ferry_init_opts *opts,
			      const char *pass, size_t passlen)
{
	return ferry_repo_init_encrypted_kdf(path, opts, pass, passlen, NULL);
}

int ferry_repo_init_encrypted_kdf(const char *path,
				  const struct ferry_init_opts *opts,
				  const char *pass, size_t passlen,
				  const char *kdf)
{
	int k = ferry_kdf_by_name(kdf);

	if (!pass)
		return ferry_error(FERRY_E_INVAL, "no passphrase");
	if (k < 0)
		return ferry_error(FERRY_E_INVAL,
				   "key derivation '%s' is not known (use argon2id or scrypt)",
				   kdf ? kdf : "");
	return repo_create(path, opts, pass, passlen, k);
}

static int repo_create(const char *path, const struct ferry_init_opts *opts,
		       const char *pass, size_t passlen, int kdf)
{
	struct ferry_repo r = { 0 };
	const struct ferry_backend *be;
	uint8_t id[16];
	char extra[CONFIG_MAX];
	int e;

	if (!path || !*path)
		return ferry_error(FERRY_E_INVAL,
				   "no repository given (use --repo or FERRY_REPO)");
	if (ferry_is_remote_url(path))
		return ferry_error(FERRY_E_INVAL,
				   "%s: create the repository on the mover's host (ferry init there), then serve it",
				   path);
	r.format_version = FERRY_FORMAT_VERSION;
	r.block_size = opts && opts->block_size ? opts->block_size
						: FERRY_BLOCK_DEFAULT;
	/* lz4 by default: on bench/run's disk it stores a third more than
	 * zstd:2 (822 against 617 MiB, still under restic's 1117 and
	 * borg's 1332) but backs up 1.8 x and restores 1.5 x as fast, and
	 * a restore is where an operator waits (bench/README.md). */
	r.codec = opts && opts->codec >= 0 ? opts->codec : FERRY_CODEC_LZ4;
	r.level = opts && opts->codec >= 0 ? opts->level : 0;
	if (r.codec == FERRY_CODEC_ZSTD && r.level == 0)
		r.level = FERRY_ZSTD_DEFAULT_LEVEL;
	if (r.block_size < FERRY_BLOCK_MIN || r.block_size > FERRY_BLOCK_MAX ||
	    (r.block_size & (r.block_size - 1)))
		return ferry_error(FERRY_E_INVAL,
				   "block size %u is not a power of two between 64K and 16M",
				   r.block_size);
	if ((e = ferry_random(id, sizeof(id))) != 0)
		return e;
	for (int i = 0; i < 16; i++)
		snprintf(r.repo_id + 2 * i, 3, "%02x", id[i]);
	extra[0] = 0;
	if (opts && opts->extra_config)
		snprintf(extra, sizeof(extra), "%s", opts->extra_config);
	/* Encrypted: the key is made (and the passphrase checked) before
	 * anything is created. */
	if (pass && (e = ferry_repo_key_lines(r.repo_id, pass, passlen, kdf,
					      extra + strlen(extra),
					      sizeof(extra) - strlen(extra))) != 0)
		return e;
	/* Sub-block deltas (delta.c): on unless asked not to. */
	if (!(opts && opts->no_delta)) {
		size_t el = strlen(extra);

		snprintf(extra + el, sizeof(extra) - el,
			 "features = " FERRY_FEATURE_DELTA "\n");
	}
	be = ferry_backend_for(path);
	r.path = (char *)path;
	if (opts && opts->extra_config && (e = check_immutable(&r, be, opts)) != 0)
		return e;
	if ((e = be->create(&r)) != 0)
		return e;
	e = write_config(&r, extra);
	r.ops->close(&r);
	return e;
}

int ferry_repo_open(const char *path, struct ferry_repo **out)
{
	struct ferry_repo *r;
	char *text = NULL, why[160];
	size_t n;
	int e;

	if (!path || !*path)
		return ferry_error(FERRY_E_INVAL,
				   "no repository given (use --repo or FERRY_REPO)");
	if (ferry_is_remote_url(path))
		return ferry_repo_open_remote(path, NULL, out);
	r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strdup(path))) {
		free(r);
		return FERRY_E_NOMEM;
	}
	if ((e = ferry_backend_for(path)->attach(r)) != 0)
		goto fail;
	if (!(text = calloc(1, CONFIG_MAX + 1))) {
		e = FERRY_E_NOMEM;
		goto fail;
	}
	if ((e = r->ops->config_get(r, text, CONFIG_MAX, &n)) != 0)
		goto fail;
	text[n] = 0;
	if (!(r->config_text = strdup(text))) {
		e = FERRY_E_NOMEM;
		goto fail;
	}
	if ((e = parse_config(r, text, why, sizeof(why))) != 0) {
		if (e == FERRY_E_NOTREPO)
			ferry_error(e, "%s is not a ferry repository (bad config: %s)",
				    path, why);
		goto fail;
	}
	free(text);
	text = NULL;
	if (r->ops->ready && (e = r->ops->ready(r)) != 0)
		goto fail;
	*out = r;
	return 0;
fail:
	free(text);
	ferry_repo_free(r);
	return e;
}

void ferry_repo_free(struct ferry_repo *r)
{
	if (!r)
		return;
	if (r->ops)
		r->ops->close(r);
	ferry_repo_keys_free(r);
	free(r->config_text);
	free(r->path);
	free(r);
}

uint32_t ferry_repo_block_size(const struct ferry_repo *r)
{
	return r->block_size;
}

/* ---- restore points ------------------------------------------------- */

struct plist {
	struct ferry_repo *repo;
	const char *name;
	struct ferry_point *v;
	size_t n, cap;
	int err;
	int imm; /* hardened repository: read each point's expiry */
};

/* The last verify of point ID (REPO/verify/ID), if any. */
static void verify_record(struct ferry_repo *r, const char *id,
			  struct ferry_point *p)
{
	char text[256], *save = NULL;
	size_t len;

	if (!r->ops->record_get ||
	    r->ops->record_get(r, "verify", id, text, sizeof(text) - 1, &len))
		return;
	text[len] = 0;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "time_ns=", 8))
			p->verified_ns = strtoull(l + 8, NULL, 10);
		else if (!strcmp(l, "result=ok"))
			p->verified = 1;
		else if (!strcmp(l, "result=damaged"))
			p->verified = -1;
		else if (!strncmp(l, "sample=", 7))
			p->verified_sample = (int)strtol(l + 7, NULL, 10);
	}
}

static int plist_add(const char *id, void *arg)
{
	struct plist *pl = arg;
	struct ferry_mreader *m;
	struct ferry_point p;
	int e;

	memset(&p, 0, sizeof(p));
	if (pl->repo->ops->point_stat) {
		e = pl->repo->ops->point_stat(pl->repo, id, &p);
	} else if ((e = ferry_mreader_open(pl->repo, id, &m, &p)) == 0) {
		ferry_mreader_free(m);
	}
	if (e == 0) {
		/* listed */
	} else if (e == FERRY_E_CORRUPT || e == FERRY_E_VERSION) {
		memset(&p, 0, sizeof(p));
		snprintf(p.id, sizeof(p.id), "%s", id);
		p.corrupt = 1;
	} else if (e == FERRY_E_NOTFOUND) {
		return 0; /* removed meanwhile */
	} else {
		return e;
	}
	if (pl->name && (p.corrupt || strcmp(p.name, pl->name)))
		return 0;
	verify_record(pl->repo, id, &p);
	if (pl->imm && ferry_point_expiry(pl->repo, id, p.created_ns,
					  &p.immutable_until_ns) != 0)
		p.immutable_until_ns = UINT64_MAX;
	if (pl->n == pl->cap) {
		size_t nc = pl->cap ? pl->cap * 2 : 16;
		struct ferry_point *nv = realloc(pl->v, nc * sizeof(*nv));

		if (!nv)
			return FERRY_E_NOMEM;
		pl->v = nv;
		pl->cap = nc;
	}
	pl->v[pl->n++] = p;
	return 0;
}

static int point_cmp(const void *a, const void *b)
{
	const struct ferry_point *x = a, *y = b;

	if (x->created_ns != y->created_ns)
		return x->created_ns < y->created_ns ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int collect_points(struct ferry_repo *r, const char *name,
			  struct plist *pl)
{
	int e;

	memset(pl, 0, sizeof(*pl));
	pl->repo = r;
	pl->name = name;
	pl->imm = ferry_imm_days(r) > 0;
	if ((e = r->ops->point_list(r, plist_add, pl)) != 0) {
		free(pl->v);
		return e;
	}
	if (pl->n)
		qsort(pl->v, pl->n, sizeof(*pl->v), point_cmp);
	return 0;
}

int ferry_points_list(struct ferry_repo *r, const char *name, ferry_point_cb cb,
		      void *arg)
{
	struct plist pl;
	int e;

	if ((e = collect_points(r, name, &pl)) != 0)
		return e;
	for (size_t i = 0; i < pl.n && e == 0; i++)
		e = cb(&pl.v[i], arg);
	free(pl.v);
	return e;
}

static int is_hex(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

int ferry_point_resolve(struct ferry_repo *r, const char *spec,
			struct ferry_point *out)
{
	struct plist pl;
	const struct ferry_point *hit = NULL;
	size_t n = strlen(spec), matches = 0;
	int e;

	if ((e = collect_points(r, NULL, &pl)) != 0)
		return e;
	/* An exact id, then the latest point of a name, then an id prefix
	 * of at least 4 hex digits. */
	for (size_t i = 0; i < pl.n; i++)
		if (!strcmp(pl.v[i].id, spec))
			hit = &pl.v[i];
	for (size_t i = 0; !hit && i < pl.n; i++)
		if (!pl.v[i].corrupt && !strcmp(pl.v[i].name, spec))
			hit = NULL, matches = i + 1;
	if (!hit && matches)
		hit = &pl.v[matches - 1];
	if (!hit && n >= 4 && n < FERRY_ID_LEN && is_hex(spec)) {
		matches = 0;
		for (size_t i = 0; i < pl.n; i++)
			if (!strncmp(pl.v[i].id, spec, n)) {
				matches++;
				hit = &pl.v[i];
			}
		if (matches > 1) {
			free(pl.v);
			return ferry_error(FERRY_E_AMBIGUOUS,
					   "%s matches %zu restore points; give more digits",
					   spec, matches);
		}
	}
	if (!hit) {
		free(pl.v);
		return ferry_error(FERRY_E_NOTFOUND,
				   "no restore point or name '%s' in %s", spec,
				   r->path);
	}
	if (hit->corrupt) {
		struct ferry_mreader *m;
		char id[FERRY_ID_LEN + 1];

		/* Open it again for the reason, so that a newer format is told
		 * apart from damage. */
		memcpy(id, hit->id, sizeof(id));
		free(pl.v);
		if ((e = ferry_mreader_open(r, id, &m, out)) != 0)
			return e;
		ferry_mreader_free(m);
		return ferry_error(FERRY_E_CORRUPT,
				   "manifest of restore point %s read differently twice",
				   id);
	}
	*out = *hit;
	free(pl.v);
	return 0;
}

/* ---- totals --------------------------------------------------------- */

/* Chunk totals: the listing gives each chunk's stored size; its
 * uncompressed size is in its header, one small read (a ranged GET on
 * object storage) per chunk.  Those reads run INFO_THREADS at a time in
 * batches of INFO_BATCH listed chunks (bounded memory, any repository
 * size): on a bucket they wait on round trips, not on the CPU. */
#define INFO_BATCH 1024
#define INFO_THREADS 16

struct info_item {
	uint8_t h[FERRY_HASH_LEN];
	uint64_t size;
	uint32_t raw; /* 0 when the header did not read or parse */
	int cached;   /* RAW came from the local cache: no read */
};

struct info_walk {
	struct ferry_repo *repo;
	struct ferry_repo_info *info;
	struct info_item *batch;
	size_t n;
	struct ferry_info_cache *cache;
};

static int info_head(void *item, int worker, void *arg)
{
	struct info_item *it = *(struct info_item **)item;
	struct ferry_repo *r = arg;
	uint8_t head[FERRY_CHUNK_HDR_MAX];
	size_t hn = it->size < sizeof(head) ? (size_t)it->size : sizeof(head);
	uint32_t raw, plen;
	int codec;

	(void)worker;
	if (it->cached)
		return 0;
	/* Damaged chunks are verify's business; info just skips them.  The
	 * header parse reads at most the header (HN bytes are there when
	 * the chunk is not shorter than its header), then compares the
	 * payload length with SIZE. */
	it->raw = 0;
	if (r->ops->get_chunk_head(r, it->h, head, hn) == 0 &&
	    ferry_chunk_header(head, (size_t)it->size, &raw, &plen, &codec) == 0)
		it->raw = raw;
	return 0;
}

static int info_flush(struct info_walk *w)
{
	struct ferry_workq *q = NULL;
	int e, qe, nt;

	if (!w->n)
		return 0;
	nt = w->n < INFO_THREADS ? (int)w->n : INFO_THREADS;
	/* Heads run in place: the queue carries pointers into the batch. */
	if ((e = ferry_workq_new(nt, sizeof(struct info_item *), w->n,
				 info_head, w->repo, &q)) != 0)
		return e;
	for (size_t i = 0; i < w->n && e == 0; i++) {
		struct info_item *it = &w->batch[i];

		if (!it->cached)
			e = ferry_workq_push(q, &it);
	}
	qe = ferry_workq_finish(q);
	if (e == 0)
		e = qe;
	for (size_t i = 0; i < w->n && e == 0; i++) {
		w->info->chunk_raw_bytes += w->batch[i].raw;
		ferry_info_cache_add(w->cache, w->batch[i].h, w->batch[i].size,
				     w->batch[i].raw);
	}
	w->n = 0;
	return e;
}

static int info_chunk(const uint8_t h[FERRY_HASH_LEN], uint64_t size, void *arg)
{
	struct info_walk *w = arg;

	w->info->chunk_count++;
	w->info->stored_bytes += size;
	memcpy(w->batch[w->n].h, h, FERRY_HASH_LEN);
	w->batch[w->n].size = size;
	w->batch[w->n].raw = 0;
	w->batch[w->n].cached = ferry_info_cache_lookup(w->cache, h, size,
							&w->batch[w->n].raw);
	if (++w->n == INFO_BATCH)
		return info_flush(w);
	return 0;
}

static int count_point(const char *id, void *arg)
{
	(void)id;
	((struct ferry_repo_info *)arg)->point_count++;
	return 0;
}

void ferry_repo_info_start(const struct ferry_repo *r, struct ferry_repo_info *info)
{
	memset(info, 0, sizeof(*info));
	info->format_version = r->format_version;
	info->block_size = r->block_size;
	info->codec = r->codec;
	info->level = r->level;
	memcpy(info->repo_id, r->repo_id, sizeof(info->repo_id));
}

int ferry_repo_get_info(struct ferry_repo *r, struct ferry_repo_info *info)
{
	struct plist pl;
	int e;

	if (r->ops->get_info)
		return r->ops->get_info(r, info);
	ferry_repo_info_start(r, info);
	struct info_walk w = { r, info, NULL, 0, NULL };

	if (!(w.batch = malloc(INFO_BATCH * sizeof(*w.batch))))
		return FERRY_E_NOMEM;
	w.cache = ferry_info_cache_open(r);
	e = r->ops->list_chunks(r, info_chunk, &w);
	if (e == 0)
		e = info_flush(&w);
	ferry_info_cache_finish(w.cache, e == 0);
	free(w.batch);
	if (e)
		return e;
	/* Without the key (a mover) the manifests cannot be read: points
	 * are counted, their sizes are the source's business. */
	if (r->encrypted && !r->keys)
		return r->ops->point_list(r, count_point, info);
	if ((e = collect_points(r, NULL, &pl)) != 0)
		return e;
	for (size_t i = 0; i < pl.n; i++) {
		if (pl.v[i].corrupt)
			continue;
		info->point_count++;
		info->logical_bytes += pl.v[i].disk_size;
		info->referenced_bytes += pl.v[i].disk_size - pl.v[i].bytes_zero;
	}
	free(pl.v);
	return 0;
}
