/* cmd_restore.c - `ferry restore`: a restore point back to a disk. */
#include <getopt.h>

#include "cli.h"

static const char usage[] = "--repo PATH|URL POINT --to TARGET [--changed-only [--bitmap NAME]] [--json]";

static void help(void)
{
	printf("usage: ferry restore %s\n\n"
	       "Write restore point POINT to TARGET.  POINT is an id (or a unique\n"
	       "prefix of at least 4 digits) or a NAME, meaning its latest point.\n"
	       "TARGET is a file (created or replaced, sparse: zero blocks stay holes)\n"
	       "or a block device at least as large as the disk.  Every block is\n"
	       "checked against its SHA-256 before it is written; a damaged block is\n"
	       "named and not written, and ferry exits with status 3.\n\n"
	       "Quick rollback: with --changed-only, TARGET must exist (the disk of a\n"
	       "VM that has run on since, or an older restore); ferry reads it, hashes\n"
	       "each block and writes only the blocks that differ from POINT.  After a\n"
	       "1 %% change that writes about 1 %% of the disk; the result is POINT byte\n"
	       "for byte.  Stop the VM first: the target must not change meanwhile.\n\n"
	       "TARGET may also be a disk reached over NBD: qcow2:PATH (an existing\n"
	       "qcow2 image, opened through qemu-nbd) or nbd://HOST:PORT/EXPORT,\n"
	       "nbd+unix:///EXPORT?socket=PATH; it keeps its size, the point's.\n"
	       "With --bitmap NAME as well, the QEMU dirty bitmap NAME of that target\n"
	       "says which extents were written since POINT was taken (POINT must name\n"
	       "NAME as its checkpoint: docs/change-tracking.md); only those are read,\n"
	       "compared and, where they differ, written.  If the bitmap cannot be\n"
	       "trusted, ferry says why and compares every block.\n\n"
	       "  --repo PATH    repository (or FERRY_REPO)\n"
	       "  --to TARGET    file or block device to write\n"
	       "  --changed-only read TARGET and write only the blocks that differ\n"
	       "  --bitmap NAME  with --changed-only: read only what bitmap NAME marks\n"
	       "  --json         print a JSON summary\n"
	       "  --threads N    worker threads (default: two per CPU)\n",
	       usage);
	fputs(cli_remote_help, stdout);
	fputs(cli_backend_help, stdout);
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "to", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "changed-only", no_argument, NULL, 'c' },
		{ "bitmap", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		CLI_REMOTE_OPTIONS,
		CLI_BACKEND_OPTIONS,
		{ 0 }
	};
	struct ferry_restore_opts ro = { 0 };
	struct ferry_restore_result res;
	struct ferry_repo *repo;
	const char *rp = NULL, *to = NULL;
	int c, e, rc, json = 0;

	while ((c = getopt_long(argc, argv, "r:o:jcb:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rp = optarg; break;
		case 'o': to = optarg; break;
		case 'j': json = 1; break;
		case 'c': ro.changed_only = 1; break;
		case 'b': ro.bitmap = optarg; break;
		case 't':
			if ((rc = cli_int_option("threads", optarg, 1, 256, &ro.threads)) != 0)
				return rc;
			break;
		case 'h': help(); return EXIT_OK;
		default:
			if ((rc = cli_repo_option(c, optarg, "restore", usage)) != 0)
				return rc;
		}
	}
	if (optind + 1 != argc || !to)
		return cli_usage("restore", usage);
	if (ro.bitmap && !ro.changed_only) {
		fprintf(stderr, "ferry: --bitmap needs --changed-only\n");
		return EXIT_USAGE;
	}
	ro.warn = cli_warn;
	if ((e = cli_open_repo(rp, &repo)) != 0)
		return e;
	ro.progress = cli_progress;
	ro.progress_arg = "restore";
	ro.bad = cli_print_bad;
	e = ferry_restore(repo, argv[optind], to, &ro, &res);
	cli_progress_end();
	ferry_repo_free(repo);
	if (json) {
		printf("{\"point\":");
		cli_json_str(stdout, argv[optind]);
		printf(",\"target\":");
		cli_json_str(stdout, to);
		printf(",\"ok\":%s,\"bytes_total\":%llu,\"bytes_written\":%llu,"
		       "\"bytes_zero\":%llu,\"bad_blocks\":%llu,\"seconds\":%.3f",
		       e ? "false" : "true", (unsigned long long)res.bytes_total,
		       (unsigned long long)res.bytes_written,
		       (unsigned long long)res.bytes_zero,
		       (unsigned long long)res.bad_blocks, res.seconds);
		if (ro.changed_only)
			printf(",\"changed_only\":true,\"bytes_compared\":%llu,"
			       "\"bytes_unchanged\":%llu,\"blocks_written\":%llu",
			       (unsigned long long)res.bytes_compared,
			       (unsigned long long)res.bytes_unchanged,
			       (unsigned long long)res.blocks_written);
		if (ro.bitmap) {
			printf(",\"bitmap\":");
			cli_json_str(stdout, ro.bitmap);
			printf(",\"bitmap_used\":%s,\"bytes_clean\":%llu",
			       res.bitmap_used ? "true" : "false",
			       (unsigned long long)res.bytes_clean);
		}
		printf("}\n");
	}
	if (e)
		return cli_fail(e, "restore failed");
	if (!json && ro.changed_only && res.bitmap_used) {
		char t[32], w[32], r[32];

		cli_human(res.bytes_total, t, sizeof(t));
		cli_human(res.bytes_compared, r, sizeof(r));
		cli_human(res.bytes_written, w, sizeof(w));
		fprintf(stderr, "rolled %s back to %s with bitmap %s: %s of the %s disk read (%.1f %%), %s written in %llu block(s) (%.1f %%); %.2f s\n",
			to, argv[optind], ro.bitmap, r, t,
			res.bytes_total ? 100.0 * (double)res.bytes_compared / (double)res.bytes_total : 0.0,
			w, (unsigned long long)res.blocks_written,
			res.bytes_total ? 100.0 * (double)res.bytes_written / (double)res.bytes_total : 0.0,
			res.seconds);
	} else if (!json && ro.changed_only) {
		char t[32], w[32];

		cli_human(res.bytes_total, t, sizeof(t));
		cli_human(res.bytes_written, w, sizeof(w));
		fprintf(stderr, "rolled %s back to %s: %s disk compared, %s written in %llu block(s) (%.1f %%), every block checked; %.2f s\n",
			to, argv[optind], t, w, (unsigned long long)res.blocks_written,
			res.bytes_total ? 100.0 * (double)res.bytes_written / (double)res.bytes_total : 0.0,
			res.seconds);
	} else if (!json) {
		char t[32], w[32], rate[32];

		cli_human(res.bytes_total, t, sizeof(t));
		cli_human(res.bytes_written, w, sizeof(w));
		cli_human(res.seconds > 0 ? (uint64_t)((double)res.bytes_total / res.seconds) : 0,
			  rate, sizeof(rate));
		fprintf(stderr, "restored %s to %s: %s disk, %s written, every block checked; %.2f s, %s/s\n",
			argv[optind], to, t, w, res.seconds, rate);
	}
	return EXIT_OK;
}
