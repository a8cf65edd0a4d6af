/*
 * metrics.c - Prometheus text registry (see metrics.h).
 *
 * A series is found by the label values joined with a 0x1f separator in a
 * per-family hash map; families and series also sit in insertion-ordered
 * lists so the rendered text is stable.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmap.h"
#include "rw/list.h"
#include "metrics.h"

enum mtype { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct series {
	struct rw_list link; /* in the family's series, oldest first */
	char **values;
	double v;		/* counter/gauge value; histogram sum */
	unsigned long long cnt; /* histogram count */
	unsigned long long *buckets;
};

struct rw_met_family {
	struct rw_met *m;
	struct rw_list link; /* in the registry's families, in creation order */
	enum mtype type;
	char *name, *help;
	char *labels[RW_MET_MAX_LABELS];
	int nlabels;
	double bounds[RW_MET_MAX_BUCKETS];
	int nbounds;
	struct rw_kmap map;
	struct rw_list series;
};

struct rw_met {
	struct rw_list fams;
	size_t nseries, max_series;
	unsigned long dropped;
	struct rw_met_family *dropped_fam;
	struct {
		rw_met_collect_fn fn;
		void *ud;
	} collectors[RW_MET_MAX_COLLECTORS];
	int ncollectors;
};

const double rw_met_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					 0.5,	1,	2.5,   5,    10,    30,	  60};
const int rw_met_latency_nbuckets = sizeof(rw_met_latency_buckets) / sizeof(double);

static bool
valid_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == ':'))
			return false;
	}
	return true;
}

static void
series_free(struct series *s, int nlabels)
{
	if (!s)
		return;
	for (int i = 0; s->values && i < nlabels; i++)
		free(s->values[i]);
	free(s->values);
	free(s->buckets);
	free(s);
}

static void
family_free(struct rw_met_family *f)
{
	struct rw_list *n, *tmp;
	RW_LIST_FOREACH_SAFE (n, tmp, &f->series)
		series_free(rw_list_entry(n, struct series, link), f->nlabels);
	rw_kmap_fini(&f->map, NULL);
	for (int i = 0; i < f->nlabels; i++)
		free(f->labels[i]);
	free(f->name);
	free(f->help);
	free(f);
}

int
rw_met_new(size_t max_series, struct rw_met **out)
{
	struct rw_met *m = calloc(1, sizeof(*m));
	*out = NULL;
	if (!m)
		return -ENOMEM;
	rw_list_init(&m->fams);
	m->max_series = max_series ? max_series : 10000;
	*out = m;
	m->dropped_fam =
	    rw_met_counter(m, "raywarden_metrics_series_dropped_total",
			   "Metric series refused because the registry was full.", NULL);
	rw_met_add(m->dropped_fam, NULL, 0); /* create its one series up front */
	return 0;
}

void
rw_met_free(struct rw_met *m)
{
	if (!m)
		return;
	struct rw_list *n, *tmp;
	RW_LIST_FOREACH_SAFE (n, tmp, &m->fams)
		family_free(rw_list_entry(n, struct rw_met_family, link));
	free(m);
}

static struct rw_met_family *
reg(struct rw_met *m, enum mtype type, const char *name, const char *help,
    const char *const *labels, const double *bounds, int nbounds)
{
	int nl = 0;
	if (!m || !valid_name(name) || nbounds < 0 || nbounds > RW_MET_MAX_BUCKETS)
		return NULL;
	while (labels && labels[nl])
		if (!valid_name(labels[nl++]) || nl > RW_MET_MAX_LABELS)
			return NULL;
	for (int i = 1; i < nbounds; i++)
		if (!(bounds[i] > bounds[i - 1]))
			return NULL;
	struct rw_list *n;
	RW_LIST_FOREACH (n, &m->fams) {
		struct rw_met_family *f = rw_list_entry(n, struct rw_met_family, link);
		if (strcmp(f->name, name) != 0)
			continue;
		if (f->type != type || f->nlabels != nl)
			return NULL;
		for (int i = 0; i < nl; i++)
			if (strcmp(f->labels[i], labels[i]) != 0)
				return NULL;
		return f;
	}
	struct rw_met_family *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->m = m;
	rw_list_init(&f->series);
	f->type = type;
	f->name = strdup(name);
	f->help = strdup(help ? help : "");
	rw_kmap_init(&f->map);
	bool ok = f->name && f->help;
	for (int i = 0; i < nl; i++) {
		f->labels[i] = strdup(labels[i]);
		f->nlabels = i + 1;
		ok = ok && f->labels[i];
	}
	for (int i = 0; i < nbounds; i++)
		f->bounds[i] = bounds[i];
	f->nbounds = nbounds;
	if (!ok) {
		family_free(f);
		return NULL;
	}
	rw_list_insert_tail(&m->fams, &f->link);
	return f;
}

