/* cmd_job.c - `ferry job`: create, list, show, run, enable, disable and
 * delete backup jobs on the server. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cli/cli.h"
#include "srv.h"
#include "ctl.h"

static const char job_usage[] =
	"create NAME --repo REPO --source SRC... [options] | list | show NAME | "
	"run NAME [--wait] | enable NAME | disable NAME | delete NAME";

static const char job_help[] =
	"Backup jobs on the server.  A job backs up a list of disks into one\n"
	"repository; each run is a session with one task per disk, which the\n"
	"proxies run.  See docs/server.md.\n\n"
	"  create NAME        define a job:\n"
	"    --repo REPO          repository (ferry repo add)\n"
	"    --source SRC         a disk as the proxies see it (file, device,\n"
	"                         nbd://..., qcow2:PATH); its name is the base name\n"
	"    --disk NAME=SRC      a disk with an explicit name; repeat either\n"
	"    --schedule EXPR      cron 'MIN HOUR DOM MON DOW' (server's local time),\n"
	"                         @hourly/@daily/@weekly/@monthly, or 'after JOB'\n"
	"                         (when JOB's session succeeds); none: run by hand\n"
	"    --retries N          run a failed task again up to N times (0)\n"
	"    --retry-wait S       seconds between tries (0)\n"
	"    --keep-last N, --keep-hourly N, --keep-daily N, --keep-weekly N,\n"
	"    --keep-monthly N, --keep-yearly N\n"
	"                         retention after each successful session (per disk;\n"
	"                         needs the repository's --path)\n"
	"    --block-size SIZE    the block size the repository must have\n"
	"    --compression C      the codec expected (recorded; set at ferry init)\n"
	"    --bitmap NAME        change tracking: QEMU dirty bitmap (NBD/qcow2)\n"
	"    --limit-rate RATE    bytes per second per task towards the mover\n"
	"    --pre-script CMD, --post-script CMD   guest processing on the proxy\n"
	"    --threads N          reader threads per task\n"
	"    --disabled           create it disabled\n"
	"    --spec FILE          the whole job as JSON (docs/openapi.yaml)\n"
	"  list               jobs, schedule, next run, last session\n"
	"  show NAME          a job's specification\n"
	"  run NAME           start a session now; --wait follows it to the end\n"
	"                     (exit 0 when it succeeded, 1 when it failed)\n"
	"  enable|disable NAME   turn scheduling on or off\n"
	"  delete NAME        remove the job (sessions and points stay in the catalog)\n";

enum {
	J_REPO = 0x100, J_SOURCE, J_DISK, J_SCHED, J_RETRIES, J_WAIT, J_KL, J_KH, J_KD,
	J_KW, J_KM, J_KY, J_BS, J_COMP, J_BITMAP, J_RATE, J_PRE, J_POST, J_THREADS,
	J_DISABLED, J_SPEC, J_FOLLOW,
};

static int add_int(struct json_object *o, const char *key, const char *v, int lo, int hi)
{
	int n;

	if (cli_parse_int(v, lo, hi, &n)) {
		fprintf(stderr, "ferry: job: %s: give %d to %d\n", key, lo, hi);
		return EXIT_USAGE;
	}
	json_object_object_add(o, key, json_object_new_int(n));
	return 0;
}

struct job_args {
	struct json_object *spec, *srcs, *ret;
	const char *spec_file;
	int follow;
};

static int job_option(void *ctx, int c, const char *arg)
{
	struct job_args *ja = ctx;
	struct json_object *spec = ja->spec, *ret = ja->ret;

	switch (c) {
	case J_REPO: json_object_object_add(spec, "repo", json_object_new_string(arg)); break;
	case J_SOURCE: json_object_array_add(ja->srcs, json_object_new_string(arg)); break;
	case J_DISK: {
		const char *eq = strchr(arg, '=');
		struct json_object *d;

		if (!eq || eq == arg || !eq[1]) {
			fprintf(stderr, "ferry: job: --disk NAME=SOURCE\n");
			return EXIT_USAGE;
		}
		d = json_object_new_object();
		json_object_object_add(d, "name", json_object_new_string_len(arg, (int)(eq - arg)));
		json_object_object_add(d, "source", json_object_new_string(eq + 1));
		json_object_array_add(ja->srcs, d);
		break;
	}
	case J_SCHED: json_object_object_add(spec, "schedule", json_object_new_string(arg)); break;
	case J_RETRIES: return add_int(spec, "retries", arg, 0, 100);
	case J_WAIT: return add_int(spec, "retry_wait", arg, 0, 86400);
	case J_KL: return add_int(ret, "keep_last", arg, 0, 1000000);
	case J_KH: return add_int(ret, "keep_hourly", arg, 0, 1000000);
	case J_KD: return add_int(ret, "keep_daily", arg, 0, 1000000);
	case J_KW: return add_int(ret, "keep_weekly", arg, 0, 1000000);
	case J_KM: return add_int(ret, "keep_monthly", arg, 0, 1000000);
	case J_KY: return add_int(ret, "keep_yearly", arg, 0, 1000000);
	case J_BS: json_object_object_add(spec, "block_size", json_object_new_string(arg)); break;
	case J_COMP: json_object_object_add(spec, "compression", json_object_new_string(arg)); break;
	case J_BITMAP: json_object_object_add(spec, "bitmap", json_object_new_string(arg)); break;
	case J_RATE: json_object_object_add(spec, "limit_rate", json_object_new_string(arg)); break;
	case J_PRE: json_object_object_add(spec, "pre_script", json_object_new_string(arg)); break;
	case J_POST: json_object_object_add(spec, "post_script", json_object_new_string(arg)); break;
	case J_THREADS: return add_int(spec, "threads", arg, 1, 256);
	case J_DISABLED: json_object_object_add(spec, "enabled", json_object_new_boolean(0)); break;
	case J_SPEC: ja->spec_file = arg; break;
	case J_FOLLOW: ja->follow = 1; break;
	default: return -1;
	}
	return 0;
}

static char *read_all(const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *nb;

			cap = (len + 4096 + 1) * 2;
			if (cap > (8u << 20) || !(nb = realloc(buf, cap))) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
		buf[len] = 0;
		if (n < 4096)
			break;
	}
	if (f != stdin)
		fclose(f);
	return buf;
}

static int wait_session(struct ctl_conn *cc, long long sid)
{
	char path[100];
	int json = cc->json;

	cc->json = 0;
	snprintf(path, sizeof(path), "/api/v1/sessions/%lld", sid);
	for (;;) {
		struct json_object *r = NULL, *st;
		int e;
		struct timespec ts = { 0, 300 * 1000 * 1000 };

		if ((e = ctl_call(cc, "GET", path, NULL, &r)) != 0)
			return e;
		if (json_object_object_get_ex(r, "state", &st) &&
		    strcmp(json_object_get_string(st), "running")) {
			int ok = !strcmp(json_object_get_string(st), "success");

			if (json)
				printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PRETTY));
			else
				fprintf(stderr, "session %lld %s\n", sid, ok ? "succeeded" : "failed");
			json_object_put(r);
			return ok ? EXIT_OK : EXIT_FAIL;
		}
		json_object_put(r);
		nanosleep(&ts, NULL);
	}
}

int cmd_job(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, J_REPO },
		{ "source", required_argument, NULL, J_SOURCE },
		{ "disk", required_argument, NULL, J_DISK },
		{ "schedule", required_argument, NULL, J_SCHED },
		{ "retries", required_argument, NULL, J_RETRIES },
		{ "retry-wait", required_argument, NULL, J_WAIT },
		{ "keep-last", required_argument, NULL, J_KL },
		{ "keep-hourly", required_argument, NULL, J_KH },
		{ "keep-daily", required_argument, NULL, J_KD },
		{ "keep-weekly", required_argument, NULL, J_KW },
		{ "keep-monthly", required_argument, NULL, J_KM },
		{ "keep-yearly", required_argument, NULL, J_KY },
		{ "block-size", required_argument, NULL, J_BS },
		{ "compression", required_argument, NULL, J_COMP },
		{ "bitmap", required_argument, NULL, J_BITMAP },
		{ "limit-rate", required_argument, NULL, J_RATE },
		{ "pre-script", required_argument, NULL, J_PRE },
		{ "post-script", required_argument, NULL, J_POST },
		{ "threads", required_argument, NULL, J_THREADS },
		{ "disabled", no_argument, NULL, J_DISABLED },
		{ "spec", required_argument, NULL, J_SPEC },
		{ "wait", no_argument, NULL, J_FOLLOW },
		CTL_CONN_OPTS, { 0 }
	};
	struct job_args ja = { json_object_new_object(), json_object_new_array(),
			       json_object_new_object(), NULL, 0 };
	const struct ctl_cmd cmd = { "job", job_usage, job_help, opts, job_option, &ja };
	struct ctl_conn cc;
	struct json_object *spec = ja.spec, *srcs = ja.srcs, *ret = ja.ret, *r = NULL;
	const char *verb, *spec_file;
	char path[300];
	int e;

	if ((e = ctl_parse(&cmd, &argc, &argv, &verb, &cc)) != CTL_GO ||
	    (e = ctl_conn_ready(&cc)) != 0)
		goto out;
	spec_file = ja.spec_file;
	e = EXIT_USAGE;
	if (!strcmp(verb, "create") && (optind + 1 == argc || (spec_file && optind == argc))) {
		struct json_object *body = spec;

		if (spec_file) {
			char *text = read_all(spec_file), err[600];

			if (!text) {
				fprintf(stderr, "ferry: cannot read --spec %s\n", spec_file);
				goto out;
			}
			body = srv_json_parse(text, strlen(text), err, sizeof(err));
			free(text);
			if (!body) {
				fprintf(stderr, "ferry: --spec %s: %s\n", spec_file, err);
				goto out;
			}
		} else {
			json_object_object_add(spec, "name", json_object_new_string(argv[optind]));
			json_object_object_add(spec, "sources", json_object_get(srcs));
			if (json_object_object_length(ret))
				json_object_object_add(spec, "retention", json_object_get(ret));
		}
		e = ctl_call(&cc, "POST", "/api/v1/jobs", body, NULL);
		if (!e && !cc.json)
			fprintf(stderr, "job %s created\n", spec_file ? "" : argv[optind]);
		if (body != spec)
			json_object_put(body);
		goto out;
	}
	if (!strcmp(verb, "list") && optind == argc) {
		struct json_object *a;

		if ((e = ctl_call(&cc, "GET", "/api/v1/jobs", NULL, &r)) != 0)
			goto out;
		if (!cc.json && json_object_object_get_ex(r, "jobs", &a)) {
			printf("%-20s  %-8s  %-14s  %-20s  %-19s  %s\n", "NAME", "ENABLED", "REPO",
			       "SCHEDULE", "NEXT RUN (UTC)", "LAST SESSION");
			for (size_t i = 0; i < json_object_array_length(a); i++) {
				struct json_object *j = json_object_array_get_idx(a, i), *v, *sp, *sc;
				char nx[32] = "-", last[64] = "-";

				if (json_object_object_get_ex(j, "next_run", &v) && v) {
					time_t t = (time_t)json_object_get_int64(v);
					struct tm tm;

					gmtime_r(&t, &tm);
					strftime(nx, sizeof(nx), "%Y-%m-%d %H:%M:%S", &tm);
				}
				if (json_object_object_get_ex(j, "last_session", &v) && v) {
					struct json_object *st;

					json_object_object_get_ex(j, "last_state", &st);
					snprintf(last, sizeof(last), "%lld %s",
						 (long long)json_object_get_int64(v), json_object_get_string(st));
				}
				json_object_object_get_ex(j, "spec", &sp);
				json_object_object_get_ex(j, "enabled", &v);
				printf("%-20s  %-8s  %-14s  %-20s  %-19s  %s\n",
				       json_object_get_string(json_object_object_get(j, "name")),
				       json_object_get_boolean(v) ? "yes" : "no",
				       json_object_get_string(json_object_object_get(j, "repo")),
				       sp && json_object_object_get_ex(sp, "schedule", &sc) &&
					       json_object_get_string_len(sc) ? json_object_get_string(sc) : "-",
				       nx, last);
			}
		}
		goto out;
	}
	if (optind + 1 != argc || !srv_name_valid(argv[optind])) {
		if (optind + 1 == argc)
			fprintf(stderr, "ferry: job: '%s' is not a job name\n", argv[optind]);
		else
			e = cli_usage("job", job_usage);
		goto out;
	}
	if (!strcmp(verb, "show")) {
		snprintf(path, sizeof(path), "/api/v1/jobs/%s", argv[optind]);
		if ((e = ctl_call(&cc, "GET", path, NULL, &r)) != 0)
			goto out;
		if (!cc.json) {
			struct json_object *sp;

			if (json_object_object_get_ex(r, "spec", &sp))
				printf("%s\n", json_object_to_json_string_ext(sp, JSON_C_TO_STRING_PRETTY |
									      JSON_C_TO_STRING_SPACED));
		}
		goto out;
	}
	if (!strcmp(verb, "delete")) {
		snprintf(path, sizeof(path), "/api/v1/jobs/%s", argv[optind]);
		e = ctl_call(&cc, "DELETE", path, NULL, NULL);
		if (!e && !cc.json)
			fprintf(stderr, "job %s deleted\n", argv[optind]);
		goto out;
	}
	if (!strcmp(verb, "run") || !strcmp(verb, "enable") || !strcmp(verb, "disable")) {
		snprintf(path, sizeof(path), "/api/v1/jobs/%s/%s", argv[optind], verb);
		if ((e = ctl_call(&cc, "POST", path, NULL, &r)) != 0)
			goto out;
		if (!strcmp(verb, "run")) {
			long long sid = json_object_get_int64(json_object_object_get(r, "session"));

			if (!cc.json)
				printf("%lld\n", sid);
			if (ja.follow)
				e = wait_session(&cc, sid);
		} else if (!cc.json)
			fprintf(stderr, "job %s %sd\n", argv[optind], verb);
		goto out;
	}
	e = cli_usage("job", job_usage);
out:
	json_object_put(r);
	json_object_put(spec);
	json_object_put(srcs);
	json_object_put(ret);
	return e;
}
