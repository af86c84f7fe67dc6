/* cmd_info.c - `ferry info`: format, settings, sizes and ratios. */
#include <getopt.h>

#include "cli.h"

static const char usage[] = "--repo PATH|URL [--json]";

static void help(void)
{
	printf("usage: ferry info %s\n\n"
	       "Show the repository's format version, block size and compression, its\n"
	       "chunk count and stored bytes, the logical bytes of all restore points,\n"
	       "and the dedup ratio (non-zero logical bytes / unique chunk bytes) and\n"
	       "compression ratio (unique chunk bytes / stored bytes).\n\n"
	       "  --repo PATH   repository (or FERRY_REPO)\n"
	       "  --json        a JSON object\n",
	       usage);
	fputs(cli_remote_help, stdout);
	fputs(cli_backend_help, stdout);
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		CLI_REMOTE_OPTIONS,
		CLI_BACKEND_OPTIONS,
		{ 0 }
	};
	struct ferry_repo *repo;
	struct ferry_repo_info i;
	const char *rp = NULL;
	int c, e, rc, json = 0, enc;
	char kdesc[64] = "";
	const char *kname = "";
	double dedup, comp;

	while ((c = getopt_long(argc, argv, "r:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rp = optarg; break;
		case 'j': json = 1; break;
		case 'h': help(); return EXIT_OK;
		default:
			if ((rc = cli_repo_option(c, optarg, "info", usage)) != 0)
				return rc;
		}
	}
	if (optind != argc)
		return cli_usage("info", usage);
	if ((e = cli_open_repo(rp, &repo)) != 0)
		return e;
	e = ferry_repo_get_info(repo, &i);
	enc = ferry_repo_encrypted(repo);
	if (!e && enc)
		e = ferry_repo_kdf_describe(repo, kdesc, sizeof(kdesc), &kname);
	ferry_repo_free(repo);
	if (e)
		return cli_fail(e, "cannot read repository");
	dedup = i.chunk_raw_bytes ? (double)i.referenced_bytes / (double)i.chunk_raw_bytes : 1;
	comp = i.stored_bytes ? (double)i.chunk_raw_bytes / (double)i.stored_bytes : 1;
	if (json) {
		printf("{\"id\":\"%s\",\"format_version\":%u,\"block_size\":%u,"
		       "\"compression\":\"%s\",\"level\":%d,\"points\":%llu,"
		       "\"chunks\":%llu,\"stored_bytes\":%llu,\"chunk_bytes\":%llu,"
		       "\"logical_bytes\":%llu,\"referenced_bytes\":%llu,"
		       "\"dedup_ratio\":%.3f,\"compression_ratio\":%.3f,"
		       "\"encrypted\":%s",
		       i.repo_id, i.format_version, i.block_size,
		       ferry_codec_name(i.codec), i.level,
		       (unsigned long long)i.point_count,
		       (unsigned long long)i.chunk_count,
		       (unsigned long long)i.stored_bytes,
		       (unsigned long long)i.chunk_raw_bytes,
		       (unsigned long long)i.logical_bytes,
		       (unsigned long long)i.referenced_bytes, dedup, comp,
		       enc ? "true" : "false");
		if (enc)
			printf(",\"kdf\":\"%s\"", kname);
		printf("}\n");
	} else {
		char s[32], l[32], rb[32], cb[32];

		cli_human(i.stored_bytes, s, sizeof(s));
		cli_human(i.logical_bytes, l, sizeof(l));
		cli_human(i.referenced_bytes, rb, sizeof(rb));
		cli_human(i.chunk_raw_bytes, cb, sizeof(cb));
		printf("repository id:      %s\n"
		       "format version:     %u\n"
		       "block size:         %u KiB\n"
		       "compression:        %s",
		       i.repo_id, i.format_version, i.block_size >> 10,
		       ferry_codec_name(i.codec));
		if (i.codec == FERRY_CODEC_ZSTD)
			printf(":%d", i.level);
		if (enc)
			printf("\nencryption:         aes-256-gcm, keyed chunk ids, %s",
			       kdesc);
		printf("\n"
		       "restore points:     %llu\n"
		       "chunks:             %llu\n"
		       "stored bytes:       %s\n"
		       "logical bytes:      %s (%s non-zero)\n"
		       "unique block bytes: %s\n"
		       "dedup ratio:        %.2fx\n"
		       "compression ratio:  %.2fx\n",
		       (unsigned long long)i.point_count,
		       (unsigned long long)i.chunk_count, s, l, rb, cb, dedup,
		       comp);
	}
	return EXIT_OK;
}
