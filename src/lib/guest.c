/* guest.c - guest interaction around a backup's read: the operator's
 * pre-, snapshot- and post-scripts (sh -c, bounded by a timeout, killed as
 * a process group) and the qemu-guest-agent freeze, ordered so that every
 * step taken is undone on every path: a frozen guest is always thawed and
 * the post-script always runs once the pre-script ran. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmsrc.h"

extern char **environ;

struct ferry_guest {
	const struct ferry_backup_opts *o;
	struct ferry_qga *q;
	int frozen;
	char source[1024];
};

static void gwarn(const struct ferry_backup_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void gwarn(const struct ferry_backup_opts *o, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!o->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o->warn(msg, o->warn_arg);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Run CMD with sh -c; stdout goes to stderr (ferry's stdout is the
 * point id or JSON).  0 when it exits 0; else an error naming PHASE. */
static int run_script(struct ferry_guest *g, const char *phase, const char *cmd,
		      const char *result, const char *point_id)
{
	int timeout = g->o->script_timeout > 0 ? g->o->script_timeout : 600;
	char e_phase[64], e_source[1100], e_name[FERRY_NAME_MAX + 16], e_res[64],
		e_id[64];
	char **env;
	size_t n = 0;
	double deadline;
	pid_t pid;
	int st, killed = 0;

	while (environ && environ[n])
		n++;
	if (!(env = calloc(n + 6, sizeof(*env))))
		return FERRY_E_NOMEM;
	memcpy(env, environ, n * sizeof(*env));
	snprintf(e_phase, sizeof(e_phase), "FERRY_PHASE=%s", phase);
	snprintf(e_source, sizeof(e_source), "FERRY_SOURCE=%s", g->source);
	snprintf(e_name, sizeof(e_name), "FERRY_NAME=%s", g->o->name ? g->o->name : "");
	snprintf(e_res, sizeof(e_res), "FERRY_RESULT=%s", result ? result : "");
	snprintf(e_id, sizeof(e_id), "FERRY_POINT_ID=%s", point_id ? point_id : "");
	env[n++] = e_phase;
	env[n++] = e_source;
	env[n++] = e_name;
	env[n++] = e_res;
	env[n++] = e_id;
	env[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		free(env);
		return ferry_error(FERRY_E_SOURCE, "%s-script: fork: %s", phase,
				   strerror(errno));
	}
	if (pid == 0) {
		char *argv[] = { "sh", "-c", (char *)cmd, NULL };

		setpgid(0, 0);
		dup2(2, 1);
		execve("/bin/sh", argv, env);
		_exit(127);
	}
	free(env);
	setpgid(pid, pid);
	deadline = ferry_mono_seconds() + timeout;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return ferry_error(FERRY_E_SOURCE, "%s-script: wait: %s", phase,
					   strerror(errno));
		if (!killed && (ferry_mono_seconds() > deadline ||
				atomic_load(&ferry_cancelled))) {
			killed = atomic_load(&ferry_cancelled) ? 2 : 1;
			kill(-pid, SIGTERM);
			deadline = ferry_mono_seconds() + 5;
		} else if (killed && ferry_mono_seconds() > deadline) {
			kill(-pid, SIGKILL);
		}
		sleep_ms(20);
	}
	if (killed == 1)
		return ferry_error(FERRY_E_SOURCE, "%s-script timed out after %d s and was killed",
				   phase, timeout);
	if (killed == 2)
		return ferry_error(FERRY_E_INTERRUPTED, "%s-script interrupted", phase);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st))
		return ferry_error(FERRY_E_SOURCE, "%s-script failed (exit %d): %s", phase,
				   WEXITSTATUS(st), cmd);
	return ferry_error(FERRY_E_SOURCE, "%s-script killed by signal %d: %s", phase,
			   WTERMSIG(st), cmd);
}

static int thaw(struct ferry_guest *g)
{
	int n = 0, e;

	if (!g->frozen)
		return 0;
	if ((e = ferry_qga_thaw(g->q, &n)) != 0) {
		char msg[768];

		snprintf(msg, sizeof(msg), "%s", ferry_last_error());
		return ferry_error(e == FERRY_E_NOMEM ? e : FERRY_E_SOURCE,
				   "cannot thaw the guest's file systems (%s): they may still be frozen; run guest-fsfreeze-thaw through the agent",
				   msg);
	}
	g->frozen = 0;
	return 0;
}

