/*
 * wh_certs.h - the webhook's certificates: a CA and a serving certificate it
 * signs, both ECDSA P-256, made with mbed TLS's x509write, and the pure
 * decision of what to renew.
 *
 * Life cycle (docs/security.md, "Admission webhooks"): each certificate is
 * renewed at two thirds of its life. A renewed CA keeps the one it replaces
 * as the previous CA until that expires; the caBundle carries both, so a
 * serving certificate signed by either is trusted throughout. A serving
 * certificate is renewed on schedule, or at once when it is missing, does
 * not match its key, lacks a wanted host name, or is signed by neither CA;
 * it never outlives the CA that signs it.
 */
#ifndef RW_WH_CERTS_H
#define RW_WH_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rw/buf.h"

/* The PEM texts kept in the webhook Secret (malloc'd, NUL-terminated, NULL when absent). */
struct rw_wh_pem {
	char *ca_crt;  /* ca.crt: the CA that signs new serving certificates */
	char *ca_key;  /* ca.key */
	char *ca_prev; /* ca-previous.crt: the CA it replaced, until that expires */
	char *tls_crt; /* tls.crt: the serving certificate */
	char *tls_key; /* tls.key */
};

void rw_wh_pem_fini(struct rw_wh_pem *p);
/* Deep copy; -ENOMEM. */
int rw_wh_pem_copy(struct rw_wh_pem *dst, const struct rw_wh_pem *src);

typedef int (*rw_wh_rng)(void *ud, unsigned char *out, size_t len);

struct rw_wh_cert_policy {
	int64_t ca_validity_s;	  /* CA life */
	int64_t tls_validity_s;	  /* serving certificate life */
	const char *const *hosts; /* the serving certificate's names: DNS names or IPv4
				     addresses; the first is also its common name */
	int nhosts;
};

/* What rw_wh_certs_refresh changed. */
enum {
	RW_WH_NEW_CA = 1,      /* a new CA (the old one, if any, became the previous CA) */
	RW_WH_NEW_TLS = 2,     /* a new serving certificate */
	RW_WH_DROPPED_PREV = 4 /* the previous CA expired and was dropped */
};

/*
 * Bring p up to date at now (Unix seconds): make what is missing, renew
 * what is due. Returns the RW_WH_* bits of what changed (0: nothing), or a
 * negative errno with a message in err. why gets a short description of the
 * change ("" when nothing changed).
 */
int rw_wh_certs_refresh(struct rw_wh_pem *p, const struct rw_wh_cert_policy *pol, int64_t now,
			rw_wh_rng rng, void *rng_ud, char *why, size_t whylen, char *err,
			size_t errlen);

/* The caBundle: ca.crt followed by ca-previous.crt when present. */
int rw_wh_certs_bundle(const struct rw_wh_pem *p, struct rw_buf *out);

/* The earliest moment something in p is due (renewal or expiry of the previous CA). */
int64_t rw_wh_certs_next_due(const struct rw_wh_pem *p);

/* ---- single certificates (exported for tests) ---- */

struct rw_wh_cert_info {
	int64_t not_before, not_after; /* Unix seconds */
	bool is_ca;
	char subject[256];
	char issuer[256];
};

/* Parse a PEM certificate. 0 or -EINVAL. */
int rw_wh_cert_info(const char *pem, struct rw_wh_cert_info *out);

/* Does the certificate name host (a DNS SAN, or an IP SAN for an IPv4 address)? */
bool rw_wh_cert_has_host(const char *pem, const char *host);

/* Is cert_pem's signature made by ca_pem's key (whatever the dates)? */
bool rw_wh_cert_signed_by(const char *cert_pem, const char *ca_pem);

/* Does key_pem hold the private key of cert_pem's public key? */
bool rw_wh_cert_key_matches(const char *cert_pem, const char *key_pem);

/*
 * Make a key and a certificate valid [not_before, not_after]: a CA named
 * cn (self-signed) when issuer_crt is NULL, else a serving certificate for
 * hosts signed by issuer_crt/issuer_key. PEM into crt and key. 0, or a
 * negative errno with a message in err.
 */
int rw_wh_cert_make(const char *cn, const char *const *hosts, int nhosts, int64_t not_before,
		    int64_t not_after, const char *issuer_crt, const char *issuer_key,
		    rw_wh_rng rng, void *rng_ud, char **crt, char **key, char *err, size_t errlen);

#endif
