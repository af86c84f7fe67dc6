/* cmd_key.c - `ferry key passwd`: change an encrypted repository's
 * passphrase (the key is rewrapped; no chunk or manifest changes). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
	"passwd --repo PATH [--password-file OLD] [--new-password-file NEW] [--kdf argon2id|scrypt] [--json]";

static void help(void)
{
	printf("usage: ferry key %s\n\n"
	       "Change the passphrase of an encrypted repository.  The repository's\n"
	       "master key is unwrapped with the old passphrase and wrapped again with\n"
	       "the new one (fresh salt); the config is rewritten atomically, so the old\n"
	       "passphrase stops working at once and no chunk or manifest is rewritten.\n\n"
	       "  --repo PATH               the repository (or FERRY_REPO); run it on the\n"
	       "                            repository's host\n"
	       "  --password-file FILE      the old passphrase (else FERRY_PASSWORD, else\n"
	       "                            a prompt)\n"
	       "  --new-password-file FILE  the new passphrase (else FERRY_NEW_PASSWORD,\n"
	       "                            else a prompt, asked twice)\n"
	       "  --kdf NAME                derive the new wrapping key with argon2id or\n"
	       "                            scrypt at their default cost (default: keep\n"
	       "                            the repository's KDF and cost)\n"
	       "  --json                    print the result as JSON\n"
	       "\nexit status: 0 changed, 5 wrong old passphrase, 2 bad usage, 4 not a\n"
	       "repository, 1 the config could not be written (the old passphrase then\n"
	       "still works).\n",
	       usage);
	fputs(cli_backend_help, stdout);
}

static int passwd(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		CLI_BACKEND_OPTIONS,
		{ "new-password-file", required_argument, NULL, 'n' },
		{ "kdf", required_argument, NULL, 'K' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *rp = NULL, *newfile = NULL, *kdf = NULL, *kname = "";
	char kdesc[64] = "";
	struct ferry_repo *repo = NULL;
	char pass[CLI_PASS_MAX];
	size_t plen;
	int c, e, json = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "r:n:K:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rp = optarg; break;
		case 'n': newfile = optarg; break;
		case 'K':
			if ((e = cli_kdf_option(optarg, &kdf)) != 0)
				return e;
			break;
		case 'j': json = 1; break;
		case 'h': help(); return EXIT_OK;
		default:
			if ((e = cli_repo_option(c, optarg, "key", usage)) != 0)
				return e;
		}
	}
	if (optind != argc)
		return cli_usage("key", usage);
	/* Opening asks for (and checks) the old passphrase. */
	if ((e = cli_open_repo(rp, &repo)) != 0)
		return e;
	if (!ferry_repo_encrypted(repo)) {
		fprintf(stderr, "ferry: %s is not encrypted (nothing to change)\n",
			cli_repo(rp));
		ferry_repo_free(repo);
		return EXIT_USAGE;
	}
	if ((e = cli_passphrase(newfile, "FERRY_NEW_PASSWORD",
				"new repository passphrase", 1, pass,
				sizeof(pass), &plen)) != 0) {
		ferry_repo_free(repo);
		return e;
	}
	e = ferry_repo_change_passphrase_kdf(repo, pass, plen, kdf);
	explicit_bzero(pass, sizeof(pass));
	if (!e)
		e = ferry_repo_kdf_describe(repo, kdesc, sizeof(kdesc), &kname);
	ferry_repo_free(repo);
	if (e)
		return cli_fail(e, "cannot change the passphrase");
	if (json) {
		printf("{\"repo\":");
		cli_json_str(stdout, cli_repo(rp));
		printf(",\"changed\":true,\"kdf\":\"%s\"}\n", kname);
	} else {
		printf("passphrase of %s changed (key derivation: %s)\n",
		       cli_repo(rp), kdesc);
	}
	return EXIT_OK;
}

int cmd_key(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		help();
		return EXIT_OK;
	}
	if (argc >= 2 && !strcmp(argv[1], "passwd"))
		return passwd(argc - 1, argv + 1);
	return cli_usage("key", usage);
}
