/* cli.h - what the ferry command's subcommands share: the dispatch entry
 * type, exit codes, option helpers and output formatting. */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "ferry/ferry.h"

/* Exit codes (documented in `ferry --help` and docs/ferry.1). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,      /* the operation failed (I/O, space, source) */
	EXIT_USAGE = 2,     /* bad command line */
	EXIT_DAMAGED = 3,   /* corrupt or missing data was found */
	EXIT_NOTFOUND = 4,  /* no such repository or restore point */
	EXIT_KEY = 5,       /* wrong passphrase, or none for an encrypted repository */
	EXIT_INTERRUPTED = 130,
};

struct cli_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

int cmd_init(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_points(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_forget(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_files(int argc, char **argv);
int cmd_mover(int argc, char **argv);
int cmd_cert(int argc, char **argv);
int cmd_copy(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_key(int argc, char **argv);

/* Encryption at rest (passphrase.c): --password-file FILE is taken out
 * of any command's arguments by main(); cli_passphrase reads FILE, else
 * the variable ENV, else asks WHAT on the terminal (twice if CONFIRM);
 * cli_unlock opens an encrypted repository's key (0 or an exit code). */
#define CLI_PASS_MAX 1024
extern const char *cli_password_file;
int cli_take_password_file(int argc, char **argv);
int cli_passphrase(const char *file, const char *env, const char *what,
		   int confirm, char *buf, size_t cap, size_t *len);
struct ferry_repo;
int cli_unlock(struct ferry_repo *r);
/* The same with the passphrase from FILE, else ENV, else a prompt asking
 * WHAT; FAIL heads the error line (ferry copy's source repository). */
int cli_unlock_from(struct ferry_repo *r, const char *file, const char *env,
		    const char *what, const char *fail);
/* The backup server and its clients (src/server/). */
int cmd_server(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_proxy(int argc, char **argv);
int cmd_repo_srv(int argc, char **argv);
int cmd_job(int argc, char **argv);
int cmd_session(int argc, char **argv);
int cmd_catalog(int argc, char **argv);

/* Print "ferry: <what>: <detail>" for ERR and return its exit code. */
int cli_fail(int err, const char *what);
int cli_usage(const char *cmd, const char *usage);
int cli_exit_code(int err);
/* --repo value, or FERRY_REPO, or NULL after printing an error. */
const char *cli_repo(const char *opt);
int cli_open_repo(const char *opt, struct ferry_repo **out);

/* Options for a remote repository (ferry://HOST:PORT/REPO), shared by
 * the commands that open one (remote.c). */
enum {
	OPT_CERT = 0x1000, OPT_KEY, OPT_CA, OPT_INSECURE, OPT_LIMIT_RATE,
	OPT_STREAMS, OPT_RETRY, OPT_TIMEOUT, OPT_CONFIG,
};
#define CLI_REMOTE_OPTIONS                                                  \
	{ "cert", required_argument, NULL, OPT_CERT },                      \
	{ "key", required_argument, NULL, OPT_KEY },                        \
	{ "ca", required_argument, NULL, OPT_CA },                          \
	{ "insecure", no_argument, NULL, OPT_INSECURE },                    \
	{ "limit-rate", required_argument, NULL, OPT_LIMIT_RATE },          \
	{ "streams", required_argument, NULL, OPT_STREAMS },                \
	{ "retry", required_argument, NULL, OPT_RETRY },                    \
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },                \
	{ "config", required_argument, NULL, OPT_CONFIG }
extern const char cli_remote_help[];
/* 1 when C was a remote option (taken), -1 after printing why its value
 * is bad, 0 when C is something else. */
int cli_remote_option(int c, const char *arg);
/* Open a ferry:// URL with the options given (and FERRY_CONFIG). */
int cli_remote_open(const char *url, struct ferry_repo **out);

/* Settings of repository backends (backend_opts.c), shared by every
 * command that opens a repository. */
enum { OPT_S3_ENDPOINT = 0x1100, OPT_S3_REGION, OPT_SMB_CREDENTIALS };
#define CLI_BACKEND_OPTIONS                                                 \
	{ "s3-endpoint", required_argument, NULL, OPT_S3_ENDPOINT },         \
	{ "s3-region", required_argument, NULL, OPT_S3_REGION },             \
	{ "smb-credentials", required_argument, NULL, OPT_SMB_CREDENTIALS }
extern const char cli_backend_help[];
/* 1 when C was a backend option (applied), -1 after printing why its
 * value is bad, 0 when C is something else. */
int cli_backend_option(int c, const char *arg);
/* -1 after printing "OPT PATH: why" when PATH is not a readable file. */
int cli_check_file(const char *opt, const char *path);

int cli_parse_int(const char *s, int min, int max, int *out);
void cli_human(uint64_t bytes, char *buf, size_t len);
void cli_json_str(FILE *f, const char *s);
/* The "key=value\n" lines of a point's extra as a JSON object. */
void cli_json_extra(FILE *f, const char *extra);
void cli_time(uint64_t ns, char *buf, size_t len);
void cli_progress(const struct ferry_progress *p, void *arg);
void cli_progress_end(void);
void cli_warn(const char *msg, void *arg);
void cli_print_bad(const struct ferry_bad_block *b, void *arg);
void cli_install_signals(void);

/* An option's whole number from LO to HI into *OUT: 0, or EXIT_USAGE
 * after printing "ferry: --NAME: give LO to HI". */
int cli_int_option(const char *name, const char *arg, int lo, int hi, int *out);
/* The default of a repository command's option loop: 0 when C was a
 * remote or backend option (taken), else the exit code (EXIT_USAGE after
 * saying why its value is bad, or after CMD's usage line). */
int cli_repo_option(int c, const char *arg, const char *cmd, const char *usage);

/* cli_int_option with a UNIT after the range ("ferry: --NAME: give LO to
 * HI UNIT"), e.g. "seconds" or "MiB". */
int cli_int_option_unit(const char *name, const char *arg, int lo, int hi,
			const char *unit, int *out);
/* --kdf: ARG must be argon2id or scrypt; 0 with *OUT set, or EXIT_USAGE
 * after printing "ferry: --kdf ARG: use argon2id or scrypt". */
int cli_kdf_option(const char *arg, const char **out);

#endif
