/* server.c - `ferry server` (the backup server daemon: config, catalog,
 * HTTPS API, scheduler loop, SIGHUP reload) and `ferry token` (API tokens,
 * stored as SHA-256 hashes in the catalog). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "../cli/cli.h"
#include "srv.h"

struct srv *srv_g;

void srv_log(const char *fmt, ...)
{
	char line[2048], when[32];
	va_list ap;
	time_t t = time(NULL);
	struct tm tm;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (srv_g && srv_g->use_syslog) {
		syslog(LOG_INFO, "%s", line);
		return;
	}
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s ferry-server[%ld]: %s\n", when, (long)getpid(), line);
}

double srv_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

time_t srv_now(struct srv *s)
{
	return s->t0 + (time_t)((srv_mono() - s->m0) * s->time_scale);
}

void srv_sha256_hex(const char *s, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int srv_token_check(struct srv *s, const char *token, char *name, size_t namelen)
{
	char h[65];
	const char *p[1] = { h };
	struct srv_rows r;
	int scope = SRV_SCOPE_NONE;

	if (name && namelen)
		name[0] = 0;
	if (strlen(token) > 256)
		return SRV_SCOPE_NONE;
	srv_sha256_hex(token, h);
	pthread_mutex_lock(&s->mu);
	if (srv_db_rows(s->db, "SELECT scope, name FROM tokens WHERE hash = $1", 1, p, &r)) {
		srv_log("catalog: token lookup failed: %s", s->db->err);
	} else {
		/* A scope this ferry does not know (a newer one wrote it)
		 * allows nothing rather than guessing. */
		if (r.n > 0)
			scope = srv_scope_parse(srv_row(&r, 0, 0));
		if (r.n > 0 && name && namelen)
			snprintf(name, namelen, "%s", srv_row(&r, 0, 1));
		srv_rows_free(&r);
	}
	pthread_mutex_unlock(&s->mu);
	return scope;
}

static volatile sig_atomic_t got_stop, got_hup;

static void on_sig(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = 1;
}

static int open_catalog(const struct srv_conf *c, struct srv_db **db, int *ver)
{
	char url[1100], err[600];

	srv_conf_db_url(c, url, sizeof(url));
	if (!strncmp(url, "sqlite:", 7) && !c->database[0] &&
	    mkdir(c->state_dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "ferry: cannot create state-dir %s: %s\n", c->state_dir,
			strerror(errno));
		return EXIT_FAIL;
	}
	if (srv_db_open(url, db, err, sizeof(err))) {
		fprintf(stderr, "ferry: %s\n", err);
		return EXIT_FAIL;
	}
	if (srv_db_migrate(*db, ver)) {
		fprintf(stderr, "ferry: catalog: %s\n", (*db)->err);
		srv_db_close(*db);
		*db = NULL;
		return EXIT_FAIL;
	}
	return 0;
}

static long long max_id(struct srv_db *db, const char *table)
{
	char sql[128];
	long long v = 0;

	snprintf(sql, sizeof(sql), "SELECT MAX(id) FROM %s", table);
	srv_db_int(db, sql, 0, NULL, 0, &v);
	return v + 1;
}

static void write_port_file(const char *file, int port)
{
	FILE *f;
	char tmp[1100];

	if (!file)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	if ((f = fopen(tmp, "w"))) {
		fprintf(f, "%d\n", port);
		fclose(f);
		rename(tmp, file);
	}
}

