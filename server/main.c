/* crmd: the dealercrm server. */
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: crmd [-c FILE] [--set section.key=value]... [--listen HOST:PORT]\n"
		"\n"
		"Serves dealercrm clients over TLS in front of PostgreSQL.\n"
		"  -c, --config FILE   INI configuration (see ops/crmd.ini.example)\n"
		"      --set K=V       override one key, e.g. --set db.port=5433\n"
		"      --listen H:P    same as server.listen_host and server.listen_port\n"
		"      --permissions   print the permission table (Markdown) and exit\n"
		"  -h, --help          this text\n");
}

static bool apply_listen(struct crm_config *cfg, const char *arg, char *err, size_t cap)
{
	const char *colon = strrchr(arg, ':');
	if (!colon || colon == arg) {
		snprintf(err, cap, "--listen: expected HOST:PORT, got \"%s\"", arg);
		return false;
	}
	char host[128];
	snprintf(host, sizeof host, "%.*s", (int)(colon - arg), arg);
	return config_set(cfg, "server.listen_host", host, err, cap) &&
	       config_set(cfg, "server.listen_port", colon + 1, err, cap);
}

/* Each request allocates its result and its reply and frees them after (a
 * page of 200 tasks: a few hundred KiB). With glibc's defaults the heap's
 * top above 128 KiB goes back to the kernel at once and is asked for again
 * by the next request: in ops/bench's tasks mix 0.7 brk calls a request
 * (strace), and 12 % of crmd's CPU samples under brk (perf, on a virtual
 * machine where system calls are dear). Up to 32 MiB of freed memory is
 * kept for reuse; blocks of 4 MiB or more still come from mmap and go back
 * when freed. */
static void malloc_keep_freed(void)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 32 << 20);
#endif
}

int main(int argc, char **argv)
{
	malloc_keep_freed();
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"set", required_argument, NULL, 's'},
		{"listen", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"permissions", no_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	struct crm_config cfg;
	config_defaults(&cfg);
	char err[512];
	/* The file first, then flags in order, whatever order they came in. */
	const char *config_path = NULL;
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
			config_path = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			config_path = argv[i] + 9;
	}
	if (config_path && !config_load(&cfg, config_path, err, sizeof err)) {
		fprintf(stderr, "crmd: %s\n", err);
		return 2;
	}
	int ch;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			break;
		case 's': {
			char *eq = strchr(optarg, '=');
			if (!eq) {
				fprintf(stderr, "crmd: --set expects section.key=value, got \"%s\"\n", optarg);
				return 2;
			}
			*eq = '\0';
			if (!config_set(&cfg, optarg, eq + 1, err, sizeof err)) {
				fprintf(stderr, "crmd: %s\n", err);
				return 2;
			}
			break;
		}
		case 'l':
			if (!apply_listen(&cfg, optarg, err, sizeof err)) {
				fprintf(stderr, "crmd: %s\n", err);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'p':
			handlers_print_permissions(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "crmd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	enum log_level level;
	if (!log_parse_level(cfg.log_level, &level)) {
		fprintf(stderr, "crmd: log.level: expected debug, info, warn or error\n");
		return 2;
	}
	log_set_level(level);
	if (strcmp(cfg.node_role, "group") != 0 && strcmp(cfg.node_role, "store") != 0) {
		fprintf(stderr, "crmd: server.role: expected group or store, got \"%s\"\n", cfg.node_role);
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "crmd: libsodium failed to initialize\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	uv_loop_t loop;
	uv_loop_init(&loop);
	static struct server srv;
	if (server_start(&srv, &loop, &cfg, err, sizeof err) != 0) {
		log_error("server.start_failed", "reason=\"%s\"", err);
		fprintf(stderr, "crmd: %s\n", err);
		return 1;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	int rc = uv_loop_close(&loop);
	if (rc != 0)
		log_warn("server.handles_left", "reason=\"%s\"", uv_strerror(rc));
	SSL_CTX_free(srv.ssl_ctx);
	return srv.exit_code;
}
