/* crmctl certs: the group CA and the server certificate, ECDSA P-256.
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

#include "crmctl.h"

#define CA_DAYS (10 * 365 + 3)
#define SERVER_DAYS (2 * 365 + 1)

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
	snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path);
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

static bool make_server(const char *cert_path, const char *key_path, X509 *ca,
			EVP_PKEY *ca_key, const char *san)
{
	EVP_PKEY *key = new_key();
	X509 *cert = key ? new_cert(key, "dealercrm server", SERVER_DAYS) : NULL;
	bool ok = cert && X509_set_issuer_name(cert, X509_get_subject_name(ca)) == 1 &&
		  add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE") &&
		  add_ext(cert, ca, NID_key_usage, "critical,digitalSignature") &&
		  add_ext(cert, ca, NID_ext_key_usage, "serverAuth") &&
		  add_ext(cert, ca, NID_subject_alt_name, san) &&
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

int ctl_cmd_certs(const struct crm_config *cfg, int argc, char **argv)
{
	(void)cfg;
	const char *dir = NULL;
	struct ctl_list hosts = {.n = 0}, ips = {.n = 0};
	bool force = false;
	const struct ctl_opt opts[] = {
		{"dir", CTL_OPT_VALUE, &dir},
		{"host", CTL_OPT_LIST, &hosts},
		{"ip", CTL_OPT_LIST, &ips},
		{"force", CTL_OPT_FLAG, &force},
		{NULL, 0, NULL},
	};
	int rc = ctl_parse("certs", argc, argv, opts);
	if (rc)
		return rc;
	if (!dir) {
		ctl_err("certs: --dir DIR is required");
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
	if (!make_server(srv_pem, srv_key, ca, cakey, san))
		goto out;
	printf("created server certificate %s and %s (2 years) for %s\n", srv_pem, srv_key, san);
	rc = CTL_OK;
out:
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return rc;
}
