/* backend_opts.c - command-line settings of repository backends that the
 * commands opening a repository share (--s3-endpoint, --s3-region): each
 * becomes a ferry_backend_set() before the repository is opened.
 * Credentials are never options: they come from the environment or a
 * credentials file. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

const char cli_backend_help[] =
	"  --s3-endpoint URL     S3 endpoint for s3://BUCKET/PREFIX repositories\n"
	"                        (or FERRY_S3_ENDPOINT; default AWS); keys from\n"
	"                        AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or\n"
	"                        ~/.aws/credentials (AWS_PROFILE)\n"
	"  --s3-region REGION    signing region (or FERRY_S3_REGION; us-east-1)\n";

int cli_backend_option(int c, const char *arg)
{
	const char *key;

	switch (c) {
	case OPT_S3_ENDPOINT: key = "s3-endpoint"; break;
	case OPT_S3_REGION: key = "s3-region"; break;
	default: return 0;
	}
	if (!*arg) {
		fprintf(stderr, "ferry: --%s needs a value\n", key);
		return -1;
	}
	if (ferry_backend_set(key, arg) != 0) {
		fprintf(stderr, "ferry: --%s: %s\n", key, ferry_last_error());
		return -1;
	}
	return 1;
}
