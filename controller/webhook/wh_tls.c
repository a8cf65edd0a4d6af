/*
 * wh_tls.c - mbed TLS server sessions over rw_httpd's buffers (see wh_tls.h).
 *
 * TLS 1.2 only (mbed TLS 2.28's TLS 1.3 is experimental); the API server's
 * Go client negotiates ECDHE-ECDSA with AES-GCM against the P-256 key the
 * certificates use. Renegotiation is off (mbed TLS's default), so after the
 * handshake a peer can only send records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "wh_tls.h"

/* One certificate and key with the configuration that serves them; shared by its sessions. */
struct cred {
	int refs;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt chain;
	mbedtls_pk_context key;
};

struct rw_wh_tls {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	struct cred *cur;
	struct rw_httpd_transport tr;
};

struct session {
	mbedtls_ssl_context ssl;
	struct cred *cred;
	struct rw_buf *cin, *cout;
	int established;
};

static void
cred_put(struct cred *c)
{
	if (!c || --c->refs > 0)
		return;
	mbedtls_ssl_config_free(&c->conf);
	mbedtls_x509_crt_free(&c->chain);
	mbedtls_pk_free(&c->key);
	free(c);
}

static int
bio_send(void *ud, const unsigned char *p, size_t n)
{
	struct session *s = ud;
	if (rw_buf_append(s->cout, p, n) != 0)
		return MBEDTLS_ERR_SSL_ALLOC_FAILED;
	return (int)n;
}

static int
bio_recv(void *ud, unsigned char *p, size_t n)
{
	struct session *s = ud;
	if (s->cin->len == 0)
		return MBEDTLS_ERR_SSL_WANT_READ;
	if (n > s->cin->len)
		n = s->cin->len;
	memcpy(p, s->cin->data, n);
	rw_buf_consume(s->cin, n);
	return (int)n;
}

static void *
conn_new(void *ud, struct rw_buf *cin, struct rw_buf *cout)
{
	struct rw_wh_tls *t = ud;
	struct session *s;
	if (!t->cur || !(s = calloc(1, sizeof(*s))))
		return NULL;
	mbedtls_ssl_init(&s->ssl);
	if (mbedtls_ssl_setup(&s->ssl, &t->cur->conf) != 0) {
		mbedtls_ssl_free(&s->ssl);
		free(s);
		return NULL;
	}
	s->cred = t->cur;
	s->cred->refs++;
	s->cin = cin;
	s->cout = cout;
	mbedtls_ssl_set_bio(&s->ssl, s, bio_send, bio_recv, NULL);
	return s;
}

static int
conn_read(void *tc, struct rw_buf *plain)
{
	struct session *s = tc;
	unsigned char tmp[16384];
	if (!s->established) {
		int rv = mbedtls_ssl_handshake(&s->ssl);
		if (rv == MBEDTLS_ERR_SSL_WANT_READ || rv == MBEDTLS_ERR_SSL_WANT_WRITE)
			return 0;
		if (rv != 0)
			return -EPROTO;
		s->established = 1;
	}
	while (plain->len < plain->max) {
		size_t room = plain->max - plain->len;
		int n = mbedtls_ssl_read(&s->ssl, tmp, room < sizeof(tmp) ? room : sizeof(tmp));
		if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE)
			return 0;
		if (n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || n == 0)
			return 0; /* the TCP EOF that follows ends the connection */
		if (n < 0)
			return -EPROTO;
		if (rw_buf_append(plain, tmp, (size_t)n) != 0)
			return -ENOMEM;
	}
	return 0;
}

static int
conn_write(void *tc, const char *p, size_t n)
{
	struct session *s = tc;
	while (n > 0) {
		int w = mbedtls_ssl_write(&s->ssl, (const unsigned char *)p, n);
		if (w <= 0)
			return -EPROTO; /* the memory BIO never blocks: any error is final */
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
conn_shutdown(void *tc)
{
	struct session *s = tc;
	(void)mbedtls_ssl_close_notify(&s->ssl);
}

static int
conn_established(void *tc)
{
	return ((struct session *)tc)->established;
}

static void
conn_free(void *tc)
{
	struct session *s = tc;
	mbedtls_ssl_free(&s->ssl);
	cred_put(s->cred);
	free(s);
}

int
rw_wh_tls_new(struct rw_wh_tls **out)
{
	static const unsigned char pers[] = "raywarden-webhook";
	struct rw_wh_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	mbedtls_entropy_init(&t->entropy);
	mbedtls_ctr_drbg_init(&t->drbg);
	if (mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy, pers,
				  sizeof(pers) - 1) != 0) {
		rw_wh_tls_free(t);
		return -EIO;
	}
	t->tr = (struct rw_httpd_transport){.conn_new = conn_new,
					    .read = conn_read,
					    .write = conn_write,
					    .shutdown = conn_shutdown,
					    .established = conn_established,
					    .conn_free = conn_free,
					    .ud = t};
	*out = t;
	return 0;
}

void
rw_wh_tls_free(struct rw_wh_tls *t)
{
	if (!t)
		return;
	cred_put(t->cur);
	mbedtls_ctr_drbg_free(&t->drbg);
	mbedtls_entropy_free(&t->entropy);
	free(t);
}

static void
set_mbed_err(char *err, size_t errlen, const char *what, int rv)
{
	char m[160];
	mbedtls_strerror(rv, m, sizeof(m));
	snprintf(err, errlen, "%s: %s", what, m);
}

int
rw_wh_tls_set_cert(struct rw_wh_tls *t, const char *chain_pem, const char *key_pem, char *err,
		   size_t errlen)
{
	struct cred *c = calloc(1, sizeof(*c));
	int rv;
	if (!c)
		return -ENOMEM;
	c->refs = 1;
	mbedtls_ssl_config_init(&c->conf);
	mbedtls_x509_crt_init(&c->chain);
	mbedtls_pk_init(&c->key);
	rv = mbedtls_x509_crt_parse(&c->chain, (const unsigned char *)chain_pem,
				    strlen(chain_pem) + 1);
	if (rv) {
		set_mbed_err(err, errlen, "certificate", rv);
		goto fail;
	}
	rv = mbedtls_pk_parse_key(&c->key, (const unsigned char *)key_pem, strlen(key_pem) + 1,
				  NULL, 0);
	if (rv) {
		set_mbed_err(err, errlen, "key", rv);
		goto fail;
	}
	rv = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_SERVER,
					 MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	if (!rv) {
		mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &t->drbg);
		mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
					     MBEDTLS_SSL_MINOR_VERSION_3);
		rv = mbedtls_ssl_conf_own_cert(&c->conf, &c->chain, &c->key);
	}
	if (rv) {
		set_mbed_err(err, errlen, "TLS configuration", rv);
		goto fail;
	}
	cred_put(t->cur);
	t->cur = c;
	return 0;
fail:
	cred_put(c);
	return -EINVAL;
}

int
rw_wh_tls_ready(const struct rw_wh_tls *t)
{
	return t && t->cur;
}

const struct rw_httpd_transport *
rw_wh_tls_transport(struct rw_wh_tls *t)
{
	return &t->tr;
}

int
rw_wh_tls_random(void *t, unsigned char *out, size_t len)
{
	return mbedtls_ctr_drbg_random(&((struct rw_wh_tls *)t)->drbg, out, len);
}
