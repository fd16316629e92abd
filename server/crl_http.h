/* The group CA's certificate revocation list, published by crmd over plain
 * HTTP on a second listener (server.crl_listen): the CRL distribution point
 * that `crmctl certs --crl-url` names in the server certificate.
 *
 * GET /group-ca.crl answers the DER CRL (application/pkix-crl) of every
 * serial in crm.revoked_certs, signed with the group CA key
 * (server.crl_ca_key). Nothing else is served: one request per connection,
 * HTTP/1.0 and 1.1 GET only, Connection: close. CRLs are signed, so plain
 * HTTP is what clients expect at a distribution point. */
#ifndef CRM_CRL_HTTP_H
#define CRM_CRL_HTTP_H

#include <stddef.h>

struct server;

/* The public path of the CRL. */
#define CRL_HTTP_PATH "/group-ca.crl"

/* Loads the CA certificate and key and listens, when server.crl_listen is
 * set (otherwise does nothing). On failure writes a plain reason to `err`
 * naming the key at fault and returns -1. */
int crl_http_start(struct server *srv, char *err, size_t errcap);
/* Stops listening and closes every CRL connection (crmd is draining). Its
 * memory is freed once libuv has closed its handles. */
void crl_http_stop(struct server *srv);

#endif
