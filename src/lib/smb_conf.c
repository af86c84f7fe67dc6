/* smb_conf.c - an SMB repository's URL (smb://[USER@]HOST[:PORT]/SHARE/
 * PATH) and its credentials (a mount.cifs style file, or the
 * environment; never a password in the URL). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store_smb.h"

/* One "key=value" line of a credentials file into S; nonzero (with the
 * name of the key) when its value does not fit. */
static const char *cred_line(struct smb *s, char *line, int *have_pass)
{
	char *eq = strchr(line, '='), *k = line, *v;
	size_t n;

	if (!eq)
		return NULL;
	*eq = 0;
	v = eq + 1;
	while (*k == ' ' || *k == '\t')
		k++;
	for (n = strlen(k); n && (k[n - 1] == ' ' || k[n - 1] == '\t'); n--)
		k[n - 1] = 0;
	n = strlen(v);
	while (n && (v[n - 1] == '\n' || v[n - 1] == '\r'))
		v[--n] = 0;
	if (!strcmp(k, "username") || !strcmp(k, "user")) {
		if (n >= sizeof(s->user))
			return "username";
		if (!s->user[0])
			snprintf(s->user, sizeof(s->user), "%s", v);
	} else if (!strcmp(k, "password") || !strcmp(k, "pass")) {
		if (n >= sizeof(s->pass))
			return "password";
		snprintf(s->pass, sizeof(s->pass), "%s", v);
		*have_pass = 1;
	} else if (!strcmp(k, "domain") || !strcmp(k, "workgroup")) {
		if (n >= sizeof(s->domain))
			return "domain";
		snprintf(s->domain, sizeof(s->domain), "%s", v);
	}
	return NULL;
}

int smb_load_credentials(struct smb *s)
{
	const char *file = ferry_backend_opt("smb-credentials");
	const char *env;
	int have_pass = 0;

	if (file && *file) {
		char line[1024];
		const char *big = NULL;
		FILE *f = fopen(file, "re");
		int no = 0, e = 0;

		if (!f)
			return ferry_error(FERRY_E_AUTH,
					   "SMB credentials file %s: %s", file,
					   strerror(errno));
		/* A line longer than LINE is refused, never read as two
		 * (its tail as a line of its own), nor a value cut short. */
		while (!e && fgets(line, sizeof(line), f)) {
			no++;
			if (!strchr(line, '\n') && !feof(f))
				e = ferry_error(FERRY_E_AUTH,
						"SMB credentials file %s:%d: line longer than %zu bytes",
						file, no, sizeof(line) - 2);
			else if (line[0] != '#' && (big = cred_line(s, line, &have_pass)))
				e = ferry_error(FERRY_E_AUTH,
						"SMB credentials file %s:%d: %s longer than %zu bytes",
						file, no, big, sizeof(s->pass) - 1);
		}
		explicit_bzero(line, sizeof(line));
		fclose(f);
		if (e) {
			explicit_bzero(s->pass, sizeof(s->pass));
			return e;
		}
	}
	if (!s->user[0] && (env = ferry_backend_opt("smb-user")) && *env)
		snprintf(s->user, sizeof(s->user), "%s", env);
	if (!have_pass && (env = ferry_backend_opt("smb-password")))
		snprintf(s->pass, sizeof(s->pass), "%s", env);
	if (!s->user[0])
		return ferry_error(FERRY_E_AUTH,
				   "%s: no SMB user: give smb://USER@HOST/..., a credentials file (--smb-credentials FILE or FERRY_SMB_CREDENTIALS=FILE, with username= and password= lines), or FERRY_SMB_USER",
				   s->shown);
	return 0;
}

/* smb://[USER@]HOST[:PORT]/SHARE/PATH into S. */
int smb_parse_url(struct smb *s, const char *url)
{
	const char *p = url + 6, *at, *slash, *colon, *hend;
	char share_path[4096];
	size_t n;

	slash = strchr(p, '/');
	if (!slash)
		goto bad;
	at = memchr(p, '@', (size_t)(slash - p));
	if (at) {
		n = (size_t)(at - p);
		if (memchr(p, ':', n))
			return ferry_error(FERRY_E_INVAL,
					   "%s: a password in the URL is refused; put it in a credentials file (--smb-credentials FILE or FERRY_SMB_CREDENTIALS) or FERRY_SMB_PASSWORD",
					   "smb:// URL");
		if (n == 0 || n >= sizeof(s->user))
			goto bad;
		memcpy(s->user, p, n);
		s->user[n] = 0;
		p = at + 1;
	}
	hend = slash;
	colon = memchr(p, ':', (size_t)(slash - p));
	if (colon) {
		char *end;
		unsigned long port = strtoul(colon + 1, &end, 10);

		if (end != slash || port == 0 || port > 65535)
			goto bad;
		s->port = (uint16_t)port;
		hend = colon;
	}
	n = (size_t)(hend - p);
	if (n == 0 || n >= sizeof(s->host))
		goto bad;
	memcpy(s->host, p, n);
	s->host[n] = 0;
	snprintf(share_path, sizeof(share_path), "%s", slash + 1);
	n = strlen(share_path);
	while (n && share_path[n - 1] == '/')
		share_path[--n] = 0;
	if (!n || share_path[0] == '/')
		goto bad;
	for (char *q = share_path; *q; q++)
		if (!strncmp(q, "..", 2) && (q == share_path || q[-1] == '/') &&
		    (q[2] == '/' || !q[2]))
			goto bad;
	n += strlen(s->host) + 16;
	if (!(s->base = malloc(n)))
		return FERRY_E_NOMEM;
	snprintf(s->base, n, "smb://%s/%s", s->host, share_path);
	return 0;
bad:
	return ferry_error(FERRY_E_INVAL,
			   "bad SMB repository URL '%s' (want smb://[USER@]HOST[:PORT]/SHARE/PATH)",
			   url);
}

