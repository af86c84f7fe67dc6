/* agent.c - `ferry proxy run`: the agent on a backup proxy.  It polls the
 * server for tasks (the poll is its heartbeat), runs each task's backup in
 * a child process with the library (ferry_backup to the job's repository,
 * a ferry:// target mover or a path), streams progress and reports the
 * restore point or the error.  Children die with the agent
 * (PR_SET_PDEATHSIG), so a lost proxy's tasks go elsewhere. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/cli.h"
#include "srv.h"
#include "ctl.h"

#define MAX_CHILDREN 256

struct child {
	long long tid;
	pid_t pid;
	int fd;                  /* progress and result lines; -1 at EOF */
	char line[8192];
	size_t len;
	long long done, total;
	double secs, last_post, last_report;
	char *result;            /* the child's "R " JSON */
	int exited, status;
	char name[201];
};

static struct child kids[MAX_CHILDREN];
static int nkids;
static volatile sig_atomic_t stopping;
static const char *agent_name;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static void alog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void alog(const char *fmt, ...)
{
	char line[1200], when[32];
	va_list ap;
	time_t t = time(NULL);
	struct tm tm;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s ferry-proxy[%ld] %s: %s\n", when, (long)getpid(), agent_name, line);
}

/* ---- the child: one backup ------------------------------------------ */
static int child_fd;

static void child_progress(const struct ferry_progress *p, void *arg)
{
	char buf[128];
	int n;

	(void)arg;
	n = snprintf(buf, sizeof(buf), "P %llu %llu %.3f\n", (unsigned long long)p->done,
		     (unsigned long long)p->total, p->seconds);
	if (write(child_fd, buf, (size_t)n) < 0) {
		/* the agent is gone; PR_SET_PDEATHSIG stops us */
	}
}

static void child_warn(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "ferry-proxy task: warning: %s\n", msg);
}

static const char *jget(struct json_object *t, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(t, k, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v) : "";
}

static void child_report(int ok, const char *err, const struct ferry_backup_result *res,
			 uint64_t sent)
{
	struct json_object *o = json_object_new_object();
	const char *s;

	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	if (!ok)
		json_object_object_add(o, "error", json_object_new_string(err));
	else {
		struct json_object *p = json_object_new_object();

		json_object_object_add(p, "id", json_object_new_string(res->point.id));
		json_object_object_add(p, "name", json_object_new_string(res->point.name));
		json_object_object_add(p, "created", json_object_new_int64((int64_t)(res->point.created_ns / 1000000000ull)));
		json_object_object_add(p, "disk_size", json_object_new_int64((int64_t)res->bytes_total));
		json_object_object_add(p, "bytes_read", json_object_new_int64((int64_t)res->bytes_read));
		json_object_object_add(p, "bytes_stored", json_object_new_int64((int64_t)res->bytes_stored));
		json_object_object_add(p, "bytes_sent", json_object_new_int64((int64_t)sent));
		json_object_object_add(p, "seconds", json_object_new_int64((int64_t)(res->seconds * 1000)));
		json_object_object_add(o, "point", p);
	}
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (write(child_fd, "R ", 2) < 0 || write(child_fd, s, strlen(s)) < 0 ||
	    write(child_fd, "\n", 1) < 0) {
		/* nothing to do: the agent is gone */
	}
	json_object_put(o);
}

