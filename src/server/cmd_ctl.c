/* cmd_ctl.c - the CLI side of the backup server: `ferry proxy`, `ferry
 * repo`, `ferry job`, `ferry session` and `ferry catalog` send REST calls
 * (client.c) and print tables or the server's JSON. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cli/cli.h"
#include "srv.h"
#include "ctl.h"

const char ctl_conn_help[] =
	"\nserver connection (every command):\n"
	"  --server URL       the server, https://HOST:PORT (or FERRY_SERVER)\n"
	"  --token TOKEN      API token (or FERRY_TOKEN)\n"
	"  --token-file FILE  read the token from FILE (or FERRY_TOKEN_FILE)\n"
	"  --server-ca FILE   CA certificate of the server's TLS certificate\n"
	"                     (or FERRY_SERVER_CA; default: the system's CAs)\n"
	"  --json             print the server's JSON reply\n";

static char token_buf[512];

int ctl_conn_option(int c, const char *arg, struct ctl_conn *cc)
{
	switch (c) {
	case CTL_SERVER: cc->cl.url = arg; return 1;
	case CTL_TOKEN: cc->cl.token = arg; return 1;
	case CTL_TOKEN_FILE: cc->token_file = arg; return 1;
	case CTL_SERVER_CA: cc->cl.cacert = arg; return 1;
	case CTL_JSON: cc->json = 1; return 1;
	}
	return 0;
}

int ctl_conn_ready(struct ctl_conn *cc)
{
	const char *tf;

	if (!cc->cl.url)
		cc->cl.url = getenv("FERRY_SERVER");
	if (!cc->cl.cacert)
		cc->cl.cacert = getenv("FERRY_SERVER_CA");
	if (!cc->cl.token)
		cc->cl.token = getenv("FERRY_TOKEN");
	tf = cc->token_file ? cc->token_file : getenv("FERRY_TOKEN_FILE");
	if (!cc->cl.token && tf && *tf) {
		FILE *f = fopen(tf, "r");

		if (!f || !fgets(token_buf, sizeof(token_buf), f)) {
			fprintf(stderr, "ferry: cannot read token file %s: %s\n", tf,
				f ? "empty" : strerror(errno));
			if (f)
				fclose(f);
			return EXIT_USAGE;
		}
		fclose(f);
		token_buf[strcspn(token_buf, "\r\n")] = 0;
		cc->cl.token = token_buf;
	}
	if (!cc->cl.url || !*cc->cl.url) {
		fprintf(stderr, "ferry: give --server https://HOST:PORT (or FERRY_SERVER)\n");
		return EXIT_USAGE;
	}
	if (!cc->cl.token || !*cc->cl.token) {
		fprintf(stderr, "ferry: give --token, --token-file, FERRY_TOKEN or "
			"FERRY_TOKEN_FILE (ferry token create makes one)\n");
		return EXIT_USAGE;
	}
	if (!cc->cl.timeout)
		cc->cl.timeout = 60;
	return 0;
}

int ctl_call(struct ctl_conn *cc, const char *method, const char *path,
	     struct json_object *body, struct json_object **reply)
{
	char err[1024];
	long status;
	struct json_object *r = NULL;
	char *raw = NULL;
	int e;

	e = srv_client_call(&cc->cl, method, path,
			    body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL,
			    &status, &r, &raw, err, sizeof(err));
	if (e) {
		fprintf(stderr, "ferry: cannot reach the server: %s\n", err);
		return EXIT_FAIL;
	}
	if (status >= 400 || !r) {
		struct json_object *m;

		if (r && json_object_object_get_ex(r, "error", &m))
			fprintf(stderr, "ferry: server refused (%ld): %s\n", status,
				json_object_get_string(m));
		else
			fprintf(stderr, "ferry: server replied %ld: %.200s\n", status, raw ? raw : "");
		json_object_put(r);
		free(raw);
		return status == 404 ? EXIT_NOTFOUND : status == 400 ? EXIT_USAGE : EXIT_FAIL;
	}
	if (cc->json)
		printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PRETTY |
							     JSON_C_TO_STRING_SPACED));
	free(raw);
	if (reply)
		*reply = r;
	else
		json_object_put(r);
	return 0;
}

static int parse_help(const struct ctl_cmd *cmd)
{
	printf("usage: ferry %s %s\n\n%s%s", cmd->name, cmd->usage, cmd->help, ctl_conn_help);
	return EXIT_OK;
}

int ctl_parse(const struct ctl_cmd *cmd, int *argc, char ***argv, const char **verb,
	      struct ctl_conn *cc)
{
	int c, e;

	memset(cc, 0, sizeof(*cc));
	if (verb) {
		if (*argc < 2 || (*argv)[1][0] == '-') {
			if (*argc >= 2 && !strcmp((*argv)[1], "--help"))
				return parse_help(cmd);
			return cli_usage(cmd->name, cmd->usage);
		}
		*verb = (*argv)[1];
		(*argc)--;
		(*argv)++;
	}
	while ((c = getopt_long(*argc, *argv, "h", cmd->opts, NULL)) != -1) {
		if (c == 'h')
			return parse_help(cmd);
		if (ctl_conn_option(c, optarg, cc))
			continue;
		e = c == '?' || !cmd->option ? -1 : cmd->option(cmd->ctx, c, optarg);
		if (e < 0)
			return cli_usage(cmd->name, cmd->usage);
		if (e > 0)
			return e;
	}
	return CTL_GO;
}

static const char *js(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return "-";
	return json_object_get_string(v);
}

static long long ji(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	return json_object_get_int64(v);
}

static void when(long long t, char *buf, size_t len)
{
	time_t x = (time_t)t;
	struct tm tm;

	if (t <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	gmtime_r(&x, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static struct json_object *arr(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}


/* ---- ferry proxy ---------------------------------------------------- */
static const char proxy_usage[] =
	"add NAME [--address HOST] [--max-tasks N] | list | remove NAME | run --name NAME ...";
