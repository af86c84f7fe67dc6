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

#endif
