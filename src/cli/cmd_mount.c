/* cmd_mount.c - `ferry mount`: a restore point as read-only disk and
 * partition image files in a directory (FUSE), for any tool that reads
 * images: fsck, debugfs, mount -o loop,ro, qemu. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
	"--repo PATH|URL POINT DIR [-f] [--log FILE] [--cache MIB] [--allow-other] [--json]";

static void help(void)
{
	printf("usage: ferry mount %s\n\n"
	       "Show restore point POINT as read-only files in DIR (an empty directory):\n"
	       "NAME.img is the whole disk, NAME-partN.img each partition of its GPT or\n"
	       "MBR table (N as Linux numbers them).  Blocks are fetched from the\n"
	       "repository and checked against their SHA-256 when they are read; a\n"
	       "damaged block is an I/O error (EIO) for the reads that touch it, and\n"
	       "is logged, never wrong data.  The repository is only read.\n\n"
	       "ferry goes to the background once DIR is mounted and prints the pid\n"
	       "of the process serving it.  Unmount with `fusermount3 -u DIR` (or\n"
	       "umount DIR as root), or stop that process with SIGTERM or SIGINT:\n"
	       "either way the mount is removed and the process ends.\n\n"
	       "  --repo PATH      repository (or FERRY_REPO); ferry://HOST:PORT/REPO\n"
	       "                   for one served by a remote mover\n"
	       "  -f, --foreground stay in the foreground (Ctrl-C unmounts)\n"
	       "  --log FILE       append log lines (bad blocks) to FILE; default:\n"
	       "                   stderr in the foreground, syslog in the background\n"
	       "  --cache MIB      decoded blocks kept in memory (default 64)\n"
	       "  --allow-other    let other users read the files (FUSE allow_other)\n"
	       "  --json           print what was mounted as JSON\n\n"
	       "examples:\n"
	       "  ferry mount --repo /backup/repo vm1 /mnt/vm1\n"
	       "  e2fsck -fn /mnt/vm1/vm1-part2.img\n"
	       "  mount -o loop,ro /mnt/vm1/vm1-part2.img /mnt/vm1-root\n"
	       "  fusermount3 -u /mnt/vm1\n",
	       usage);
	fputs(cli_remote_help, stdout);
	fputs(cli_backend_help, stdout);
}

static FILE *log_file;
static int use_syslog;

static void on_log(const char *msg, void *arg)
{
	(void)arg;
	if (use_syslog) {
		syslog(LOG_WARNING, "%s", msg);
	} else if (log_file) {
		char t[32];
		time_t now = time(NULL);
		struct tm tm;

		strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
		fprintf(log_file, "%s ferry[%ld]: mount: %s\n", t, (long)getpid(), msg);
		fflush(log_file);
	} else {
		fprintf(stderr, "ferry: mount: %s\n", msg);
	}
}

static int json;

static void on_ready(const struct ferry_mount_info *mi, void *arg)
{
	char size[32];

	(void)arg;
	if (json) {
		printf("{\"point\":");
		cli_json_str(stdout, mi->point->id);
		printf(",\"name\":");
		cli_json_str(stdout, mi->point->name);
		printf(",\"dir\":");
		cli_json_str(stdout, mi->dir);
		printf(",\"pid\":%ld,\"table\":", mi->pid);
		cli_json_str(stdout, mi->table);
		printf(",\"files\":[");
		for (size_t i = 0; i < mi->nfiles; i++) {
			const struct ferry_mount_file *f = &mi->files[i];

			printf("%s{\"name\":", i ? "," : "");
			cli_json_str(stdout, f->name);
			printf(",\"partition\":%d,\"offset\":%llu,\"size\":%llu}",
			       f->partno, (unsigned long long)f->start,
			       (unsigned long long)f->size);
		}
		printf("]}\n");
	} else {
		cli_human(mi->point->disk_size, size, sizeof(size));
		printf("mounted restore point %s (%s, %s, partition table: %s) at %s, served by pid %ld\n",
		       mi->point->id, mi->point->name, size, mi->table, mi->dir,
		       mi->pid);
		for (size_t i = 0; i < mi->nfiles; i++) {
			cli_human(mi->files[i].size, size, sizeof(size));
			printf("  %s\t%s\n", mi->files[i].name, size);
		}
	}
	fflush(stdout);
}

int cmd_mount(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log", required_argument, NULL, 'l' },
		{ "cache", required_argument, NULL, 'c' },
		{ "allow-other", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		CLI_REMOTE_OPTIONS,
		CLI_BACKEND_OPTIONS,
		{ 0 }
	};
	struct ferry_mount_opts mo = { 0 };
	struct ferry_repo *repo;
	const char *rp = NULL, *logp = NULL;
	int c, e, n, rc;

	while ((c = getopt_long(argc, argv, "r:fl:c:ajh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rp = optarg; break;
		case 'f': mo.foreground = 1; break;
		case 'l': logp = optarg; break;
		case 'c':
			if ((rc = cli_int_option_unit("cache", optarg, 1, 65536, "MiB", &n)) != 0)
				return rc;
			mo.cache_mib = (uint32_t)n;
			break;
		case 'a': mo.allow_other = 1; break;
		case 'j': json = 1; break;
		case 'h': help(); return EXIT_OK;
		default:
			if ((rc = cli_repo_option(c, optarg, "mount", usage)) != 0)
				return rc;
		}
	}
	if (optind + 2 != argc)
		return cli_usage("mount", usage);
	if (logp && !(log_file = fopen(logp, "ae"))) {
		fprintf(stderr, "ferry: --log %s: %s\n", logp, strerror(errno));
		return EXIT_USAGE;
	}
	if (!logp && !mo.foreground) {
		use_syslog = 1;
		openlog("ferry", LOG_PID, LOG_DAEMON);
	}
	mo.log = on_log;
	mo.ready = on_ready;
	if ((e = cli_open_repo(rp, &repo)) != 0)
		return e;
	/* libfuse stops the loop and unmounts on these signals; it installs
	 * its handlers only where the disposition is the default one. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	e = ferry_mount(repo, argv[optind], argv[optind + 1], &mo);
	if (e == 1) {
		/* The child serves the mount and owns the repository's
		 * connections: leave without closing anything. */
		fflush(stdout);
		_exit(EXIT_OK);
	}
	ferry_repo_free(repo);
	if (log_file)
		fclose(log_file);
	if (e)
		return cli_fail(e, "mount failed");
	return EXIT_OK;
}