static const char proxy_help[] =
	"Backup proxies: hosts that read the source disks and send them to the\n"
	"repositories.  A proxy is registered on the server with the number of\n"
	"tasks (disks) it may run at once; its agent (ferry proxy run, on the\n"
	"proxy host) asks the server for work.\n\n"
	"  add NAME       register a proxy\n"
	"    --address HOST   where it runs (for operators)\n"
	"    --max-tasks N    tasks at once (default 2)\n"
	"  list           proxies, online state and running tasks\n"
	"  remove NAME    unregister (refused while it runs tasks)\n"
	"  run            the agent: see ferry proxy run --help\n";

struct proxy_args {
	const char *addr;
	int max;
};

static int proxy_option(void *ctx, int c, const char *arg)
{
	struct proxy_args *pa = ctx;

	switch (c) {
	case 'a': pa->addr = arg; return 0;
	case 'm': return cli_int_option("max-tasks", arg, 1, 1024, &pa->max);
	}
	return -1;
}

int cmd_proxy(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "address", required_argument, NULL, 'a' },
		{ "max-tasks", required_argument, NULL, 'm' },
		CTL_CONN_OPTS, { 0 }
	};
	struct proxy_args pa = { "", 2 };
	const struct ctl_cmd cmd = { "proxy", proxy_usage, proxy_help, opts, proxy_option, &pa };
	struct ctl_conn cc;
	const char *verb;
	int e;
	struct json_object *r = NULL;

	if (argc >= 2 && !strcmp(argv[1], "run"))
		return ctl_agent_run(argc - 1, argv + 1);
	if ((e = ctl_parse(&cmd, &argc, &argv, &verb, &cc)) != CTL_GO ||
	    (e = ctl_conn_ready(&cc)) != 0)
		return e;
	if (!strcmp(verb, "add") && optind + 1 == argc) {
		struct json_object *b = json_object_new_object();

		json_object_object_add(b, "name", json_object_new_string(argv[optind]));
		json_object_object_add(b, "address", json_object_new_string(pa.addr));
		json_object_object_add(b, "max_tasks", json_object_new_int(pa.max));
		e = ctl_call(&cc, "POST", "/api/v1/proxies", b, NULL);
		json_object_put(b);
		if (!e && !cc.json)
			fprintf(stderr, "proxy %s registered (up to %d task(s) at once); start its "
				"agent with ferry proxy run --name %s\n", argv[optind], pa.max, argv[optind]);
		return e;
	}
	if (!strcmp(verb, "remove") && optind + 1 == argc) {
		char path[200];

		snprintf(path, sizeof(path), "/api/v1/proxies/%s", argv[optind]);
		e = ctl_call(&cc, "DELETE", path, NULL, NULL);
		if (!e && !cc.json)
			fprintf(stderr, "proxy %s removed\n", argv[optind]);
		return e;
	}
	if (!strcmp(verb, "list") && optind == argc) {
		struct json_object *a;

		if ((e = ctl_call(&cc, "GET", "/api/v1/proxies", NULL, &r)) != 0)
			return e;
		if (!cc.json && (a = arr(r, "proxies"))) {
			printf("%-20s  %-7s  %-7s  %-4s  %-4s  %s\n", "NAME", "STATE", "RUNNING",
			       "MAX", "PEAK", "ADDRESS");
			for (size_t i = 0; i < json_object_array_length(a); i++) {
				struct json_object *p = json_object_array_get_idx(a, i), *on;

				json_object_object_get_ex(p, "online", &on);
				printf("%-20s  %-7s  %-7lld  %-4lld  %-4lld  %s\n", js(p, "name"),
				       json_object_get_boolean(on) ? "online" : "offline",
				       ji(p, "running"), ji(p, "max_tasks"), ji(p, "peak_tasks"),
				       js(p, "address"));
			}
		}
		json_object_put(r);
		return 0;
	}
	return cli_usage("proxy", proxy_usage);
}