static int child_run(struct json_object *task, pid_t parent)
{
	struct ferry_repo *repo = NULL;
	struct ferry_backup_opts bo;
	struct ferry_backup_result res;
	struct ferry_net_stats net;
	const char *url = jget(task, "repo"), *src = jget(task, "source");
	struct json_object *v;
	char err[1200];
	int e;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
	cli_install_signals();
	memset(&bo, 0, sizeof(bo));
	memset(&res, 0, sizeof(res));
	if (jget(task, "limit_rate")[0] && cli_remote_option(OPT_LIMIT_RATE, jget(task, "limit_rate")) < 0) {
		child_report(0, "bad limit_rate", NULL, 0);
		return 1;
	}
	e = ferry_is_remote_url(url) ? cli_remote_open(url, &repo) : ferry_repo_open(url, &repo);
	if (e) {
		snprintf(err, sizeof(err), "cannot open repository %s: %s", url,
			 ferry_last_error()[0] ? ferry_last_error() : ferry_strerror(e));
		child_report(0, err, NULL, 0);
		return 1;
	}
	if (json_object_object_get_ex(task, "block_size", &v) && json_object_get_int64(v) > 0 &&
	    (uint64_t)json_object_get_int64(v) != ferry_repo_block_size(repo)) {
		snprintf(err, sizeof(err), "the job asks for block size %lld but repository %s has "
			 "%u: make the repository with ferry init --block-size, or change the job",
			 (long long)json_object_get_int64(v), url, ferry_repo_block_size(repo));
		ferry_repo_free(repo);
		child_report(0, err, NULL, 0);
		return 1;
	}
	bo.name = jget(task, "name");
	if (json_object_object_get_ex(task, "threads", &v))
		bo.threads = json_object_get_int(v);
	bo.bitmap = jget(task, "bitmap")[0] ? jget(task, "bitmap") : NULL;
	bo.pre_script = jget(task, "pre_script")[0] ? jget(task, "pre_script") : NULL;
	bo.post_script = jget(task, "post_script")[0] ? jget(task, "post_script") : NULL;
	bo.progress = child_progress;
	bo.warn = child_warn;
	e = ferry_backup(repo, src, &bo, &res);
	memset(&net, 0, sizeof(net));
	ferry_repo_net_stats(repo, &net);
	ferry_repo_free(repo);
	if (e) {
		snprintf(err, sizeof(err), "backup of %s failed: %s", src,
			 ferry_last_error()[0] ? ferry_last_error() : ferry_strerror(e));
		child_report(0, err, NULL, 0);
		return 1;
	}
	child_report(1, NULL, &res, net.bytes_sent);
	return 0;
}

/* ---- the agent ------------------------------------------------------ */
static int start_child(struct json_object *task)
{
	int pfd[2];
	pid_t pid, parent = getpid();
	struct child *k;
	struct json_object *v;

	if (nkids >= MAX_CHILDREN || pipe(pfd))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		for (int i = 0; i < nkids; i++)
			if (kids[i].fd >= 0)
				close(kids[i].fd);
		child_fd = pfd[1];
		_exit(child_run(task, parent));
	}
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	k = &kids[nkids++];
	memset(k, 0, sizeof(*k));
	k->pid = pid;
	k->fd = pfd[0];
	k->tid = json_object_object_get_ex(task, "id", &v) ? json_object_get_int64(v) : 0;
	snprintf(k->name, sizeof(k->name), "%s", jget(task, "name"));
	alog("task %lld: backing up %s (disk %s) to %s, attempt %lld (pid %ld)", k->tid,
	     jget(task, "source"), k->name, jget(task, "repo"),
	     json_object_object_get_ex(task, "attempt", &v) ? (long long)json_object_get_int64(v) : 1,
	     (long)pid);
	return 0;
}

static void child_line(struct child *k, char *line)
{
	if (line[0] == 'P' && line[1] == ' ') {
		unsigned long long d, t;
		double s;

		if (sscanf(line + 2, "%llu %llu %lf", &d, &t, &s) == 3) {
			k->done = (long long)d;
			k->total = (long long)t;
			k->secs = s;
		}
	} else if (line[0] == 'R' && line[1] == ' ' && !k->result) {
		k->result = strdup(line + 2);
	}
}

static void read_child(struct child *k)
{
	for (;;) {
		ssize_t n;
		char *nl;

		if (k->fd < 0)
			return;
		if (k->len + 1 >= sizeof(k->line))
			k->len = 0; /* an overlong line: drop it */
		n = read(k->fd, k->line + k->len, sizeof(k->line) - 1 - k->len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			close(k->fd);
			k->fd = -1;
			return;
		}
		k->len += (size_t)n;
		k->line[k->len] = 0;
		while ((nl = memchr(k->line, '\n', k->len))) {
			*nl = 0;
			child_line(k, k->line);
			memmove(k->line, nl + 1, k->len - (size_t)(nl + 1 - k->line));
			k->len -= (size_t)(nl + 1 - k->line);
		}
	}
}

