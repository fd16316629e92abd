/* Where crm keeps its settings and the session token. */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crm.h"

void cli_find_config_dir(struct cli *cli)
{
	const char *dir = getenv("CRM_CONFIG_DIR");
	if (dir && *dir) {
		snprintf(cli->config_dir, sizeof cli->config_dir, "%s", dir);
		return;
	}
	const char *xdg = getenv("XDG_CONFIG_HOME");
	if (xdg && *xdg) {
		snprintf(cli->config_dir, sizeof cli->config_dir, "%s/dealercrm", xdg);
		return;
	}
	const char *home = getenv("HOME");
	snprintf(cli->config_dir, sizeof cli->config_dir, "%s/.config/dealercrm",
		 home && *home ? home : ".");
}

static int on_config(void *user, const char *section, const char *name, const char *value)
{
	struct cli *cli = user;
	if (strcmp(section, "client") != 0)
		return 1;
	if (!strcmp(name, "server") && !cli->server[0])
		snprintf(cli->server, sizeof cli->server, "%s", value);
	else if (!strcmp(name, "ca") && !cli->ca[0])
		snprintf(cli->ca, sizeof cli->ca, "%s", value);
	return 1;
}

void cli_load_config_file(struct cli *cli)
{
	char path[1100];
	snprintf(path, sizeof path, "%s/crm.ini", cli->config_dir);
	ini_parse(path, on_config, cli); /* a missing file is fine */
}

static bool ensure_dir(const char *path)
{
	char tmp[1024];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0700);
			*p = '/';
		}
	}
	return mkdir(tmp, 0700) == 0 || errno == EEXIST;
}

/* The token file holds the server it belongs to, so a token is never sent
 * to another server. Written to a temporary file at 0600, then renamed. */
bool session_save(const struct cli *cli, const char *token, char *err, size_t errcap)
{
	if (!ensure_dir(cli->config_dir)) {
		snprintf(err, errcap, "cannot create %s: %s", cli->config_dir, strerror(errno));
		return false;
	}
	char path[1100], tmp[1110];
	snprintf(path, sizeof path, "%s/session", cli->config_dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		snprintf(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
		return false;
	}
	fchmod(fd, 0600);
	char buf[2048];
	int n = snprintf(buf, sizeof buf, "server=%s\ntoken=%s\n", cli->server, token);
	bool ok = write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
	close(fd);
	if (!ok || rename(tmp, path) != 0) {
		snprintf(err, errcap, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return false;
	}
	return true;
}

bool session_load(const struct cli *cli, char *token, size_t cap)
{
	char path[1100];
	snprintf(path, sizeof path, "%s/session", cli->config_dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char line[1400];
	bool same_server = false;
	token[0] = '\0';
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!strncmp(line, "server=", 7))
			same_server = strcmp(line + 7, cli->server) == 0;
		else if (!strncmp(line, "token=", 6) && strlen(line + 6) < cap)
			memcpy(token, line + 6, strlen(line + 6) + 1);
	}
	fclose(f);
	return token[0] && same_server;
}

void session_remove(const struct cli *cli)
{
	char path[1100];
	snprintf(path, sizeof path, "%s/session", cli->config_dir);
	unlink(path);
}
