/* cmd_backup.c - `ferry backup`: one disk into a new restore point. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define FERRY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char usage[] = "--repo PATH|URL [--name NAME] [--json] [options] SOURCE";

static void help(void)
{
	printf("usage: ferry backup %s\n\n"
	       "Back up SOURCE into a new restore point.  Zero blocks and holes are\n"
	       "recorded, not stored; blocks the repository already holds (from any\n"
	       "earlier backup) are not written again, so a second backup of the same\n"
	       "disk stores only what changed.  Prints the new restore point's id on\n"
	       "stdout and a summary on stderr.\n\n"
	       "SOURCE is one of:\n"
	       "  FILE | DEVICE                  a raw disk image or a block device\n"
	       "  nbd://HOST[:PORT]/EXPORT        an NBD export (network transport)\n"
	       "  nbd+unix:///EXPORT?socket=PATH  an NBD export on a unix socket\n"
	       "  qcow2:PATH                      a qcow2 image, read through a private\n"
	       "                                  read-only qemu-nbd (started and stopped here)\n"
	       "NBD sources skip holes and zero extents without reading them.\n\n"
	       "  --repo PATH          repository (or FERRY_REPO)\n"
	       "  --name NAME          name of the disk (default: SOURCE's base name);\n"
	       "                       `ferry restore NAME` restores its latest point\n"
	       "  --json               print a JSON object with the id and byte counts\n"
	       "  --threads N          worker threads (default: one per CPU)\n"
	       "  --quiet              no summary on stderr\n\n"
	       "Change tracking (NBD and qcow2 sources; docs/change-tracking.md):\n"
	       "  --bitmap NAME        read only the extents dirty in the QEMU dirty bitmap\n"
	       "                       NAME (the writes since the last point of this disk);\n"
	       "                       a missing bitmap or a broken chain reads everything\n"
	       "                       and says so\n"
	       "  --checkpoint NAME    the bitmap that records the writes after this point,\n"
	       "                       for the next backup's --bitmap (default: --bitmap)\n\n"
	       "Unused blocks (any source; on by default; docs/vm-sources.md):\n"
	       "  --no-exclude-swap    also read Linux swap partitions (by default only\n"
	       "                       their header page is kept)\n"
	       "  --no-exclude-free    also read free ext2/3/4 blocks (by default they are\n"
	       "                       not read and restore as zeros)\n"
	       "  --exclude [N:]PATH   do not keep the data of this guest file, or of the\n"
	       "                       files below this directory, on every ext file system\n"
	       "                       of the disk (or partition N only); they restore as\n"
	       "                       zero-filled files.  Repeatable\n"
	       "A partition table or file system that fails its checks is read whole,\n"
	       "with a warning.\n\n"
	       "Guest interaction (docs/vm-sources.md):\n"
	       "  --pre-script CMD     run (sh -c) before anything else; failing stops the backup\n"
	       "  --quiesce qga:SOCKET freeze the guest's file systems through\n"
	       "                       qemu-guest-agent's unix socket (thawed on every path)\n"
	       "  --snapshot-script CMD  run while the guest is frozen (take the snapshot or\n"
	       "                       checkpoint); the guest is thawed right after it.\n"
	       "                       Without it the freeze is held through the read\n"
	       "  --post-script CMD    run at the end, always (also after a failure), with\n"
	       "                       FERRY_RESULT=success|failure and FERRY_POINT_ID\n"
	       "  --script-timeout S   seconds a script may run (default 600)\n"
	       "  --quiesce-timeout S  seconds the agent may take per command (default 30)\n",
	       usage);
	fputs(cli_remote_help, stdout);
	fputs(cli_backend_help, stdout);
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
		{ "bitmap", required_argument, NULL, 'B' },
		{ "checkpoint", required_argument, NULL, 'C' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "no-exclude-swap", no_argument, NULL, 'S' },
		{ "no-exclude-free", no_argument, NULL, 'F' },
		{ "pre-script", required_argument, NULL, 'P' },
		{ "snapshot-script", required_argument, NULL, 'N' },
		{ "post-script", required_argument, NULL, 'O' },
		{ "script-timeout", required_argument, NULL, 'T' },
		{ "quiesce", required_argument, NULL, 'Q' },
		{ "quiesce-timeout", required_argument, NULL, 'W' },
		CLI_REMOTE_OPTIONS,
		CLI_BACKEND_OPTIONS,
		{ 0 }
	};
	static const char *excl[256];
	struct ferry_backup_opts bo = { 0 };
	struct ferry_backup_result res;
	struct ferry_net_stats net;
	int remote;
	struct ferry_repo *repo = NULL;
	const char *rp = NULL;
	int c, e, rc, json = 0, quiet = 0;

	while ((c = getopt_long(argc, argv, "r:n:jt:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rp = optarg; break;
		case 'n': bo.name = optarg; break;
		case 'j': json = 1; break;
		case 't':
			if ((rc = cli_int_option("threads", optarg, 1, 256, &bo.threads)) != 0)
				return rc;
			break;
		case 'q': quiet = 1; break;
		case 'h': help(); return EXIT_OK;
		case 'B': bo.bitmap = optarg; break;
		case 'C': bo.checkpoint = optarg; break;
		case 'x':
			if (bo.exclude_count >= FERRY_ARRAY_LEN(excl)) {
				fprintf(stderr, "ferry: --exclude: at most %zu paths\n",
					FERRY_ARRAY_LEN(excl));
				return EXIT_USAGE;
			}
			if (!strchr(optarg, '/')) {
				fprintf(stderr, "ferry: --exclude %s: give an absolute guest path, e.g. /var/cache or 2:/tmp\n",
					optarg);
				return EXIT_USAGE;
			}
			excl[bo.exclude_count++] = optarg;
			bo.exclude = excl;
			break;
		case 'S': bo.keep_swap = 1; break;
		case 'F': bo.keep_free = 1; break;
		case 'P': bo.pre_script = optarg; break;
		case 'N': bo.snapshot_script = optarg; break;
		case 'O': bo.post_script = optarg; break;
		case 'T':
			if ((rc = cli_int_option_unit("script-timeout", optarg, 1, 86400,
						      "seconds", &bo.script_timeout)) != 0)
				return rc;
			break;
		case 'Q':
			if (strncmp(optarg, "qga:", 4) || !optarg[4]) {
				fprintf(stderr, "ferry: --quiesce: give qga:SOCKET (qemu-guest-agent's unix socket)\n");
				return EXIT_USAGE;
			}
			bo.quiesce = optarg;
			break;
		case 'W':
			if ((rc = cli_int_option_unit("quiesce-timeout", optarg, 1, 3600,
						      "seconds", &bo.quiesce_timeout)) != 0)
				return rc;
			break;
		default:
			if ((rc = cli_repo_option(c, optarg, "backup", usage)) != 0)
				return rc;
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
		       "\"bytes_skipped_excluded\":%llu,\"base\":%s%s%s,\"seconds\":%.3f,\"extra\":",
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
		cli_json_extra(stdout, res.point.extra);
		/* Sub-block deltas (feature "delta"). */
		printf(",\"blocks_delta\":%llu", (unsigned long long)res.blocks_delta);
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
		if (res.bytes_unchanged || res.bytes_skipped_swap ||
		    res.bytes_skipped_free || res.bytes_skipped_excluded) {
			char ch[32], sw[32], fr[32], ex[32];

			cli_human(res.bytes_unchanged, ch, sizeof(ch));
			cli_human(res.bytes_skipped_swap, sw, sizeof(sw));
			cli_human(res.bytes_skipped_free, fr, sizeof(fr));
			cli_human(res.bytes_skipped_excluded, ex, sizeof(ex));
			fprintf(stderr,
				"not read: %s unchanged (change tracking%s%s), skipped %s swap, "
				"%s free, %s excluded\n",
				ch, res.base_id[0] ? " since " : "",
				res.base_id[0] ? res.base_id : "", sw, fr, ex);
		}
		if (res.blocks_delta)
			fprintf(stderr, "%llu changed block(s) stored as their changed 4 KiB pages (sub-block deltas)\n",
				(unsigned long long)res.blocks_delta);
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
