#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum key_type { KEY_STR, KEY_INT, KEY_SIZE };

struct key_def {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;
	size_t size;      /* buffer size for strings */
	long long min, max;
};

#define STR(sec, key, field) {sec, key, KEY_STR, offsetof(struct crm_config, field), sizeof(((struct crm_config *)0)->field), 0, 0}
#define INT(sec, key, field, lo, hi) {sec, key, KEY_INT, offsetof(struct crm_config, field), 0, lo, hi}
#define SIZE(sec, key, field, lo, hi) {sec, key, KEY_SIZE, offsetof(struct crm_config, field), 0, lo, hi}

/* The one list of configuration keys. ops/crmd.ini.example documents each. */
static const struct key_def keys[] = {
	STR("server", "listen_host", listen_host),
	INT("server", "listen_port", listen_port, 0, 65535),
	STR("server", "role", node_role),
	STR("server", "cert", cert_file),
	STR("server", "key", key_file),
	STR("server", "client_ca", client_ca_file),
	INT("server", "max_connections", max_connections, 1, 1000000),
	SIZE("server", "max_frame_bytes", max_frame_bytes, 1024, 1LL << 30),
	INT("server", "handshake_timeout_ms", handshake_timeout_ms, 100, 3600000),
	INT("server", "idle_timeout_ms", idle_timeout_ms, 100, 86400000),
	INT("server", "frame_timeout_ms", frame_timeout_ms, 100, 3600000),
	INT("server", "send_timeout_ms", send_timeout_ms, 100, 3600000),
	INT("server", "max_in_flight", max_in_flight, 1, 65536),
	SIZE("server", "max_output_bytes", max_output_bytes, 65536, 1LL << 32),
	INT("server", "drain_timeout_ms", drain_timeout_ms, 0, 3600000),
	STR("server", "crl_listen", crl_listen),
	STR("server", "crl_ca_cert", crl_ca_cert),
	STR("server", "crl_ca_key", crl_ca_key),
	INT("server", "crl_valid_s", crl_valid_s, 300, 31 * 86400),
	STR("db", "host", db_host),
	INT("db", "port", db_port, 1, 65535),
	STR("db", "name", db_name),
	STR("db", "user", db_user),
	STR("db", "password", db_password),
	INT("db", "pool_size", db_pool_size, 1, 256),
	INT("db", "active_limit", db_active_limit, 0, 256),
	INT("db", "connect_timeout_s", db_connect_timeout_s, 1, 600),
	STR("db", "admin_user", db_admin_user),
	STR("db", "admin_password", db_admin_password),
	INT("auth", "session_ttl_s", session_ttl_s, 60, 31 * 86400),
	INT("auth", "max_concurrent_hashes", max_concurrent_hashes, 1, 64),
	INT("auth", "revocation_refresh_s", revocation_refresh_s, 1, 86400),
	INT("service", "daily_run_s", service_daily_run_s, 0, 31 * 86400),
	INT("service", "daily_hour", service_daily_hour, -1, 23),
	STR("sender", "kind", sender_kind),
	STR("sender", "spool_dir", spool_dir),
	STR("log", "level", log_level),
};

void config_defaults(struct crm_config *c)
{
	memset(c, 0, sizeof *c);
	strcpy(c->listen_host, "127.0.0.1");
	c->listen_port = 7443;
	strcpy(c->node_role, "group");
	strcpy(c->cert_file, "var/certs/server.pem");
	strcpy(c->key_file, "var/certs/server.key");
	c->max_connections = 10000;
	c->max_frame_bytes = 4u << 20;
	c->handshake_timeout_ms = 10000;
	c->idle_timeout_ms = 600000;
	c->frame_timeout_ms = 60000;
	c->send_timeout_ms = 30000;
	c->max_in_flight = 256;
	c->max_output_bytes = 8u << 20;
	c->drain_timeout_ms = 30000;
	strcpy(c->crl_ca_cert, "var/certs/ca.pem");
	strcpy(c->crl_ca_key, "var/certs/ca.key");
	c->crl_valid_s = 86400;
	strcpy(c->db_host, "127.0.0.1");
	c->db_port = 5432;
	strcpy(c->db_name, "crm");
	strcpy(c->db_user, "crmd");
	c->db_pool_size = 4;
	c->db_active_limit = -1;
	c->db_connect_timeout_s = 5;
	strcpy(c->db_admin_user, "postgres");
	c->session_ttl_s = 12 * 3600;
	c->max_concurrent_hashes = 2;
	c->revocation_refresh_s = 60;
	c->service_daily_run_s = 86400;
	c->service_daily_hour = 3;
	strcpy(c->sender_kind, "spool");
	strcpy(c->spool_dir, "var/spool");
	strcpy(c->log_level, "info");
}

static bool set_key(struct crm_config *c, const char *section, const char *name,
		    const char *value, char *err, size_t errcap)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const struct key_def *k = &keys[i];
		if (strcmp(k->section, section) != 0 || strcmp(k->name, name) != 0)
			continue;
		char *field = (char *)c + k->offset;
		if (k->type == KEY_STR) {
			if (strlen(value) >= k->size) {
				snprintf(err, errcap, "%s.%s: value longer than %zu bytes",
					 section, name, k->size - 1);
				return false;
			}
			strcpy(field, value);
			return true;
		}
		char *end;
		errno = 0;
		long long v = strtoll(value, &end, 10);
		if (errno || end == value || *end != '\0' || v < k->min || v > k->max) {
			snprintf(err, errcap, "%s.%s: expected a whole number from %lld to %lld, got \"%s\"",
				 section, name, k->min, k->max, value);
			return false;
		}
		if (k->type == KEY_INT)
			*(int *)field = (int)v;
		else
			*(size_t *)field = (size_t)v;
		return true;
	}
	snprintf(err, errcap, "unknown key %s.%s", section, name);
	return false;
}

struct load_ctx {
	struct crm_config *cfg;
	char *err;
	size_t errcap;
	bool failed;
};

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	if (ctx->failed)
		return 0;
	if (!set_key(ctx->cfg, section, name, value, ctx->err, ctx->errcap)) {
		ctx->failed = true;
		return 0;
	}
	return 1;
}

bool config_load(struct crm_config *cfg, const char *path, char *err, size_t errcap)
{
	char why[256] = "";
	struct load_ctx ctx = {cfg, why, sizeof why, false};
	int rc = ini_parse(path, on_ini, &ctx);
	if (rc == -1) {
		snprintf(err, errcap, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	if (rc != 0) {
		snprintf(err, errcap, "%s line %d: %s", path, rc,
			 why[0] ? why : "syntax error");
		return false;
	}
	return true;
}

bool config_set(struct crm_config *cfg, const char *dotted_key, const char *value,
		char *err, size_t errcap)
{
	const char *dot = strchr(dotted_key, '.');
	if (!dot || dot == dotted_key || dot - dotted_key >= 32) {
		snprintf(err, errcap, "\"%s\": expected section.key", dotted_key);
		return false;
	}
	char section[32];
	memcpy(section, dotted_key, (size_t)(dot - dotted_key));
	section[dot - dotted_key] = '\0';
	return set_key(cfg, section, dot + 1, value, err, errcap);
}
