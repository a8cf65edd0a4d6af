/*
 * test_ctl_evcorr.c - the Event correlator's decisions (controller/kube/evcorr.c)
 * as client-go's EventCorrelator makes them: series counting of identical
 * occurrences, aggregation of similar ones after 10 distinct notes in 10
 * minutes, the per-object-and-type token bucket, and bounded tables.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "evcorr.h"
#include "rwtest.h"

/* One occurrence and what must be decided. */
struct step {
	uint64_t t_ms;
	const char *obj, *type, *reason, *note;
	/* expected */
	char out;	   /* 'C' new Event, 'P' counted on an existing one, 'D' dropped */
	int count;	   /* the Event's count after it (C/P) */
	const char *wnote; /* the note of a new Event (NULL: = note) */
};

static int freed;

static void
free_ud(void *ud)
{
	(void)ud;
	freed++;
}

static void
run(const char *name, const struct rw_evc_opts *o, const struct step *s, size_t n)
{
	struct rw_evc *c;
	CHECK_EQ_INT(rw_evc_new(o, free_ud, &c), 0);
	for (size_t i = 0; i < n; i++) {
		struct rw_evc_res r;
		CHECK_EQ_INT(rw_evc_correlate(c, s[i].obj, s[i].type, s[i].reason, "Reconcile",
					      s[i].note, s[i].t_ms, &r),
			     0);
		char got = r.drop ? 'D' : r.fresh ? 'C' : 'P';
		if (got != s[i].out || (!r.drop && r.obs->count != s[i].count))
			fprintf(stderr, "  %s step %zu: got %c count %d, want %c %d\n", name, i,
				got, r.drop ? 0 : r.obs->count, s[i].out, s[i].count);
		CHECK(got == s[i].out);
		if (r.drop)
			continue;
		CHECK_EQ_INT(r.obs->count, s[i].count);
		if (r.fresh)
			CHECK_EQ_STR(r.note, s[i].wnote ? s[i].wnote : s[i].note);
		r.obs->ud = (void *)1; /* the recorder's state: released with the record */
	}
	rw_evc_free(c);
}

#define O "ray.io/v1/RayCluster/ns/rc"
#define W "Warning"
#define N "Normal"
#define R "FailedToCreateHeadPod"
#define CMB RW_EVC_COMBINED

static void
t_series(void)
{
	static const struct step s[] = {
	    {0, O, W, R, "m", 'C', 1, NULL},
	    {1000, O, W, R, "m", 'P', 2, NULL},
	    {2000, O, W, R, "m", 'P', 3, NULL},
	    /* another reason, type or object is another Event */
	    {2000, O, W, "Other", "m", 'C', 1, NULL},
	    {2000, O, N, R, "m", 'C', 1, NULL},
	    {2000, O "2", W, R, "m", 'C', 1, NULL},
	    /* past the series window (6 min from its start) a new Event begins */
	    {360001, O, W, R, "m", 'C', 1, NULL},
	    {360002, O, W, R, "m", 'P', 2, NULL},
	};
	run("series", NULL, s, sizeof(s) / sizeof(s[0]));
}

static void
t_aggregate(void)
{
	static const struct step s[] = {
	    /* 9 distinct notes: 9 Events */
	    {0, O, W, R, "n1", 'C', 1, NULL},
	    {1, O, W, R, "n2", 'C', 1, NULL},
	    {2, O, W, R, "n3", 'C', 1, NULL},
	    {3, O, W, R, "n4", 'C', 1, NULL},
	    {4, O, W, R, "n5", 'C', 1, NULL},
	    {5, O, W, R, "n6", 'C', 1, NULL},
	    {6, O, W, R, "n7", 'C', 1, NULL},
	    {7, O, W, R, "n8", 'C', 1, NULL},
	    {8, O, W, R, "n9", 'C', 1, NULL},
	    /* the 10th distinct note: one aggregate Event */
	    {9, O, W, R, "n10", 'C', 1, CMB "n10"},
	    /* further distinct notes count on it */
	    {10, O, W, R, "n11", 'P', 2, NULL},
	    {11, O, W, R, "n12", 'P', 3, NULL},
	    /* client-go's quirk: a note still in the set (n9) is below the threshold again */
	    {12, O, W, R, "n9", 'P', 2, NULL},
	    /* a similar note on another object is not aggregated */
	    {13, O "2", W, R, "n13", 'C', 1, NULL},
	    /* 10 minutes after the last similar one the set starts over */
	    {600013, O, W, R, "z1", 'C', 1, NULL},
	    {600014, O, W, R, "z2", 'C', 1, NULL},
	};
	struct rw_evc_opts o = {.burst = 100, .series_window_ms = 10000000};
	run("aggregate", &o, s, sizeof(s) / sizeof(s[0]));
}

