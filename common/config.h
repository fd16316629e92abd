/* dealercrm configuration: one INI file (read with inih) shared by crmd and
 * crmctl, every key documented in ops/crmd.ini.example. Command-line flags
 * override file values through config_set("section.key", value). */
#ifndef CRM_CONFIG_H
#define CRM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct crm_config {
	/* [server] */
	char listen_host[128];
	int listen_port;
	char node_role[16];          /* "group" or "store" */
	char cert_file[512];         /* server certificate chain, PEM */
	char key_file[512];          /* its private key, PEM */
	char client_ca_file[512];    /* CA for client certificates; empty: none asked */
	int max_connections;
	size_t max_frame_bytes;
	int handshake_timeout_ms;
	int idle_timeout_ms;
	int frame_timeout_ms;        /* a frame's last byte, after its first */
	int send_timeout_ms;         /* output over the bound with no write done */
	int max_in_flight;
	size_t max_output_bytes;
	int drain_timeout_ms;
	/* The group CA's CRL over plain HTTP (server/crl_http.c). */
	char crl_listen[128];        /* HOST:PORT; empty: no CRL listener */
	char crl_ca_cert[512];       /* the group CA certificate, PEM */
	char crl_ca_key[512];        /* its private key, PEM; read once at start */
	int crl_valid_s;             /* nextUpdate - thisUpdate of each CRL */

	/* [db] */
	char db_host[128];
	int db_port;
	char db_name[64];
	char db_user[64];
	char db_password[128];
	int db_pool_size;
	int db_active_limit;         /* -1: the machine's CPUs (server.c) */
	int db_connect_timeout_s;
	char db_admin_user[64];      /* superuser used by crmctl init/migrate */
	char db_admin_password[128];

	/* [auth] */
	int session_ttl_s;
	int max_concurrent_hashes;
	int revocation_refresh_s;    /* reload of revoked client-certificate serials */

	/* [service] (server/h_service.c) */
	int service_daily_run_s;     /* maintenance reminders and value classes; 0 off */
	int service_daily_hour;      /* first run at this local hour; -1: an hour after start */

	/* [sender] (server/sender.c): how messages from templates leave. */
	char sender_kind[16];        /* "spool" or "none" */
	char spool_dir[512];         /* the spool sender's folder */

	/* [log] */
	char log_level[16];
};

void config_defaults(struct crm_config *cfg);
/* Reads `path` over the current values. On failure writes a plain reason to
 * `err` ("file.ini line 12: unknown key db.hots") and returns false. */
bool config_load(struct crm_config *cfg, const char *path, char *err, size_t errcap);
/* Sets one key, "section.key". Same validation and messages as the file. */
bool config_set(struct crm_config *cfg, const char *dotted_key, const char *value,
		char *err, size_t errcap);

#endif
