/* cmd_init.c - `ferry init`: create a repository. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
	"--repo PATH|s3://BUCKET/PREFIX [--block-size 256K|512K|1M|4M] [--compression zstd[:LEVEL]|lz4|none]"
	" [--immutable-days N] [--object-lock-days N] [--encrypt [--password-file FILE] [--kdf argon2id|scrypt]]"
	" [--no-delta]";

static void help(void)
{
	printf("usage: ferry init %s\n\n"
	       "Create an empty repository at PATH (a new or empty directory), or in\n"
	       "an S3 bucket (s3://BUCKET/PREFIX; the bucket is created if missing).\n\n"
	       "  --repo PATH           where (or FERRY_REPO)\n"
	       "  --block-size SIZE     block size: 256K for WAN links, 512K for LANs,\n"
	       "                        1M (default) for local disks, 4M for large disks;\n"
	       "                        any power of two from 64K to 16M\n"
	       "  --compression CODEC   lz4 (the default: fastest to back up and to\n"
	       "                        restore), zstd (level 2: about a quarter\n"
	       "                        smaller, for archives and WAN links),\n"
	       "                        zstd:LEVEL (1-22; 19 and up are slow) or\n"
	       "                        none; blocks that do not shrink are stored raw\n"
	       "  --immutable-days N    a hardened repository (local Linux directory, as\n"
	       "                        root): every chunk and manifest gets the immutable\n"
	       "                        attribute once committed, and no restore point can\n"
	       "                        be removed, by forget, gc or a remote client, until\n"
	       "                        N days after it was made; `ferry gc` on this host\n"
	       "                        lifts the attribute of what expired.  Refused where\n"
	       "                        the file system lacks the attribute\n"
	       "                        (docs/hardened-repository.md)\n"
	       "  --object-lock-days N  s3:// only: every chunk and manifest written gets\n"
	       "                        an S3 Object Lock COMPLIANCE retention of N days\n"
	       "                        (raised, never shortened, when reused), so that\n"
	       "                        nobody, not ferry nor stolen keys, can delete a\n"
	       "                        restore point before it expires; needs a new\n"
	       "                        bucket (ferry creates it with Object Lock)\n"
	       "  --encrypt             seal chunks and manifests with AES-256-GCM under a\n"
	       "                        random key wrapped by a key derived from the\n"
	       "                        passphrase (Argon2id, or --kdf scrypt); the\n"
	       "                        passphrase comes from --password-file FILE, else\n"
	       "                        FERRY_PASSWORD, else a prompt (asked twice).  Every\n"
	       "                        later command asks for it the same way; change it\n"
	       "                        with `ferry key passwd`.  Lose it and the data is\n"
	       "                        lost: see docs/encryption.md\n"
	       "  --no-delta            store whole blocks only: no sub-block deltas\n"
	       "                        (feature \"delta\", on by default: a block of which\n"
	       "                        at most half the 4 KiB pages changed is stored as\n"
	       "                        those pages against the previous point's\n"
	       "                        block).  For\n"
	       "                        repositories older ferry releases must read;\n"
	       "                        implied by --object-lock-days\n"
	       "  --kdf NAME            with --encrypt: argon2id (default; 3 passes over\n"
	       "                        64 MiB) or scrypt (N=2^15, r=8, p=1)\n"
	       "  --json                print the new repository's settings as JSON\n%s",
	       usage, cli_backend_help);
}

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "compression", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "immutable-days", required_argument, NULL, 'I' },
		{ "encrypt", no_argument, NULL, 'E' },
		{ "kdf", required_argument, NULL, 'K' },
		{ "object-lock-days", required_argument, NULL, 'L' },
		{ "no-delta", no_argument, NULL, 'D' },
		CLI_BACKEND_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct ferry_init_opts io = { 0, -1, 0, NULL, 0 };
	char extra[128];
	int imm_days = 0;
	const char *repo = NULL;
	int c, e, rc, json = 0, lock_days = 0, encrypt = 0;
	const char *kdf = NULL;
	char days[16];
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
		case 'I':
			if (cli_parse_int(optarg, 1, 36500, &imm_days)) {
				fprintf(stderr, "ferry: --immutable-days %s: give whole days from 1 to 36500\n",
					optarg);
				return EXIT_USAGE;
			}
			snprintf(extra, sizeof(extra),
				 "features = immutable\nimmutable_days = %d\n", imm_days);
			io.extra_config = extra;
			break;
		case 'E': encrypt = 1; break;
		case 'K':
			if ((rc = cli_kdf_option(optarg, &kdf)) != 0)
				return rc;
			break;
		case 'D': io.no_delta = 1; break;
		case 'L':
			if (cli_parse_int(optarg, 1, 36500, &lock_days)) {
				fprintf(stderr, "ferry: --object-lock-days %s: give a whole number of days from 1 to 36500\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': help(); return EXIT_OK;
		default:
			if ((rc = cli_repo_option(c, optarg, "init", usage)) != 0)
				return rc;
		}
	}
	if (optind != argc)
		return cli_usage("init", usage);
	if (kdf && !encrypt) {
		fprintf(stderr, "ferry: --kdf needs --encrypt\n");
		return EXIT_USAGE;
	}
	if (!(repo = cli_repo(repo)))
		return EXIT_USAGE;
	if (lock_days && imm_days) {
		fprintf(stderr, "ferry: --immutable-days is for local repositories, --object-lock-days for s3://: give one\n");
		return EXIT_USAGE;
	}
	/* A delta's base chunk would outlive no retention of its own. */
	if (lock_days)
		io.no_delta = 1;
	if (lock_days) {
		if (strncmp(repo, "s3://", 5)) {
			fprintf(stderr, "ferry: --object-lock-days needs an s3:// repository (object storage with Object Lock)\n");
			return EXIT_USAGE;
		}
		snprintf(extra, sizeof(extra), "object_lock_days = %d\n", lock_days);
		io.extra_config = extra;
		snprintf(days, sizeof(days), "%d", lock_days);
		if ((e = ferry_backend_set("s3-object-lock-days", days)) != 0)
			return cli_fail(e, "cannot create repository");
	}
	if (encrypt) {
		char pass[CLI_PASS_MAX];
		size_t plen;

		if ((e = cli_passphrase(cli_password_file, "FERRY_PASSWORD",
					"new repository passphrase", 1, pass,
					sizeof(pass), &plen)) != 0)
			return e;
		e = ferry_repo_init_encrypted_kdf(repo, &io, pass, plen, kdf);
		explicit_bzero(pass, sizeof(pass));
	} else {
		e = ferry_repo_init(repo, &io);
	}
	if (e)
		return cli_fail(e, "cannot create repository");
	{
		struct ferry_repo *r;
		struct ferry_repo_info info;
		char kdesc[64] = "";
		const char *kname = "";

		if ((e = ferry_repo_open(repo, &r)) != 0)
			return cli_fail(e, "cannot open new repository");
		e = ferry_repo_get_info(r, &info);
		if (!e && encrypt)
			e = ferry_repo_kdf_describe(r, kdesc, sizeof(kdesc), &kname);
		ferry_repo_free(r);
		if (e)
			return cli_fail(e, "cannot read new repository");
		if (json) {
			printf("{\"repo\":");
			cli_json_str(stdout, repo);
			printf(",\"id\":\"%s\",\"format_version\":%u,\"block_size\":%u,"
			       "\"compression\":\"%s\",\"level\":%d,\"immutable_days\":%d,"
			       "\"object_lock_days\":%d,\"encrypted\":%s,\"delta\":%s",
			       info.repo_id, info.format_version, info.block_size,
			       ferry_codec_name(info.codec), info.level, imm_days,
			       lock_days, encrypt ? "true" : "false",
			       io.no_delta ? "false" : "true");
			if (encrypt)
				printf(",\"kdf\":\"%s\"", kname);
			printf("}\n");
		} else {
			printf("created repository %s (format %u, block size %u KiB, compression %s",
			       repo, info.format_version, info.block_size >> 10,
			       ferry_codec_name(info.codec));
			if (info.codec == FERRY_CODEC_ZSTD)
				printf(":%d", info.level);
			if (lock_days)
				printf(", object lock %d days", lock_days);
			if (imm_days)
				printf(", hardened: restore points immutable for %d day(s)",
				       imm_days);
			if (encrypt)
				printf(", encrypted: aes-256-gcm, %s", kdesc);
			printf(")\n");
		}
	}
	return EXIT_OK;
}
