/* repo.c - opening and creating repositories (the config file, its format
 * version), listing and resolving restore points, and repository totals. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

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

static int write_config(const char *path, const struct ferry_repo *r)
{
	char file[4200], tmp[4200], text[512];
	int fd, e, n;

	n = snprintf(text, sizeof(text),
		     "# ferry repository: do not edit (see docs/format.md)\n"
		     "format = ferry-repository\n"
		     "version = %u\n"
		     "id = %s\n"
		     "block_size = %u\n"
		     "compression = %s\n"
		     "level = %d\n",
		     r->format_version, r->repo_id, r->block_size,
		     ferry_codec_name(r->codec), r->level);
	snprintf(file, sizeof(file), "%s/config", path);
	snprintf(tmp, sizeof(tmp), "%s/.config.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return ferry_error(ferry_errno_code(errno, FERRY_E_IO),
				   "create %s: %s", tmp, strerror(errno));
	e = ferry_write_all(fd, text, (size_t)n);
	if (e == 0 && fsync(fd) < 0)
		e = -errno;
	close(fd);
	if (e == 0 && rename(tmp, file) < 0)
		e = -errno;
	if (e) {
		unlink(tmp);
		return ferry_error(ferry_errno_code(-e, FERRY_E_IO),
				   "write %s: %s", file, strerror(-e));
	}
	return ferry_fsync_dir(path);
}

static int parse_config(struct ferry_repo *r, char *text)
{
	int have_format = 0, have_version = 0, have_bs = 0, have_codec = 0;
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq, *k, *v, *end;

		if (line[0] == '#' || !line[0])
			continue;
		eq = strchr(line, '=');
		if (!eq)
			return FERRY_E_NOTREPO;
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
				return FERRY_E_NOTREPO;
			have_format = 1;
		} else if (!strcmp(k, "version")) {
			unsigned long ver = strtoul(v, &end, 10);

			if (*end || !*v)
				return FERRY_E_NOTREPO;
			if (ver != FERRY_FORMAT_VERSION)
				return ferry_error(FERRY_E_VERSION,
						   "%s has repository format version %lu; this ferry reads version %d",
						   r->path, ver, FERRY_FORMAT_VERSION);
			r->format_version = (uint32_t)ver;
			have_version = 1;
		} else if (!strcmp(k, "id")) {
			snprintf(r->repo_id, sizeof(r->repo_id), "%s", v);
		} else if (!strcmp(k, "block_size")) {
			unsigned long bs = strtoul(v, &end, 10);

			if (*end || bs < FERRY_BLOCK_MIN || bs > FERRY_BLOCK_MAX)
				return FERRY_E_NOTREPO;
			r->block_size = (uint32_t)bs;
			have_bs = 1;
		} else if (!strcmp(k, "compression")) {
			int lv;

			if (ferry_codec_parse(v, &r->codec, &lv))
				return FERRY_E_NOTREPO;
			have_codec = 1;
		} else if (!strcmp(k, "level")) {
			r->level = (int)strtol(v, NULL, 10);
		}
	}
	if (!have_format || !have_version || !have_bs || !have_codec)
		return FERRY_E_NOTREPO;
	return 0;
}

int ferry_repo_init(const char *path, const struct ferry_init_opts *opts)
{
	struct ferry_repo r = { 0 };
	struct stat st;
	uint8_t id[16];
	int e;

	r.format_version = FERRY_FORMAT_VERSION;
	r.block_size = opts && opts->block_size ? opts->block_size
						: FERRY_BLOCK_DEFAULT;
	r.codec = opts && opts->codec >= 0 ? opts->codec : FERRY_CODEC_ZSTD;
	r.level = opts && opts->codec >= 0 ? opts->level : FERRY_ZSTD_DEFAULT_LEVEL;
	if (r.codec == FERRY_CODEC_ZSTD && r.level == 0)
		r.level = FERRY_ZSTD_DEFAULT_LEVEL;
	if (r.block_size < FERRY_BLOCK_MIN || r.block_size > FERRY_BLOCK_MAX ||
	    (r.block_size & (r.block_size - 1)))
		return ferry_error(FERRY_E_INVAL,
				   "block size %u is not a power of two between 64K and 16M",
				   r.block_size);
	if (stat(path, &st) == 0) {
		char cfg[4200];

		snprintf(cfg, sizeof(cfg), "%s/config", path);
		if (access(cfg, F_OK) == 0)
			return ferry_error(FERRY_E_EXISTS,
					   "%s is already a ferry repository", path);
		if (!S_ISDIR(st.st_mode) || rmdir(path) < 0)
			return ferry_error(FERRY_E_EXISTS,
					   "%s exists and is not an empty directory",
					   path);
	}
	if ((e = ferry_random(id, sizeof(id))) != 0)
		return e;
	for (int i = 0; i < 16; i++)
		snprintf(r.repo_id + 2 * i, 3, "%02x", id[i]);
	if ((e = ferry_store_local_create(path)) != 0)
		return e;
	/* The config is written last: a half-made repository has none and
	 * is refused as "not a repository". */
	return write_config(path, &r);
}

