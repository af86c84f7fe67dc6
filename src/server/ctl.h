/* ctl.h - what the server's CLI commands (cmd_ctl.c, cmd_job.c, agent.c)
 * share: the connection options and one call that prints errors. */
#ifndef FERRY_CTL_H
#define FERRY_CTL_H

#include "srv.h"

enum {
	CTL_SERVER = 0x3000, CTL_TOKEN, CTL_TOKEN_FILE, CTL_SERVER_CA, CTL_JSON,
};
struct ctl_conn {
	struct srv_client cl;
	const char *token_file;
	int json;
};
extern const char ctl_conn_help[];
/* 1 when C was a connection option (taken into CC). */
int ctl_conn_option(int c, const char *arg, struct ctl_conn *cc);
/* Fill what the command line left out from the environment; an exit code
 * after printing what is missing. */
int ctl_conn_ready(struct ctl_conn *cc);
/* Call the server; 0 with *REPLY (the JSON body, printed with --json), or
 * an exit code after printing the server's error. */
int ctl_call(struct ctl_conn *cc, const char *method, const char *path,
	     struct json_object *body, struct json_object **reply);
int ctl_agent_run(int argc, char **argv);

/* A command of the server's CLI: "ferry NAME [VERB] [options] [ARGS]". */
struct ctl_cmd {
	const char *name;
	const char *usage;		/* what follows "usage: ferry NAME " */
	const char *help;		/* --help's text between the usage line and
					 * the connection options */
	const struct option *opts;	/* its own options, then CTL_CONN_OPTS */
	/* One of its own options: 0 when taken, an exit code after printing
	 * why ARG is wrong, or -1 when C is none of its own (usage). */
	int (*option)(void *ctx, int c, const char *arg);
	void *ctx;
};
#define CTL_CONN_OPTS                                               \
	{ "server", required_argument, NULL, CTL_SERVER },          \
	{ "token", required_argument, NULL, CTL_TOKEN },            \
	{ "token-file", required_argument, NULL, CTL_TOKEN_FILE },  \
	{ "server-ca", required_argument, NULL, CTL_SERVER_CA },    \
	{ "json", no_argument, NULL, CTL_JSON },                    \
	{ "help", no_argument, NULL, 'h' }
#define CTL_GO (-1)
/* Read CMD's command line into CC (cleared first) and CMD's option
 * callback; with VERB, *VERB is the first word and ARGC and ARGV move past it.
 * CTL_GO when the command is to run (its arguments from (*ARGV)[optind]
 * on), else the exit code after --help or a usage error. */
int ctl_parse(const struct ctl_cmd *cmd, int *argc, char ***argv, const char **verb,
	      struct ctl_conn *cc);

#endif