/* ---- ferry repo ----------------------------------------------------- */
static const char repo_usage[] = "add NAME --url URL [--path PATH] [--capacity SIZE] | list";
static const char repo_help[] =
	"Repositories the backup server's jobs write to.\n\n"
	"  add NAME --url URL   register a repository: ferry://HOST:PORT/NAME (a\n"
	"                       target mover) or a path the proxies can open\n"
	"    --path PATH        the repository's path on the server host, when it\n"
	"                       has one: retention (keep rules) runs there\n"
	"    --capacity SIZE    for reports and /metrics (e.g. 20T)\n"
	"  list                 repositories with points and bytes in the catalog\n";

struct repo_args {
	const char *url, *path, *cap;
};

static int repo_option(void *ctx, int c, const char *arg)
{
	struct repo_args *ra = ctx;

	switch (c) {
	case 'u': ra->url = arg; return 0;
	case 'p': ra->path = arg; return 0;
	case 'c': ra->cap = arg; return 0;
	}
	return -1;
}

int cmd_repo_srv(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "path", required_argument, NULL, 'p' },
		{ "capacity", required_argument, NULL, 'c' },
		CTL_CONN_OPTS, { 0 }
	};
	struct repo_args ra = { NULL, "", NULL };
	const struct ctl_cmd cmd = { "repo", repo_usage, repo_help, opts, repo_option, &ra };
	struct ctl_conn cc;
	const char *verb;
	int e;
	struct json_object *r = NULL;

	if ((e = ctl_parse(&cmd, &argc, &argv, &verb, &cc)) != CTL_GO ||
	    (e = ctl_conn_ready(&cc)) != 0)
		return e;
	if (!strcmp(verb, "add") && optind + 1 == argc && ra.url) {
		struct json_object *b = json_object_new_object();

		json_object_object_add(b, "name", json_object_new_string(argv[optind]));
		json_object_object_add(b, "url", json_object_new_string(ra.url));
		json_object_object_add(b, "path", json_object_new_string(ra.path));
		if (ra.cap)
			json_object_object_add(b, "capacity", json_object_new_string(ra.cap));
		e = ctl_call(&cc, "POST", "/api/v1/repos", b, NULL);
		json_object_put(b);
		if (!e && !cc.json)
			fprintf(stderr, "repository %s registered (%s)\n", argv[optind], ra.url);
		return e;
	}
	if (!strcmp(verb, "list") && optind == argc) {
		struct json_object *a;

		if ((e = ctl_call(&cc, "GET", "/api/v1/repos", NULL, &r)) != 0)
			return e;
		if (!cc.json && (a = arr(r, "repos"))) {
			printf("%-16s  %-8s  %-12s  %-12s  %s\n", "NAME", "POINTS", "STORED",
			       "CAPACITY", "URL");
			for (size_t i = 0; i < json_object_array_length(a); i++) {
				struct json_object *p = json_object_array_get_idx(a, i);
				char st[32], cp[32];

				cli_human((uint64_t)ji(p, "bytes_stored"), st, sizeof(st));
				cli_human((uint64_t)ji(p, "capacity"), cp, sizeof(cp));
				printf("%-16s  %-8lld  %-12s  %-12s  %s\n", js(p, "name"), ji(p, "points"),
				       st, ji(p, "capacity") ? cp : "-", js(p, "url"));
			}
		}
		json_object_put(r);
		return 0;
	}
	return cli_usage("repo", repo_usage);
}

/* ---- ferry session -------------------------------------------------- */
static const char session_usage[] = "list [--job NAME] [--limit N] | show ID | log ID";
static const char session_help[] =
	"Job sessions on the backup server: one task per disk.\n\n"
	"  list     latest sessions first (--job NAME, --limit N)\n"
	"  show ID  state, and per task: proxy, bytes done of total, rate, ETA,\n"
	"           the restore point it made, or why it failed\n"
	"  log ID   what the server decided and saw, line by line\n";

