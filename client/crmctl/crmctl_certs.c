/* crmctl certs: the group CA and the server certificate, ECDSA P-256;
 * `certs store CODE`: a client certificate for a store's node; `certs
 * revoke`: revokes store certificates (crm.revoked_certs, which crmd
 * reloads every auth.revocation_refresh_s and checks at every binding).
 *
 * The CA is made once and never replaced here: every store's client
 * certificate chains to it, so a new CA is a deliberate act (remove ca.pem
 * and ca.key by hand). The server certificate is reused unless --force.
 * Files are written to a temporary name created 0600 and renamed into
 * place, so a private key is never readable by others, not even briefly. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <sodium.h>

#include "crmctl.h"
#include "tlsstream.h"

#define CA_DAYS (10 * 365 + 3)
#define SERVER_DAYS (2 * 365 + 1)
#define STORE_DAYS (365 + 1)

static void ssl_err(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "unknown error";
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	ctl_err("%s: %s", what, buf);
	ERR_clear_error();
}

static bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Writes `path` atomically with `mode`; `write` gets a BIO on the file. */
static bool write_pem(const char *path, mode_t mode, int (*write)(BIO *, void *), void *obj)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		ctl_err("%s: path too long", path);
		return false;
	}
	int fd = mkstemp(tmp);             /* created 0600 */
	if (fd < 0) {
		ctl_err("cannot create a file next to %s: %s", path, strerror(errno));
		return false;
	}
	FILE *f = fdopen(fd, "w");
	BIO *bio = f ? BIO_new_fp(f, BIO_NOCLOSE) : NULL;
	bool ok = bio && write(bio, obj) == 1 && BIO_flush(bio) == 1;
	BIO_free(bio);
	if (!ok)
		ssl_err(path);
	ok = ok && fflush(f) == 0 && fchmod(fd, mode) == 0 && fsync(fd) == 0;
	if (f)
		ok = fclose(f) == 0 && ok;
	else
		close(fd);
	if (ok && rename(tmp, path) != 0)
		ok = false;
	if (!ok) {
		ctl_err("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	return ok;
}

static int write_key(BIO *bio, void *key)
{
	return PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
}

static int write_cert(BIO *bio, void *cert)
{
	return PEM_write_bio_X509(bio, cert);
}

static EVP_PKEY *read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	X509 *c = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return c;
}

static bool add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return false;
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1;
}

/* A certificate for `key` named `cn`, valid `days` from now, with a random
 * positive 128-bit serial. Signed later. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, long days)
{
	X509 *cert = X509_new();
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	if (!cert || RAND_bytes(serial, sizeof serial) != 1)
		goto failed;
	serial[0] &= 0x7f;
	serial[0] |= 0x40; /* keep all 16 bytes significant */
	bn = BN_bin2bn(serial, sizeof serial, NULL);
	X509_NAME *name = X509_get_subject_name(cert);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) ||
	    X509_set_version(cert, X509_VERSION_3) != 1 ||
	    !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
	    !X509_time_adj_ex(X509_getm_notAfter(cert), (int)days, 0, NULL) ||
	    X509_set_pubkey(cert, key) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"dealercrm",
				       -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
				       -1, 0) != 1)
		goto failed;
	BN_free(bn);
	return cert;
failed:
	BN_free(bn);
	X509_free(cert);
	return NULL;
}

