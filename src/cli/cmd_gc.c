/* cmd_gc.c - `ferry gc`: remove the chunks no restore point references. */
#include <getopt.h>

#include "cli.h"

static const char usage[] = "--repo PATH [--dry-run] [--lock-timeout SECONDS] [--json]";

static void help(void)
{
	printf("usage: ferry gc %s\n\n"
	       "Free the space of chunks that no restore point references any more\n"
	       "(after `ferry forget`, or left by interrupted backups), and remove\n"
	       "temporary files of processes that are gone.\n\n"
	       "Safe beside running backups: gc first marks what every committed\n"
	       "manifest references (a compact filter, at most 128 MiB whatever the\n"
	       "repository size), then waits until no backup is running, holds the\n"
	       "repository lock exclusively while it marks the points committed\n"
	       "meanwhile and removes the unmarked chunks; backups starting then wait\n"
	       "for it.  A kill at any moment leaves every restore point intact.  If\n"
	       "a manifest cannot be read, gc removes nothing.\n\n"
	       "  --repo PATH   repository (or FERRY_REPO)\n"
	       "  --dry-run     count what would be removed; no lock, no change\n"
	       "  --lock-timeout SECONDS\n"
	       "                wait at most this long for running backups to finish\n"
	       "                (default 3600; 0 waits as long as it takes); then give\n"
	       "                up, removing nothing, and exit 1.  A running\n"
	       "                `ferry mover` holds the lock while it serves the\n"
	       "                repository: stop it for gc\n"
	       "  --json        print a JSON summary\n%s\n"
	       "In a hardened repository (ferry init --immutable-days) gc runs on the\n"
	       "repository's own host, as root: it keeps every chunk an unexpired\n"
	       "restore point references, says until when they are protected, and\n"
	       "lifts the immutable attribute of the chunks it removes; it sets the\n"
	       "attribute where a crash left it missing on a protected point's files.\n\n"
	       "example:\n"
	       "  ferry forget --repo /backup/repo --keep-last 10\n"
	       "  ferry gc --repo /backup/repo\n",
	       usage, cli_backend_help);
}

int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "dry-run", no_argument, NULL, 'D' },
		{ "lock-timeout", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		CLI_BACKEND_OPTIONS,
		{ 0 }
	};
	struct ferry_gc_opts go = { 0 };
	struct ferry_gc_result res;
	struct ferry_repo *repo;
	const char *rp = NULL;
	int c, e, rc, json = 0, secs;

	go.lock_timeout = 3600;
	while ((c = getopt_long(argc, argv, "r:Djh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rp = optarg; break;
		case 'D': go.dry_run = 1; break;
		case 'T':
			if (cli_parse_int(optarg, 0, 100000000, &secs)) {
				fprintf(stderr, "ferry: gc: --lock-timeout takes whole seconds (0: no limit), not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			go.lock_timeout = secs;
			break;
		case 'j': json = 1; break;
		case 'h': help(); return EXIT_OK;
		default:
			if ((rc = cli_repo_option(c, optarg, "gc", usage)) != 0)
				return rc;
		}
	}
	if (optind != argc)
		return cli_usage("gc", usage);
	if ((e = cli_open_repo(rp, &repo)) != 0)
		return e;
	go.progress = cli_progress;
	go.progress_arg = "gc: mark";
	e = ferry_gc(repo, &go, &res);
	cli_progress_end();
	ferry_repo_free(repo);
	if (e == FERRY_E_TIMEOUT) {
		fprintf(stderr, "ferry: gc: %s\n", ferry_last_error());
		return EXIT_FAIL;
	}
	if (e)
		return cli_fail(e, "gc failed");
	if (json) {
		printf("{\"dry_run\":%s,\"points\":%llu,\"points_late\":%llu,"
		       "\"references\":%llu,\"chunks\":%llu,\"chunk_bytes\":%llu,"
		       "\"chunks_removed\":%llu,\"bytes_removed\":%llu,"
		       "\"stale_files\":%llu,\"stale_bytes\":%llu,"
		       "\"filter_bytes\":%llu,\"wait_seconds\":%.3f,\"seconds\":%.3f,"
		       "\"chunks_locked\":%llu,\"bytes_locked\":%llu,"
		       "\"points_protected\":%llu,\"files_protected\":%llu,"
		       "\"sessions\":%llu,\"session_refs\":%llu,\"sessions_damaged\":%llu,"
		       "\"chunks_session\":%llu,"
		       "\"protected_until\":",
		       go.dry_run ? "true" : "false",
		       (unsigned long long)res.points,
		       (unsigned long long)res.points_late,
		       (unsigned long long)res.references,
		       (unsigned long long)res.chunks,
		       (unsigned long long)res.chunk_bytes,
		       (unsigned long long)res.chunks_removed,
		       (unsigned long long)res.bytes_removed,
		       (unsigned long long)res.stale_files,
		       (unsigned long long)res.stale_bytes,
		       (unsigned long long)res.filter_bytes, res.wait_seconds,
		       res.seconds, (unsigned long long)res.chunks_locked,
		       (unsigned long long)res.bytes_locked,
		       (unsigned long long)res.points_protected,
		       (unsigned long long)res.files_protected,
		       (unsigned long long)res.sessions,
		       (unsigned long long)res.session_refs,
		       (unsigned long long)res.sessions_damaged,
		       (unsigned long long)res.chunks_session);
		if (res.protected_until_ns) {
			char when[48];

			cli_time(res.protected_until_ns, when, sizeof(when));
			printf("\"%s\"}\n", when);
		} else {
			printf("null}\n");
		}
	} else {
		char freed[32], total[32];

		cli_human(res.bytes_removed + res.stale_bytes, freed, sizeof(freed));
		cli_human(res.chunk_bytes, total, sizeof(total));
		printf("%s%llu of %llu chunk(s) unreferenced: %s %s (of %s); "
		       "%llu restore point(s), %llu reference(s) marked; "
		       "%llu stale temporary file(s); %.2f s\n",
		       go.dry_run ? "dry run: " : "",
		       (unsigned long long)res.chunks_removed,
		       (unsigned long long)res.chunks,
		       go.dry_run ? "would free" : "freed", freed, total,
		       (unsigned long long)res.points,
		       (unsigned long long)res.references,
		       (unsigned long long)res.stale_files, res.seconds);
		if (res.chunks_locked) {
			cli_human(res.bytes_locked, freed, sizeof(freed));
			printf("kept %llu unreferenced chunk(s) (%s) still under object lock retention; a later gc removes them once it expires\n",
			       (unsigned long long)res.chunks_locked, freed);
		}
		if (res.points_protected) {
			char when[48];

			cli_time(res.protected_until_ns, when, sizeof(when));
			printf("immutable: %llu restore point(s) still protected (the first expires %s); their chunks stay\n",
			       (unsigned long long)res.points_protected, when);
		}
		if (res.sessions)
			printf("kept the chunks of %llu parked mover session(s) (%llu reference(s), %llu more chunk(s) changed since the first began) for their resume\n",
			       (unsigned long long)res.sessions,
			       (unsigned long long)res.session_refs,
			       (unsigned long long)res.chunks_session);
		if (res.files_protected)
			printf("immutable: set the attribute on %llu file(s) of protected points that lacked it\n",
			       (unsigned long long)res.files_protected);
	}
	return EXIT_OK;
}