struct session_args {
	const char *job;
	int limit;
};

static int session_option(void *ctx, int c, const char *arg)
{
	struct session_args *sa = ctx;

	switch (c) {
	case 'j': sa->job = arg; return 0;
	case 'l': return cli_int_option("limit", arg, 1, 10000, &sa->limit);
	}
	return -1;
}

static void print_session_tasks(struct json_object *r)
{
	struct json_object *a = arr(r, "tasks");
	char c[32], e[32];

	when(ji(r, "created"), c, sizeof(c));
	when(ji(r, "ended"), e, sizeof(e));
	printf("session %lld  job %s  %s  (by %s)\nstarted %s  ended %s  %s\n",
	       ji(r, "id"), js(r, "job"), js(r, "state"), js(r, "trigger"), c, e, js(r, "message"));
	if (!a)
		return;
	printf("%-6s  %-16s  %-8s  %-10s  %-22s  %-10s  %-6s  %-16s  %s\n", "TASK", "DISK", "STATE",
	       "PROXY", "DONE/TOTAL", "RATE", "ETA", "POINT", "MESSAGE");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *t = json_object_array_get_idx(a, i), *eta;
		char d[32], tt[32], rt[32], rts[40], dt[70], es[32] = "-";

		cli_human((uint64_t)ji(t, "bytes_done"), d, sizeof(d));
		cli_human((uint64_t)ji(t, "bytes_total"), tt, sizeof(tt));
		cli_human((uint64_t)ji(t, "rate"), rt, sizeof(rt));
		snprintf(rts, sizeof(rts), "%s/s", rt);
		snprintf(dt, sizeof(dt), "%s/%s", d, tt);
		if (json_object_object_get_ex(t, "eta_seconds", &eta) && eta)
			snprintf(es, sizeof(es), "%lld s", (long long)json_object_get_int64(eta));
		printf("%-6lld  %-16s  %-8s  %-10s  %-22s  %-10s  %-6s  %-16s  %s\n", ji(t, "id"),
		       js(t, "name"), js(t, "state"), js(t, "proxy")[0] ? js(t, "proxy") : "-", dt,
		       rts, es, js(t, "point"), js(t, "message"));
	}
}

int cmd_session(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "job", required_argument, NULL, 'j' },
		{ "limit", required_argument, NULL, 'l' },
		CTL_CONN_OPTS, { 0 }
	};
	struct session_args sa = { NULL, 50 };
	const struct ctl_cmd cmd = { "session", session_usage, session_help, opts, session_option,
				     &sa };
	struct ctl_conn cc;
	const char *verb;
	int e;
	struct json_object *r = NULL;
	char path[512];

	if ((e = ctl_parse(&cmd, &argc, &argv, &verb, &cc)) != CTL_GO ||
	    (e = ctl_conn_ready(&cc)) != 0)
		return e;
	if (!strcmp(verb, "list") && optind == argc) {
		struct json_object *a;

		if (sa.job && !srv_name_valid(sa.job)) {
			fprintf(stderr, "ferry: --job '%s' is not a job name\n", sa.job);
			return EXIT_USAGE;
		}
		snprintf(path, sizeof(path), "/api/v1/sessions?limit=%d%s%s", sa.limit,
			 sa.job ? "&job=" : "", sa.job ? sa.job : "");
		if ((e = ctl_call(&cc, "GET", path, NULL, &r)) != 0)
			return e;
		if (!cc.json && (a = arr(r, "sessions"))) {
			printf("%-6s  %-20s  %-8s  %-19s  %-19s  %-12s  %s\n", "ID", "JOB", "STATE",
			       "STARTED (UTC)", "ENDED", "TRIGGER", "MESSAGE");
			for (size_t i = 0; i < json_object_array_length(a); i++) {
				struct json_object *s = json_object_array_get_idx(a, i);
				char st[32], en[32];

				when(ji(s, "created"), st, sizeof(st));
				when(ji(s, "ended"), en, sizeof(en));
				printf("%-6lld  %-20s  %-8s  %-19s  %-19s  %-12s  %s\n", ji(s, "id"),
				       js(s, "job"), js(s, "state"), st, en, js(s, "trigger"),
				       js(s, "message"));
			}
		}
		json_object_put(r);
		return 0;
	}
	if ((!strcmp(verb, "show") || !strcmp(verb, "log")) && optind + 1 == argc) {
		long long id;
		char *end;

		id = strtoll(argv[optind], &end, 10);
		if (*end || id < 1) {
			fprintf(stderr, "ferry: session id '%s' is not a number\n", argv[optind]);
			return EXIT_USAGE;
		}
		snprintf(path, sizeof(path), "/api/v1/sessions/%lld%s", id,
			 !strcmp(verb, "log") ? "/log" : "");
		if ((e = ctl_call(&cc, "GET", path, NULL, &r)) != 0)
			return e;
		if (!cc.json) {
			if (!strcmp(verb, "show"))
				print_session_tasks(r);
			else {
				struct json_object *a = arr(r, "log");

				for (size_t i = 0; a && i < json_object_array_length(a); i++) {
					struct json_object *l = json_object_array_get_idx(a, i);
					char t[32];

					when(ji(l, "t"), t, sizeof(t));
					printf("%s  %s\n", t, js(l, "line"));
				}
			}
		}
		json_object_put(r);
		return 0;
	}
	return cli_usage("session", session_usage);
}

