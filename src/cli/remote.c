/* remote.c - the options every command that opens a remote repository
 * (ferry://HOST:PORT/REPO) shares: certificates, plain TCP on loopback,
 * rate, streams, retry and timeout, from the command line or from a
 * config file (--config or FERRY_CONFIG); the command line wins. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/common.h" /* ferry_conf_line */

static struct ferry_remote_opts ro;
static const char *config_path;
static char *owned[64]; /* values read from the config file */
static int nowned;

static void free_owned(void)
{
	while (nowned)
		free(owned[--nowned]);
}
static unsigned given; /* options set on the command line */

const char cli_remote_help[] =
	"\nremote repositories (--repo ferry://HOST:PORT/REPO, served by ferry mover):\n"
	"  --cert FILE        this side's certificate (PEM)\n"
	"  --key FILE         its private key (PEM)\n"
	"  --ca FILE          the CA certificate the mover's certificate must chain to\n"
	"  --insecure         plain TCP without certificates (loopback only)\n"
	"  --limit-rate RATE  bytes per second to send, e.g. 12M\n"
	"  --streams N        parallel connections for a backup (1-16, default 1)\n"
	"  --retry SECONDS    keep reconnecting this long after a broken link (600)\n"
	"  --timeout SECONDS  a mover silent this long counts as gone (60)\n"
	"  --config FILE      the same settings from FILE (or FERRY_CONFIG), one\n"
	"                     'name = value' per line: cert, key, ca, insecure,\n"
	"                     limit-rate, streams, retry, timeout\n";

static int apply(int c, const char *arg, const char *where)
{
	uint64_t v;
	int n;

	switch (c) {
	case OPT_CERT: ro.cert = arg; break;
	case OPT_KEY: ro.key = arg; break;
	case OPT_CA: ro.ca = arg; break;
	case OPT_INSECURE:
		ro.insecure = !arg || !strcmp(arg, "yes") || !strcmp(arg, "true") ||
			      !strcmp(arg, "1");
		break;
	case OPT_LIMIT_RATE:
		if (ferry_size_parse(arg, &v) || v == 0) {
			fprintf(stderr, "ferry: %slimit-rate: give bytes per second, e.g. 12M\n",
				where);
			return -1;
		}
		ro.limit_rate = v;
		break;
	case OPT_STREAMS:
		if (cli_parse_int(arg, 1, 16, &n)) {
			fprintf(stderr, "ferry: %sstreams: give 1 to 16\n", where);
			return -1;
		}
		ro.streams = n;
		break;
	case OPT_RETRY:
		if (cli_parse_int(arg, 1, 7 * 86400, &n)) {
			fprintf(stderr, "ferry: %sretry: give 1 to 604800 seconds\n", where);
			return -1;
		}
		ro.retry_seconds = n;
		break;
	case OPT_TIMEOUT:
		if (cli_parse_int(arg, 1, 3600, &n)) {
			fprintf(stderr, "ferry: %stimeout: give 1 to 3600 seconds\n", where);
			return -1;
		}
		ro.timeout_seconds = n;
		break;
	default:
		return 0;
	}
	return 1;
}

int cli_remote_option(int c, const char *arg)
{
	int r;

	if ((r = cli_backend_option(c, arg)) != 0)
		return r;
	if (c == OPT_CONFIG) {
		config_path = arg;
		return 1;
	}
	r = apply(c, arg, "--");
	if (r > 0)
		given |= 1u << (c - OPT_CERT);
	return r;
}

int cli_repo_option(int c, const char *arg, const char *cmd, const char *usage)
{
	int r = cli_remote_option(c, arg);

	if (r > 0)
		return 0;
	if (r < 0)
		return EXIT_USAGE;
	return cli_usage(cmd, usage);
}

static const struct {
	const char *name;
	int opt;
} keys[] = {
	{ "cert", OPT_CERT }, { "key", OPT_KEY }, { "ca", OPT_CA },
	{ "insecure", OPT_INSECURE }, { "limit-rate", OPT_LIMIT_RATE },
	{ "streams", OPT_STREAMS }, { "retry", OPT_RETRY },
	{ "timeout", OPT_TIMEOUT },
};

static int load_config(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int no = 0;

	if (!f) {
		fprintf(stderr, "ferry: cannot read config %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *k, *v;
		size_t i;
		int r;

		no++;
		/* A long line is refused, never read as two. */
		if (!strchr(line, '\n') && !feof(f)) {
			fprintf(stderr, "ferry: %s:%d: line longer than %zu bytes\n", path, no,
				sizeof(line) - 2);
			fclose(f);
			return -1;
		}
		if ((r = ferry_conf_line(line, &k, &v)) == 0)
			continue;
		if (r < 0) {
			fprintf(stderr, "ferry: %s:%d: expected 'name = value'\n", path, no);
			fclose(f);
			return -1;
		}
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (!strcmp(keys[i].name, k))
				break;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			fprintf(stderr, "ferry: %s:%d: unknown setting '%s'\n", path, no, k);
			fclose(f);
			return -1;
		}
		if (given & (1u << (keys[i].opt - OPT_CERT)))
			continue; /* the command line wins */
		{
			char where[300];
			char *copy = nowned < 64 ? strdup(v) : NULL;

			if (!copy) {
				fclose(f);
				return -1;
			}
			if (!nowned)
				atexit(free_owned);
			owned[nowned++] = copy;
			snprintf(where, sizeof(where), "%s:%d: ", path, no);
			if (apply(keys[i].opt, copy, where) < 0) {
				fclose(f);
				return -1;
			}
		}
	}
	fclose(f);
	return 0;
}

int cli_remote_open(const char *url, struct ferry_repo **out)
{
	const char *cfg = config_path ? config_path : getenv("FERRY_CONFIG");

	if (cfg && *cfg && load_config(cfg))
		return FERRY_E_INVAL; /* the line at fault is printed */
	return ferry_repo_open_remote(url, &ro, out);
}
