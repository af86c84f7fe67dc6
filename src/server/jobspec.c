/* jobspec.c - a job as the REST API takes it: a JSON object checked field
 * by field (unknown fields, types, ranges, cron syntax) into struct
 * srv_job, and back.  Untrusted input: every request body passes here or
 * through srv_json_check_keys. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ferry/ferry.h"
#include "srv.h"

struct json_object *srv_json_parse(const char *buf, size_t len, char *err,
				   size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error je;

	if (len == 0) {
		snprintf(err, errlen, "request body is empty: send a JSON object");
		return NULL;
	}
	if (!(tok = json_tokener_new_ex(32))) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	je = json_tokener_get_error(tok);
	if (!o || je != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		if (o && je == json_tokener_success)
			snprintf(err, errlen, "malformed JSON: text after the object at byte %zu",
				 json_tokener_get_parse_end(tok));
		else
			snprintf(err, errlen, "malformed JSON at byte %zu: %s",
				 json_tokener_get_parse_end(tok),
				 je == json_tokener_continue ? "unexpected end of input"
							     : json_tokener_error_desc(je));
		json_object_put(o);
		json_tokener_free(tok);
		return NULL;
	}
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "expected a JSON object, got %s",
			 json_type_to_name(json_object_get_type(o)));
		json_object_put(o);
		return NULL;
	}
	return o;
}

int srv_json_check_keys(struct json_object *o, const char *const *keys,
			char *err, size_t errlen)
{
	json_object_object_foreach(o, k, v) {
		int found = 0;

		(void)v;
		for (const char *const *p = keys; *p; p++)
			if (!strcmp(*p, k))
				found = 1;
		if (!found) {
			size_t n = 0;

			n += (size_t)snprintf(err, errlen, "unknown field '%.64s' (known:", k);
			for (const char *const *p = keys; *p && n < errlen; p++)
				n += (size_t)snprintf(err + n, errlen - n, " %s", *p);
			if (n < errlen)
				snprintf(err + n, errlen - n, ")");
			return -1;
		}
	}
	return 0;
}

int srv_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '-' || s[0] == '.')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return 0;
	return 1;
}

static int get_str(struct json_object *o, const char *key, char *dst,
		   size_t cap, int required, char *err, size_t errlen)
{
	struct json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required) {
			snprintf(err, errlen, "field '%s' is required", key);
			return -1;
		}
		return 0;
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "field '%s' must be a string", key);
		return -1;
	}
	s = json_object_get_string(v);
	if (strlen(s) >= cap || (size_t)json_object_get_string_len(v) != strlen(s)) {
		snprintf(err, errlen, "field '%s' is too long (at most %zu bytes) or holds a NUL",
			 key, cap - 1);
		return -1;
	}
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int get_int(struct json_object *o, const char *key, int *dst, int lo,
		   int hi, char *err, size_t errlen)
{
	struct json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_int)) {
		snprintf(err, errlen, "field '%s' must be a whole number", key);
		return -1;
	}
	x = json_object_get_int64(v);
	if (x < lo || x > hi) {
		snprintf(err, errlen, "field '%s' must be %d to %d, not %lld", key, lo,
			 hi, (long long)x);
		return -1;
	}
	*dst = (int)x;
	return 0;
}

static const char *const job_keys[] = {
	"name", "sources", "repo", "block_size", "compression", "bitmap",
	"schedule", "retries", "retry_wait", "retention", "limit_rate",
	"pre_script", "post_script", "threads", "enabled", NULL,
};
static const char *const retention_keys[] = {
	"keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly",
	"keep_yearly", NULL,
};
static const char *const source_keys[] = { "name", "source", NULL };

static const char *base_name(const char *s)
{
	const char *b = strrchr(s, '/');

	return b && b[1] ? b + 1 : s;
}

int srv_job_from_json(struct json_object *o, struct srv_job *j, char *err,
		      size_t errlen)
{
	struct json_object *v;
	char bs[32] = "";
	size_t n;

	memset(j, 0, sizeof(*j));
	j->enabled = 1;
	if (srv_json_check_keys(o, job_keys, err, errlen) ||
	    get_str(o, "name", j->name, sizeof(j->name), 1, err, errlen) ||
	    get_str(o, "repo", j->repo, sizeof(j->repo), 1, err, errlen) ||
	    get_str(o, "compression", j->compression, sizeof(j->compression), 0, err, errlen) ||
	    get_str(o, "bitmap", j->bitmap, sizeof(j->bitmap), 0, err, errlen) ||
	    get_str(o, "schedule", j->schedule, sizeof(j->schedule), 0, err, errlen) ||
	    get_str(o, "limit_rate", j->limit_rate, sizeof(j->limit_rate), 0, err, errlen) ||
	    get_str(o, "pre_script", j->pre_script, sizeof(j->pre_script), 0, err, errlen) ||
	    get_str(o, "post_script", j->post_script, sizeof(j->post_script), 0, err, errlen) ||
	    get_str(o, "block_size", bs, sizeof(bs), 0, err, errlen) ||
	    get_int(o, "retries", &j->retries, 0, 100, err, errlen) ||
	    get_int(o, "retry_wait", &j->retry_wait, 0, 86400, err, errlen) ||
	    get_int(o, "threads", &j->threads, 0, 256, err, errlen))
		return -1;
	if (!srv_name_valid(j->name)) {
		snprintf(err, errlen, "job name '%.64s': use 1-64 letters, digits, '.', '_' "
			 "or '-' (not first)", j->name);
		return -1;
	}
	if (!srv_name_valid(j->repo)) {
		snprintf(err, errlen, "repo name '%.64s' is not a valid name", j->repo);
		return -1;
	}
	if (bs[0]) {
		if (ferry_size_parse(bs, &j->block_size) || j->block_size < 4096 ||
		    j->block_size > (64u << 20) || (j->block_size & (j->block_size - 1))) {
			snprintf(err, errlen, "block_size '%s': give a power of two from 4K to 64M", bs);
			return -1;
		}
	}
	if (j->compression[0]) {
		int codec, level;

		if (ferry_codec_parse(j->compression, &codec, &level)) {
			snprintf(err, errlen, "compression '%s': give zstd, zstd:N, lz4 or none",
				 j->compression);
			return -1;
		}
	}
	if (j->limit_rate[0]) {
		uint64_t r;

		if (ferry_size_parse(j->limit_rate, &r) || r == 0) {
			snprintf(err, errlen, "limit_rate '%s': give bytes per second, e.g. 50M",
				 j->limit_rate);
			return -1;
		}
	}
	if (json_object_object_get_ex(o, "enabled", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			snprintf(err, errlen, "field 'enabled' must be true or false");
			return -1;
		}
		j->enabled = json_object_get_boolean(v);
	}
	if (!strncmp(j->schedule, "after ", 6)) {
		const char *a = j->schedule + 6;

		while (*a == ' ')
			a++;
		if (!srv_name_valid(a)) {
			snprintf(err, errlen, "schedule '%.64s': 'after JOB' needs a job name", j->schedule);
			return -1;
		}
		if (!strcmp(a, j->name)) {
			snprintf(err, errlen, "schedule: a job cannot run after itself");
			return -1;
		}
		snprintf(j->after, sizeof(j->after), "%s", a);
	} else if (j->schedule[0]) {
		struct srv_cron c;
		char e2[256];

		if (srv_cron_parse(j->schedule, &c, e2, sizeof(e2))) {
			snprintf(err, errlen, "invalid schedule: %s", e2);
			return -1;
		}
		if (!srv_cron_next(&c, time(NULL))) {
			snprintf(err, errlen, "invalid schedule: '%.64s' matches no date in the "
				 "next 5 years", j->schedule);
			return -1;
		}
	}
	if (json_object_object_get_ex(o, "retention", &v) &&
	    !json_object_is_type(v, json_type_null)) {
		if (!json_object_is_type(v, json_type_object)) {
			snprintf(err, errlen, "field 'retention' must be an object with keep_* counts");
			return -1;
		}
		if (srv_json_check_keys(v, retention_keys, err, errlen) ||
		    get_int(v, "keep_last", &j->keep_last, 0, 1000000, err, errlen) ||
		    get_int(v, "keep_hourly", &j->keep_hourly, 0, 1000000, err, errlen) ||
		    get_int(v, "keep_daily", &j->keep_daily, 0, 1000000, err, errlen) ||
		    get_int(v, "keep_weekly", &j->keep_weekly, 0, 1000000, err, errlen) ||
		    get_int(v, "keep_monthly", &j->keep_monthly, 0, 1000000, err, errlen) ||
		    get_int(v, "keep_yearly", &j->keep_yearly, 0, 1000000, err, errlen))
			return -1;
	}
	if (!json_object_object_get_ex(o, "sources", &v) ||
	    !json_object_is_type(v, json_type_array) ||
	    (n = json_object_array_length(v)) == 0) {
		snprintf(err, errlen, "field 'sources' is required: an array of disks "
			 "(\"PATH\" or {\"name\":..., \"source\":...})");
		return -1;
	}
	if (n > SRV_MAX_DISKS) {
		snprintf(err, errlen, "a job has at most %d sources, not %zu", SRV_MAX_DISKS, n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(v, i);
		char *nm = j->disk_name[i], *src = j->disk_source[i];

		if (json_object_is_type(d, json_type_string)) {
			const char *s = json_object_get_string(d);

			if (strlen(s) >= sizeof(j->disk_source[i]) || !s[0]) {
				snprintf(err, errlen, "sources[%zu]: empty or too long", i);
				return -1;
			}
			memcpy(src, s, strlen(s) + 1);
			snprintf(nm, sizeof(j->disk_name[i]), "%.200s", base_name(s));
		} else if (json_object_is_type(d, json_type_object)) {
			char e2[400];

			if (srv_json_check_keys(d, source_keys, e2, sizeof(e2)) ||
			    get_str(d, "source", src, sizeof(j->disk_source[i]), 1, e2, sizeof(e2)) ||
			    get_str(d, "name", nm, sizeof(j->disk_name[i]), 0, e2, sizeof(e2))) {
				snprintf(err, errlen, "sources[%zu]: %s", i, e2);
				return -1;
			}
			if (!nm[0])
				snprintf(nm, sizeof(j->disk_name[i]), "%.200s", base_name(src));
		} else {
			snprintf(err, errlen, "sources[%zu]: give a string or an object", i);
			return -1;
		}
		if (!src[0] || !nm[0] || strchr(nm, '/') || strchr(nm, '\n')) {
			snprintf(err, errlen, "sources[%zu]: a disk needs a source and a name "
				 "without '/'", i);
			return -1;
		}
		for (size_t k = 0; k < i; k++)
			if (!strcmp(j->disk_name[k], nm)) {
				snprintf(err, errlen, "sources[%zu]: disk name '%s' is used twice "
					 "in this job; name the disks", i, nm);
				return -1;
			}
	}
	j->ndisks = (int)n;
	return 0;
}

struct json_object *srv_job_to_json(const struct srv_job *j)
{
	struct json_object *o = json_object_new_object(), *a, *r;

	json_object_object_add(o, "name", json_object_new_string(j->name));
	a = json_object_new_array();
	for (int i = 0; i < j->ndisks; i++) {
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "name", json_object_new_string(j->disk_name[i]));
		json_object_object_add(d, "source", json_object_new_string(j->disk_source[i]));
		json_object_array_add(a, d);
	}
	json_object_object_add(o, "sources", a);
	json_object_object_add(o, "repo", json_object_new_string(j->repo));
	if (j->block_size) {
		char bs[32];

		snprintf(bs, sizeof(bs), "%llu", (unsigned long long)j->block_size);
		json_object_object_add(o, "block_size", json_object_new_string(bs));
	}
	if (j->compression[0])
		json_object_object_add(o, "compression", json_object_new_string(j->compression));
	if (j->bitmap[0])
		json_object_object_add(o, "bitmap", json_object_new_string(j->bitmap));
	json_object_object_add(o, "schedule", json_object_new_string(j->schedule));
	json_object_object_add(o, "retries", json_object_new_int(j->retries));
	json_object_object_add(o, "retry_wait", json_object_new_int(j->retry_wait));
	r = json_object_new_object();
#define KEEP(f) if (j->f) json_object_object_add(r, #f, json_object_new_int(j->f))
	KEEP(keep_last); KEEP(keep_hourly); KEEP(keep_daily); KEEP(keep_weekly);
	KEEP(keep_monthly); KEEP(keep_yearly);
#undef KEEP
	json_object_object_add(o, "retention", r);
	if (j->limit_rate[0])
		json_object_object_add(o, "limit_rate", json_object_new_string(j->limit_rate));
	if (j->pre_script[0])
		json_object_object_add(o, "pre_script", json_object_new_string(j->pre_script));
	if (j->post_script[0])
		json_object_object_add(o, "post_script", json_object_new_string(j->post_script));
	if (j->threads)
		json_object_object_add(o, "threads", json_object_new_int(j->threads));
	json_object_object_add(o, "enabled", json_object_new_boolean(j->enabled));
	return o;
}
