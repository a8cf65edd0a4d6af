/*
 * fuzz_httpd.c - the HTTP request-head parser on arbitrary bytes. Besides
 * memory safety it checks the parser's promises: every reported span lies
 * inside the head, the head length never exceeds the cap or the input, and
 * a complete head ends with a line feed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../proto/src/httpd_parse.h"

static void
check_span(struct rw_httpd_span s, size_t head_len)
{
	if (s.off > head_len || s.len > head_len - s.off)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rw_httpd_head h;
	/* A private copy, so reads past the input are caught by ASan. */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	int rv = rw_httpd_parse_head(buf, size, &h);
	if (rv > 0) {
		size_t hl = (size_t)rv;
		if (hl > size || hl > RW_HTTPD_MAX_HEAD || hl != h.head_len || buf[hl - 1] != '\n')
			abort();
		check_span(h.method, hl);
		check_span(h.target, hl);
		check_span(h.path, hl);
		check_span(h.query, hl);
		if (h.method.len == 0 || h.target.len == 0 || h.nfields < 0 ||
		    h.nfields > RW_HTTPD_MAX_HEADERS || h.content_length < -1)
			abort();
		for (int i = 0; i < h.nfields; i++) {
			check_span(h.fields[i].name, hl);
			check_span(h.fields[i].value, hl);
			if (h.fields[i].name.len == 0)
				abort();
		}
		/* Parsing a prefix never claims a complete head. */
		if (rw_httpd_parse_head(buf, hl - 1, &h) > 0)
			abort();
	} else if (rv == 0 && size >= RW_HTTPD_MAX_HEAD) {
		abort();
	}
	free(buf);
	return 0;
}