int ferry_repo_open(const char *path, struct ferry_repo **out)
{
	struct ferry_repo *r;
	char file[4200], *text = NULL;
	ssize_t n;
	int fd, e;

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
	snprintf(file, sizeof(file), "%s/config", path);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno == ENOENT || errno == ENOTDIR
			    ? ferry_error(FERRY_E_NOTREPO,
					  "%s is not a ferry repository (no config file)",
					  path)
			    : ferry_error(FERRY_E_IO, "open %s: %s", file,
					  strerror(errno));
		goto fail;
	}
	text = calloc(1, CONFIG_MAX + 1);
	if (!text) {
		close(fd);
		e = FERRY_E_NOMEM;
		goto fail;
	}
	n = ferry_pread_full(fd, text, CONFIG_MAX, 0);
	close(fd);
	if (n < 0) {
		e = ferry_error(FERRY_E_IO, "read %s: %s", file, strerror((int)-n));
		goto fail;
	}
	text[n] = 0;
	if ((e = parse_config(r, text)) != 0) {
		if (e == FERRY_E_NOTREPO)
			ferry_error(e, "%s is not a ferry repository (bad config)",
				    path);
		goto fail;
	}
	free(text);
	text = NULL;
	if ((e = ferry_store_local_open(r)) != 0)
		goto fail;
	*out = r;
	return 0;
fail:
	free(text);
	free(r->path);
	free(r);
	return e;
}

void ferry_repo_free(struct ferry_repo *r)
{
	if (!r)
		return;
	if (r->ops)
		r->ops->close(r);
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

struct info_walk {
	struct ferry_repo *repo;
	struct ferry_repo_info *info;
};

static int info_chunk(const uint8_t h[FERRY_HASH_LEN], uint64_t size, void *arg)
{
	struct info_walk *w = arg;
	uint8_t head[FERRY_CHUNK_HDR];
	uint32_t raw, plen;
	int codec;

	w->info->chunk_count++;
	w->info->stored_bytes += size;
	/* Damaged chunks are verify's business; info just skips them. */
	if (w->repo->ops->get_chunk_head(w->repo, h, head, sizeof(head)) == 0 &&
	    ferry_chunk_header(head, (size_t)size, &raw, &plen, &codec) == 0)
		w->info->chunk_raw_bytes += raw;
	return 0;
}

int ferry_repo_get_info(struct ferry_repo *r, struct ferry_repo_info *info)
{
	struct plist pl;
	int e;

	if (r->ops->get_info)
		return r->ops->get_info(r, info);
	memset(info, 0, sizeof(*info));
	info->format_version = r->format_version;
	info->block_size = r->block_size;
	info->codec = r->codec;
	info->level = r->level;
	memcpy(info->repo_id, r->repo_id, sizeof(info->repo_id));
	struct info_walk w = { r, info };

	if ((e = r->ops->list_chunks(r, info_chunk, &w)) != 0)
		return e;
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
