/* output.c - how the ferry command speaks: one clear error line with an
 * exit code, human sizes, JSON strings, and progress on a terminal. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cli_exit_code(int err)
{
	switch (err) {
	case FERRY_OK:
		return EXIT_OK;
	case FERRY_E_CORRUPT:
	case FERRY_E_MISSING:
		return EXIT_DAMAGED;
	case FERRY_E_NOTREPO:
	case FERRY_E_VERSION:
	case FERRY_E_NOTFOUND:
	case FERRY_E_AMBIGUOUS:
		return EXIT_NOTFOUND;
	case FERRY_E_INVAL:
		return EXIT_USAGE;
	case FERRY_E_INTERRUPTED:
		return EXIT_INTERRUPTED;
	case FERRY_E_KEY:
		return EXIT_KEY;
	default:
		return EXIT_FAIL;
	}
}

int cli_fail(int err, const char *what)
{
	const char *detail = ferry_last_error();

	cli_progress_end();
	if (detail && *detail)
		fprintf(stderr, "ferry: %s: %s\n", what, detail);
	else
		fprintf(stderr, "ferry: %s: %s\n", what, ferry_strerror(err));
	return cli_exit_code(err);
}

int cli_usage(const char *cmd, const char *usage)
{
	fprintf(stderr, "usage: ferry %s %s\n(see ferry %s --help)\n", cmd,
		usage, cmd);
	return EXIT_USAGE;
}

const char *cli_repo(const char *opt)
{
	const char *r = opt ? opt : getenv("FERRY_REPO");

	if (!r || !*r) {
		fprintf(stderr, "ferry: no repository: give --repo PATH or set FERRY_REPO\n");
		return NULL;
	}
	return r;
}

int cli_open_repo(const char *opt, struct ferry_repo **out)
{
	const char *path = cli_repo(opt);
	int e;

	if (!path)
		return EXIT_USAGE;
	e = ferry_is_remote_url(path) ? cli_remote_open(path, out)
				      : ferry_repo_open(path, out);
	if (e)
		return cli_fail(e, "cannot open repository");
	if ((e = cli_unlock(*out)) != 0) {
		ferry_repo_free(*out);
		*out = NULL;
		return e;
	}
	return 0;
}

int cli_parse_int(const char *s, int min, int max, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

int cli_int_option(const char *name, const char *arg, int lo, int hi, int *out)
{
	return cli_int_option_unit(name, arg, lo, hi, NULL, out);
}

int cli_int_option_unit(const char *name, const char *arg, int lo, int hi,
			const char *unit, int *out)
{
	if (cli_parse_int(arg, lo, hi, out)) {
		fprintf(stderr, "ferry: --%s: give %d to %d%s%s\n", name, lo, hi,
			unit ? " " : "", unit ? unit : "");
		return EXIT_USAGE;
	}
	return 0;
}

int cli_kdf_option(const char *arg, const char **out)
{
	if (strcmp(arg, "argon2id") && strcmp(arg, "scrypt")) {
		fprintf(stderr, "ferry: --kdf %s: use argon2id or scrypt\n", arg);
		return EXIT_USAGE;
	}
	*out = arg;
	return 0;
}

void cli_human(uint64_t bytes, char *buf, size_t len)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

void cli_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void cli_time(uint64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int progress_shown;

void cli_progress(const struct ferry_progress *p, void *arg)
{
	char done[32], total[32], rate[32];
	double r = p->seconds > 0 ? (double)p->done / p->seconds : 0;
	const char *what = arg;

	if (!isatty(2))
		return;
	cli_human(p->done, done, sizeof(done));
	cli_human((uint64_t)r, rate, sizeof(rate));
	if (p->total) {
		double eta = r > 0 ? (double)(p->total - p->done) / r : 0;

		cli_human(p->total, total, sizeof(total));
		fprintf(stderr, "\r%s: %s of %s (%.0f%%), %s/s, ETA %d:%02d   ",
			what, done, total, 100.0 * (double)p->done / (double)p->total,
			rate, (int)eta / 60, (int)eta % 60);
	} else {
		fprintf(stderr, "\r%s: %s, %s/s   ", what, done, rate);
	}
	progress_shown = 1;
}

void cli_progress_end(void)
{
	if (progress_shown) {
		fprintf(stderr, "\r\033[K");
		progress_shown = 0;
	}
}

void cli_warn(const char *msg, void *arg)
{
	(void)arg;
	cli_progress_end();
	fprintf(stderr, "ferry: warning: %s\n", msg);
}

void cli_print_bad(const struct ferry_bad_block *b, void *arg)
{
	char hex[65] = "";

	(void)arg;
	cli_progress_end();
	if (b->hash)
		ferry_hash_hex(b->hash, hex);
	if (b->block == UINT64_MAX && b->point_id)
		fprintf(stderr, "ferry: restore point %s: %s\n", b->point_id,
			b->detail);
	else if (b->block == UINT64_MAX)
		fprintf(stderr, "ferry: bad chunk %s: %s\n", hex, b->detail);
	else
		fprintf(stderr,
			"ferry: bad block %llu (offset %llu) of restore point %s: chunk %s: %s\n",
			(unsigned long long)b->block,
			(unsigned long long)b->offset, b->point_id, hex,
			b->detail);
}

static void on_signal(int sig)
{
	(void)sig;
	ferry_cancel();
}

void cli_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void cli_json_extra(FILE *f, const char *extra)
{
	int n = 0;

	fputc('{', f);
	for (const char *p = extra; p && *p;) {
		const char *nl = strchr(p, '\n'), *eq;
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);
		char line[FERRY_EXTRA_MAX + 1];

		memcpy(line, p, ll);
		line[ll] = 0;
		if ((eq = strchr(line, '=')) != NULL) {
			line[eq - line] = 0;
			fprintf(f, "%s", n++ ? "," : "");
			cli_json_str(f, line);
			fputc(':', f);
			cli_json_str(f, eq + 1);
		}
		p = nl ? nl + 1 : NULL;
	}
	fputc('}', f);
}
