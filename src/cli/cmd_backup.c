/* cmd_backup.c - `ferry backup`: one disk into a new restore point. */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"

static const char usage[] = "--repo PATH|URL [--name NAME] [--json] SOURCE";

static void help(void)
{
	printf("usage: ferry backup %s\n\n"
	       "Back up SOURCE (a raw disk image file or a block device) into a new\n"
	       "restore point.  Zero blocks and holes are recorded, not stored; blocks\n"
	       "the repository already holds (from any earlier backup) are not written\n"
	       "again, so a second backup of the same disk stores only what changed.\n"
	       "Prints the new restore point's id on stdout and a summary on stderr.\n\n"
	       "  --repo PATH     repository (or FERRY_REPO)\n"
	       "  --name NAME     name of the disk (default: SOURCE's base name);\n"
	       "                  `ferry restore NAME` restores its latest point\n"
	       "  --json          print a JSON object with the id and byte counts\n"
	       "  --threads N     worker threads (default: one per CPU)\n"
	       "  --quiet         no summary on stderr\n",
	       usage);
	fputs(cli_remote_help, stdout);
}

int cmd_backup(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "threads", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		CLI_REMOTE_OPTIONS,
		{ 0 }
	};
	struct ferry_backup_opts bo = { 0 };
	struct ferry_backup_result res;
	struct ferry_net_stats net;
	int remote;
	struct ferry_repo *repo = NULL;
	const char *rp = NULL;
	int c, e, rc, json = 0, quiet = 0;

	while ((c = getopt_long(argc, argv, "+r:n:jt:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rp = optarg; break;
		case 'n': bo.name = optarg; break;
		case 'j': json = 1; break;
		case 't':
			if (cli_parse_int(optarg, 1, 256, &bo.threads)) {
				fprintf(stderr, "ferry: --threads: give 1 to 256\n");
				return EXIT_USAGE;
			}
			break;
		case 'q': quiet = 1; break;
		case 'h': help(); return EXIT_OK;
		default:
			if ((rc = cli_remote_option(c, optarg)) > 0)
				break;
			if (rc < 0)
				return EXIT_USAGE;
			return cli_usage("backup", usage);
		}
	}
	if (optind + 1 != argc)
		return cli_usage("backup", usage);
	if ((e = cli_open_repo(rp, &repo)) != 0)
		return e;
	bo.progress = cli_progress;
	bo.progress_arg = "backup";
	bo.warn = cli_warn;
	e = ferry_backup(repo, argv[optind], &bo, &res);
	cli_progress_end();
	remote = ferry_repo_net_stats(repo, &net) == 0;
	ferry_repo_free(repo);
	if (e)
		return cli_fail(e, "backup failed");
	if (json) {
		printf("{\"id\":\"%s\",\"name\":", res.point.id);
		cli_json_str(stdout, res.point.name);
		printf(",\"source\":");
		cli_json_str(stdout, res.point.source);
		printf(",\"block_size\":%u,\"bytes_total\":%llu,\"bytes_read\":%llu,"
		       "\"bytes_zero\":%llu,\"bytes_new\":%llu,\"bytes_reused\":%llu,"
		       "\"bytes_stored\":%llu,\"blocks_total\":%llu,\"blocks_zero\":%llu,"
		       "\"blocks_new\":%llu,\"blocks_reused\":%llu,\"bytes_unchanged\":%llu,"
		       "\"bytes_skipped_swap\":%llu,\"bytes_skipped_free\":%llu,"
		       "\"bytes_skipped_excluded\":%llu,\"base\":%s%s%s,\"seconds\":%.3f",
		       res.point.block_size, (unsigned long long)res.bytes_total,
		       (unsigned long long)res.bytes_read,
		       (unsigned long long)res.bytes_zero,
		       (unsigned long long)res.bytes_new,
		       (unsigned long long)res.bytes_reused,
		       (unsigned long long)res.bytes_stored,
		       (unsigned long long)res.blocks_total,
		       (unsigned long long)res.blocks_zero,
		       (unsigned long long)res.blocks_new,
		       (unsigned long long)res.blocks_reused,
		       (unsigned long long)res.bytes_unchanged,
		       (unsigned long long)res.bytes_skipped_swap,
		       (unsigned long long)res.bytes_skipped_free,
		       (unsigned long long)res.bytes_skipped_excluded,
		       res.base_id[0] ? "\"" : "", res.base_id[0] ? res.base_id : "null",
		       res.base_id[0] ? "\"" : "", res.seconds);
		if (remote)
			printf(",\"net\":{\"bytes_sent\":%llu,\"bytes_received\":%llu,"
			       "\"connects\":%llu,\"resumes\":%llu,\"resumed_at_block\":%llu,"
			       "\"chunks_resent\":%llu}",
			       (unsigned long long)net.bytes_sent,
			       (unsigned long long)net.bytes_received,
			       (unsigned long long)net.connects,
			       (unsigned long long)net.resumes,
			       (unsigned long long)net.blocks_resumed_at,
			       (unsigned long long)net.chunks_resent);
		printf("}\n");
		return EXIT_OK;
	}
	printf("%s\n", res.point.id);
	if (!quiet) {
		char t[32], rd[32], z[32], n[32], s[32], u[32], rate[32];

		cli_human(res.bytes_total, t, sizeof(t));
		cli_human(res.bytes_read, rd, sizeof(rd));
		cli_human(res.bytes_zero, z, sizeof(z));
		cli_human(res.bytes_new, n, sizeof(n));
		cli_human(res.bytes_stored, s, sizeof(s));
		cli_human(res.bytes_reused, u, sizeof(u));
		cli_human(res.seconds > 0 ? (uint64_t)((double)res.bytes_total / res.seconds) : 0,
			  rate, sizeof(rate));
		fprintf(stderr,
			"backed up %s as restore point %s: %s disk, %s read, %s zero, "
			"%s new (stored as %s), %s already in the repository; %.2f s, %s/s\n",
			res.point.name, res.point.id, t, rd, z, n, s, u,
			res.seconds, rate);
		if (remote) {
			char sent[32];

			cli_human(net.bytes_sent, sent, sizeof(sent));
			fprintf(stderr, "sent %s to the mover over %llu connection(s), %llu resume(s)\n",
				sent, (unsigned long long)net.connects,
				(unsigned long long)net.resumes);
		}
	}
	return EXIT_OK;
}
