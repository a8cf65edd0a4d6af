/*
 * fuzz_watchline.c - feed arbitrary bytes as a watch stream, split at
 * positions taken from the input, through the line splitter (small bound)
 * into the event parser and the pod and JSON decoders, and each line as the
 * Status body of an error answer (a watch's ERROR event carries one).
 * Invariants: lines never exceed the bound nor contain a newline; the same
 * bytes fed whole give the same lines; decoded objects have non-NULL strings;
 * a Status's strings fit their fields.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "informer.h"
#include "kube.h"

#define MAX_LINE 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct acc {
	uint32_t hash;
	int n;
};

static int
on_line(const char *line, size_t len, void *ud)
{
	struct acc *a = ud;
	struct rw_json j;
	struct rw_inf_event ev;
	struct rw_kube_status st;
	if (len == 0 || len > MAX_LINE || memchr(line, '\n', len))
		abort();
	for (size_t i = 0; i < len; i++)
		a->hash = (a->hash ^ (unsigned char)line[i]) * 16777619u;
	a->hash ^= 0x5a;
	a->n++;
	if (rw_kube_status_parse(line, len, &st) == 0 &&
	    (strnlen(st.reason, sizeof(st.reason)) == sizeof(st.reason) ||
	     strnlen(st.message, sizeof(st.message)) == sizeof(st.message)))
		abort();
	if (rw_inf_parse_event(line, len, &j, &ev) == 0) {
		if (ev.type < RW_INF_ADDED || ev.type > RW_INF_ERROR || ev.obj <= 0)
			abort();
		if (ev.type != RW_INF_ERROR && ev.type != RW_INF_BOOKMARK) {
			struct rw_inf_pod *p = rw_inf_pod_type.decode(&j, ev.obj);
			if (p) {
				if (!p->meta.ns || !p->meta.name[0] || !p->cluster || !p->phase ||
				    !p->owner_uid || p->ready > 2 || p->agent_ready > 2)
					abort();
				free(p);
			}
			struct rw_inf_json *o = rw_inf_json_decode(&j, ev.obj);
			if (o) {
				if (strlen(o->json) != o->len)
					abort();
				free(o);
			}
		}
	}
	rw_json_fini(&j);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rw_inf_lines l;
	struct acc whole = {2166136261u, 0}, split = {2166136261u, 0};
	int rw, rs = 0;
	size_t step = size ? (size_t)data[0] % 17 + 1 : 1;

	rw_inf_lines_init(&l, MAX_LINE);
	rw = rw_inf_lines_feed(&l, (const char *)data, size, on_line, &whole);
	rw_inf_lines_fini(&l);

	rw_inf_lines_init(&l, MAX_LINE);
	for (size_t off = 0; off < size && rs == 0; off += step) {
		size_t n = size - off < step ? size - off : step;
		rs = rw_inf_lines_feed(&l, (const char *)data + off, n, on_line, &split);
	}
	rw_inf_lines_fini(&l);
	if (rw != rs && !(rw == -EMSGSIZE || rs == -EMSGSIZE))
		abort();
	if (rw == 0 && rs == 0 && (whole.n != split.n || whole.hash != split.hash))
		abort();
	return 0;
}
