/*
 * rwtest.h - the unit tests' tiny harness: table-driven cases, each a
 * function, run in order; a failed check prints file:line and the
 * expression and marks the case failed. rwt_corpus finds the shared corpus.
 */
#ifndef RWTEST_H
#define RWTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int rwt_failed;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			rwt_failed = 1;                                                            \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		long long va_ = (long long)(a), vb_ = (long long)(b);                              \
		if (va_ != vb_) {                                                                  \
			fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__,      \
				__LINE__, #a, #b, va_, vb_);                                       \
			rwt_failed = 1;                                                            \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
	do {                                                                                       \
		const char *sa_ = (a), *sb_ = (b);                                                 \
		if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                       \
			fprintf(stderr, "  %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,  \
				__LINE__, #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");     \
			rwt_failed = 1;                                                            \
		}                                                                                  \
	} while (0)

/*
 * The shared corpus folder sub ("kuberay-samples", "ray-api") in out:
 * $RW_SHARED_DIR/corpus/sub, else <source tree>/../shared/corpus/sub, else
 * /work/shared/corpus/sub. Returns 0, or -1 after printing why the caller's
 * cases are skipped (the project builds and passes without the corpus).
 */
static inline int
rwt_corpus(const char *sub, char *out, size_t n)
{
	const char *shared = getenv("RW_SHARED_DIR");
	const char *src = getenv("RW_SOURCE_DIR");
	struct stat st;
	if (shared) {
		snprintf(out, n, "%s/corpus/%s", shared, sub);
	} else {
		if (src)
			snprintf(out, n, "%s/../shared/corpus/%s", src, sub);
		if (!src || stat(out, &st) != 0)
			snprintf(out, n, "/work/shared/corpus/%s", sub);
	}
	if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode)) {
		printf("  skipped: the shared corpus (%s) is absent\n", out);
		return -1;
	}
	return 0;
}

struct rwt_case {
	const char *name;
	void (*fn)(void);
};

static int
rwt_run(const struct rwt_case *cases)
{
	int bad = 0, n = 0;
	for (const struct rwt_case *c = cases; c->name; c++, n++) {
		rwt_failed = 0;
		c->fn();
		printf("%s %s\n", rwt_failed ? "FAIL" : "ok  ", c->name);
		bad += rwt_failed;
	}
	printf("%d/%d passed\n", n - bad, n);
	return bad ? 1 : 0;
}

#endif
