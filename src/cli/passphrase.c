/* passphrase.c - where the ferry command gets an encrypted repository's
 * passphrase: --password-file FILE (any command), FERRY_PASSWORD, or a
 * prompt on the terminal without echo. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

const char *cli_password_file;

/* The option that names the file for the variable ENV. */
static const char *file_option(const char *env)
{
	if (env && !strcmp(env, "FERRY_FROM_PASSWORD"))
		return "--from-password-file";
	if (env && !strcmp(env, "FERRY_NEW_PASSWORD"))
		return "--new-password-file";
	return "--password-file";
}

/* Read the first line of PATH (without its newline) into BUF. */
static int read_file(const char *opt, const char *path, char *buf, size_t cap,
		     size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;

	if (fd < 0) {
		fprintf(stderr, "ferry: %s %s: %s\n", opt, path,
			strerror(errno));
		return EXIT_USAGE;
	}
	while (n < cap - 1) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "ferry: %s %s: %s\n", opt, path,
				strerror(errno));
			close(fd);
			return EXIT_USAGE;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	n = strcspn(buf, "\r\n");
	buf[n] = 0;
	*len = n;
	return 0;
}

/* Ask on the terminal with echo off: 0, -1 without a terminal, -2 when
 * a signal (Ctrl-C) interrupted the prompt (echo is restored). */
static int ask(const char *prompt, char *buf, size_t cap, size_t *len)
{
	struct termios old, quiet;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY), echo_off = 0;
	size_t n = 0;
	int rc = 0;
	char c;

	if (fd < 0)
		return -1;
	if (tcgetattr(fd, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		echo_off = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
	}
	if (write(fd, prompt, strlen(prompt)) < 0) {
		/* the prompt is a courtesy */
	}
	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR) {
			rc = -2; /* SIGINT, SIGTERM or SIGHUP: give up */
			n = 0;
			break;
		}
		if (r <= 0 || c == '\n' || c == '\r')
			break;
		if (n < cap - 1)
			buf[n++] = c;
	}
	buf[n] = 0;
	if (echo_off)
		tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0) {
		/* nothing to do */
	}
	close(fd);
	*len = n;
	return rc;
}

int cli_passphrase(const char *file, const char *env, const char *what,
		   int confirm, char *buf, size_t cap, size_t *len)
{
	const char *v = env ? getenv(env) : NULL;
	char prompt[160], again[CLI_PASS_MAX];
	size_t alen;
	int e;

	if (file) {
		if ((e = read_file(file_option(env), file, buf, cap, len)) != 0)
			return e;
	} else if (v) {
		snprintf(buf, cap, "%s", v);
		*len = strlen(buf);
	} else {
		snprintf(prompt, sizeof(prompt), "%s: ", what);
		if ((e = ask(prompt, buf, cap, len)) == -2) {
			explicit_bzero(buf, cap);
			fprintf(stderr, "ferry: interrupted at the passphrase prompt\n");
			return EXIT_INTERRUPTED;
		}
		if (e < 0) {
			fprintf(stderr,
				"ferry: %s needed and no terminal to ask on: use %s FILE or set %s\n",
				what, file_option(env), env ? env : "FERRY_PASSWORD");
			return EXIT_KEY;
		}
		if (confirm) {
			snprintf(prompt, sizeof(prompt), "%s (again): ", what);
			if ((e = ask(prompt, again, sizeof(again), &alen)) == -2) {
				explicit_bzero(again, sizeof(again));
				explicit_bzero(buf, cap);
				fprintf(stderr, "ferry: interrupted at the passphrase prompt\n");
				return EXIT_INTERRUPTED;
			}
			if (e < 0 || alen != *len || memcmp(again, buf, alen)) {
				explicit_bzero(again, sizeof(again));
				fprintf(stderr, "ferry: the two passphrases differ\n");
				return EXIT_USAGE;
			}
			explicit_bzero(again, sizeof(again));
		}
	}
	if (*len == 0) {
		fprintf(stderr, "ferry: %s is empty\n", what);
		return EXIT_USAGE;
	}
	return 0;
}

int cli_unlock(struct ferry_repo *r)
{
	return cli_unlock_from(r, cli_password_file, "FERRY_PASSWORD",
			       "repository passphrase", "cannot open repository");
}

int cli_unlock_from(struct ferry_repo *r, const char *file, const char *env,
		    const char *what, const char *fail)
{
	char pass[CLI_PASS_MAX];
	size_t len;
	int e;

	if (!ferry_repo_encrypted(r))
		return 0;
	if ((e = cli_passphrase(file, env, what, 0, pass, sizeof(pass),
				&len)) != 0)
		return e;
	e = ferry_repo_unlock(r, pass, len);
	explicit_bzero(pass, sizeof(pass));
	if (e)
		return cli_fail(e, fail);
	return 0;
}

int cli_take_password_file(int argc, char **argv)
{
	int out = 0;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "--password-file") && i + 1 < argc) {
			cli_password_file = argv[++i];
			continue;
		}
		if (!strncmp(argv[i], "--password-file=", 16)) {
			cli_password_file = argv[i] + 16;
			continue;
		}
		argv[out++] = argv[i];
	}
	argv[out] = NULL;
	return out;
}
