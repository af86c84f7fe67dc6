/* backend_opts.c - command-line settings of repository backends that the
 * commands opening a repository share (--s3-endpoint, --s3-region,
 * --smb-credentials FILE): each
 * becomes a ferry_backend_set() before the repository is opened.
 * Secrets are never options: they come from the environment or a
 * credentials file (--smb-credentials names the file, not a password). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

const char cli_backend_help[] =
	"  --s3-endpoint URL     S3 endpoint for s3://BUCKET/PREFIX repositories\n"
	"                        (or FERRY_S3_ENDPOINT; default AWS); keys from\n"
	"                        AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or\n"
	"                        ~/.aws/credentials (AWS_PROFILE)\n"
	"  --s3-region REGION    signing region (or FERRY_S3_REGION; us-east-1)\n"
	"  --smb-credentials FILE\n"
	"                        SMB user and password for smb:// repositories:\n"
	"                        username=, password= (and domain=) lines, mode\n"
	"                        0600 (or FERRY_SMB_CREDENTIALS=FILE)\n";

int cli_check_file(const char *opt, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	const char *why = NULL;

	if (fd < 0 || fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	if (fd >= 0)
		close(fd);
	if (why) {
		fprintf(stderr, "ferry: %s %s: %s\n", opt, path, why);
		return -1;
	}
	return 0;
}

int cli_backend_option(int c, const char *arg)
{
	const char *key;

	switch (c) {
	case OPT_S3_ENDPOINT: key = "s3-endpoint"; break;
	case OPT_S3_REGION: key = "s3-region"; break;
	case OPT_SMB_CREDENTIALS: key = "smb-credentials"; break;
	default: return 0;
	}
	if (!*arg) {
		fprintf(stderr, "ferry: --%s needs a value\n", key);
		return -1;
	}
	/* A credentials file that cannot be read is said at once, before
	 * any repository is opened. */
	if (c == OPT_SMB_CREDENTIALS && cli_check_file("--smb-credentials", arg) != 0)
		return -1;
	if (ferry_backend_set(key, arg) != 0) {
		fprintf(stderr, "ferry: --%s: %s\n", key, ferry_last_error());
		return -1;
	}
	return 1;
}