struct rw_met_family *
rw_met_counter(struct rw_met *m, const char *name, const char *help, const char *const *labels)
{
	return reg(m, M_COUNTER, name, help, labels, NULL, 0);
}

struct rw_met_family *
rw_met_gauge(struct rw_met *m, const char *name, const char *help, const char *const *labels)
{
	return reg(m, M_GAUGE, name, help, labels, NULL, 0);
}

struct rw_met_family *
rw_met_histogram(struct rw_met *m, const char *name, const char *help, const char *const *labels,
		 const double *bounds, int nbounds)
{
	return reg(m, M_HISTOGRAM, name, help, labels, bounds, nbounds);
}

/* Join the label values into a map key; returns 0 or -ENOMEM/-EMSGSIZE. */
static int
series_key(const struct rw_met_family *f, const char *const *values, struct rw_buf *b)
{
	int rv = 0;
	for (int i = 0; i < f->nlabels && rv == 0; i++) {
		const char *v = values && values[i] ? values[i] : "";
		if (i)
			rv = rw_buf_putc(b, '\x1f');
		if (rv == 0)
			rv = rw_buf_puts(b, v);
	}
	if (rv == 0 && b->len == 0)
		rv = rw_buf_puts(b, ""); /* ensure data is allocated ("" key) */
	return rv;
}

