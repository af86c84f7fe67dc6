/* cmd_files.c - `ferry files ls|get`: file-level restore from the ext2/3/4
 * file systems inside a restore point, without restoring the disk. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

static const char usage[] =
	"ls --repo PATH POINT [PART:]PATH [--json] | "
	"get --repo PATH POINT [PART:]PATH... --to DIR";

static void help(void)
{
	printf("usage: ferry files ls --repo PATH POINT [PART:]PATH [--json]\n"
	       "       ferry files get --repo PATH POINT [PART:]PATH... --to DIR\n\n"
	       "Read the ext2/3/4 file system inside restore point POINT straight from\n"
	       "the repository (no loop device, no mount, no root needed): every block\n"
	       "read is checked against its SHA-256.\n\n"
	       "  ls    list directory PATH (or show file PATH)\n"
	       "  get   copy files, symlinks and whole directory trees into DIR (an\n"
	       "        existing directory) under their base names, keeping modes,\n"
	       "        times, symlinks and holes, and owners when run as root.\n"
	       "        Existing files in DIR are never replaced.  Names the image holds\n"
	       "        that could escape DIR ('..', '/' inside a name, a directory\n"
	       "        behind a symlink) are skipped with a warning: nothing is ever\n"
	       "        written outside DIR.\n\n"
	       "PART: selects a partition by number as Linux names it (1 = sda1; 5 =\n"
	       "the first logical MBR partition), 0: the whole disk.  Without it, the\n"
	       "first partition holding an ext file system is used.\n\n"
	       "  --repo PATH    repository (or FERRY_REPO)\n"
	       "  --to DIR       where `get` writes\n"
	       "  --json         `ls` as one JSON object per line\n\n"
	       "examples:\n"
	       "  ferry files ls --repo /backup/repo vm1.img /etc\n"
	       "  ferry files ls --repo /backup/repo 3f2a 2:/var/log\n"
	       "  ferry files get --repo /backup/repo vm1.img /etc/fstab /home/alice --to /tmp/out\n");
	fputs(cli_backend_help, stdout);
}

/* "[N:]/path": the partition (-1 when not given) and the path. */
static const char *split_part(const char *spec, int *part)
{
	const char *colon = strchr(spec, ':');

	*part = -1;
	if (colon && colon > spec && colon[1] == '/') {
		int n;
		char num[16];

		if ((size_t)(colon - spec) < sizeof(num)) {
			memcpy(num, spec, (size_t)(colon - spec));
			num[colon - spec] = 0;
			if (!cli_parse_int(num, 0, 4096, &n)) {
				*part = n;
				return colon + 1;
			}
		}
	}
	return spec;
}

struct ls_ctx {
	int json;
};

static void mode_str(uint32_t m, char out[11])
{
	const char *rwx = "rwxrwxrwx";

	out[0] = S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISREG(m) ? '-' :
		 S_ISCHR(m) ? 'c' : S_ISBLK(m) ? 'b' : S_ISFIFO(m) ? 'p' : 's';
	for (int i = 0; i < 9; i++)
		out[i + 1] = m & (1u << (8 - i)) ? rwx[i] : '-';
	out[10] = 0;
}

static int ls_cb(const struct ferry_file_info *fi, void *arg)
{
	struct ls_ctx *c = arg;

	if (c->json) {
		printf("{\"name\":");
		cli_json_str(stdout, fi->name);
		printf(",\"mode\":%u,\"uid\":%u,\"gid\":%u,\"size\":%llu,\"mtime\":%lld",
		       fi->mode, fi->uid, fi->gid, (unsigned long long)fi->size,
		       (long long)fi->mtime);
		if (fi->link) {
			printf(",\"link\":");
			cli_json_str(stdout, fi->link);
		}
		printf("}\n");
	} else {
		char m[11], t[32];
		time_t tt = (time_t)fi->mtime;
		struct tm tm;

		mode_str(fi->mode, m);
		gmtime_r(&tt, &tm);
		strftime(t, sizeof(t), "%Y-%m-%d %H:%M", &tm);
		printf("%s %5u %5u %12llu %s %s%s%s\n", m, fi->uid, fi->gid,
		       (unsigned long long)fi->size, t, fi->name,
		       fi->link ? " -> " : "", fi->link ? fi->link : "");
	}
	return 0;
}

static void on_warn(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "ferry: warning: %s\n", msg);
}

int cmd_files(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "to", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		CLI_BACKEND_OPTIONS,
		{ 0 }
	};
	struct ferry_repo *repo;
	struct ferry_files *f = NULL;
	const char *rp = NULL, *to = NULL, *verb;
	int c, e, json = 0, part = -1, is_ls;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		help();
		return EXIT_OK;
	}
	if (argc < 2 || (strcmp(argv[1], "ls") && strcmp(argv[1], "get")))
		return cli_usage("files", usage);
	verb = argv[1];
	is_ls = !strcmp(verb, "ls");
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "r:o:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rp = optarg; break;
		case 'o': to = optarg; break;
		case 'j': json = 1; break;
		case 'h': help(); return EXIT_OK;
		default:
			if ((e = cli_repo_option(c, optarg, "files", usage)) != 0)
				return e;
		}
	}
	if (is_ls ? (optind + 2 != argc || to) : (optind + 2 > argc || !to))
		return cli_usage("files", usage);
	for (int i = optind + 1; i < argc; i++) {
		int p;

		split_part(argv[i], &p);
		if (i > optind + 1 && p != part) {
			fprintf(stderr, "ferry: files get: all PATHs must be on one partition\n");
			return EXIT_USAGE;
		}
		part = p;
	}
	if ((e = cli_open_repo(rp, &repo)) != 0)
		return e;
	if ((e = ferry_files_open(repo, argv[optind], part, &f)) != 0) {
		ferry_repo_free(repo);
		return cli_fail(e, "cannot read the file system");
	}
	if (is_ls) {
		struct ls_ctx lc = { json };
		int p;

		e = ferry_files_list(f, split_part(argv[optind + 1], &p), ls_cb, &lc);
		if (e)
			e = cli_fail(e, "files ls failed");
	} else {
		struct ferry_files_result res, sum = { 0 };
		int first = 0;

		for (int i = optind + 1; i < argc; i++) {
			int p;
			const char *path = split_part(argv[i], &p);

			e = ferry_files_get(f, path, to, on_warn, NULL, &res);
			sum.files += res.files;
			sum.dirs += res.dirs;
			sum.symlinks += res.symlinks;
			sum.bytes += res.bytes;
			sum.skipped += res.skipped;
			if (e && !first)
				first = cli_fail(e, path);
		}
		char b[32];

		cli_human(sum.bytes, b, sizeof(b));
		fprintf(stderr, "restored %llu file(s) (%s), %llu directorie(s), %llu symlink(s) to %s; %llu skipped\n",
			(unsigned long long)sum.files, b, (unsigned long long)sum.dirs,
			(unsigned long long)sum.symlinks, to,
			(unsigned long long)sum.skipped);
		e = first;
		if (!e && sum.skipped) {
			fprintf(stderr, "ferry: files get: %llu item(s) skipped (see the warnings above)\n",
				(unsigned long long)sum.skipped);
			e = EXIT_FAIL;
		}
	}
	ferry_files_free(f);
	ferry_repo_free(repo);
	return e;
}