static void reload(struct srv *s, struct srv_http **http, const char *port_file)
{
	struct srv_conf nc;
	char err[600];
	int restart;

	if (srv_conf_load(s->conf_path, &nc, err, sizeof(err))) {
		srv_log("reload refused, keeping the running configuration: %s", err);
		return;
	}
	restart = strcmp(nc.listen, s->conf.listen) || strcmp(nc.tls_cert, s->conf.tls_cert) ||
		  strcmp(nc.tls_key, s->conf.tls_key) || 1; /* certificates may be renewed in place */
	if (strcmp(nc.database, s->conf.database) || strcmp(nc.state_dir, s->conf.state_dir))
		srv_log("reload: database and state-dir changes take effect at the next start");
	pthread_mutex_lock(&s->mu);
	snprintf(nc.database, sizeof(nc.database), "%s", s->conf.database);
	snprintf(nc.state_dir, sizeof(nc.state_dir), "%s", s->conf.state_dir);
	{
		struct srv_conf old = s->conf;

		s->conf = nc;
		srv_cache_clear(s); /* for a catalog changed with SQL behind our back */
		if (strcmp(nc.log, old.log)) {
			if (!strcmp(nc.log, "syslog"))
				openlog("ferry-server", LOG_PID, LOG_DAEMON);
			s->use_syslog = !strcmp(nc.log, "syslog");
		}
		pthread_mutex_unlock(&s->mu);
		if (restart) {
			struct srv_http *nh = NULL;

			srv_http_stop(*http);
			*http = NULL;
			if (srv_http_start(s, &nh, err, sizeof(err))) {
				srv_log("reload: %s; going back to the previous listen and TLS settings", err);
				pthread_mutex_lock(&s->mu);
				snprintf(s->conf.listen, sizeof(s->conf.listen), "%s", old.listen);
				snprintf(s->conf.tls_cert, sizeof(s->conf.tls_cert), "%s", old.tls_cert);
				snprintf(s->conf.tls_key, sizeof(s->conf.tls_key), "%s", old.tls_key);
				pthread_mutex_unlock(&s->mu);
				if (srv_http_start(s, &nh, err, sizeof(err))) {
					srv_log("reload: cannot listen again: %s; stopping", err);
					got_stop = 1;
					return;
				}
			}
			*http = nh;
			write_port_file(port_file, srv_http_port(nh));
		}
	}
	srv_log("configuration reloaded from %s (listen %s, proxy-timeout %d s, log %s)",
		s->conf_path, s->conf.listen, s->conf.proxy_timeout, s->conf.log);
}

static const char server_usage[] = "--config FILE [--port-file FILE]";

static void server_help(void)
{
	printf("usage: ferry server %s\n\n"
	       "Run the backup server: the catalog of proxies, repositories, jobs,\n"
	       "sessions and restore points, the scheduler, and the HTTPS REST API the\n"
	       "ferry job/session/proxy/repo commands and the proxy agents talk to.\n"
	       "Runs until SIGTERM or SIGINT; SIGHUP reloads the configuration (listen\n"
	       "address and TLS certificate included; the database needs a restart).\n"
	       "See docs/server.md.\n\n"
	       "  --config FILE     configuration, one 'name = value' per line:\n"
	       "                      listen = HOST:PORT        (default 127.0.0.1:7160)\n"
	       "                      tls-cert = FILE, tls-key = FILE  (PEM; without them\n"
	       "                                 plain HTTP, loopback only)\n"
	       "                      database = sqlite:PATH | postgresql://...\n"
	       "                                 (default sqlite:STATE-DIR/catalog.db)\n"
	       "                      state-dir = DIR           (default /var/lib/ferry-server)\n"
	       "                      log = stderr | syslog\n"
	       "                      proxy-timeout = SECONDS   a proxy silent this long is\n"
	       "                                 gone; its tasks go to another (default 30)\n"
	       "                      max-body = BYTES          request size cap (1 MiB)\n"
	       "  --port-file FILE  write the bound port to FILE once listening\n",
	       server_usage);
}

