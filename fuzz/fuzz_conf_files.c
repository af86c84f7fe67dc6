/* fuzz_conf_files.c - libFuzzer target for the small text files ferry
 * reads settings and secrets from: the server's config file
 * (src/server/conf.c), an SMB credentials file (smb_conf.c, mount.cifs
 * style) and an S3 shared credentials file (s3_http.c, AWS style, profile
 * "t").  The first byte picks the parser; the rest is the file, written to
 * a temp dir.  Whatever the bytes, the parser returns; every field it
 * fills is NUL-terminated inside its buffer; an accepted server config
 * holds values in their documented ranges, and a refused one says why. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "s3.h"
#include "store_smb.h"
#include "../src/server/conf.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], file[96];

static int terminated(const char *s, size_t cap)
{
	return memchr(s, 0, cap) != NULL;
}

static void server_conf(void)
{
	static struct srv_conf c;
	char err[512];

	memset(err, 0, sizeof(err));
	if (srv_conf_load(file, &c, err, sizeof(err)) != 0) {
		if (!err[0])
			abort();
		return;
	}
	if (!terminated(c.listen, sizeof(c.listen)) || !strchr(c.listen, ':') ||
	    !terminated(c.tls_cert, sizeof(c.tls_cert)) ||
	    !terminated(c.tls_key, sizeof(c.tls_key)) ||
	    !terminated(c.database, sizeof(c.database)) ||
	    !terminated(c.state_dir, sizeof(c.state_dir)) ||
	    (strcmp(c.log, "stderr") && strcmp(c.log, "syslog")) ||
	    c.proxy_timeout < 1 || c.proxy_timeout > 86400 ||
	    c.max_body < 1024 || c.max_body > (64 << 20) ||
	    !c.tls_cert[0] != !c.tls_key[0])
		abort();
}

static void smb_creds(void)
{
	static struct smb s;

	memset(&s, 0, sizeof(s));
	s.shown = (char *)"smb://h/s/p";
	if (smb_load_credentials(&s) != 0 && !ferry_last_error()[0])
		abort();
	if (!terminated(s.user, sizeof(s.user)) || !terminated(s.pass, sizeof(s.pass)) ||
	    !terminated(s.domain, sizeof(s.domain)))
		abort();
}

static void s3_creds(void)
{
	static struct s3_creds c;

	if (s3_creds_load(&c) == 0 && (!c.access_key[0] || !c.secret_key[0]))
		abort();
	if (!terminated(c.access_key, sizeof(c.access_key)) ||
	    !terminated(c.secret_key, sizeof(c.secret_key)) ||
	    !terminated(c.token, sizeof(c.token)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-conf-XXXXXX");
		if (!mkdtemp(dir))
			abort();
		snprintf(file, sizeof(file), "%s/file", dir);
		unsetenv("AWS_ACCESS_KEY_ID");
		unsetenv("AWS_SECRET_ACCESS_KEY");
		unsetenv("FERRY_SMB_USER");
		unsetenv("FERRY_SMB_PASSWORD");
		setenv("AWS_SHARED_CREDENTIALS_FILE", file, 1);
		setenv("AWS_PROFILE", "t", 1);
		if (ferry_backend_set("smb-credentials", file))
			abort();
	}
	if (!size)
		return 0;
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1)))
		abort();
	close(fd);
	switch (data[0] % 3) {
	case 0:
		server_conf();
		break;
	case 1:
		smb_creds();
		break;
	default:
		s3_creds();
		break;
	}
	return 0;
}