static EVP_PKEY *new_key(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static bool make_ca(const char *cert_path, const char *key_path, X509 **cert_out,
		    EVP_PKEY **key_out)
{
	EVP_PKEY *key = new_key();
	X509 *cert = key ? new_cert(key, "dealercrm group CA", CA_DAYS) : NULL;
	bool ok = cert && X509_set_issuer_name(cert, X509_get_subject_name(cert)) == 1 &&
		  add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE") &&
		  add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") &&
		  add_ext(cert, cert, NID_subject_key_identifier, "hash") &&
		  add_ext(cert, cert, NID_authority_key_identifier, "keyid:always") &&
		  X509_sign(cert, key, EVP_sha256()) > 0;
	if (!ok)
		ssl_err("making the CA certificate");
	ok = ok && write_pem(key_path, 0600, write_key, key) &&
	     write_pem(cert_path, 0644, write_cert, cert);
	if (!ok) {
		X509_free(cert);
		EVP_PKEY_free(key);
		return false;
	}
	*cert_out = cert;
	*key_out = key;
	return true;
}

/* `crl_url` (may be NULL): where the group publishes its CRL (crmctl certs
 * crl), named in the certificate's CRL distribution points. */
static bool make_server(const char *cert_path, const char *key_path, X509 *ca,
			EVP_PKEY *ca_key, const char *san, const char *crl_url)
{
	char crl_dp[600] = "";
	if (crl_url)
		snprintf(crl_dp, sizeof crl_dp, "URI:%s", crl_url);
	EVP_PKEY *key = new_key();
	X509 *cert = key ? new_cert(key, "dealercrm server", SERVER_DAYS) : NULL;
	bool ok = cert && X509_set_issuer_name(cert, X509_get_subject_name(ca)) == 1 &&
		  add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE") &&
		  add_ext(cert, ca, NID_key_usage, "critical,digitalSignature") &&
		  add_ext(cert, ca, NID_ext_key_usage, "serverAuth") &&
		  add_ext(cert, ca, NID_subject_alt_name, san) &&
		  (!crl_url || add_ext(cert, ca, NID_crl_distribution_points, crl_dp)) &&
		  add_ext(cert, ca, NID_subject_key_identifier, "hash") &&
		  add_ext(cert, ca, NID_authority_key_identifier, "keyid:always") &&
		  X509_sign(cert, ca_key, EVP_sha256()) > 0;
	if (!ok)
		ssl_err("making the server certificate");
	ok = ok && write_pem(key_path, 0600, write_key, key) &&
	     write_pem(cert_path, 0644, write_cert, cert);
	X509_free(cert);
	EVP_PKEY_free(key);
	return ok;
}

static bool host_ok(const char *h)
{
	if (!*h || strlen(h) > 253)
		return false;
	for (const char *p = h; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '*'))
			return false;
	return true;
}

static bool ip_ok(const char *ip)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, ip, buf) == 1 || inet_pton(AF_INET6, ip, buf) == 1;
}

static bool san_add(char *san, size_t cap, const char *kind, const char *value)
{
	size_t used = strlen(san);
	int n = snprintf(san + used, cap - used, "%s%s:%s", used ? "," : "", kind, value);
	return n > 0 && (size_t)n < cap - used;
}

static int certs_store(const struct crm_config *cfg, int argc, char **argv);
static int certs_revoke(const struct crm_config *cfg, int argc, char **argv);
static int certs_crl(const struct crm_config *cfg, int argc, char **argv);

