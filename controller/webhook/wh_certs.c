/*
 * wh_certs.c - certificate making and the renewal decision (see wh_certs.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "wh_certs.h"

#define PEM_MAX 4096
#define SAN_MAX 2048
/* Dates are moved back this much (at most) so a peer whose clock is a little behind accepts. */
#define MAX_BACKDATE_S 3600

static void
set_err(char *err, size_t errlen, const char *what, int rv)
{
	char m[160] = "";
	if (!err || !errlen)
		return;
	if (rv)
		mbedtls_strerror(rv, m, sizeof(m));
	snprintf(err, errlen, "%s%s%s", what, rv ? ": " : "", m);
}

void
rw_wh_pem_fini(struct rw_wh_pem *p)
{
	free(p->ca_crt);
	free(p->ca_key);
	free(p->ca_prev);
	free(p->tls_crt);
	free(p->tls_key);
	memset(p, 0, sizeof(*p));
}

static int
dup_or_null(char **dst, const char *src)
{
	*dst = NULL;
	if (src && !(*dst = strdup(src)))
		return -ENOMEM;
	return 0;
}

int
rw_wh_pem_copy(struct rw_wh_pem *dst, const struct rw_wh_pem *src)
{
	memset(dst, 0, sizeof(*dst));
	if (dup_or_null(&dst->ca_crt, src->ca_crt) || dup_or_null(&dst->ca_key, src->ca_key) ||
	    dup_or_null(&dst->ca_prev, src->ca_prev) || dup_or_null(&dst->tls_crt, src->tls_crt) ||
	    dup_or_null(&dst->tls_key, src->tls_key)) {
		rw_wh_pem_fini(dst);
		return -ENOMEM;
	}
	return 0;
}

static int
parse_crt(mbedtls_x509_crt *c, const char *pem)
{
	mbedtls_x509_crt_init(c);
	if (!pem || mbedtls_x509_crt_parse(c, (const unsigned char *)pem, strlen(pem) + 1) != 0) {
		mbedtls_x509_crt_free(c);
		return -EINVAL;
	}
	return 0;
}

/* Unix seconds of a UTC date (days from the civil calendar, H. Hinnant's algorithm). */
static int64_t
x509_time(const mbedtls_x509_time *t)
{
	int64_t y = t->year - (t->mon <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (t->mon + (t->mon > 2 ? -3 : 9)) + 2) / 5 + t->day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = era * 146097 + doe - 719468;
	return days * 86400 + t->hour * 3600 + t->min * 60 + t->sec;
}

int
rw_wh_cert_info(const char *pem, struct rw_wh_cert_info *out)
{
	mbedtls_x509_crt c;
	memset(out, 0, sizeof(*out));
	if (parse_crt(&c, pem))
		return -EINVAL;
	out->not_before = x509_time(&c.valid_from);
	out->not_after = x509_time(&c.valid_to);
	out->is_ca = c.ca_istrue != 0;
	mbedtls_x509_dn_gets(out->subject, sizeof(out->subject), &c.subject);
	mbedtls_x509_dn_gets(out->issuer, sizeof(out->issuer), &c.issuer);
	mbedtls_x509_crt_free(&c);
	return 0;
}

bool
rw_wh_cert_has_host(const char *pem, const char *host)
{
	mbedtls_x509_crt c;
	struct in_addr ip;
	bool is_ip = inet_pton(AF_INET, host, &ip) == 1, found = false;
	size_t hl = strlen(host);
	if (parse_crt(&c, pem))
		return false;
	for (const mbedtls_x509_sequence *s = &c.subject_alt_names; s && !found; s = s->next) {
		int tag = s->buf.tag & MBEDTLS_ASN1_TAG_VALUE_MASK;
		if (is_ip)
			found = tag == 7 && s->buf.len == 4 && memcmp(s->buf.p, &ip, 4) == 0;
		else
			found = tag == 2 && s->buf.len == hl && memcmp(s->buf.p, host, hl) == 0;
	}
	mbedtls_x509_crt_free(&c);
	return found;
}

bool
rw_wh_cert_signed_by(const char *cert_pem, const char *ca_pem)
{
	mbedtls_x509_crt c, ca;
	uint32_t flags = 0;
	bool ok;
	if (!cert_pem || !ca_pem || parse_crt(&c, cert_pem))
		return false;
	if (parse_crt(&ca, ca_pem)) {
		mbedtls_x509_crt_free(&c);
		return false;
	}
	(void)mbedtls_x509_crt_verify(&c, &ca, NULL, NULL, &flags, NULL, NULL);
	/* Dates are the renewal logic's business; here only the chain counts. */
	ok = (flags & ~(uint32_t)(MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE)) == 0;
	mbedtls_x509_crt_free(&c);
	mbedtls_x509_crt_free(&ca);
	return ok;
}

