/* cmd_forget.c - `ferry forget`: apply a keep policy, remove the
 * manifests of the points it does not keep. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
	"--repo PATH [--name NAME] [--keep-last N] [--keep-hourly N] "
	"[--keep-daily N] [--keep-weekly N] [--keep-monthly N] "
	"[--keep-yearly N] [--dry-run] [--json]\n"
	"       ferry forget --repo PATH --damaged [--dry-run] [--json]";

static void help(void)
{
	printf("usage: ferry forget %s\n\n"
	       "Decide which restore points a retention policy keeps, print every\n"
	       "point with the rules that keep it, and remove the manifests of the\n"
	       "others.  Their chunks stay until `ferry gc` frees the space.\n\n"
	       "Rules apply to each disk name on its own (or to NAME only).  A point\n"
	       "stays when any rule keeps it:\n"
	       "  --keep-last N      the N newest points\n"
	       "  --keep-hourly N    the newest point of each of the N newest hours\n"
	       "  --keep-daily N     ... of each of the N newest days that have points\n"
	       "  --keep-weekly N    ... of each of the N newest ISO weeks\n"
	       "  --keep-monthly N   ... of each of the N newest months\n"
	       "  --keep-yearly N    ... of each of the N newest years\n"
	       "Days, weeks, months and years are local time (set TZ to change it).\n"
	       "At least one rule is required.  Points whose manifest is damaged are\n"
	       "never removed by the rules (see --damaged), nor are points whose\n"
	       "object lock retention (s3:// repositories made with\n"
	       "--object-lock-days) has not expired.\n\n"
	       "  --repo PATH   repository (or FERRY_REPO)\n"
	       "  --name NAME   only this disk's points\n"
	       "  --dry-run     show the decision, remove nothing\n"
	       "  --json        a JSON object: every point with keep and reasons\n%s"
	       "  --damaged     instead of keep rules: remove only the manifests that\n"
	       "                fail their checks (listed as damaged by ferry points;\n"
	       "                they stop gc), each named in the output\n\n"
	       "In a hardened repository (ferry init --immutable-days) a point stays\n"
	       "until its expiry whatever the rules say: it is listed as kept,\n"
	       "\"immutable until ...\"; the next forget after that removes it.\n\n"
	       "example (7 dailies, 4 weeklies, 12 monthlies, then free the space):\n"
	       "  ferry forget --repo /backup/repo --keep-daily 7 --keep-weekly 4 \\\n"
	       "      --keep-monthly 12 --dry-run\n"
	       "  ferry forget --repo /backup/repo --keep-daily 7 --keep-weekly 4 --keep-monthly 12\n"
	       "  ferry gc --repo /backup/repo\n",
	       usage, cli_backend_help);
}

struct fctx {
	int json, n, dry;
};

static int print_item(const struct ferry_forget_item *it, void *arg)
{
	struct fctx *c = arg;
	const struct ferry_point *p = it->point;
	char when[32];

	if (c->json) {
		printf("%s\n  {\"id\":\"%s\",\"name\":", c->n ? "," : "", p->id);
		cli_json_str(stdout, p->corrupt ? "" : p->name);
		if (p->corrupt)
			printf(",\"created\":null");
		else {
			cli_time(p->created_ns, when, sizeof(when));
			printf(",\"created\":\"%s\"", when);
		}
		printf(",\"keep\":%s,\"reasons\":", it->keep ? "true" : "false");
		cli_json_str(stdout, it->reasons);
		printf(",\"damaged\":%s}", p->corrupt ? "true" : "false");
	} else {
		if (!c->n)
			printf("%-16s  %-20s  %-8s  %-24s  %s\n", "ID", "CREATED (UTC)",
			       "ACTION", "KEPT BY", "NAME");
		if (p->corrupt)
			snprintf(when, sizeof(when), "?");
		else
			cli_time(p->created_ns, when, sizeof(when));
		printf("%-16s  %-20s  %-8s  %-24s  %s\n", p->id, when,
		       it->keep ? "keep" : (c->dry ? "would go" : "removed"),
		       it->keep ? it->reasons : "-",
		       p->corrupt ? "(damaged manifest)" : p->name);
	}
	c->n++;
	return 0;
}

int cmd_forget(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ "keep-last", required_argument, NULL, 'l' },
		{ "keep-hourly", required_argument, NULL, 'H' },
		{ "keep-daily", required_argument, NULL, 'd' },
		{ "keep-weekly", required_argument, NULL, 'w' },
		{ "keep-monthly", required_argument, NULL, 'm' },
		{ "keep-yearly", required_argument, NULL, 'y' },
		{ "dry-run", no_argument, NULL, 'D' },
		{ "damaged", no_argument, NULL, 'X' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		CLI_BACKEND_OPTIONS,
		{ 0 }
	};
	struct ferry_forget_opts fo = { 0 };
	struct ferry_forget_result res;
	struct ferry_repo *repo;
	struct fctx ctx = { 0, 0, 0 };
	const char *rp = NULL;
	int c, e, rc, *dst;

	while ((c = getopt_long(argc, argv, "r:n:l:H:d:w:m:y:Djh", opts, NULL)) != -1) {
		dst = NULL;
		switch (c) {
		case 'r': rp = optarg; break;
		case 'n': fo.name = optarg; break;
		case 'l': dst = &fo.keep_last; break;
		case 'H': dst = &fo.keep_hourly; break;
		case 'd': dst = &fo.keep_daily; break;
		case 'w': dst = &fo.keep_weekly; break;
		case 'm': dst = &fo.keep_monthly; break;
		case 'y': dst = &fo.keep_yearly; break;
		case 'D': fo.dry_run = ctx.dry = 1; break;
		case 'j': ctx.json = 1; break;
		case 'X': fo.damaged = 1; break;
		case 'h': help(); return EXIT_OK;
		default:
			if ((rc = cli_repo_option(c, optarg, "forget", usage)) != 0)
				return rc;
		}
		if (dst && cli_parse_int(optarg, 0, 1000000, dst)) {
			fprintf(stderr, "ferry: forget: a keep count is a whole number from 0 to 1000000, not '%s'\n",
				optarg);
			return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return cli_usage("forget", usage);
	if (fo.damaged && (fo.keep_last || fo.keep_hourly || fo.keep_daily ||
			   fo.keep_weekly || fo.keep_monthly || fo.keep_yearly || fo.name)) {
		fprintf(stderr, "ferry: forget: --damaged takes no --keep-* rule or --name (run them separately)\n");
		return EXIT_USAGE;
	}
	if (!fo.damaged && !fo.keep_last && !fo.keep_hourly && !fo.keep_daily && !fo.keep_weekly &&
	    !fo.keep_monthly && !fo.keep_yearly) {
		fprintf(stderr, "ferry: forget: give at least one --keep-* rule "
				"(without one every restore point would go)\n");
		return EXIT_USAGE;
	}
	if ((e = cli_open_repo(rp, &repo)) != 0)
		return e;
	if (ctx.json)
		printf("{\"dry_run\":%s,\"points\":[", fo.dry_run ? "true" : "false");
	e = ferry_forget(repo, &fo, print_item, &ctx, &res);
	ferry_repo_free(repo);
	if (ctx.json)
		printf("%s],\"kept\":%llu,\"removed\":%llu,\"immutable_kept\":%llu,\"locked\":%llu}\n",
		       ctx.n ? "\n" : "", (unsigned long long)res.kept,
		       (unsigned long long)res.removed,
		       (unsigned long long)res.immutable_kept,
		       (unsigned long long)res.locked);
	if (e)
		return cli_fail(e, "forget failed");
	if (!ctx.json && res.immutable_kept)
		fprintf(stderr, "%llu restore point(s) the rules drop stay until their expiry (hardened repository)\n",
			(unsigned long long)res.immutable_kept);
	if (!ctx.json && fo.damaged && !res.removed && !res.damaged_kept)
		fprintf(stderr, "no damaged manifest found\n");
	if (!ctx.json)
		fprintf(stderr, "%s%llu restore point(s) kept, %llu %s%s\n",
			fo.dry_run ? "dry run: " : "",
			(unsigned long long)res.kept,
			(unsigned long long)res.removed,
			fo.dry_run ? "would be removed" : "removed",
			res.removed && !fo.dry_run ? "; run ferry gc to free their space" : "");
	if (!ctx.json && res.locked)
		fprintf(stderr, "%llu restore point(s) kept because their object lock retention has not expired\n",
			(unsigned long long)res.locked);
	return EXIT_OK;
}
