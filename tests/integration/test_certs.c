/* Client certificates of store nodes, over real TLS handshakes: a second
 * crmd on the fixture's database asks for client certificates
 * (server.client_ca = the group CA) and reloads the revocation list every
 * second. A certificate from `crmctl certs store` binds its connection to
 * the store node without a login; a revoked one, one the group CA signed
 * but crmctl never issued, one of another CA, and the server's own
 * certificate are refused; desk clients without a certificate still log in
 * with a password. The second crmd's server certificate names a CRL
 * location (crmctl certs --crl-url), and a client given the group's CRL
 * (crmctl certs crl) refuses it once it is revoked. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

static char tmp[64];
static char server2[64];
static char log2[128];
static pid_t crmd2;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static bool log_has(const char *needle)
{
	FILE *f = fopen(log2, "r");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* crmd with the fixture's configuration plus a client CA and a one-second
 * revocation refresh, on a port of its own. */
static bool start_crmd2(void)
{
	int port = free_port();
	char ini[128];
	snprintf(ini, sizeof ini, "%s/crmd2.ini", tmp);
	snprintf(log2, sizeof log2, "%s/crmd2.log", tmp);
	snprintf(server2, sizeof server2, "127.0.0.1:%d", port);
	if (sh("cp '%s' '%s' && printf '\\n[server]\\nlisten_port = %d\\nclient_ca = %s\\n"
	       "cert = %s/ca2/server.pem\\nkey = %s/ca2/server.key\\n"
	       "[auth]\\nrevocation_refresh_s = 1\\n' >>'%s'", it_env("CRMD_CONFIG"), ini, port,
	       it_env("CRM_CA"), tmp, tmp, ini) != 0)
		return false;
	crmd2 = fork();
	if (crmd2 == 0) {
		int fd = open(log2, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		char bin[512];
		snprintf(bin, sizeof bin, "%s/crmd", it_env("CRM_BUILD_DIR"));
		execl(bin, "crmd", "-c", ini, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		/* Client certificates are refused until the list is loaded. */
		if (log_has("event=server.listening") && log_has("event=auth.revocation_loaded"))
			return true;
		usleep(100 * 1000);
	}
	fprintf(stderr, "second crmd did not start; see %s\n", log2);
	return false;
}

static void stop_crmd2(void)
{
	if (crmd2 <= 0)
		return;
	kill(crmd2, SIGTERM);
	int status = 0;
	waitpid(crmd2, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(!log_has("AddressSanitizer") && !log_has("LeakSanitizer") &&
	      !log_has("runtime error:"));
	crmd2 = 0;
}

static struct crmc *connect_crl(const char *cert, const char *key, const char *crl, char *err,
				size_t cap)
{
	struct crmc_options opt = {
		.server = server2,
		.ca_file = it_env("CRM_CA"),
		.client_name = "itest-node",
		.cert_file = cert,
		.key_file = key,
		.crl_file = crl,
		.timeout_ms = 5000,
	};
	return crmc_connect(&opt, NULL, err, cap);
}

static struct crmc *connect_cert(const char *cert, const char *key, char *err, size_t cap)
{
	return connect_crl(cert, key, NULL, err, cap);
}

static Crm__Envelope *whoami(struct crmc *c)
{
	Crm__WhoAmIRequest w = CRM__WHO_AM_IREQUEST__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_WHOAMI;
	req.whoami = &w;
	return it_call(c, &req);
}

static void serial_of(const char *cert, char *out, size_t cap)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "openssl x509 -in '%s' -noout -serial", cert);
	FILE *p = popen(cmd, "r");
	out[0] = '\0';
	if (p) {
		char line[256];
		if (fgets(line, sizeof line, p) && !strncmp(line, "serial=", 7)) {
			line[strcspn(line, "\r\n")] = '\0';
			size_t n = strlen(line + 7);
			n = n < cap ? n : cap - 1;
			memcpy(out, line + 7, n);
			out[n] = '\0';
		}
		pclose(p);
	}
}

int main(void)
{
	it_init();
	snprintf(tmp, sizeof tmp, "/tmp/crm-test-certs.XXXXXX");
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	const char *certs = it_env("CRM_CA");
	char cadir[400];
	snprintf(cadir, sizeof cadir, "%s", certs);
	*strrchr(cadir, '/') = '\0';
	const char *ctl = it_env("CRM_BUILD_DIR"), *cfg = it_env("CRMD_CONFIG");

	/* Issue a store certificate: key 0600, recorded, node user made. */
	CHECK(sh("'%s/crmctl' -c '%s' certs store BJ01 --dir '%s' --out '%s' >'%s/issue.out' 2>&1",
		 ctl, cfg, cadir, tmp, tmp) == 0);
	char cert[256], key[256], serial[128];
	snprintf(cert, sizeof cert, "%s/store-BJ01.pem", tmp);
	snprintf(key, sizeof key, "%s/store-BJ01.key", tmp);
	struct stat st;
	CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(sh("openssl x509 -in '%s' -noout -text | grep -q 'TLS Web Client Authentication'",
		 cert) == 0);
	CHECK(sh("openssl x509 -in '%s' -noout -text | grep -q 'ASN1 OID: prime256v1'", cert) == 0);
	CHECK(sh("openssl verify -CAfile '%s' '%s' >/dev/null", it_env("CRM_CA"), cert) == 0);
	serial_of(cert, serial, sizeof serial);
	CHECK(serial[0] != '\0');
	PGconn *db = it_db();
	CHECK(strcmp(it_db_value(db, "SELECT count(*) FROM crm.store_certs c JOIN crm.users u"
				     " ON u.id = c.user_id WHERE c.serial = $1 AND u.role ="
				     " 'store_node' AND u.username = 'node.bj01'", serial) ?: "", "1") == 0);
	/* A second one for the same store reuses the node user. */
	CHECK(sh("'%s/crmctl' -c '%s' certs store BJ01 --dir '%s' --out '%s/second' >/dev/null 2>&1",
		 ctl, cfg, cadir, tmp) == 0);
	CHECK(strcmp(it_db_value(db, "SELECT count(*) FROM crm.users WHERE username LIKE 'node.bj01%'",
				 NULL) ?: "", "1") == 0);
	/* A certificate the group CA signed outside crmctl, one of another CA,
	 * and the server's own certificate (not for clients). */
	CHECK(sh("cd '%s' && printf 'extendedKeyUsage=clientAuth\\n' >ext &&"
		 " openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
		 " -subj '/O=dealercrm/CN=store node BJ01' -keyout rogue.key -out rogue.csr 2>/dev/null &&"
		 " openssl x509 -req -in rogue.csr -CA '%s/ca.pem' -CAkey '%s/ca.key' -CAcreateserial"
		 " -days 2 -extfile ext -out rogue.pem 2>/dev/null &&"
		 " openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other-ca"
		 " -keyout oca.key -out oca.pem -days 2 2>/dev/null &&"
		 " openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
		 " -subj '/O=dealercrm/CN=store node BJ01' -keyout foreign.key -out foreign.csr 2>/dev/null &&"
		 " openssl x509 -req -in foreign.csr -CA oca.pem -CAkey oca.key -CAcreateserial -days 2"
		 " -extfile ext -out foreign.pem 2>/dev/null", tmp, cadir, cadir) == 0);

	/* The second crmd's server certificate, from the same group CA, names
	 * where the group publishes its CRL. */
	CHECK(sh("mkdir -p '%s/ca2' && cp '%s/ca.pem' '%s/ca.key' '%s/ca2/' &&"
		 " '%s/crmctl' -c '%s' certs --dir '%s/ca2' --force"
		 " --crl-url http://crl.dealer.invalid/group.crl >/dev/null 2>&1", tmp, cadir, cadir,
		 tmp, ctl, cfg, tmp) == 0);
	CHECK(sh("openssl x509 -in '%s/ca2/server.pem' -noout -text | grep -q"
		 " 'URI:http://crl.dealer.invalid/group.crl'", tmp) == 0);
	CHECK(sh("'%s/crmctl' -c '%s' certs --dir '%s/ca2' --force --crl-url 'ftp://x y'"
		 " >/dev/null 2>&1", ctl, cfg, tmp) == 2);

	if (!start_crmd2()) {
		CHECK(false);
		PQfinish(db);
		return it_summary();
	}
	char err[512];

	/* Valid: bound as the store node, no login. */
	struct crmc *node = connect_cert(cert, key, err, sizeof err);
	CHECK(node != NULL);
	if (!node)
		fprintf(stderr, "valid certificate: %s\n", err);
	if (node) {
		CHECK(!strcmp(crmc_server_hello(node)->server_name, "crmd"));
		Crm__Envelope *r = whoami(node);
		CHECK(r && crmc_status(r) == CRM__CODE__OK && r->session && r->session->user);
		if (r && r->session && r->session->user) {
			CHECK(r->session->user->role == CRM__ROLE__STORE_NODE);
			CHECK_STR(r->session->user->username, "node.bj01");
			CHECK_STR(r->session->user->store_code, "BJ01");
		}
		it_free(r);
		/* Store nodes may not call what people call. */
		Crm__StatsRequest sr = CRM__STATS_REQUEST__INIT;
		Crm__Envelope req = CRM__ENVELOPE__INIT;
		req.body_case = CRM__ENVELOPE__BODY_STATS;
		req.stats = &sr;
		r = it_call(node, &req);
		CHECK(r && crmc_status(r) == CRM__CODE__PERMISSION_DENIED);
		it_free(r);
	}
	CHECK(strcmp(it_db_value(db, "SELECT count(*) FROM crm.audit_log WHERE action ="
				     " 'auth.cert_login' AND entity_id = $1 AND actor_username ="
				     " 'node.bj01'", serial) ?: "", "1") == 0);
	/* A store node's account cannot log in with a password. */
	struct crmc *pw = it_connect();
	if (pw) {
		CHECK(it_login_as(pw, "node.bj01", "Any-password-1") == CRM__CODE__UNAUTHENTICATED);
		crmc_close(pw);
	}

	/* Desk clients present no certificate and log in as before. */
	char user[128], upw[128];
	CHECK(it_demo_user("consultant", "BJ01", user, sizeof user, upw, sizeof upw));
	struct crmc *desk = connect_cert(NULL, NULL, err, sizeof err);
	CHECK(desk != NULL);
	if (desk) {
		Crm__Envelope *r = whoami(desk);
		CHECK(r && crmc_status(r) == CRM__CODE__UNAUTHENTICATED);
		it_free(r);
		CHECK(it_login_as(desk, user, upw) == CRM__CODE__OK);
		crmc_close(desk);
	}

	/* Another CA's certificate fails the handshake. */
	char fcert[256], fkey[256];
	snprintf(fcert, sizeof fcert, "%s/foreign.pem", tmp);
	snprintf(fkey, sizeof fkey, "%s/foreign.key", tmp);
	struct crmc *foreign = connect_cert(fcert, fkey, err, sizeof err);
	CHECK(foreign == NULL);
	if (foreign)
		crmc_close(foreign);

	/* The server's certificate is not a client certificate. */
	char scert[512], skey[512];
	snprintf(scert, sizeof scert, "%s/server.pem", cadir);
	snprintf(skey, sizeof skey, "%s/server.key", cadir);
	struct crmc *srvcert = connect_cert(scert, skey, err, sizeof err);
	CHECK(srvcert == NULL);
	if (srvcert)
		crmc_close(srvcert);

	/* Signed by the group CA but never issued by crmctl: the handshake
	 * passes, the binding in the database refuses it. */
	char rcert[256], rkey[256];
	snprintf(rcert, sizeof rcert, "%s/rogue.pem", tmp);
	snprintf(rkey, sizeof rkey, "%s/rogue.key", tmp);
	struct crmc *rogue = connect_cert(rcert, rkey, err, sizeof err);
	CHECK(rogue == NULL);
	CHECK(strstr(err, "not issued to a store node") != NULL);
	if (rogue)
		crmc_close(rogue);
	CHECK(log_has("reason=\"client certificate") && log_has("not issued to a store node"));

	/* Revoked: the bound connection is logged out on its next request, and
	 * after the next reload the handshake itself refuses the certificate. */
	CHECK(sh("'%s/crmctl' -c '%s' certs revoke %s --reason test >'%s/revoke.out' 2>&1", ctl, cfg,
		 serial, tmp) == 0);
	if (node) {
		Crm__Envelope *r = whoami(node);
		CHECK(r && crmc_status(r) == CRM__CODE__UNAUTHENTICATED);
		it_free(r);
		crmc_close(node);
	}
	sleep(3);
	struct crmc *revoked = connect_cert(cert, key, err, sizeof err);
	CHECK(revoked == NULL);
	if (revoked)
		crmc_close(revoked);
	char needle[256];
	snprintf(needle, sizeof needle, "event=tls.client_cert_refused serial=%s reason=revoked",
		 serial);
	CHECK(log_has(needle));
	/* The second certificate of the store still works until revoked with
	 * --store. */
	char cert2[256], key2[256];
	snprintf(cert2, sizeof cert2, "%s/second/store-BJ01.pem", tmp);
	snprintf(key2, sizeof key2, "%s/second/store-BJ01.key", tmp);
	struct crmc *second = connect_cert(cert2, key2, err, sizeof err);
	CHECK(second != NULL);
	if (second)
		crmc_close(second);
	CHECK(sh("'%s/crmctl' -c '%s' certs revoke --store BJ01 >/dev/null 2>&1", ctl, cfg) == 0);
	sleep(3);
	second = connect_cert(cert2, key2, err, sizeof err);
	CHECK(second == NULL);
	if (second)
		crmc_close(second);
	CHECK(strcmp(it_db_value(db, "SELECT count(*) FROM crm.audit_log WHERE action ="
				     " 'cert.revoked' AND subject = 'node.bj01'", NULL) ?: "", "2") == 0);

	/* The server's certificate against the group's CRL: accepted while not
	 * listed, refused once revoked; a client without the CRL does not check. */
	char crl[256], server_serial[128], scert2[256];
	snprintf(crl, sizeof crl, "%s/group.crl", tmp);
	snprintf(scert2, sizeof scert2, "%s/ca2/server.pem", tmp);
	serial_of(scert2, server_serial, sizeof server_serial);
	CHECK(sh("'%s/crmctl' -c '%s' certs crl --dir '%s' --out '%s' >/dev/null 2>&1", ctl, cfg,
		 cadir, crl) == 0);
	CHECK(sh("openssl crl -in '%s' -noout -CAfile '%s' 2>&1 | grep -q 'verify OK'", crl,
		 it_env("CRM_CA")) == 0);
	struct crmc *withcrl = connect_crl(NULL, NULL, crl, err, sizeof err);
	CHECK(withcrl != NULL);
	if (withcrl)
		crmc_close(withcrl);
	CHECK(sh("'%s/crmctl' -c '%s' certs revoke %s --reason 'server key replaced'"
		 " >/dev/null 2>&1 && '%s/crmctl' -c '%s' certs crl --dir '%s' --out '%s'"
		 " >/dev/null 2>&1", ctl, cfg, server_serial, ctl, cfg, cadir, crl) == 0);
	CHECK(sh("openssl crl -in '%s' -noout -text | grep -q 'Serial Number: %s'", crl,
		 server_serial) == 0);
	withcrl = connect_crl(NULL, NULL, crl, err, sizeof err);
	CHECK(withcrl == NULL);
	CHECK(strstr(err, "revoked") != NULL);
	if (withcrl)
		crmc_close(withcrl);
	struct crmc *nocrl = connect_crl(NULL, NULL, NULL, err, sizeof err);
	CHECK(nocrl != NULL);
	if (nocrl)
		crmc_close(nocrl);

	stop_crmd2();
	PQfinish(db);
	if (check_failed == 0)
		sh("rm -rf '%s'", tmp);
	else
		fprintf(stderr, "kept %s\n", tmp);
	return it_summary();
}