bool
rw_wh_cert_key_matches(const char *cert_pem, const char *key_pem)
{
	mbedtls_x509_crt c;
	mbedtls_pk_context k;
	bool ok;
	if (!cert_pem || !key_pem || parse_crt(&c, cert_pem))
		return false;
	mbedtls_pk_init(&k);
	ok = mbedtls_pk_parse_key(&k, (const unsigned char *)key_pem, strlen(key_pem) + 1, NULL,
				  0) == 0 &&
	     mbedtls_pk_check_pair(&c.pk, &k) == 0;
	mbedtls_pk_free(&k);
	mbedtls_x509_crt_free(&c);
	return ok;
}

/* DER length octets; returns how many were written to p (room: 3). */
static size_t
der_len(unsigned char *p, size_t n)
{
	if (n < 0x80) {
		p[0] = (unsigned char)n;
		return 1;
	}
	if (n < 0x100) {
		p[0] = 0x81;
		p[1] = (unsigned char)n;
		return 2;
	}
	p[0] = 0x82;
	p[1] = (unsigned char)(n >> 8);
	p[2] = (unsigned char)n;
	return 3;
}

/* subjectAltName: SEQUENCE OF dNSName [2] / iPAddress [7]. Length or -EMSGSIZE. */
static int
san_der(const char *const *hosts, int n, unsigned char *out, size_t outlen)
{
	unsigned char body[SAN_MAX];
	size_t bl = 0;
	for (int i = 0; i < n; i++) {
		struct in_addr ip;
		const unsigned char *v = (const unsigned char *)hosts[i];
		size_t vl = strlen(hosts[i]);
		unsigned char tag = 0x82;
		if (inet_pton(AF_INET, hosts[i], &ip) == 1) {
			tag = 0x87;
			v = (const unsigned char *)&ip;
			vl = 4;
		}
		if (bl + 4 + vl > sizeof(body))
			return -EMSGSIZE;
		body[bl++] = tag;
		bl += der_len(body + bl, vl);
		memcpy(body + bl, v, vl);
		bl += vl;
	}
	if (bl + 4 > outlen)
		return -EMSGSIZE;
	size_t o = 0;
	out[o++] = 0x30;
	o += der_len(out + o, bl);
	memcpy(out + o, body, bl);
	return (int)(o + bl);
}

static void
fmt_time(int64_t t, char out[16])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 16, "%Y%m%d%H%M%S", &tm);
}

