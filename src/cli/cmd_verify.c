/* cmd_verify.c - `ferry verify`: read and check every stored byte. */
#include <getopt.h>

#include "cli.h"

static const char usage[] = "--repo PATH|URL [--sample PERCENT] [--json] [--threads N] [POINT]";

static void help(void)
{
	printf("usage: ferry verify %s\n\n"
	       "Read every chunk of the repository (or of one restore point) and check\n"
	       "its header, checksum, decompression and SHA-256; then check that every\n"
	       "restore point's manifest is intact and that each block it names is\n"
	       "present.  Each bad block is named with the restore points it breaks;\n"
	       "the exit status is 3 when anything is damaged or missing.\n\n"
	       "The outcome is recorded per restore point in the repository and shown\n"
	       "by `ferry points` (VERIFIED column).\n\n"
	       "  --repo PATH    repository (or FERRY_REPO)\n"
	       "  --sample PCT   read only PCT percent of the chunks (1-100), picked at\n"
	       "                 random each run; manifests and the presence of every\n"
	       "                 chunk are still checked in full (a quick daily check)\n"
	       "  --json         print a JSON summary\n"
	       "  --threads N    worker threads (default: one per CPU)\n",
	       usage);
	fputs(cli_remote_help, stdout);
	fputs(cli_backend_help, stdout);
}

int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "threads", required_argument, NULL, 't' },
		{ "sample", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		CLI_REMOTE_OPTIONS,
		CLI_BACKEND_OPTIONS,
		{ 0 }
	};
	struct ferry_verify_opts vo = { 0 };
	struct ferry_verify_result res;
	struct ferry_repo *repo;
	const char *rp = NULL, *point = NULL;
	int c, e, rc, json = 0;

	while ((c = getopt_long(argc, argv, "r:jt:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rp = optarg; break;
		case 'j': json = 1; break;
		case 't':
			if ((rc = cli_int_option("threads", optarg, 1, 256, &vo.threads)) != 0)
				return rc;
			break;
		case 's':
			if (cli_parse_int(optarg, 1, 100, &vo.sample)) {
				fprintf(stderr, "ferry: --sample: give a percent from 1 to 100\n");
				return EXIT_USAGE;
			}
			break;
		case 'h': help(); return EXIT_OK;
		default:
			if ((rc = cli_repo_option(c, optarg, "verify", usage)) != 0)
				return rc;
		}
	}
	if (optind + 1 == argc)
		point = argv[optind];
	else if (optind != argc)
		return cli_usage("verify", usage);
	if ((e = cli_open_repo(rp, &repo)) != 0)
		return e;
	vo.progress = cli_progress;
	vo.progress_arg = "verify";
	vo.bad = cli_print_bad;
	e = ferry_verify(repo, point, &vo, &res);
	cli_progress_end();
	ferry_repo_free(repo);
	if (json)
		printf("{\"ok\":%s,\"points_checked\":%llu,\"points_bad\":%llu,"
		       "\"chunks_checked\":%llu,\"chunks_bad\":%llu,"
		       "\"chunks_missing\":%llu,\"bytes_checked\":%llu,\"sample\":%d,\"seconds\":%.3f}\n",
		       e ? "false" : "true",
		       (unsigned long long)res.points_checked,
		       (unsigned long long)res.points_bad,
		       (unsigned long long)res.chunks_checked,
		       (unsigned long long)res.chunks_bad,
		       (unsigned long long)res.chunks_missing,
		       (unsigned long long)res.bytes_checked,
		       vo.sample ? vo.sample : 100, res.seconds);
	if (e)
		return cli_fail(e, "verify failed");
	if (!json) {
		char b[32];

		cli_human(res.bytes_checked, b, sizeof(b));
		fprintf(stderr, "verified %llu chunk(s) (%s%s) and %llu restore point(s): no damage; %.2f s\n",
			(unsigned long long)res.chunks_checked, b,
			vo.sample && vo.sample < 100 ? ", a random sample" : "",
			(unsigned long long)res.points_checked, res.seconds);
	}
	return EXIT_OK;
}
