/* cmd_mover.c - `ferry mover`: the target-side data mover daemon, serving
 * local repositories to authenticated source movers until SIGTERM. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
	"--listen HOST:PORT --repo [NAME=]PATH|URL... --cert C --key K --ca CA [--insecure] [--state-dir DIR]";

static void help(void)
{
	printf("usage: ferry mover %s\n\n"
	       "Serve repositories to source movers (`ferry backup --repo\n"
	       "ferry://HOST:PORT/NAME`, and restore, points, verify, info) over TLS 1.3\n"
	       "with mutual certificate authentication.  Many sessions run at once;\n"
	       "blocks are acknowledged once durable, so a broken link or a restarted\n"
	       "mover resumes a backup where it stopped.  SIGTERM parks every session\n"
	       "and exits.  One line per session event goes to stderr (or syslog).\n\n"
	       "  --listen HOST:PORT      address to listen on (PORT 0: any free port)\n"
	       "  --repo [NAME=]PATH      a local repository to serve, as NAME (default:\n"
	       "                          PATH's base name); repeat for several; or an\n"
	       "                          smb:// URL (the mover is then its gateway)\n"
	       "  --cert FILE             this mover's certificate (PEM)\n"
	       "  --key FILE              its private key\n"
	       "  --ca FILE               CA certificate that client certificates must\n"
	       "                          chain to\n"
	       "  --allow NAME            accept only client certificates with this CN;\n"
	       "                          repeat for several (default: any the CA signed)\n"
	       "  --insecure              plain TCP without certificates, loopback only\n"
	       "  --max-conns N           connections at once (default 64)\n"
	       "  --handshake-timeout S   seconds for TLS and HELLO (default 10)\n"
	       "  --idle-timeout S        drop a connection silent this long (default 120)\n"
	       "  --session-ttl S         keep a parked session this long (default 7 days)\n"
	       "  --verify-chunks         decompress and hash every chunk received\n"
	       "  --limit-rate RATE       bytes per second sent, per mover (e.g. 50M)\n"
	       "  --syslog                log to syslog (daemon facility)\n"
	       "  --port-file FILE        write the bound HOST:PORT to FILE when ready\n"
	       "  --state-dir DIR         local directory for the session files of\n"
	       "                          repositories that are not local directories\n"
	       "                          (a gateway: --repo smb://...); SMB credentials\n"
	       "                          come from FERRY_SMB_CREDENTIALS\n",
	       usage);
	fputs(cli_backend_help, stdout);
}

static int use_syslog;

static void log_line(const char *line, void *arg)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;

	(void)arg;
	if (use_syslog) {
		syslog(LOG_INFO, "%s", line);
		return;
	}
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s ferry-mover[%ld]: %s\n", when, (long)getpid(), line);
}

static void ready(const char *addr, void *arg)
{
	const char *file = arg;
	FILE *f;

	if (!file)
		return;
	if ((f = fopen(file, "w"))) {
		fprintf(f, "%s\n", addr);
		fclose(f);
	}
}

enum {
	O_LISTEN = 0x2000, O_REPO, O_CERT, O_KEY, O_CA, O_ALLOW, O_INSECURE,
	O_MAXC, O_HST, O_IDLE, O_TTL, O_VERIFY, O_RATE, O_SYSLOG, O_PORTFILE,
	O_STATEDIR,
};

int cmd_mover(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "repo", required_argument, NULL, O_REPO },
		{ "cert", required_argument, NULL, O_CERT },
		{ "key", required_argument, NULL, O_KEY },
		{ "ca", required_argument, NULL, O_CA },
		{ "allow", required_argument, NULL, O_ALLOW },
		{ "insecure", no_argument, NULL, O_INSECURE },
		{ "max-conns", required_argument, NULL, O_MAXC },
		{ "handshake-timeout", required_argument, NULL, O_HST },
		{ "idle-timeout", required_argument, NULL, O_IDLE },
		{ "session-ttl", required_argument, NULL, O_TTL },
		{ "verify-chunks", no_argument, NULL, O_VERIFY },
		{ "limit-rate", required_argument, NULL, O_RATE },
		{ "syslog", no_argument, NULL, O_SYSLOG },
		{ "port-file", required_argument, NULL, O_PORTFILE },
		{ "state-dir", required_argument, NULL, O_STATEDIR },
		CLI_BACKEND_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct ferry_mover_opts mo;
	const char **repos = calloc((size_t)argc, sizeof(char *));
	const char **allow = calloc((size_t)argc, sizeof(char *));
	char *port_file = NULL;
	int c, e;

	memset(&mo, 0, sizeof(mo));
	if (!repos || !allow) {
		fprintf(stderr, "ferry: out of memory\n");
		e = EXIT_FAIL;
		goto out;
	}
	mo.repos = repos;
	mo.allow = allow;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *what = NULL;
		int *ip = NULL, lo = 1, hi = 0;

		switch (c) {
		case O_LISTEN: mo.listen = optarg; break;
		case O_REPO: repos[mo.nrepos++] = optarg; break;
		case O_CERT: mo.cert = optarg; break;
		case O_KEY: mo.key = optarg; break;
		case O_CA: mo.ca = optarg; break;
		case O_ALLOW: allow[mo.nallow++] = optarg; break;
		case O_INSECURE: mo.insecure = 1; break;
		case O_MAXC: what = "max-conns"; ip = &mo.max_conns; hi = 4096; break;
		case O_HST: what = "handshake-timeout"; ip = &mo.handshake_timeout; hi = 3600; break;
		case O_IDLE: what = "idle-timeout"; ip = &mo.idle_timeout; hi = 86400; break;
		case O_TTL: what = "session-ttl"; ip = &mo.session_ttl; hi = 365 * 86400; break;
		case O_VERIFY: mo.verify_chunks = 1; break;
		case O_RATE:
			if (ferry_size_parse(optarg, &mo.limit_rate) || !mo.limit_rate) {
				fprintf(stderr, "ferry: --limit-rate: give bytes per second, e.g. 50M\n");
				e = EXIT_USAGE;
				goto out;
			}
			break;
		case O_SYSLOG: use_syslog = 1; break;
		case O_PORTFILE: port_file = optarg; break;
		case O_STATEDIR: mo.state_dir = optarg; break;
		case 'h': help(); e = EXIT_OK; goto out;
		default:
			if ((e = cli_repo_option(c, optarg, "mover", usage)) != 0)
				goto out;
		}
		if (ip && (e = cli_int_option(what, optarg, lo, hi, ip)) != 0)
			goto out;
	}
	if (optind != argc || !mo.listen || !mo.nrepos) {
		e = cli_usage("mover", usage);
		goto out;
	}
	if (!mo.insecure && (!mo.cert || !mo.key || !mo.ca)) {
		fprintf(stderr, "ferry: mover needs --cert, --key and --ca (or --insecure on loopback)\n");
		e = EXIT_USAGE;
		goto out;
	}
	if (use_syslog)
		openlog("ferry-mover", LOG_PID, LOG_DAEMON);
	mo.log = log_line;
	mo.ready = ready;
	mo.ready_arg = port_file;
	if ((e = ferry_mover_run(&mo)) != 0)
		e = cli_fail(e, "mover");
out:
	free(repos);
	free(allow);
	return e;
}