int
rw_wh_cert_make(const char *cn, const char *const *hosts, int nhosts, int64_t not_before,
		int64_t not_after, const char *issuer_crt, const char *issuer_key, rw_wh_rng rng,
		void *rng_ud, char **crt_out, char **key_out, char *err, size_t errlen)
{
	static const unsigned char eku_server[] = {0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06,
						   0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
	mbedtls_pk_context key, ikey;
	mbedtls_x509_crt icrt;
	mbedtls_x509write_cert w;
	mbedtls_mpi serial;
	unsigned char sbytes[16], san[SAN_MAX + 8];
	unsigned char *pem = NULL;
	char subj[300], nb[16], na[16], issuer_name[300];
	bool is_ca = issuer_crt == NULL;
	int rv;

	*crt_out = *key_out = NULL;
	mbedtls_pk_init(&key);
	mbedtls_pk_init(&ikey);
	mbedtls_x509_crt_init(&icrt);
	mbedtls_x509write_crt_init(&w);
	mbedtls_mpi_init(&serial);
	pem = malloc(2 * PEM_MAX);
	if (!pem) {
		set_err(err, errlen, "out of memory", 0);
		rv = -ENOMEM;
		goto out;
	}
	rv = mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
	if (!rv)
		rv = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key), rng, rng_ud);
	if (rv) {
		set_err(err, errlen, "key generation", rv);
		goto fail;
	}
	snprintf(subj, sizeof(subj), "CN=%s", cn);
	if (is_ca) {
		snprintf(issuer_name, sizeof(issuer_name), "%s", subj);
	} else {
		if (parse_crt(&icrt, issuer_crt) ||
		    mbedtls_pk_parse_key(&ikey, (const unsigned char *)issuer_key,
					 strlen(issuer_key) + 1, NULL, 0) != 0) {
			set_err(err, errlen, "the CA certificate or key does not parse", 0);
			rv = MBEDTLS_ERR_X509_INVALID_FORMAT;
			goto fail;
		}
		mbedtls_x509_dn_gets(issuer_name, sizeof(issuer_name), &icrt.subject);
	}
	/* A random positive 127-bit serial (RFC 5280: unique per issuer, at most 20 octets). */
	rv = rng(rng_ud, sbytes, sizeof(sbytes));
	sbytes[0] &= 0x7f;
	sbytes[0] |= 0x01;
	if (!rv)
		rv = mbedtls_mpi_read_binary(&serial, sbytes, sizeof(sbytes));
	fmt_time(not_before, nb);
	fmt_time(not_after, na);
	mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&w, &key);
	mbedtls_x509write_crt_set_issuer_key(&w, is_ca ? &key : &ikey);
	if (!rv)
		rv = mbedtls_x509write_crt_set_serial(&w, &serial);
	if (!rv)
		rv = mbedtls_x509write_crt_set_subject_name(&w, subj);
	if (!rv)
		rv = mbedtls_x509write_crt_set_issuer_name(&w, issuer_name);
	if (!rv)
		rv = mbedtls_x509write_crt_set_validity(&w, nb, na);
	if (!rv)
		rv = mbedtls_x509write_crt_set_basic_constraints(&w, is_ca, is_ca ? 0 : -1);
	if (!rv)
		rv = mbedtls_x509write_crt_set_subject_key_identifier(&w);
	if (!rv)
		rv = mbedtls_x509write_crt_set_authority_key_identifier(&w);
	if (!rv)
		rv = mbedtls_x509write_crt_set_key_usage(
		    &w, is_ca ? MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN |
				    MBEDTLS_X509_KU_DIGITAL_SIGNATURE
			      : MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
	if (!rv && !is_ca) {
		int sl = san_der(hosts, nhosts, san, sizeof(san));
		if (sl < 0) {
			set_err(err, errlen, "too many host names", 0);
			rv = sl;
			goto fail;
		}
		rv = mbedtls_x509write_crt_set_extension(
		    &w, MBEDTLS_OID_SUBJECT_ALT_NAME,
		    MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, san, (size_t)sl);
		if (!rv)
			rv = mbedtls_x509write_crt_set_extension(
			    &w, MBEDTLS_OID_EXTENDED_KEY_USAGE,
			    MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0, eku_server,
			    sizeof(eku_server));
	}
	if (rv) {
		set_err(err, errlen, "certificate fields", rv);
		goto fail;
	}
	rv = mbedtls_x509write_crt_pem(&w, pem, PEM_MAX, rng, rng_ud);
	if (!rv)
		rv = mbedtls_pk_write_key_pem(&key, pem + PEM_MAX, PEM_MAX);
	if (rv) {
		set_err(err, errlen, "PEM encoding", rv);
		goto fail;
	}
	*crt_out = strdup((char *)pem);
	*key_out = strdup((char *)pem + PEM_MAX);
	if (!*crt_out || !*key_out) {
		free(*crt_out);
		free(*key_out);
		*crt_out = *key_out = NULL;
		set_err(err, errlen, "out of memory", 0);
		rv = -ENOMEM;
		goto out;
	}
	rv = 0;
	goto out;
fail:
	rv = rv == -ENOMEM || rv == -EMSGSIZE ? rv : -EINVAL;
out:
	if (pem) {
		/* The key was in it. */
		memset(pem, 0, 2 * PEM_MAX);
		free(pem);
	}
	mbedtls_mpi_free(&serial);
	mbedtls_x509write_crt_free(&w);
	mbedtls_x509_crt_free(&icrt);
	mbedtls_pk_free(&ikey);
	mbedtls_pk_free(&key);
	return rv;
}

/* When a certificate valid [nb, na] is due for renewal: two thirds into its life. */
static int64_t
renew_at(const struct rw_wh_cert_info *i)
{
	return i->not_before + (i->not_after - i->not_before) * 2 / 3;
}

static int64_t
backdate(int64_t validity)
{
	int64_t b = validity / 100;
	return b < MAX_BACKDATE_S ? b : MAX_BACKDATE_S;
}

static void
append_why(char *why, size_t whylen, const char *what)
{
	size_t l = strlen(why);
	if (l + 1 < whylen)
		snprintf(why + l, whylen - l, "%s%s", l ? "; " : "", what);
}