int ctl_cmd_certs(const struct crm_config *cfg, int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "store"))
		return certs_store(cfg, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "revoke"))
		return certs_revoke(cfg, argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "crl"))
		return certs_crl(cfg, argc - 1, argv + 1);
	const char *dir = NULL;
	struct ctl_list hosts = {.n = 0}, ips = {.n = 0};
	bool force = false;
	const char *crl_url = NULL;
	const struct ctl_opt opts[] = {
		{"dir", CTL_OPT_VALUE, &dir},
		{"host", CTL_OPT_LIST, &hosts},
		{"ip", CTL_OPT_LIST, &ips},
		{"force", CTL_OPT_FLAG, &force},
		{"crl-url", CTL_OPT_VALUE, &crl_url},
		{NULL, 0, NULL},
	};
	int rc = ctl_parse("certs", argc, argv, opts);
	if (rc)
		return rc;
	if (!dir) {
		ctl_err("certs: --dir DIR is required");
		return CTL_USAGE;
	}
	if (crl_url && ((strncmp(crl_url, "http://", 7) && strncmp(crl_url, "https://", 8)) ||
			strlen(crl_url) > 500 || strpbrk(crl_url, ", \t\r\n"))) {
		ctl_err("certs: --crl-url must be an http:// or https:// URL without spaces or commas");
		return CTL_USAGE;
	}
	char san[4096] = "";
	san_add(san, sizeof san, "DNS", "localhost");
	san_add(san, sizeof san, "IP", "127.0.0.1");
	for (int i = 0; i < hosts.n; i++) {
		if (!host_ok(hosts.v[i])) {
			ctl_err("certs: --host \"%s\" is not a DNS name", hosts.v[i]);
			return CTL_USAGE;
		}
		if (strcmp(hosts.v[i], "localhost") && !san_add(san, sizeof san, "DNS", hosts.v[i]))
			return CTL_USAGE;
	}
	for (int i = 0; i < ips.n; i++) {
		if (!ip_ok(ips.v[i])) {
			ctl_err("certs: --ip \"%s\" is not an IPv4 or IPv6 address", ips.v[i]);
			return CTL_USAGE;
		}
		if (strcmp(ips.v[i], "127.0.0.1") && !san_add(san, sizeof san, "IP", ips.v[i]))
			return CTL_USAGE;
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		ctl_err("cannot create %s: %s", dir, strerror(errno));
		return CTL_FAIL;
	}
	char ca_pem[4096], ca_key[4096], srv_pem[4096], srv_key[4096];
	snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", dir);
	snprintf(ca_key, sizeof ca_key, "%s/ca.key", dir);
	snprintf(srv_pem, sizeof srv_pem, "%s/server.pem", dir);
	snprintf(srv_key, sizeof srv_key, "%s/server.key", dir);

	X509 *ca = NULL;
	EVP_PKEY *cakey = NULL;
	rc = CTL_FAIL;
	bool have_pem = file_exists(ca_pem), have_key = file_exists(ca_key);
	bool ca_new = !have_pem;
	if (have_pem != have_key) {
		ctl_err("%s exists without %s; restore it, or remove both to make a new CA",
			have_pem ? ca_pem : ca_key, have_pem ? ca_key : ca_pem);
		goto out;
	}
	if (have_pem) {
		ca = read_cert(ca_pem);
		cakey = read_key(ca_key);
		if (!ca || !cakey || X509_check_private_key(ca, cakey) != 1) {
			ssl_err("the existing CA in ca.pem/ca.key is unreadable or its key does not match");
			goto out;
		}
		printf("CA %s exists; kept\n", ca_pem);
	} else {
		if (!make_ca(ca_pem, ca_key, &ca, &cakey))
			goto out;
		printf("created CA %s and %s (10 years)\n", ca_pem, ca_key);
	}
	/* A server certificate of an earlier CA is useless with the new one. */
	if (!force && !ca_new && file_exists(srv_pem) && file_exists(srv_key)) {
		printf("server certificate %s exists; kept (--force issues a new one)\n", srv_pem);
		rc = CTL_OK;
		goto out;
	}
	if (!make_server(srv_pem, srv_key, ca, cakey, san, crl_url))
		goto out;
	printf("created server certificate %s and %s (2 years) for %s\n", srv_pem, srv_key, san);
	rc = CTL_OK;
out:
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return rc;
}

/* ------------------------------------------------------------ store certificates */

static bool store_code_ok(const char *code)
{
	size_t n = strlen(code);
	if (n < 2 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = code[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (i > 0 && (c == '_' || c == '-'))))
			return false;
	}
	return true;
}

/* The node's password is never used (it logs in with its certificate), but
 * the column needs an Argon2id hash: hash 256 random bits nobody keeps. */
