/* cmd_init.c - `ferry init`: create a repository. */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"

static const char usage[] =
	"--repo PATH [--block-size 256K|512K|1M|4M] [--compression zstd[:LEVEL]|lz4|none]";

static void help(void)
{
	printf("usage: ferry init %s\n\n"
	       "Create an empty repository at PATH (a new or empty directory).\n\n"
	       "  --repo PATH           where (or FERRY_REPO)\n"
	       "  --block-size SIZE     block size: 256K for WAN links, 512K for LANs,\n"
	       "                        1M (default) for local disks, 4M for large disks;\n"
	       "                        any power of two from 64K to 16M\n"
	       "  --compression CODEC   zstd[:1-22] (default zstd:2; 19 and up are slow),\n"
	       "                        lz4 (fastest), or none; blocks that do not\n"
	       "                        shrink are stored raw\n"
	       "  --json                print the new repository's settings as JSON\n",
	       usage);
}

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "compression", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct ferry_init_opts io = { 0, -1, 0, NULL };
	const char *repo = NULL;
	int c, e, json = 0;
	uint64_t bs;

	while ((c = getopt_long(argc, argv, "r:b:c:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'b':
			if (ferry_size_parse(optarg, &bs) || bs > (16u << 20) ||
			    bs < (64u << 10) || (bs & (bs - 1))) {
				fprintf(stderr, "ferry: --block-size %s: use a power of two from 64K to 16M (256K, 512K, 1M, 4M)\n",
					optarg);
				return EXIT_USAGE;
			}
			io.block_size = (uint32_t)bs;
			break;
		case 'c':
			if (ferry_codec_parse(optarg, &io.codec, &io.level)) {
				fprintf(stderr, "ferry: --compression %s: use zstd, zstd:LEVEL (1-22), lz4 or none\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'j': json = 1; break;
		case 'h': help(); return EXIT_OK;
		default: return cli_usage("init", usage);
		}
	}
	if (optind != argc)
		return cli_usage("init", usage);
	if (!(repo = cli_repo(repo)))
		return EXIT_USAGE;
	if ((e = ferry_repo_init(repo, &io)) != 0)
		return cli_fail(e, "cannot create repository");
	{
		struct ferry_repo *r;
		struct ferry_repo_info info;

		if ((e = ferry_repo_open(repo, &r)) != 0)
			return cli_fail(e, "cannot open new repository");
		e = ferry_repo_get_info(r, &info);
		ferry_repo_free(r);
		if (e)
			return cli_fail(e, "cannot read new repository");
		if (json) {
			printf("{\"repo\":");
			cli_json_str(stdout, repo);
			printf(",\"id\":\"%s\",\"format_version\":%u,\"block_size\":%u,"
			       "\"compression\":\"%s\",\"level\":%d}\n",
			       info.repo_id, info.format_version, info.block_size,
			       ferry_codec_name(info.codec), info.level);
		} else {
			printf("created repository %s (format %u, block size %u KiB, compression %s",
			       repo, info.format_version, info.block_size >> 10,
			       ferry_codec_name(info.codec));
			if (info.codec == FERRY_CODEC_ZSTD)
				printf(":%d", info.level);
			printf(")\n");
		}
	}
	return EXIT_OK;
}
