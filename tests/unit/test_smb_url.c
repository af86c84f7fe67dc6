/* test_smb_url.c - smb:// repository URLs and SMB credentials refused
 * before any connection: malformed URLs, a password in the URL, no user,
 * an unreadable credentials file; and the backend chosen by prefix. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"

static int open_err(const char *url, const char *needle)
{
	struct ferry_repo *r = NULL;
	int e = ferry_repo_open(url, &r);

	if (e == 0) {
		ferry_repo_free(r);
		return 0;
	}
	if (needle && !strstr(ferry_last_error(), needle)) {
		fprintf(stderr, "%s: '%s' lacks '%s'\n", url, ferry_last_error(), needle);
		return 0;
	}
	return e;
}

int main(void)
{
	char cred[] = "/tmp/ferry-unit-cred-XXXXXX";
	int fd;

	CHECK(ferry_backend_for("smb://h/s/p") == &ferry_backend_smb);
	CHECK(ferry_backend_for("/srv/smb://x") == &ferry_backend_local);
	CHECK(ferry_backend_for("smb:/h/s") == &ferry_backend_local);

	unsetenv("FERRY_SMB_CREDENTIALS");
	unsetenv("FERRY_SMB_PASSWORD");
	setenv("FERRY_SMB_USER", "u", 1);
	/* Malformed: no share, empty host, bad port, "..", empty path. */
	CHECK(open_err("smb://host", "bad SMB repository URL") == FERRY_E_INVAL);
	CHECK(open_err("smb://host/", "bad SMB repository URL") == FERRY_E_INVAL);
	CHECK(open_err("smb:///share/p", "bad SMB repository URL") == FERRY_E_INVAL);
	CHECK(open_err("smb://host:0/share", "bad SMB repository URL") == FERRY_E_INVAL);
	CHECK(open_err("smb://host:70000/share", "bad SMB repository URL") == FERRY_E_INVAL);
	CHECK(open_err("smb://host:12x/share", "bad SMB repository URL") == FERRY_E_INVAL);
	CHECK(open_err("smb://host/share/../etc", "bad SMB repository URL") == FERRY_E_INVAL);
	CHECK(open_err("smb://@host/share", "bad SMB repository URL") == FERRY_E_INVAL);
	/* A password in the URL never reaches a server. */
	CHECK(open_err("smb://u:secret@host/share/p", "password in the URL is refused") ==
	      FERRY_E_INVAL);
	CHECK(!strstr(ferry_last_error(), "secret"));
	/* No user at all. */
	unsetenv("FERRY_SMB_USER");
	CHECK(open_err("smb://host/share/p", "no SMB user") == FERRY_E_AUTH);
	/* An unreadable credentials file is named. */
	setenv("FERRY_SMB_CREDENTIALS", "/nonexistent/cred", 1);
	CHECK(open_err("smb://host/share/p", "/nonexistent/cred") == FERRY_E_AUTH);
	/* A credentials file without a username: still no user. */
	fd = mkstemp(cred);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(write(fd, "password=x\n# comment\n", 21) == 21);
		close(fd);
		setenv("FERRY_SMB_CREDENTIALS", cred, 1);
		CHECK(open_err("smb://host/share/p", "no SMB user") == FERRY_E_AUTH);
		unlink(cred);
	}
	/* init refuses the same URLs. */
	CHECK(ferry_repo_init("smb://host", NULL) == FERRY_E_INVAL);
	return unit_done();
}