int
rw_wh_certs_refresh(struct rw_wh_pem *p, const struct rw_wh_cert_policy *pol, int64_t now,
		    rw_wh_rng rng, void *rng_ud, char *why, size_t whylen, char *err, size_t errlen)
{
	struct rw_wh_cert_info ca, tls, prev;
	int changed = 0, rv;
	char *crt, *key;

	if (why && whylen)
		why[0] = '\0';
	/* The CA: made when missing or unusable, renewed at two thirds of its life. */
	bool ca_ok = p->ca_crt && p->ca_key && rw_wh_cert_info(p->ca_crt, &ca) == 0 && ca.is_ca &&
		     rw_wh_cert_key_matches(p->ca_crt, p->ca_key);
	if (!ca_ok || now >= renew_at(&ca)) {
		int64_t nb = now - backdate(pol->ca_validity_s);
		rv = rw_wh_cert_make("raywarden-webhook-ca", NULL, 0, nb, now + pol->ca_validity_s,
				     NULL, NULL, rng, rng_ud, &crt, &key, err, errlen);
		if (rv)
			return rv;
		free(p->ca_prev);
		/* A CA that still signs something trusted stays in the bundle until it expires. */
		p->ca_prev = ca_ok ? p->ca_crt : NULL;
		if (!ca_ok)
			free(p->ca_crt);
		free(p->ca_key);
		p->ca_crt = crt;
		p->ca_key = key;
		changed |= RW_WH_NEW_CA;
		append_why(why, whylen, ca_ok ? "CA renewed" : "CA made");
		rw_wh_cert_info(p->ca_crt, &ca);
	}
	if (p->ca_prev && (rw_wh_cert_info(p->ca_prev, &prev) != 0 || now >= prev.not_after)) {
		free(p->ca_prev);
		p->ca_prev = NULL;
		changed |= RW_WH_DROPPED_PREV;
		append_why(why, whylen, "previous CA dropped");
	}
	/* The serving certificate. */
	const char *reason = NULL;
	if (!p->tls_crt || !p->tls_key || rw_wh_cert_info(p->tls_crt, &tls) != 0)
		reason = "serving certificate made";
	else if (!rw_wh_cert_key_matches(p->tls_crt, p->tls_key))
		reason = "serving certificate does not match its key";
	else if (!rw_wh_cert_signed_by(p->tls_crt, p->ca_crt) &&
		 !(p->ca_prev && rw_wh_cert_signed_by(p->tls_crt, p->ca_prev)))
		reason = "serving certificate signed by neither CA";
	else if (now >= renew_at(&tls) || now >= tls.not_after)
		reason = "serving certificate renewed";
	for (int i = 0; !reason && i < pol->nhosts; i++)
		if (!rw_wh_cert_has_host(p->tls_crt, pol->hosts[i]))
			reason = "serving certificate lacks a host name";
	if (reason) {
		int64_t na = now + pol->tls_validity_s;
		if (na > ca.not_after)
			na = ca.not_after;
		rv = rw_wh_cert_make(pol->nhosts ? pol->hosts[0] : "raywarden-webhook", pol->hosts,
				     pol->nhosts, now - backdate(pol->tls_validity_s), na,
				     p->ca_crt, p->ca_key, rng, rng_ud, &crt, &key, err, errlen);
		if (rv)
			return rv;
		free(p->tls_crt);
		free(p->tls_key);
		p->tls_crt = crt;
		p->tls_key = key;
		changed |= RW_WH_NEW_TLS;
		append_why(why, whylen, reason);
	}
	return changed;
}

int
rw_wh_certs_bundle(const struct rw_wh_pem *p, struct rw_buf *out)
{
	int rv = rw_buf_puts(out, p->ca_crt ? p->ca_crt : "");
	if (!rv && p->ca_prev)
		rv = rw_buf_puts(out, p->ca_prev);
	return rv;
}

int64_t
rw_wh_certs_next_due(const struct rw_wh_pem *p)
{
	struct rw_wh_cert_info i;
	int64_t due = INT64_MAX;
	if (p->ca_crt && rw_wh_cert_info(p->ca_crt, &i) == 0 && renew_at(&i) < due)
		due = renew_at(&i);
	if (p->tls_crt && rw_wh_cert_info(p->tls_crt, &i) == 0 && renew_at(&i) < due)
		due = renew_at(&i);
	if (p->ca_prev && rw_wh_cert_info(p->ca_prev, &i) == 0 && i.not_after < due)
		due = i.not_after;
	return due;
}
