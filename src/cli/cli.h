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

/* Print "ferry: <what>: <detail>" for ERR and return its exit code. */
int cli_fail(int err, const char *what);
int cli_usage(const char *cmd, const char *usage);
int cli_exit_code(int err);
/* --repo value, or FERRY_REPO, or NULL after printing an error. */
const char *cli_repo(const char *opt);
int cli_open_repo(const char *opt, struct ferry_repo **out);

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

#endif
