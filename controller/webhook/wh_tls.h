/*
 * wh_tls.h - TLS for the webhook listener: mbed TLS over memory buffers, as
 * the transport of rw_httpd (rw/httpd.h), so the handshake and the records
 * run on the controller's one event loop. The serving certificate can be
 * replaced at any time: connections keep the credentials they started with,
 * new ones take the newest.
 */
#ifndef RW_WH_TLS_H
#define RW_WH_TLS_H

#include <stddef.h>

#include "rw/httpd.h"

struct rw_wh_tls;

int rw_wh_tls_new(struct rw_wh_tls **out);
void rw_wh_tls_free(struct rw_wh_tls *t);

/*
 * Serve with this certificate chain and private key (PEM, NUL-terminated)
 * from now on. 0, or a negative errno with a message in err; the previous
 * credentials stay on failure.
 */
int rw_wh_tls_set_cert(struct rw_wh_tls *t, const char *chain_pem, const char *key_pem, char *err,
		       size_t errlen);

/* Has a certificate been set? Until then every connection is refused. */
int rw_wh_tls_ready(const struct rw_wh_tls *t);

/* The transport to put in rw_httpd_opts.transport (valid while t lives). */
const struct rw_httpd_transport *rw_wh_tls_transport(struct rw_wh_tls *t);

/* The random generator the certificates are made with (mbedtls_ctr_drbg_random and its state). */
int rw_wh_tls_random(void *t, unsigned char *out, size_t len);

#endif
