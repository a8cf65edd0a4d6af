/*
 * golden.h - golden files for the unit tests: read a file whole, and compare
 * a built document with tests/unit/golden/<file> (semantically, as parsed
 * JSON). RW_GOLDEN_UPDATE=1 rewrites the file from what was built; a
 * mismatch leaves the built one beside it as <file>.actual.
 */
#ifndef GOLDEN_H
#define GOLDEN_H

#include <stdio.h>
#include <stdlib.h>

#include "doc.h"
#include "rw/buf.h"
#include "rwtest.h"

/* The whole file, NUL-terminated (its length in *len), or NULL. */
static inline char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
			*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static inline void
golden_write(const char *path, const struct rw_buf *out)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f) {
		fwrite(out->data, 1, out->len, f);
		fclose(f);
	}
}

/* Compare got with tests/unit/golden/<file> (RW_SOURCE_DIR is the source tree). */
static inline void
golden_check(const char *file, const struct rw_doc_node *got)
{
	char path[1024], apath[1100];
	const char *src = getenv("RW_SOURCE_DIR");
	struct rw_buf out;
	size_t len = 0;
	char *want_text;
	struct rw_doc_node *want = NULL;

	snprintf(path, sizeof(path), "%s/tests/unit/golden/%s", src ? src : ".", file);
	rw_buf_init(&out, 1 << 24);
	CHECK_EQ_INT(rw_doc_dump_pretty(got, &out), 0);
	rw_buf_putc(&out, '\n');
	if (getenv("RW_GOLDEN_UPDATE")) {
		golden_write(path, &out);
		printf("  wrote %s\n", path);
	}
	want_text = slurp(path, &len);
	CHECK(want_text != NULL);
	if (want_text) {
		CHECK_EQ_INT(rw_doc_parse(want_text, len, &want, NULL, 0), 0);
		if (!rw_doc_equal(want, got)) {
			snprintf(apath, sizeof(apath), "%s.actual", path);
			golden_write(apath, &out);
			fprintf(stderr, "  %s differs from the golden file; output in %s\n", file,
				apath);
			CHECK(0);
		}
	}
	rw_doc_free(want);
	free(want_text);
	rw_buf_fini(&out);
}

#endif