/* Report a finished child; 0 when the server took it. */
static int report(struct ctl_conn *cc, struct child *k)
{
	struct json_object *body = NULL, *r;
	char path[100], err[600];
	long status;
	int e;

	if (k->result && (body = json_tokener_parse(k->result)) &&
	    json_object_is_type(body, json_type_object)) {
		json_object_object_add(body, "proxy", json_object_new_string(agent_name));
	} else {
		char msg[200];

		json_object_put(body);
		body = json_object_new_object();
		if (WIFSIGNALED(k->status))
			snprintf(msg, sizeof(msg), "the backup process was killed by signal %d%s",
				 WTERMSIG(k->status), stopping ? " (the proxy agent is stopping)" : "");
		else
			snprintf(msg, sizeof(msg), "the backup process exited with status %d and no result",
				 WEXITSTATUS(k->status));
		json_object_object_add(body, "proxy", json_object_new_string(agent_name));
		json_object_object_add(body, "ok", json_object_new_boolean(0));
		json_object_object_add(body, "error", json_object_new_string(msg));
	}
	snprintf(path, sizeof(path), "/api/v1/agent/tasks/%lld/result", k->tid);
	e = srv_client_call(&cc->cl, "POST", path,
			    json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN), &status,
			    &r, NULL, err, sizeof(err));
	if (e) {
		alog("task %lld: cannot report the result yet: %s", k->tid, err);
		json_object_put(body);
		return -1;
	}
	{
		struct json_object *ok = NULL, *er = NULL;

		json_object_object_get_ex(body, "ok", &ok);
		json_object_object_get_ex(body, "error", &er);
		alog("task %lld (disk %s): %s%s%s; server answered %ld", k->tid, k->name,
		     json_object_get_boolean(ok) ? "succeeded" : "failed",
		     er ? ": " : "", er ? json_object_get_string(er) : "", status);
	}
	json_object_put(r);
	json_object_put(body);
	return 0;
}

static const char agent_usage[] =
	"--server URL --token T --name NAME [--max-tasks N] [--poll-interval MS] [remote options]";

static void agent_help(void)
{
	printf("usage: ferry proxy run %s\n\n"
	       "The agent of a backup proxy: asks the server for tasks (the request is\n"
	       "also its heartbeat), runs each task's backup in its own process (the\n"
	       "library's ferry backup, to the job's repository: a ferry:// target mover\n"
	       "with the certificates below, or a path), sends progress and the restore\n"
	       "point or the error back.  Register the proxy first (ferry proxy add).\n"
	       "SIGTERM stops taking tasks, stops the running ones (the server hands\n"
	       "them to another proxy) and exits.\n\n"
	       "  --name NAME           the registered proxy name\n"
	       "  --max-tasks N         at most N tasks at once here (default: the\n"
	       "                        registered limit)\n"
	       "  --poll-interval MS    milliseconds between polls (default 1000)\n%s%s",
	       agent_usage, ctl_conn_help, cli_remote_help);
}