static struct series *
lookup(struct rw_met_family *f, const char *const *values, bool create)
{
	struct rw_buf key;
	struct series *s = NULL;
	rw_buf_init(&key, 64 * 1024);
	if (series_key(f, values, &key) != 0)
		goto out;
	s = rw_kmap_get(&f->map, rw_buf_cstr(&key));
	if (s || !create)
		goto out;
	if (f->m->nseries >= f->m->max_series) {
		f->m->dropped++;
		if (f->m->dropped_fam) {
			struct series *d = lookup(f->m->dropped_fam, NULL, false);
			if (d)
				d->v += 1;
		}
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out;
	s->values = calloc((size_t)f->nlabels + 1, sizeof(char *));
	if (f->type == M_HISTOGRAM)
		s->buckets = calloc((size_t)f->nbounds + 1, sizeof(*s->buckets));
	bool ok = s->values && (f->type != M_HISTOGRAM || s->buckets);
	for (int i = 0; ok && i < f->nlabels; i++) {
		s->values[i] = strdup(values && values[i] ? values[i] : "");
		ok = s->values[i] != NULL;
	}
	if (!ok || rw_kmap_put(&f->map, rw_buf_cstr(&key), s, NULL) != 0) {
		series_free(s, f->nlabels);
		s = NULL;
		goto out;
	}
	rw_list_insert_tail(&f->series, &s->link);
	f->m->nseries++;
out:
	rw_buf_fini(&key);
	return s;
}

void
rw_met_add(struct rw_met_family *f, const char *const *values, double v)
{
	if (!f || f->type == M_HISTOGRAM || (f->type == M_COUNTER && !(v >= 0)))
		return;
	struct series *s = lookup(f, values, true);
	if (s)
		s->v += v;
}

void
rw_met_set(struct rw_met_family *f, const char *const *values, double v)
{
	if (!f || f->type == M_HISTOGRAM)
		return;
	struct series *s = lookup(f, values, true);
	if (s)
		s->v = v;
}

void
rw_met_observe(struct rw_met_family *f, const char *const *values, double v)
{
	if (!f || f->type != M_HISTOGRAM || isnan(v))
		return;
	struct series *s = lookup(f, values, true);
	if (!s)
		return;
	for (int i = 0; i < f->nbounds; i++)
		if (v <= f->bounds[i])
			s->buckets[i]++;
	s->buckets[f->nbounds]++;
	s->cnt++;
	s->v += v;
}

double
rw_met_value(struct rw_met_family *f, const char *const *values)
{
	struct series *s = f ? lookup(f, values, false) : NULL;
	if (!s)
		return -1;
	return f->type == M_HISTOGRAM ? (double)s->cnt : s->v;
}

int
rw_met_remove(struct rw_met_family *f, const char *const *values)
{
	struct rw_buf key;
	int rv = -ENOENT;
	if (!f)
		return -ENOENT;
	rw_buf_init(&key, 64 * 1024);
	if (series_key(f, values, &key) == 0) {
		struct series *s = rw_kmap_del(&f->map, rw_buf_cstr(&key));
		if (s) {
			rw_list_remove(&s->link);
			series_free(s, f->nlabels);
			f->m->nseries--;
			rv = 0;
		}
	}
	rw_buf_fini(&key);
	return rv;
}

static bool
series_matches(const struct rw_met_family *f, const struct series *s, const char *const *names,
	       const char *const *values)
{
	for (int k = 0; names && names[k]; k++) {
		int i = 0;
		while (i < f->nlabels && strcmp(f->labels[i], names[k]) != 0)
			i++;
		if (i == f->nlabels || strcmp(s->values[i], values[k] ? values[k] : "") != 0)
			return false;
	}
	return true;
}

static void
series_drop(struct rw_met_family *f, struct series *s)
{
	struct rw_buf key;
	rw_buf_init(&key, 64 * 1024);
	if (series_key(f, (const char *const *)s->values, &key) == 0)
		rw_kmap_del(&f->map, rw_buf_cstr(&key));
	rw_buf_fini(&key);
	rw_list_remove(&s->link);
	series_free(s, f->nlabels);
	f->m->nseries--;
}

int
rw_met_remove_matching(struct rw_met_family *f, const char *const *names, const char *const *values)
{
	struct rw_list *n, *tmp;
	int removed = 0;
	if (!f)
		return 0;
	RW_LIST_FOREACH_SAFE (n, tmp, &f->series) {
		struct series *s = rw_list_entry(n, struct series, link);
		if (series_matches(f, s, names, values)) {
			series_drop(f, s);
			removed++;
		}
	}
	return removed;
}

void
rw_met_clear(struct rw_met_family *f)
{
	rw_met_remove_matching(f, NULL, NULL);
}

int
rw_met_add_collector(struct rw_met *m, rw_met_collect_fn fn, void *ud)
{
	if (!m || !fn)
		return -EINVAL;
	if (m->ncollectors >= RW_MET_MAX_COLLECTORS)
		return -ENOSPC;
	m->collectors[m->ncollectors].fn = fn;
	m->collectors[m->ncollectors].ud = ud;
	m->ncollectors++;
	return 0;
}

void
rw_met_remove_collector(struct rw_met *m, rw_met_collect_fn fn, void *ud)
{
	for (int i = 0; m && i < m->ncollectors; i++)
		if (m->collectors[i].fn == fn && m->collectors[i].ud == ud) {
			memmove(&m->collectors[i], &m->collectors[i + 1],
				(size_t)(m->ncollectors - i - 1) * sizeof(m->collectors[0]));
			m->ncollectors--;
			return;
		}
}

void
rw_met_collect(struct rw_met *m)
{
	for (int i = 0; m && i < m->ncollectors; i++)
		m->collectors[i].fn(m->collectors[i].ud);
}

unsigned long
rw_met_dropped(const struct rw_met *m)
{
	return m ? m->dropped : 0;
}

static int
put_num(struct rw_buf *b, double v)
{
	if (isinf(v))
		return rw_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
	if (isnan(v))
		return rw_buf_puts(b, "NaN");
	if (v == floor(v) && fabs(v) < 1e15)
		return rw_buf_printf(b, "%.0f", v);
	char tmp[40];
	snprintf(tmp, sizeof(tmp), "%.15g", v); /* shortest text that reads back exactly */
	if (strtod(tmp, NULL) != v)
		snprintf(tmp, sizeof(tmp), "%.17g", v);
	return rw_buf_puts(b, tmp);
}

static int
put_escaped(struct rw_buf *b, const char *s, bool help)
{
	int rv = 0;
	for (; *s && rv == 0; s++) {
		if (*s == '\\')
			rv = rw_buf_puts(b, "\\\\");
		else if (*s == '\n')
			rv = rw_buf_puts(b, "\\n");
		else if (*s == '"' && !help)
			rv = rw_buf_puts(b, "\\\"");
		else
			rv = rw_buf_putc(b, *s);
	}
	return rv;
}

/* name{labels[,le="x"]} value\n */
static int
put_sample(struct rw_buf *b, const struct rw_met_family *f, const struct series *s,
	   const char *suffix, const double *le, double v)
{
	int rv = rw_buf_printf(b, "%s%s", f->name, suffix);
	if (rv == 0 && (f->nlabels || le)) {
		rv = rw_buf_putc(b, '{');
		for (int i = 0; rv == 0 && i < f->nlabels; i++) {
			rv = rw_buf_printf(b, "%s%s=\"", i ? "," : "", f->labels[i]);
			if (rv == 0)
				rv = put_escaped(b, s->values[i], false);
			if (rv == 0)
				rv = rw_buf_putc(b, '"');
		}
		if (rv == 0 && le) {
			rv = rw_buf_printf(b, "%sle=\"", f->nlabels ? "," : "");
			if (rv == 0)
				rv = put_num(b, *le);
			if (rv == 0)
				rv = rw_buf_putc(b, '"');
		}
		if (rv == 0)
			rv = rw_buf_putc(b, '}');
	}
	if (rv == 0)
		rv = rw_buf_putc(b, ' ');
	if (rv == 0)
		rv = put_num(b, v);
	if (rv == 0)
		rv = rw_buf_putc(b, '\n');
	return rv;
}

int
rw_met_render(const struct rw_met *m, struct rw_buf *out)
{
	static const char *const tname[] = {"counter", "gauge", "histogram"};
	int rv = 0;
	if (!m)
		return 0;
	const struct rw_list *fn, *sn;
	RW_LIST_FOREACH (fn, &m->fams) {
		if (rv != 0)
			break;
		const struct rw_met_family *f = rw_list_entry(fn, const struct rw_met_family, link);
		rv = rw_buf_printf(out, "# HELP %s ", f->name);
		if (rv == 0)
			rv = put_escaped(out, f->help, true);
		if (rv == 0)
			rv = rw_buf_printf(out, "\n# TYPE %s %s\n", f->name, tname[f->type]);
		if (rv == 0 && rw_list_empty(&f->series) && !f->nlabels) {
			/* A label-less family always shows one sample. */
			struct series zero = {0};
			unsigned long long zb[RW_MET_MAX_BUCKETS + 1] = {0};
			zero.buckets = zb;
			if (f->type != M_HISTOGRAM) {
				rv = put_sample(out, f, &zero, "", NULL, 0);
			} else {
				double inf = INFINITY;
				for (int i = 0; rv == 0 && i < f->nbounds; i++)
					rv = put_sample(out, f, &zero, "_bucket", &f->bounds[i], 0);
				if (rv == 0)
					rv = put_sample(out, f, &zero, "_bucket", &inf, 0);
				if (rv == 0)
					rv = put_sample(out, f, &zero, "_sum", NULL, 0);
				if (rv == 0)
					rv = put_sample(out, f, &zero, "_count", NULL, 0);
			}
		}
		RW_LIST_FOREACH (sn, &f->series) {
			if (rv != 0)
				break;
			const struct series *s = rw_list_entry(sn, const struct series, link);
			if (f->type != M_HISTOGRAM) {
				rv = put_sample(out, f, s, "", NULL, s->v);
				continue;
			}
			double inf = INFINITY;
			for (int i = 0; rv == 0 && i < f->nbounds; i++)
				rv = put_sample(out, f, s, "_bucket", &f->bounds[i],
						(double)s->buckets[i]);
			if (rv == 0)
				rv = put_sample(out, f, s, "_bucket", &inf, (double)s->cnt);
			if (rv == 0)
				rv = put_sample(out, f, s, "_sum", NULL, s->v);
			if (rv == 0)
				rv = put_sample(out, f, s, "_count", NULL, (double)s->cnt);
		}
	}
	return rv;
}