int cmd_server(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "time-scale", required_argument, NULL, 'T' }, /* tests only */
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct srv s;
	struct srv_http *http = NULL;
	const char *conf = NULL, *port_file = NULL;
	char err[600];
	int c, e, ver = 0, scale = 1;
	struct sigaction sa;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'p': port_file = optarg; break;
		case 'T':
			if (cli_parse_int(optarg, 1, 3600, &scale)) {
				fprintf(stderr, "ferry: --time-scale: give 1 to 3600\n");
				return EXIT_USAGE;
			}
			break;
		case 'h': server_help(); return EXIT_OK;
		default: return cli_usage("server", server_usage);
		}
	}
	if (optind != argc || !conf)
		return cli_usage("server", server_usage);
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	snprintf(s.conf_path, sizeof(s.conf_path), "%s", conf);
	if (srv_conf_load(conf, &s.conf, err, sizeof(err))) {
		fprintf(stderr, "ferry: %s\n", err);
		return EXIT_USAGE;
	}
	s.use_syslog = !strcmp(s.conf.log, "syslog");
	if (s.use_syslog)
		openlog("ferry-server", LOG_PID, LOG_DAEMON);
	s.time_scale = scale;
	s.t0 = time(NULL);
	s.m0 = srv_mono();
	srv_g = &s;
	if ((e = open_catalog(&s.conf, &s.db, &ver)) != 0)
		return e;
	s.next_session = max_id(s.db, "sessions");
	s.next_task = max_id(s.db, "tasks");
	s.next_log = max_id(s.db, "session_log");
	pthread_mutex_lock(&s.mu);
	srv_recover_on_start(&s);
	pthread_mutex_unlock(&s.mu);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (srv_http_start(&s, &http, err, sizeof(err))) {
		fprintf(stderr, "ferry: server: %s\n", err);
		srv_db_close(s.db);
		return EXIT_FAIL;
	}
	write_port_file(port_file, srv_http_port(http));
	srv_log("listening on %s port %d (%s), catalog %s schema version %d%s",
		s.conf.listen, srv_http_port(http), s.conf.tls_cert[0] ? "HTTPS" : "plain HTTP",
		s.db->ops->name, ver, scale > 1 ? " (test clock sped up)" : "");
	while (!got_stop) {
		struct timespec ts = { 0, 200 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		if (got_hup) {
			got_hup = 0;
			reload(&s, &http, port_file);
		}
		pthread_mutex_lock(&s.mu);
		srv_sched_tick(&s);
		pthread_mutex_unlock(&s.mu);
	}
	srv_log("stopping");
	srv_http_stop(http);
	srv_cache_clear(&s);
	srv_db_close(s.db);
	free(s.proxies);
	pthread_mutex_destroy(&s.mu);
	srv_g = NULL;
	return EXIT_OK;
}

/* ---- ferry token -------------------------------------------------------- */
static const char token_usage[] =
	"create|list --config FILE [--name NAME] [--scope read|operate|admin] [--json]";

struct token_list {
	int cnt, json;
};

static int token_row(int n, char **v, void *arg)
{
	struct token_list *tl = arg;

	(void)n;
	if (tl->json) {
		printf("%s{\"id\":%lld,\"name\":", tl->cnt++ ? "," : "",
		       strtoll(v[0] ? v[0] : "0", NULL, 10));
		cli_json_str(stdout, v[1] ? v[1] : "");
		printf(",\"scope\":");
		cli_json_str(stdout, v[3] ? v[3] : "");
		printf(",\"created\":%lld}", strtoll(v[2] ? v[2] : "0", NULL, 10));
		return 0;
	}
	if (!tl->cnt++)
		printf("%-6s  %-24s  %-8s  %s\n", "ID", "NAME", "SCOPE", "CREATED (UTC)");
	{
		time_t t = (time_t)strtoll(v[2] ? v[2] : "0", NULL, 10);
		struct tm tm;
		char when[32];

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("%-6s  %-24s  %-8s  %s\n", v[0], v[1], v[3] ? v[3] : "", when);
	}
	return 0;
}

