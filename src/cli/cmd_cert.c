/* cmd_cert.c - `ferry cert`: a small CA and the certificates movers use
 * to authenticate each other (mutual TLS). */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
	"ca --cert CA.crt --key CA.key [--name NAME] [--days N]\n"
	"       ferry cert issue --ca CA.crt --ca-key CA.key --name NAME[,ALT...] "
	"--cert F.crt --key F.key [--days N]";

static void help(void)
{
	printf("usage: ferry cert %s\n\n"
	       "`ca` makes a certificate authority: a self-signed EC P-256 certificate\n"
	       "and its key.  `issue` makes a certificate signed by it for a mover:\n"
	       "NAME is its common name (what `ferry mover --allow` matches) and, with\n"
	       "the ALT names after commas, its DNS or IP subjectAltNames (what a source\n"
	       "checks against the HOST of ferry://HOST:PORT/REPO).  Every certificate\n"
	       "serves as both TLS client and server.  Existing files are never\n"
	       "overwritten; keys are written with mode 0600.\n\n"
	       "  --cert FILE     certificate to write (PEM)\n"
	       "  --key FILE      private key to write (PEM)\n"
	       "  --ca FILE       (issue) the CA certificate\n"
	       "  --ca-key FILE   (issue) the CA key\n"
	       "  --name NAME     common name (ca: default \"ferry CA\")\n"
	       "  --days N        validity (default: ca 3650, issue 825)\n\n"
	       "example:\n"
	       "  ferry cert ca --cert ca.crt --key ca.key\n"
	       "  ferry cert issue --ca ca.crt --ca-key ca.key --name backup1.example.com,10.0.0.5 \\\n"
	       "      --cert mover.crt --key mover.key\n"
	       "  ferry cert issue --ca ca.crt --ca-key ca.key --name proxy1 --cert src.crt --key src.key\n",
	       usage);
}

int cmd_cert(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "ca", required_argument, NULL, 'a' },
		{ "ca-key", required_argument, NULL, 'K' },
		{ "name", required_argument, NULL, 'n' },
		{ "days", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *cert = NULL, *key = NULL, *ca = NULL, *cakey = NULL,
		   *name = NULL, *what;
	int c, e, days = 0;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		if (argc >= 2) {
			help();
			return EXIT_OK;
		}
		return cli_usage("cert", usage);
	}
	what = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'a': ca = optarg; break;
		case 'K': cakey = optarg; break;
		case 'n': name = optarg; break;
		case 'd':
			if ((e = cli_int_option("days", optarg, 1, 36500, &days)) != 0)
				return e;
			break;
		case 'h': help(); return EXIT_OK;
		default: return cli_usage("cert", usage);
		}
	}
	if (optind != argc || !cert || !key)
		return cli_usage("cert", usage);
	if (!strcmp(what, "ca")) {
		e = ferry_cert_make_ca(cert, key, name ? name : "ferry CA",
				       days ? days : 3650);
	} else if (!strcmp(what, "issue")) {
		if (!ca || !cakey || !name)
			return cli_usage("cert", usage);
		e = ferry_cert_issue(ca, cakey, name, days ? days : 825, cert, key);
	} else {
		return cli_usage("cert", usage);
	}
	if (e)
		return cli_fail(e, "cert");
	fprintf(stderr, "wrote %s and %s\n", cert, key);
	return EXIT_OK;
}
