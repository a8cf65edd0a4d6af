/*
 * krmetrics.h - what KubeRay's operator metrics say about one RayCluster,
 * RayJob or RayService object, read from its JSON (pure, table-tested).
 *
 * KubeRay v1.5.0 (controllers/ray/metrics/ray_*_metrics.go) computes kuberay_*_info and
 * the condition gauges at scrape time from every object in its cache; the
 * reconcilers' collectors do the same with these facts, so a deleted object's
 * series go with it.
 */
#ifndef RW_KRMETRICS_H
#define RW_KRMETRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmap.h"

struct rw_krm_obj {
	char name[254], ns[64], uid[64];
	/* label ray.io/originated-from-crd, "None" when absent (kuberay_cluster_info's owner_kind)
	 */
	char owner_kind[64];
	bool provisioned;	    /* condition RayClusterProvisioned is True */
	bool ready;		    /* condition Ready is True (RayService) */
	bool upgrading;		    /* condition UpgradeInProgress is True (RayService) */
	char deployment_status[32]; /* status.jobDeploymentStatus, "" when unset (RayJob) */
	int64_t serve_endpoints;    /* status.numServeEndpoints, 0 when unset (RayService) */
};

/* Fill o from an object's JSON. 0, or -EINVAL for unparsable JSON or a missing or
 * over-long name, namespace or uid. */
int rw_krm_parse(const char *json, size_t len, struct rw_krm_obj *o);

/*
 * Facts of the objects of one informer, kept between scrapes: an object is
 * parsed again only when its resourceVersion changed (a scrape would otherwise
 * parse every cached object). Entries of objects no longer seen go at the end
 * of the sweep that missed them.
 */
struct rw_krm_cache {
	struct rw_kmap map; /* "ns/name" -> struct rw_krm_entry */
	unsigned sweep;
};

void rw_krm_cache_init(struct rw_krm_cache *c);
void rw_krm_cache_fini(struct rw_krm_cache *c);

/* Start a sweep (before visiting the informer's objects). */
void rw_krm_cache_begin(struct rw_krm_cache *c);

/* The facts of one object (parsed only when its resourceVersion changed), or NULL
 * when it cannot be parsed or memory ran out. */
const struct rw_krm_obj *rw_krm_cache_get(struct rw_krm_cache *c, const char *ns, const char *name,
					  const char *rv, const char *json, size_t len);

/* Drop the entries not visited since rw_krm_cache_begin. */
void rw_krm_cache_end(struct rw_krm_cache *c);

/* KubeRay's condition label value (strconv.FormatBool). */
static inline const char *
rw_krm_bool(bool v)
{
	return v ? "true" : "false";
}

/*
 * /proc/self/stat of a Linux process, the fields the process_* metrics use
 * (proc(5)): utime and stime (clock ticks), starttime (ticks after boot),
 * vsize (bytes) and rss (pages).
 */
struct rw_proc_stat {
	unsigned long long utime, stime, starttime, vsize;
	long long rss;
};

/* Parse the text of /proc/<pid>/stat. 0 or -EINVAL. */
int rw_proc_stat_parse(const char *text, size_t len, struct rw_proc_stat *out);

/* The "btime" line of /proc/stat (boot time, Unix seconds). 0 or -EINVAL. */
int rw_proc_btime_parse(const char *text, size_t len, long long *out);

#endif