int ctl_agent_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "max-tasks", required_argument, NULL, 'm' },
		{ "poll-interval", required_argument, NULL, 'p' },
		{ "server", required_argument, NULL, CTL_SERVER },
		{ "token", required_argument, NULL, CTL_TOKEN },
		{ "token-file", required_argument, NULL, CTL_TOKEN_FILE },
		{ "server-ca", required_argument, NULL, CTL_SERVER_CA },
		{ "help", no_argument, NULL, 'h' },
		CLI_REMOTE_OPTIONS,
		{ 0 }
	};
	struct ctl_conn cc;
	int c, e, max = 0, interval = 1000, failing = 0;
	struct sigaction sa;
	double last_poll = 0, stop_at = 0;

	memset(&cc, 0, sizeof(cc));
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': agent_name = optarg; break;
		case 'm':
			if (cli_parse_int(optarg, 1, MAX_CHILDREN, &max)) {
				fprintf(stderr, "ferry: --max-tasks: give 1 to %d\n", MAX_CHILDREN);
				return EXIT_USAGE;
			}
			break;
		case 'p':
			if (cli_parse_int(optarg, 50, 60000, &interval)) {
				fprintf(stderr, "ferry: --poll-interval: give 50 to 60000 ms\n");
				return EXIT_USAGE;
			}
			break;
		case 'h': agent_help(); return EXIT_OK;
		default:
			if (ctl_conn_option(c, optarg, &cc))
				break;
			if ((e = cli_remote_option(c, optarg)) > 0)
				break;
			if (e < 0)
				return EXIT_USAGE;
			return cli_usage("proxy run", agent_usage);
		}
	}
	if (optind != argc || !agent_name)
		return cli_usage("proxy run", agent_usage);
	if (!srv_name_valid(agent_name)) {
		fprintf(stderr, "ferry: --name '%s' is not a proxy name\n", agent_name);
		return EXIT_USAGE;
	}
	if ((e = ctl_conn_ready(&cc)) != 0)
		return e;
	cc.cl.timeout = 15;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	alog("agent started: server %s%s", cc.cl.url, max ? "" : ", task limit from the server");
	for (;;) {
		struct pollfd pf[MAX_CHILDREN];
		int npf = 0, stop_now = stopping;

		for (int i = 0; i < nkids; i++)
			if (kids[i].fd >= 0) {
				pf[npf].fd = kids[i].fd;
				pf[npf].events = POLLIN;
				npf++;
			}
		poll(pf, (nfds_t)npf, 100);
		if (stop_now) {
			for (int i = 0; i < nkids; i++)
				if (!kids[i].exited)
					kill(kids[i].pid, SIGTERM);
		}
		for (int i = 0; i < nkids; i++) {
			struct child *k = &kids[i];

			read_child(k);
			if (!k->exited && waitpid(k->pid, &k->status, WNOHANG) == k->pid)
				k->exited = 1;
		}
		/* Results (kept until the server has them). */
		for (int i = 0; i < nkids;) {
			struct child *k = &kids[i];

			if (k->exited && k->fd < 0 && srv_mono() - k->last_report >= interval / 1000.0 &&
			    (k->last_report = srv_mono(), report(&cc, k) == 0)) {
				free(k->result);
				kids[i] = kids[--nkids];
				continue;
			}
			i++;
		}
		if (stopping && nkids == 0)
			break;
		if (stopping && !stop_at)
			stop_at = srv_mono();
		if (stop_at && srv_mono() - stop_at > 20) {
			/* The server is unreachable: the server requeues what
			 * it does not hear about once this proxy stops polling. */
			for (int i = 0; i < nkids; i++)
				alog("task %lld: exiting without reporting its end%s", kids[i].tid,
				     kids[i].exited ? "" : " (its process is still stopping)");
			break;
		}
		if (srv_mono() - last_poll < interval / 1000.0)
			continue;
		last_poll = srv_mono();
		/* Progress, at most once a second per task. */
		for (int i = 0; i < nkids; i++) {
			struct child *k = &kids[i];

			if (!k->exited && k->total && srv_mono() - k->last_post >= 1.0) {
				char path[100], body[200], err[300];
				long status;

				k->last_post = srv_mono();
				snprintf(path, sizeof(path), "/api/v1/agent/tasks/%lld/progress", k->tid);
				snprintf(body, sizeof(body), "{\"proxy\":\"%s\",\"done\":%lld,\"total\":%lld,"
					 "\"seconds\":%.3f}", agent_name, k->done, k->total, k->secs);
				if (srv_client_call(&cc.cl, "POST", path, body, &status, NULL, NULL, err,
						    sizeof(err)) == 0 && status == 409) {
					alog("task %lld: the server gave it to another proxy; stopping it", k->tid);
					kill(k->pid, SIGTERM);
				}
			}
		}
		{
			struct json_object *b = json_object_new_object(), *ids = json_object_new_array(),
					   *r = NULL, *t;
			char err[600];
			long status;
			int want = !stopping && (max == 0 || nkids < max) && nkids < MAX_CHILDREN;

			for (int i = 0; i < nkids; i++)
				json_object_array_add(ids, json_object_new_int64(kids[i].tid));
			json_object_object_add(b, "proxy", json_object_new_string(agent_name));
			json_object_object_add(b, "running", ids);
			json_object_object_add(b, "want", json_object_new_boolean(want));
			if (max)
				json_object_object_add(b, "max_tasks", json_object_new_int(max));
			e = srv_client_call(&cc.cl, "POST", "/api/v1/agent/poll",
					    json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
					    &status, &r, NULL, err, sizeof(err));
			json_object_put(b);
			if (e || status != 200) {
				struct json_object *m = NULL;

				if (!failing++)
					alog("poll failed: %s", e ? err : r && json_object_object_get_ex(r, "error", &m)
						? json_object_get_string(m) : "unexpected reply");
				json_object_put(r);
				continue;
			}
			if (failing)
				alog("server reachable again after %d failed poll(s)", failing);
			failing = 0;
			if (json_object_object_get_ex(r, "task", &t) && t &&
			    json_object_is_type(t, json_type_object) && start_child(t))
				alog("cannot start a task process: %s", strerror(errno));
			json_object_put(r);
		}
	}
	alog("agent stopped");
	return EXIT_OK;
}
