/* cmd_serve.c - `ferry serve`: instant recovery, a restore point exported
 * as an NBD disk that QEMU can boot and qemu-img can copy. */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"

static const char usage[] =
	"--repo PATH|URL POINT --nbd unix:SOCKET|HOST:PORT [--writable [--overlay FILE]]";

static void help(void)
{
	printf("usage: ferry serve %s\n\n"
	       "Export restore point POINT as a network block device (NBD) until\n"
	       "interrupted (Ctrl-C, SIGTERM).  Blocks are fetched from the repository\n"
	       "and checked against their SHA-256 when a client reads them, so a VM can\n"
	       "run from its backup at once, and be migrated to real storage while it\n"
	       "runs.  A damaged block is an I/O error for the reads that touch it,\n"
	       "logged here, never wrong data.  The repository is only read.\n\n"
	       "  --repo PATH       repository (or FERRY_REPO); ferry://HOST:PORT/REPO\n"
	       "                    serves a point of a remote mover's repository (an\n"
	       "                    off-site copy): chunks are fetched over the link\n"
	       "  --nbd unix:PATH   listen on a unix socket (replaces a stale socket)\n"
	       "  --nbd HOST:PORT   listen on TCP (no TLS: keep it on a trusted network)\n"
	       "  --writable        accept writes; they go to an overlay file, never to\n"
	       "                    the repository, and are lost when ferry stops\n"
	       "  --overlay FILE    keep the overlay in FILE (created; must not exist)\n"
	       "  --cache MIB       decoded blocks kept in memory (default 64)\n"
	       "  --threads N       requests served in parallel per client (default 4)\n"
	       "  --max-clients N   connections at once (default 64)\n"
	       "  --quiet           do not log clients and bad blocks\n\n"
	       "examples:\n"
	       "  ferry serve --repo /backup/repo vm1.img --nbd unix:/run/vm1.sock &\n"
	       "  qemu-system-x86_64 -drive file=nbd+unix:///?socket=/run/vm1.sock,format=raw ...\n"
	       "  qemu-img convert -p -f raw nbd+unix:///?socket=/run/vm1.sock -O qcow2 vm1.qcow2\n"
	       "  nbdinfo nbd://backup-host:10809\n"
	       "  ferry serve --repo ferry://offsite:7700/repo --cert c.crt --key c.key \\\n"
	       "      --ca ca.crt vm1 --nbd unix:/run/vm1.sock\n",
	       usage);
	fputs(cli_remote_help, stdout);
	fputs(cli_backend_help, stdout);
}

static void on_log(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "ferry: serve: %s\n", msg);
}

static void on_ready(const char *where, const struct ferry_point *p, void *arg)
{
	char size[32];

	(void)arg;
	cli_human(p->disk_size, size, sizeof(size));
	printf("serving restore point %s (%s, %s) at %s\n", p->id, p->name, size,
	       where);
	fflush(stdout);
}

int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "nbd", required_argument, NULL, 'n' },
		{ "writable", no_argument, NULL, 'w' },
		{ "overlay", required_argument, NULL, 'o' },
		{ "cache", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "max-clients", required_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		CLI_REMOTE_OPTIONS,
		CLI_BACKEND_OPTIONS,
		{ 0 }
	};
	struct ferry_serve_opts so = { 0 };
	struct ferry_repo *repo;
	const char *rp = NULL;
	int c, e, n, rc;

	so.log = on_log;
	so.ready = on_ready;
	while ((c = getopt_long(argc, argv, "r:n:wo:c:t:m:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rp = optarg; break;
		case 'n': so.listen = optarg; break;
		case 'w': so.writable = 1; break;
		case 'o': so.overlay = optarg; break;
		case 'c':
			if ((rc = cli_int_option_unit("cache", optarg, 1, 65536, "MiB", &n)) != 0)
				return rc;
			so.cache_mib = (uint32_t)n;
			break;
		case 't':
			if ((rc = cli_int_option("threads", optarg, 1, 64, &so.threads)) != 0)
				return rc;
			break;
		case 'm':
			if ((rc = cli_int_option("max-clients", optarg, 1, 4096, &so.max_clients)) != 0)
				return rc;
			break;
		case 'q': so.log = NULL; break;
		case 'h': help(); return EXIT_OK;
		default:
			if ((rc = cli_repo_option(c, optarg, "serve", usage)) != 0)
				return rc;
		}
	}
	if (optind + 1 != argc || !so.listen)
		return cli_usage("serve", usage);
	if (so.overlay && !so.writable) {
		fprintf(stderr, "ferry: --overlay needs --writable\n");
		return EXIT_USAGE;
	}
	if ((e = cli_open_repo(rp, &repo)) != 0)
		return e;
	e = ferry_serve(repo, argv[optind], &so);
	ferry_repo_free(repo);
	if (e)
		return cli_fail(e, "serve failed");
	return EXIT_OK;
}
