/* cmd_copy.c - `ferry copy`: copy restore points to a second repository
 * (backup copy, e.g. off-site). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_FROM_PW = 0x1300, OPT_FROM_SMB }; /* long-only options */

static const char usage[] =
	"--from REPO --to REPO [--name NAME | POINT...] [--from-password-file FILE]\n"
	"       [--password-file FILE] [--from-smb-credentials FILE] [--json] [--threads N] [--quiet]";

static void help(void)
{
	printf("usage: ferry copy %s\n\n"
	       "Copy restore points from one repository to another: a local directory,\n"
	       "an SMB share (smb://), or a mover over the network (ferry://HOST:PORT/NAME).\n"
	       "Only the points the target lacks are copied (a point keeps its id), and\n"
	       "only the chunks the target lacks are sent, as they are stored.  Every\n"
	       "chunk read is checked (checksum, SHA-256); a point is committed on the\n"
	       "target once all its chunks are durable there, and its manifest is read\n"
	       "back and compared.  A copy that was stopped or killed is run again to\n"
	       "finish: chunks already sent are not sent twice.  Both repositories must\n"
	       "have the same block size (ferry init --block-size).\n\n"
	       "Encrypted repositories copy too, in every direction.  When both sides\n"
	       "share their keys (or neither is encrypted) chunks travel as stored;\n"
	       "otherwise each chunk is read and checked with the source's key,\n"
	       "named with the target's id key and sealed with the target's key, and\n"
	       "the manifest is rewritten with the target's chunk ids (point ids, names\n"
	       "and times are kept).  Blocks unchanged since a point already on both\n"
	       "sides are not read again.\n\n"
	       "  --from REPO    the repository to copy from (path or URL)\n"
	       "  --to REPO      the repository to copy to (path or URL)\n"
	       "  --name NAME    only the points of NAME (default: every point)\n"
	       "  POINT...       only these points (ids, id prefixes, or names: the\n"
	       "                 latest point of the name)\n"
	       "  --from-password-file FILE\n"
	       "                 the source's passphrase (first line of FILE); else\n"
	       "                 FERRY_FROM_PASSWORD, else a prompt\n"
	       "  --password-file FILE\n"
	       "                 the target's passphrase; else FERRY_PASSWORD, else a\n"
	       "                 prompt\n"
	       "  --from-smb-credentials FILE\n"
	       "                 an smb:// source's credentials file, when they differ\n"
	       "                 from the target's (--smb-credentials, which is used\n"
	       "                 for both sides otherwise)\n"
	       "  --threads N    chunks read, checked and sent at once (default: CPUs, at\n"
	       "                 least 4)\n"
	       "  --json         print a JSON summary\n"
	       "  --quiet        no summary line\n",
	       usage);
	fputs(cli_remote_help, stdout);
	fputs(cli_backend_help, stdout);
}

static void point_done(const struct ferry_point *p, int copied, void *arg)
{
	int quiet = *(int *)arg;

	if (quiet)
		return;
	cli_progress_end();
	fprintf(stderr, "%s %s (%s)\n", copied ? "copied" : "present", p->id, p->name);
}

static int open_one(const char *path, struct ferry_repo **out, const char *what)
{
	int e = ferry_is_remote_url(path) ? cli_remote_open(path, out)
					  : ferry_repo_open(path, out);

	if (e) {
		char msg[64];

		snprintf(msg, sizeof(msg), "cannot open the %s repository", what);
		return cli_fail(e, msg);
	}
	return 0;
}

