/* cmd_points.c - `ferry points`: list restore points. */
#include <getopt.h>

#include "cli.h"

static const char usage[] = "--repo PATH|URL [--name NAME] [--json]";

static void help(void)
{
	printf("usage: ferry points %s\n\n"
	       "List restore points, oldest first (of one NAME if given).\n\n"
	       "  --repo PATH   repository (or FERRY_REPO)\n"
	       "  --name NAME   only this disk's points\n"
	       "  --json        a JSON array of objects\n",
	       usage);
	fputs(cli_remote_help, stdout);
	fputs(cli_backend_help, stdout);
}

struct pctx {
	int json, n;
};

/* Hardened repository only: "immutable_until" (null: none known). */
static void print_immutable_json(const struct ferry_point *p)
{
	char when[32];

	if (!p->immutable_until_ns)
		return;
	if (p->immutable_until_ns == UINT64_MAX) {
		printf(",\"immutable_until\":null");
		return;
	}
	cli_time(p->immutable_until_ns, when, sizeof(when));
	printf(",\"immutable_until\":\"%s\"", when);
}

static void print_verified_json(const struct ferry_point *p)
{
	char when[32];

	if (!p->verified) {
		printf(",\"verified\":null");
		print_immutable_json(p);
		return;
	}
	cli_time(p->verified_ns, when, sizeof(when));
	printf(",\"verified\":\"%s\",\"verified_at\":\"%s\",\"verified_sample\":%d",
	       p->verified > 0 ? "ok" : "damaged", when, p->verified_sample);
	print_immutable_json(p);
}

/* "ok 2024-05-01", "ok 10% ...", "DAMAGED ...", or "never". */
static void verified_text(const struct ferry_point *p, char *buf, size_t len)
{
	char when[32];

	if (!p->verified) {
		snprintf(buf, len, "never");
		return;
	}
	cli_time(p->verified_ns, when, sizeof(when));
	when[10] = 0; /* the date */
	if (p->verified_sample > 0 && p->verified_sample < 100)
		snprintf(buf, len, "%s %s %d%%", p->verified > 0 ? "ok" : "DAMAGED",
			 when, p->verified_sample);
	else
		snprintf(buf, len, "%s %s", p->verified > 0 ? "ok" : "DAMAGED", when);
}

static int print_point(const struct ferry_point *p, void *arg)
{
	struct pctx *c = arg;
	char when[32], size[32], stored[32], ver[48];

	if (c->json) {
		printf("%s\n  {\"id\":\"%s\",", c->n ? "," : "", p->id);
		if (p->corrupt) {
			printf("\"corrupt\":true");
			print_verified_json(p);
			printf("}");
		} else {
			cli_time(p->created_ns, when, sizeof(when));
			printf("\"name\":");
			cli_json_str(stdout, p->name);
			printf(",\"source\":");
			cli_json_str(stdout, p->source);
			printf(",\"created\":\"%s\",\"created_ns\":%llu,\"block_size\":%u,"
			       "\"bytes_total\":%llu,\"bytes_read\":%llu,\"bytes_zero\":%llu,"
			       "\"bytes_new\":%llu,\"bytes_reused\":%llu,\"bytes_stored\":%llu,"
			       "\"seconds\":%.3f,\"extra\":",
			       when, (unsigned long long)p->created_ns, p->block_size,
			       (unsigned long long)p->disk_size,
			       (unsigned long long)p->bytes_read,
			       (unsigned long long)p->bytes_zero,
			       (unsigned long long)p->bytes_new,
			       (unsigned long long)p->bytes_reused,
			       (unsigned long long)p->bytes_stored,
			       (double)p->duration_us / 1e6);
			cli_json_extra(stdout, p->extra);
			printf(",\"corrupt\":false");
			print_verified_json(p);
			printf("}");
		}
	} else {
		if (!c->n)
			printf("%-16s  %-20s  %10s  %10s  %-18s  %s\n", "ID",
			       "CREATED (UTC)", "SIZE", "STORED", "VERIFIED", "NAME");
		verified_text(p, ver, sizeof(ver));
		if (p->corrupt) {
			printf("%-16s  %-20s  %10s  %10s  %-18s  %s\n", p->id, "?", "?",
			       "?", ver, "(manifest damaged: run ferry verify)");
		} else {
			cli_time(p->created_ns, when, sizeof(when));
			cli_human(p->disk_size, size, sizeof(size));
			cli_human(p->bytes_stored, stored, sizeof(stored));
			printf("%-16s  %-20s  %10s  %10s  %-18s  %s\n", p->id, when,
			       size, stored, ver, p->name);
		}
	}
	c->n++;
	return 0;
}

int cmd_points(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		CLI_REMOTE_OPTIONS,
		CLI_BACKEND_OPTIONS,
		{ 0 }
	};
	struct ferry_repo *repo;
	struct pctx ctx = { 0, 0 };
	const char *rp = NULL, *name = NULL;
	int c, e, rc;

	while ((c = getopt_long(argc, argv, "r:n:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rp = optarg; break;
		case 'n': name = optarg; break;
		case 'j': ctx.json = 1; break;
		case 'h': help(); return EXIT_OK;
		default:
			if ((rc = cli_repo_option(c, optarg, "points", usage)) != 0)
				return rc;
		}
	}
	if (optind != argc)
		return cli_usage("points", usage);
	if ((e = cli_open_repo(rp, &repo)) != 0)
		return e;
	if (ctx.json)
		printf("[");
	e = ferry_points_list(repo, name, print_point, &ctx);
	ferry_repo_free(repo);
	if (ctx.json)
		printf("%s]\n", ctx.n ? "\n" : "");
	if (e)
		return cli_fail(e, "cannot list restore points");
	if (!ctx.json && !ctx.n)
		fprintf(stderr, "no restore points%s%s\n", name ? " named " : "",
			name ? name : "");
	return EXIT_OK;
}