static void
t_spam(void)
{
	static const struct step s[] = {
	    {0, O, W, R, "a", 'C', 1, NULL},
	    {0, O, W, R, "a", 'P', 2, NULL},
	    {0, O, W, R, "b", 'C', 1, NULL},
	    /* burst 3 used up for (object, Warning): dropped, not counted */
	    {0, O, W, R, "a", 'D', 0, NULL},
	    {0, O, W, "X", "c", 'D', 0, NULL},
	    /* Normal events of the object have their own bucket; other objects too */
	    {0, O, N, R, "a", 'C', 1, NULL},
	    {0, O "2", W, R, "a", 'C', 1, NULL},
	    /* one token per second here: after 1 s one more passes */
	    {1000, O, W, R, "a", 'P', 3, NULL},
	    {1000, O, W, R, "a", 'D', 0, NULL},
	};
	struct rw_evc_opts o = {.burst = 3, .refill_per_s = 1.0};
	run("spam", &o, s, sizeof(s) / sizeof(s[0]));
}

/* Every table stays within max_entries however many objects and notes arrive. */
static void
t_bounded(void)
{
	struct rw_evc *c;
	struct rw_evc_opts o = {.max_entries = 64};
	size_t a, sp, l;
	char obj[64], note[64];
	freed = 0;
	CHECK_EQ_INT(rw_evc_new(&o, free_ud, &c), 0);
	for (int i = 0; i < 5000; i++) {
		struct rw_evc_res r;
		snprintf(obj, sizeof(obj), "obj-%d", i % 700);
		snprintf(note, sizeof(note), "note %d", i);
		CHECK_EQ_INT(rw_evc_correlate(c, obj, W, R, "Reconcile", note, (uint64_t)i, &r), 0);
		if (!r.drop)
			r.obs->ud = &freed;
	}
	rw_evc_sizes(c, &a, &sp, &l);
	CHECK(a <= 64 && sp <= 64 && l <= 64);
	CHECK(l == 64);
	CHECK(freed > 0); /* evicted records released their state */
	rw_evc_free(c);
}

/* A note longer than the limit: the combined note is cut to the limit. */
static void
t_long_note(void)
{
	struct rw_evc *c;
	static char note[3000];
	struct rw_evc_res r;
	memset(note, 'x', sizeof(note) - 1);
	CHECK_EQ_INT(rw_evc_new(NULL, NULL, &c), 0);
	for (int i = 0; i < 10; i++) {
		note[0] = (char)('a' + i);
		CHECK_EQ_INT(rw_evc_correlate(c, O, W, R, "Reconcile", note, 0, &r), 0);
	}
	CHECK(r.combined && r.fresh);
	CHECK_EQ_INT(strlen(r.note), RW_EVC_NOTE_MAX - 1);
	CHECK(strncmp(r.note, CMB "j", strlen(CMB) + 1) == 0);
	/* uncount of a fresh record forgets it: the next one is fresh again */
	rw_evc_uncount(c, &r);
	CHECK_EQ_INT(rw_evc_correlate(c, O, W, R, "Reconcile", note, 0, &r), 0);
	CHECK(r.fresh && r.obs->count == 1);
	rw_evc_free(c);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"series: identical occurrences count on one Event", t_series},
	    {"aggregation: 10 distinct notes in 10 minutes", t_aggregate},
	    {"spam filter: token bucket per object and type", t_spam},
	    {"bounded tables (LRU)", t_bounded},
	    {"long notes", t_long_note},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}