static bool unusable_password_hash(char out[crypto_pwhash_STRBYTES])
{
	unsigned char raw[32];
	char hex[65];
	if (sodium_init() < 0)
		return false;
	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
	bool ok = crypto_pwhash_str(out, hex, strlen(hex), crypto_pwhash_OPSLIMIT_INTERACTIVE,
				    crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0;
	sodium_memzero(hex, sizeof hex);
	return ok;
}

/* certs store CODE --dir DIR [--out DIR] [--days N]: a client certificate
 * (EKU clientAuth, CN "store node CODE") and key for the store's node,
 * recorded in crm.store_certs with the node's user (node.<code>, role
 * store_node, made when missing) before the files are written. */
static int certs_store(const struct crm_config *cfg, int argc, char **argv)
{
	if (argc < 1 || argv[0][0] == '-') {
		ctl_err("certs store: give the store code (crmctl certs store CODE --dir DIR)");
		return CTL_USAGE;
	}
	const char *code = argv[0], *dir = NULL, *out = NULL, *days_text = NULL;
	const struct ctl_opt opts[] = {
		{"dir", CTL_OPT_VALUE, &dir},
		{"out", CTL_OPT_VALUE, &out},
		{"days", CTL_OPT_VALUE, &days_text},
		{NULL, 0, NULL},
	};
	int rc = ctl_parse("certs store", argc - 1, argv + 1, opts);
	if (rc)
		return rc;
	if (!dir) {
		ctl_err("certs store: --dir DIR (where ca.pem and ca.key are) is required");
		return CTL_USAGE;
	}
	if (!store_code_ok(code)) {
		ctl_err("certs store: \"%s\" is not a store code (2 to 16 capital letters, digits,"
			" _ or -, e.g. BJ01)", code);
		return CTL_USAGE;
	}
	long days = STORE_DAYS;
	if (days_text) {
		char *end;
		days = strtol(days_text, &end, 10);
		if (*end || days < 1 || days > 3650) {
			ctl_err("certs store: --days must be a whole number from 1 to 3650");
			return CTL_USAGE;
		}
	}
	if (!out)
		out = dir;
	char ca_pem[4096], ca_key[4096], cert_path[4096], key_path[4096], username[80];
	snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", dir);
	snprintf(ca_key, sizeof ca_key, "%s/ca.key", dir);
	snprintf(cert_path, sizeof cert_path, "%s/store-%s.pem", out, code);
	snprintf(key_path, sizeof key_path, "%s/store-%s.key", out, code);
	snprintf(username, sizeof username, "node.");
	for (size_t i = 0; code[i] && i < 64; i++)
		username[5 + i] = (char)(code[i] >= 'A' && code[i] <= 'Z' ? code[i] - 'A' + 'a'
									 : code[i]);
	username[5 + strlen(code)] = '\0';

	X509 *ca = read_cert(ca_pem), *cert = NULL;
	EVP_PKEY *cakey = read_key(ca_key), *key = NULL;
	PGconn *db = NULL;
	char hash[crypto_pwhash_STRBYTES], serial[80], cn[64];
	rc = CTL_FAIL;
	if (!ca || !cakey || X509_check_private_key(ca, cakey) != 1) {
		ssl_err("reading the group CA (ca.pem and ca.key; crmctl certs --dir DIR makes them)");
		goto out;
	}
	if (mkdir(out, 0755) != 0 && errno != EEXIST) {
		ctl_err("cannot create %s: %s", out, strerror(errno));
		goto out;
	}
	snprintf(cn, sizeof cn, "store node %s", code);
	key = new_key();
	cert = key ? new_cert(key, cn, days) : NULL;
	bool ok = cert && X509_set_issuer_name(cert, X509_get_subject_name(ca)) == 1 &&
		  add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE") &&
		  add_ext(cert, ca, NID_key_usage, "critical,digitalSignature") &&
		  add_ext(cert, ca, NID_ext_key_usage, "clientAuth") &&
		  add_ext(cert, ca, NID_subject_key_identifier, "hash") &&
		  add_ext(cert, ca, NID_authority_key_identifier, "keyid:always") &&
		  X509_sign(cert, cakey, EVP_sha256()) > 0 &&
		  tls_cert_serial_hex(cert, serial, sizeof serial);
	if (!ok) {
		ssl_err("making the store certificate");
		goto out;
	}
	if (!unusable_password_hash(hash)) {
		ctl_err("hashing the node's unused password failed (out of memory?)");
		goto out;
	}
	char not_after[32];
	snprintf(not_after, sizeof not_after, "%ld days", days);
	db = ctl_admin_connect(cfg, cfg->db_name);
	if (!db)
		goto out;
	const char *params[] = {code, serial, username, hash, not_after, ctl_actor()};
	PGresult *res = ctl_query(db, "recording the store certificate",
				  "SELECT crm.admin_cert_issue($1, $2, $3, $4,"
				  " now() + $5::interval, $6)", 6, params);
	if (!res)
		goto out;
	PQclear(res);
	if (!write_pem(key_path, 0600, write_key, key) ||
	    !write_pem(cert_path, 0644, write_cert, cert))
		goto out;
	printf("created store certificate %s and key %s (%ld days) for %s, serial %s;"
	       " its node logs in as %s\n", cert_path, key_path, days, code, serial, username);
	rc = CTL_OK;
out:
	if (db)
		PQfinish(db);
	X509_free(ca);
	X509_free(cert);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	return rc;
}

/* A serial as typed (openssl prints "4F3A..." or "4f:3a:..."), made
 * canonical: upper-case hex without separators or leading zeros. */
static bool serial_canonical(const char *in, char *out, size_t cap)
{
	size_t k = 0;
	for (const char *p = in; *p; p++) {
		if (*p == ':')
			continue;
		char c = *p >= 'a' && *p <= 'f' ? (char)(*p - 'a' + 'A') : *p;
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return false;
		if (k == 0 && c == '0')
			continue;
		if (k + 1 >= cap)
			return false;
		out[k++] = c;
	}
	if (k == 0)
		return false;
	out[k] = '\0';
	return true;
}

/* certs revoke SERIAL | --store CODE [--reason TEXT] */
static int certs_revoke(const struct crm_config *cfg, int argc, char **argv)
{
	const char *serial_arg = NULL, *store = NULL, *reason = NULL;
	if (argc >= 1 && argv[0][0] != '-') {
		serial_arg = argv[0];
		argc--;
		argv++;
	}
	const struct ctl_opt opts[] = {
		{"store", CTL_OPT_VALUE, &store},
		{"reason", CTL_OPT_VALUE, &reason},
		{NULL, 0, NULL},
	};
	int rc = ctl_parse("certs revoke", argc, argv, opts);
	if (rc)
		return rc;
	if (!serial_arg == !store) {
		ctl_err("certs revoke: give a SERIAL or --store CODE, not both");
		return CTL_USAGE;
	}
	char serial[80];
	if (serial_arg && !serial_canonical(serial_arg, serial, sizeof serial)) {
		ctl_err("certs revoke: \"%s\" is not a serial (hexadecimal, as crmctl certs store"
			" printed it)", serial_arg);
		return CTL_USAGE;
	}
	PGconn *db = ctl_admin_connect(cfg, cfg->db_name);
	if (!db)
		return CTL_FAIL;
	const char *params[] = {serial_arg ? serial : NULL, store, ctl_actor(), reason};
	PGresult *res = ctl_query(db, "revoking", "SELECT * FROM crm.admin_cert_revoke($1, $2, $3, $4)",
				  4, params);
	PQfinish(db);
	if (!res)
		return CTL_FAIL;
	int n = PQntuples(res);
	for (int i = 0; i < n; i++)
		printf("revoked certificate %s\n", PQgetvalue(res, i, 0));
	if (n == 0)
		printf("nothing to revoke: %s\n", serial_arg ? "that serial was already revoked"
							     : "no unrevoked certificate of that store");
	else
		printf("crmd refuses %s within auth.revocation_refresh_s; sessions opened with %s"
		       " ended now\n", n == 1 ? "it" : "them", n == 1 ? "it" : "them");
	PQclear(res);
	return CTL_OK;
}

/* ------------------------------------------------------------ CRL */

static int write_crl(BIO *bio, void *crl)
{
	return PEM_write_bio_X509_CRL(bio, crl);
}

/* certs crl --dir DIR [--out FILE] [--days N]: the group CA's certificate
 * revocation list (PEM) of every serial in crm.revoked_certs, valid for N
 * days (default 7): the file to publish at the --crl-url of the server
 * certificate and to give clients (crmc_options.crl_file). Run it again
 * after every revocation and before it expires. */
static int certs_crl(const struct crm_config *cfg, int argc, char **argv)
{
	const char *dir = NULL, *out = NULL, *days_text = NULL;
	const struct ctl_opt opts[] = {
		{"dir", CTL_OPT_VALUE, &dir},
		{"out", CTL_OPT_VALUE, &out},
		{"days", CTL_OPT_VALUE, &days_text},
		{NULL, 0, NULL},
	};
	int rc = ctl_parse("certs crl", argc, argv, opts);
	if (rc)
		return rc;
	if (!dir) {
		ctl_err("certs crl: --dir DIR (where ca.pem and ca.key are) is required");
		return CTL_USAGE;
	}
	long days = 7;
	if (days_text) {
		char *end;
		days = strtol(days_text, &end, 10);
		if (*end || days < 1 || days > 365) {
			ctl_err("certs crl: --days must be a whole number from 1 to 365");
			return CTL_USAGE;
		}
	}
	char ca_pem[4096], ca_key[4096], crl_path[4096];
	snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", dir);
	snprintf(ca_key, sizeof ca_key, "%s/ca.key", dir);
	snprintf(crl_path, sizeof crl_path, "%s", out ? out : "");
	if (!out)
		snprintf(crl_path, sizeof crl_path, "%s/ca.crl", dir);
	X509 *ca = read_cert(ca_pem);
	EVP_PKEY *cakey = read_key(ca_key);
	X509_CRL *crl = NULL;
	PGconn *db = NULL;
	PGresult *res = NULL;
	rc = CTL_FAIL;
	if (!ca || !cakey || X509_check_private_key(ca, cakey) != 1) {
		ssl_err("reading the group CA (ca.pem and ca.key; crmctl certs --dir DIR makes them)");
		goto out;
	}
	db = ctl_admin_connect(cfg, cfg->db_name);
	if (!db)
		goto out;
	res = ctl_query(db, "reading revoked certificates",
			"SELECT serial, extract(epoch FROM revoked_at)::bigint FROM crm.revoked_certs"
			" ORDER BY serial", 0, NULL);
	if (!res)
		goto out;
	crl = X509_CRL_new();
	ASN1_TIME *last = X509_gmtime_adj(NULL, 0);
	ASN1_TIME *next = X509_time_adj_ex(NULL, (int)days, 0, NULL);
	bool ok = crl && last && next && X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1 &&
		  X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) == 1 &&
		  X509_CRL_set1_lastUpdate(crl, last) == 1 &&
		  X509_CRL_set1_nextUpdate(crl, next) == 1;
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	for (int i = 0; ok && i < PQntuples(res); i++) {
		BIGNUM *bn = NULL;
		X509_REVOKED *rev = X509_REVOKED_new();
		ASN1_INTEGER *sn = NULL;
		ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)strtoll(PQgetvalue(res, i, 1), NULL, 10));
		ok = rev && when && BN_hex2bn(&bn, PQgetvalue(res, i, 0)) > 0 &&
		     (sn = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
		     X509_REVOKED_set_serialNumber(rev, sn) == 1 &&
		     X509_REVOKED_set_revocationDate(rev, when) == 1 &&
		     X509_CRL_add0_revoked(crl, rev) == 1;
		if (!ok)
			X509_REVOKED_free(rev);
		ASN1_INTEGER_free(sn);
		ASN1_TIME_free(when);
		BN_free(bn);
	}
	ok = ok && X509_CRL_sort(crl) == 1 && X509_CRL_sign(crl, cakey, EVP_sha256()) > 0;
	if (!ok) {
		ssl_err("making the CRL");
		goto out;
	}
	if (!write_pem(crl_path, 0644, write_crl, crl))
		goto out;
	printf("wrote %s: %d revoked serial(s), valid %ld days; publish it at the server"
	       " certificate's --crl-url\n", crl_path, PQntuples(res), days);
	rc = CTL_OK;
out:
	PQclear(res);
	if (db)
		PQfinish(db);
	X509_CRL_free(crl);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return rc;
}