int cmd_copy(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "from-password-file", required_argument, NULL, OPT_FROM_PW },
		{ "from-smb-credentials", required_argument, NULL, OPT_FROM_SMB },
		{ "to", required_argument, NULL, 'T' },
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "threads", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		CLI_REMOTE_OPTIONS,
		CLI_BACKEND_OPTIONS,
		{ 0 }
	};
	struct ferry_copy_opts co;
	struct ferry_copy_result res;
	struct ferry_repo *from = NULL, *to = NULL;
	const char *fp = NULL, *tp = NULL, *from_pw = NULL, *from_smb = NULL;
	const char *smb = NULL;
	struct ferry_net_stats net;
	int c, e, rc, json = 0, quiet = 0, remote;

	memset(&co, 0, sizeof(co));
	while ((c = getopt_long(argc, argv, "f:T:n:jt:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': fp = optarg; break;
		case OPT_FROM_PW: from_pw = optarg; break;
		case OPT_FROM_SMB:
			if (cli_check_file("--from-smb-credentials", optarg) != 0)
				return EXIT_USAGE;
			from_smb = optarg;
			break;
		case 'T': tp = optarg; break;
		case 'n': co.name = optarg; break;
		case 'j': json = 1; break;
		case 'q': quiet = 1; break;
		case 't':
			if ((rc = cli_int_option("threads", optarg, 1, 64, &co.threads)) != 0)
				return rc;
			break;
		case 'h': help(); return EXIT_OK;
		default:
			if (c == OPT_SMB_CREDENTIALS)
				smb = optarg;
			if ((rc = cli_repo_option(c, optarg, "copy", usage)) != 0)
				return rc;
		}
	}
	if (!fp || !tp) {
		fprintf(stderr, "ferry: copy needs --from REPO and --to REPO\n");
		return EXIT_USAGE;
	}
	if (co.name && optind < argc) {
		fprintf(stderr, "ferry: give --name or points, not both\n");
		return EXIT_USAGE;
	}
	co.points = (const char *const *)argv + optind;
	co.npoints = argc - optind;
	/* An SMB repository reads its credentials when it is opened: the
	 * source with --from-smb-credentials, the target with the usual. */
	if (from_smb)
		ferry_backend_set("smb-credentials", from_smb);
	e = open_one(fp, &from, "source");
	if (from_smb)
		ferry_backend_set("smb-credentials", smb);
	if (e)
		return e;
	if ((e = open_one(tp, &to, "target")) != 0) {
		ferry_repo_free(from);
		return e;
	}
	/* Both keys open before anything is written: a wrong passphrase
	 * leaves the target as it was. */
	if ((e = cli_unlock_from(from, from_pw, "FERRY_FROM_PASSWORD",
				 "source repository passphrase",
				 "cannot open the source repository")) != 0 ||
	    (e = cli_unlock_from(to, cli_password_file, "FERRY_PASSWORD",
				 "target repository passphrase",
				 "cannot open the target repository")) != 0) {
		ferry_repo_free(from);
		ferry_repo_free(to);
		return e;
	}
	co.progress = cli_progress;
	co.progress_arg = "copy";
	co.point_done = point_done;
	co.point_done_arg = json ? (void *)&json : (void *)&quiet;
	e = ferry_copy(from, to, &co, &res);
	cli_progress_end();
	memset(&net, 0, sizeof(net));
	remote = ferry_repo_net_stats(to, &net) == 0;
	ferry_repo_free(from);
	ferry_repo_free(to);
	if (json)
		printf("{\"ok\":%s,\"points_copied\":%llu,\"points_present\":%llu,"
		       "\"chunks_sent\":%llu,\"chunks_present\":%llu,\"bytes_sent\":%llu,"
		       "\"bytes_raw_sent\":%llu,\"net_bytes_sent\":%llu,\"seconds\":%.3f,"
		       "\"chunks_read\":%llu}\n",
		       e ? "false" : "true", (unsigned long long)res.points_copied,
		       (unsigned long long)res.points_present,
		       (unsigned long long)res.chunks_sent,
		       (unsigned long long)res.chunks_present,
		       (unsigned long long)res.bytes_sent,
		       (unsigned long long)res.bytes_raw_sent,
		       (unsigned long long)(remote ? net.bytes_sent : res.bytes_sent),
		       res.seconds, (unsigned long long)res.chunks_read);
	if (e)
		return cli_fail(e, "copy failed");
	if (!json && !quiet) {
		char b[32];

		cli_human(res.bytes_sent, b, sizeof(b));
		fprintf(stderr,
			"copied %llu restore point(s) (%llu present already): %llu chunk(s) sent (%s), %llu the target had; %.2f s\n",
			(unsigned long long)res.points_copied,
			(unsigned long long)res.points_present,
			(unsigned long long)res.chunks_sent, b,
			(unsigned long long)res.chunks_present, res.seconds);
	}
	return EXIT_OK;
}