/* ---- ferry catalog -------------------------------------------------- */
static const char catalog_usage[] = "[--job NAME] [--repo NAME] [--name DISK] [--all]";
static const char catalog_help[] =
	"The restore points the server's jobs made, oldest first, from the\n"
	"catalog (no repository is opened).  Restore them with ferry restore\n"
	"--repo URL ID.\n\n"
	"  --job NAME    only this job's points\n"
	"  --repo NAME   only this repository's\n"
	"  --name DISK   only this disk's\n"
	"  --all         include points retention removed\n";

struct catalog_args {
	const char *job, *repo, *name;
	int all;
};

static int catalog_option(void *ctx, int c, const char *arg)
{
	struct catalog_args *ca = ctx;

	switch (c) {
	case 'j': ca->job = arg; return 0;
	case 'r': ca->repo = arg; return 0;
	case 'n': ca->name = arg; return 0;
	case 'a': ca->all = 1; return 0;
	}
	return -1;
}

static int url_safe(const char *s)
{
	return srv_name_valid(s) || (strlen(s) < 200 && strspn(s, "abcdefghijklmnopqrstuvwxyz"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~") == strlen(s));
}

int cmd_catalog(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "job", required_argument, NULL, 'j' },
		{ "repo", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ "all", no_argument, NULL, 'a' },
		CTL_CONN_OPTS, { 0 }
	};
	struct catalog_args ca = { NULL, NULL, NULL, 0 };
	const struct ctl_cmd cmd = { "catalog", catalog_usage, catalog_help, opts, catalog_option,
				     &ca };
	struct ctl_conn cc;
	int e;
	char path[800];
	size_t n;
	struct json_object *r = NULL, *a;

	if ((e = ctl_parse(&cmd, &argc, &argv, NULL, &cc)) != CTL_GO)
		return e;
	if (optind != argc)
		return cli_usage("catalog", catalog_usage);
	if ((ca.job && !url_safe(ca.job)) || (ca.repo && !url_safe(ca.repo)) ||
	    (ca.name && !url_safe(ca.name))) {
		fprintf(stderr, "ferry: catalog: names hold letters, digits, '.', '_', '-' and '~'\n");
		return EXIT_USAGE;
	}
	if ((e = ctl_conn_ready(&cc)) != 0)
		return e;
	n = (size_t)snprintf(path, sizeof(path), "/api/v1/points?all=%d", ca.all);
	if (ca.job)
		n += (size_t)snprintf(path + n, sizeof(path) - n, "&job=%s", ca.job);
	if (ca.repo)
		n += (size_t)snprintf(path + n, sizeof(path) - n, "&repo=%s", ca.repo);
	if (ca.name)
		snprintf(path + n, sizeof(path) - n, "&name=%s", ca.name);
	if ((e = ctl_call(&cc, "GET", path, NULL, &r)) != 0)
		return e;
	if (!cc.json && (a = arr(r, "points"))) {
		printf("%-16s  %-19s  %-12s  %-16s  %-16s  %-8s  %s\n", "ID", "CREATED (UTC)", "SIZE",
		       "JOB", "REPO", "SESSION", "NAME");
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			struct json_object *p = json_object_array_get_idx(a, i);
			char t[32], sz[32];

			when(ji(p, "created"), t, sizeof(t));
			cli_human((uint64_t)ji(p, "disk_size"), sz, sizeof(sz));
			printf("%-16s  %-19s  %-12s  %-16s  %-16s  %-8lld  %s\n", js(p, "id"), t, sz,
			       js(p, "job"), js(p, "repo"), ji(p, "session"), js(p, "name"));
		}
	}
	json_object_put(r);
	return 0;
}
