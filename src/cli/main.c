/* main.c - the ferry command: dispatches subcommands from a table and
 * documents the exit codes. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct cli_cmd commands[] = {
	{ "init", cmd_init, "create a repository" },
	{ "backup", cmd_backup, "back up a disk image or block device" },
	{ "points", cmd_points, "list restore points" },
	{ "restore", cmd_restore, "restore a point to a file or block device" },
	{ "serve", cmd_serve, "export a point as an NBD disk (instant recovery)" },
	{ "files", cmd_files, "list and restore files from ext2/3/4 in a point" },
	{ "mount", cmd_mount, "show a point as read-only disk and partition files (FUSE)" },
	{ "verify", cmd_verify, "read and check every stored block" },
	{ "info", cmd_info, "show repository format, size and ratios" },
	{ "forget", cmd_forget, "remove restore points a keep policy drops" },
	{ "gc", cmd_gc, "free the space of unreferenced chunks" },
	{ "mover", cmd_mover, "serve repositories to remote movers (daemon)" },
	{ "cert", cmd_cert, "make a CA and certificates for movers" },
	{ "copy", cmd_copy, "copy restore points to a second repository" },
	{ "key", cmd_key, "change an encrypted repository's passphrase" },
	/* the backup server (src/server/, docs/server.md) */
	{ "server", cmd_server, "run the backup server (jobs, schedules, catalog, REST API)" },
	{ "token", cmd_token, "make and list the server's API tokens" },
	{ "proxy", cmd_proxy, "register backup proxies; run a proxy's agent" },
	{ "repo", cmd_repo_srv, "register repositories on the server" },
	{ "job", cmd_job, "create, run, schedule and delete backup jobs" },
	{ "session", cmd_session, "list job sessions, their tasks, progress and log" },
	{ "catalog", cmd_catalog, "list the restore points in the server's catalog" },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ferry <command> [options]\n"
		"\n"
		"ferry backs up disk images and block devices, block by block, into a\n"
		"deduplicating, compressed repository, and restores them byte for byte.\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"Run `ferry <command> --help` for a command's options; see ferry(1).\n"
		"\n"
		"example:\n"
		"  ferry init --repo /backup/repo\n"
		"  ferry backup --repo /backup/repo /var/lib/images/vm1.img\n"
		"  ferry points --repo /backup/repo\n"
		"  ferry restore --repo /backup/repo vm1.img --to /tmp/vm1-restored.img\n"
		"  ferry mover --listen 0.0.0.0:7150 --repo /backup/repo --cert m.crt --key m.key --ca ca.crt\n"
		"  ferry backup --repo ferry://backup1:7150/repo --cert s.crt --key s.key --ca ca.crt vm1.img\n"
		"\n"
		"environment:\n"
		"  FERRY_REPO   repository used when --repo is not given\n"
		"  FERRY_PASSWORD  passphrase of an encrypted repository (or\n"
		"               --password-file FILE with any command, or a prompt)\n"
		"  FERRY_FROM_PASSWORD  ferry copy: the source repository's passphrase\n"
		"               (or --from-password-file FILE)\n"
		"  FERRY_SMB_CREDENTIALS  SMB credentials file (or --smb-credentials FILE)\n"
		"  FERRY_CACHE_DIR  where info keeps its cache of S3 chunk sizes\n"
		"\n"
		"exit status:\n"
		"  0    success\n"
		"  1    the operation failed (I/O error, no space, unreadable source)\n"
		"  2    invalid command line\n"
		"  3    damaged data: a corrupt or missing chunk or manifest was found\n"
		"  4    repository or restore point not found, or unsupported format\n"
		"  5    wrong passphrase, or none given, for an encrypted repository\n"
		"  130  interrupted by a signal; nothing half-done was committed\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("ferry %s (repository format %d)\n", FERRY_VERSION_STRING,
		       FERRY_FORMAT_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name)) {
			cli_install_signals();
			argc = cli_take_password_file(argc, argv);
			return commands[i].run(argc - 1, argv + 1);
		}
	fprintf(stderr, "ferry: unknown command '%s' (see ferry --help)\n",
		argv[1]);
	return EXIT_USAGE;
}