int cmd_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "scope", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct srv_conf conf;
	struct srv_db *db = NULL;
	const char *cfg = NULL, *name = "default", *verb, *scope = "admin";
	char err[600];
	int c, e, json = 0;

	while ((c = getopt_long(argc, argv, "c:n:js:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cfg = optarg; break;
		case 'n': name = optarg; break;
		case 's':
			if (srv_scope_parse(optarg) == SRV_SCOPE_NONE) {
				fprintf(stderr, "ferry: token: unknown scope '%s' (read, operate "
					"or admin)\n", optarg);
				return EXIT_USAGE;
			}
			scope = optarg;
			break;
		case 'j': json = 1; break;
		case 'h':
			printf("usage: ferry token %s\n\n"
			       "API tokens of the backup server, made on the server host: the\n"
			       "catalog keeps only their SHA-256, so `create` prints a new token\n"
			       "once.  Give it to the CLI (--token, FERRY_TOKEN or --token-file)\n"
			       "and to proxy agents.\n\n"
			       "  create     make a token and print it\n"
			       "  list       list tokens (names, scopes and dates, never the tokens)\n"
			       "  --config FILE   the server's configuration (for its database)\n"
			       "  --name NAME     a label for the token (default 'default')\n"
			       "  --scope SCOPE   what the token may do (default admin):\n"
			       "                  read     GET only: listings, sessions, metrics\n"
			       "                  operate  read, and run, enable or disable jobs;\n"
			       "                           what proxy agents need\n"
			       "                  admin    everything: proxies, repositories, jobs\n"
			       "  --json          print {\"token\":...} or {\"tokens\":[...]}\n",
			       token_usage);
			return EXIT_OK;
		default: return cli_usage("token", token_usage);
		}
	}
	if (optind + 1 != argc || !cfg)
		return cli_usage("token", token_usage);
	verb = argv[optind];
	if (strcmp(verb, "create") && strcmp(verb, "list"))
		return cli_usage("token", token_usage);
	if (srv_conf_load(cfg, &conf, err, sizeof(err))) {
		fprintf(stderr, "ferry: %s\n", err);
		return EXIT_USAGE;
	}
	if ((e = open_catalog(&conf, &db, NULL)) != 0)
		return e;
	if (!strcmp(verb, "list")) {
		struct token_list tl = { 0, json };

		if (json)
			printf("{\"tokens\":[");
		e = srv_db_exec(db, "SELECT id, name, created, scope FROM tokens ORDER BY id", 0,
				NULL, token_row, &tl);
		if (json)
			printf("]}\n");
		if (e)
			fprintf(stderr, "ferry: catalog: %s\n", db->err);
		srv_db_close(db);
		return e ? EXIT_FAIL : EXIT_OK;
	} else {
		unsigned char raw[24];
		char tok[64], hash[65], id[24], now[24];
		const char *p[5] = { id, name, hash, now, scope };
		long long next = 0;

		if (strlen(name) > 200 || RAND_bytes(raw, sizeof(raw)) != 1) {
			fprintf(stderr, "ferry: token: name too long or no randomness\n");
			srv_db_close(db);
			return EXIT_FAIL;
		}
		memcpy(tok, "fy_", 4);
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(tok + 3 + 2 * i, 3, "%02x", raw[i]);
		srv_sha256_hex(tok, hash);
		srv_db_int(db, "SELECT MAX(id) FROM tokens", 0, NULL, 0, &next);
		snprintf(id, sizeof(id), "%lld", next + 1);
		snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
		if (srv_db_exec(db, "INSERT INTO tokens (id, name, hash, created, scope) VALUES "
				"($1, $2, $3, $4, $5)", 5, p, NULL, NULL)) {
			fprintf(stderr, "ferry: catalog: %s\n", db->err);
			srv_db_close(db);
			return EXIT_FAIL;
		}
		srv_db_close(db);
		if (json)
		{
			printf("{\"id\":%s,\"name\":", id);
			cli_json_str(stdout, name);
			printf(",\"scope\":\"%s\",\"token\":\"%s\"}\n", scope, tok);
		}
		else {
			printf("%s\n", tok);
			fprintf(stderr, "token %s '%s' (scope %s) created; it is shown only now\n",
				id, name, scope);
		}
		explicit_bzero(tok, sizeof(tok));
		return EXIT_OK;
	}
}