static int freeze(struct ferry_guest *g)
{
	const char *sock = g->o->quiesce + 4;
	int tmo = (g->o->quiesce_timeout > 0 ? g->o->quiesce_timeout : 30) * 1000;
	char version[64], msg[768];
	int e, n = 0;

	if ((e = ferry_qga_open(sock, tmo, &g->q)) != 0)
		return e;
	if ((e = ferry_qga_ping(g->q)) != 0 ||
	    (e = ferry_qga_info(g->q, version, sizeof(version))) != 0) {
		snprintf(msg, sizeof(msg), "%s", ferry_last_error());
		return ferry_error(FERRY_E_SOURCE, "qemu-guest-agent at %s: %s", sock, msg);
	}
	/* From here the guest may be (partly) frozen, even when the freeze
	 * fails or its reply never comes: the caller thaws. */
	g->frozen = 1;
	if ((e = ferry_qga_freeze(g->q, &n)) != 0) {
		snprintf(msg, sizeof(msg), "%s", ferry_last_error());
		return ferry_error(FERRY_E_SOURCE,
				   "qemu-guest-agent %s at %s could not freeze the guest: %s",
				   version[0] ? version : "(unknown version)", sock, msg);
	}
	return 0;
}

/* Undo what begin did after a failure E; returns E. */
static int unwind(struct ferry_guest *g, int e, int post)
{
	char msg[1024];
	int t;

	snprintf(msg, sizeof(msg), "%s", ferry_last_error());
	if ((t = thaw(g)) != 0)
		gwarn(g->o, "%s", ferry_last_error());
	if (post && g->o->post_script &&
	    run_script(g, "post", g->o->post_script, "failure", NULL) != 0)
		gwarn(g->o, "%s", ferry_last_error());
	ferry_qga_free(g->q);
	free(g);
	ferry_error(e, "%s", msg);
	return e;
}

int ferry_guest_begin(const struct ferry_backup_opts *o, const char *source,
		      struct ferry_guest **out)
{
	struct ferry_guest *g;
	int e;

	*out = NULL;
	if (!o || (!o->pre_script && !o->snapshot_script && !o->post_script &&
		   !o->quiesce))
		return 0;
	if (o->quiesce && (strncmp(o->quiesce, "qga:", 4) || !o->quiesce[4]))
		return ferry_error(FERRY_E_INVAL, "quiesce: give qga:SOCKET, not %s",
				   o->quiesce);
	if (!(g = calloc(1, sizeof(*g))))
		return FERRY_E_NOMEM;
	g->o = o;
	snprintf(g->source, sizeof(g->source), "%s", source);
	if (o->pre_script && (e = run_script(g, "pre", o->pre_script, NULL, NULL)) != 0)
		return unwind(g, e, 1);
	if (o->quiesce && (e = freeze(g)) != 0)
		return unwind(g, e, 1);
	if (o->snapshot_script) {
		if ((e = run_script(g, "snapshot", o->snapshot_script, NULL, NULL)) != 0)
			return unwind(g, e, 1);
		if ((e = thaw(g)) != 0)
			return unwind(g, e, 1);
	}
	*out = g;
	return 0;
}

int ferry_guest_read_done(struct ferry_guest *g)
{
	return g ? thaw(g) : 0;
}

int ferry_guest_end(struct ferry_guest *g, int result, const char *point_id)
{
	char msg[1024] = "";
	int e = 0;

	if (!g)
		return 0;
	if (result)
		snprintf(msg, sizeof(msg), "%s", ferry_last_error());
	e = thaw(g);
	if (g->o->post_script &&
	    run_script(g, "post", g->o->post_script, result ? "failure" : "success",
		       result ? NULL : point_id) != 0)
		gwarn(g->o, "%s%s", ferry_last_error(),
		      result ? "" : " (the restore point was committed)");
	ferry_qga_free(g->q);
	free(g);
	if (!e && result)
		ferry_error(result, "%s", msg); /* keep the backup's own message */
	return e;
}
