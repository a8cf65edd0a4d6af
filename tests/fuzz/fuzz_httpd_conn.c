/*
 * fuzz_httpd_conn.c - the server's request buffering on one connection:
 * the bounded input buffer (RW_HTTPD_MAX_HEAD + max_body, as httpd.c sizes
 * it), framed by rw_httpd_frame and handed out by rw_httpd_head_terminate,
 * exactly as httpd.c's conn_process drives them. The same bytes are fed
 * whole, one byte per read, and in reads of a length chosen from the input;
 * each must yield the same transcript (requests with their method, path,
 * query, fields and body; the error answer that ends the connection; what is
 * left unread). Also checked: a full input buffer never waits for more bytes
 * (that would stall the connection until its deadline), at most one
 * 100 Continue per request, and the in-place C strings equal their spans.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../proto/src/httpd_parse.h"

#define MAX_BODY 4096 /* the agent's cap */
#define BUF_CAP (RW_HTTPD_MAX_HEAD + MAX_BODY)
#define LOG_CAP (1 << 20)

struct conn_model {
	char in[BUF_CAP + 1]; /* + 1: the server NUL-terminates the body */
	size_t len;
	int closed;
	int continued;
	char *log;
	size_t loglen;
};

static void
logf_(struct conn_model *m, const char *fmt, const char *s, size_t n)
{
	char tmp[64];
	int k = snprintf(tmp, sizeof(tmp), fmt, n);
	if (k < 0 || m->loglen + (size_t)k + n + 1 > LOG_CAP)
		abort(); /* cannot happen with the input cap below */
	memcpy(m->log + m->loglen, tmp, (size_t)k);
	m->loglen += (size_t)k;
	if (s) {
		memcpy(m->log + m->loglen, s, n);
		m->loglen += n;
	}
}

static void
check_cstr(const char *base, struct rw_httpd_span sp)
{
	if (strlen(base + sp.off) != sp.len)
		abort();
}

/* One request, as dispatch() hands it to a handler. */
static void
record(struct conn_model *m, struct rw_httpd_head *h, size_t total)
{
	rw_httpd_head_terminate(m->in, h);
	check_cstr(m->in, h->method);
	check_cstr(m->in, h->path);
	check_cstr(m->in, h->query);
	logf_(m, "\nR m%zu:", m->in + h->method.off, h->method.len);
	logf_(m, " p%zu:", m->in + h->path.off, h->path.len);
	logf_(m, " q%zu:", m->in + h->query.off, h->query.len);
	for (int i = 0; i < h->nfields; i++) {
		check_cstr(m->in, h->fields[i].name);
		check_cstr(m->in, h->fields[i].value);
		logf_(m, " f%zu:", m->in + h->fields[i].name.off, h->fields[i].name.len);
		logf_(m, "=%zu:", m->in + h->fields[i].value.off, h->fields[i].value.len);
	}
	logf_(m, " b%zu:", m->in + h->head_len, total - h->head_len);
	logf_(m, h->keep_alive ? " keep%zu" : " close%zu", NULL, (size_t)h->minor);
}

/* conn_process: answer every complete request at the start of the buffer. */
static void
process(struct conn_model *m)
{
	struct rw_httpd_head h;
	struct rw_httpd_frame f;
	while (!m->closed && m->len > 0) {
		rw_httpd_frame(m->in, m->len, MAX_BODY, &h, &f);
		if (f.status > 0) {
			logf_(m, "\nE%zu", NULL, (size_t)f.status);
			m->closed = 1;
			return;
		}
		if (f.status < 0) {
			if (m->len == BUF_CAP)
				abort(); /* a full buffer must frame a request or an error */
			if (f.want_continue) {
				if (!f.head_done)
					abort();
				m->continued = 1; /* interim answer: timing-dependent, not logged */
			}
			return;
		}
		if (f.total > m->len || f.total == 0 || !f.head_done)
			abort();
		m->continued = 0;
		record(m, &h, f.total);
		memmove(m->in, m->in + f.total, m->len - f.total);
		m->len -= f.total;
		if (!h.keep_alive)
			m->closed = 1; /* the rest is never read */
	}
}

/* Feed data in reads of `step` bytes (0: whole); the transcript goes to m->log. */
static void
run(struct conn_model *m, const uint8_t *data, size_t size, size_t step)
{
	size_t off = 0;
	m->len = 0;
	m->closed = 0;
	m->continued = 0;
	m->loglen = 0;
	while (off < size && !m->closed) {
		size_t want = step ? step : size;
		if (want > size - off)
			want = size - off;
		/* read_cb: at most the room left; reading stops while the buffer is full. */
		size_t room = BUF_CAP - m->len;
		size_t n = want < room ? want : room;
		if (n == 0)
			abort(); /* stalled: process() should have freed room or closed */
		memcpy(m->in + m->len, data + off, n);
		m->len += n;
		off += n;
		process(m);
	}
	logf_(m, "\nleft %zu", NULL, m->closed ? 0 : m->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conn_model m;
	static char *whole;
	if (size > 2 * BUF_CAP)
		return 0;
	if (!m.log && !(m.log = malloc(LOG_CAP)))
		return 0;
	if (!whole && !(whole = malloc(LOG_CAP)))
		return 0;
	run(&m, data, size, 0);
	size_t wlen = m.loglen;
	memcpy(whole, m.log, wlen);
	/* A read length from the input itself, so the fuzzer explores splits. */
	uint32_t hsh = 2166136261u;
	for (size_t i = 0; i < size; i++)
		hsh = (hsh ^ data[i]) * 16777619u;
	size_t steps[] = {1, 2 + hsh % 61, 1 + hsh % 1499};
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		run(&m, data, size, steps[k]);
		if (m.loglen != wlen || memcmp(m.log, whole, wlen) != 0)
			abort();
	}
	return 0;
}
