/* rs_build.c - RayService validation, serve config, RayCluster, hash, upgrade and services. */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "doc_builder.h"
#include "rc_validate.h"
#include "rs_build.h"
#include "rw/json.h"
#include "rw/wire.h"
#include "rw/yaml.h"

/* ---- parse and accessors ---- */

static_assert(offsetof(struct rw_rayservice, obj) == 0, "rw_doc_object_alloc's layout");

int
rw_rayservice_parse(const char *json, size_t len, struct rw_rayservice **out, char *err,
		    size_t errlen)
{
	struct rw_rayservice *rs;
	int rv =
	    rw_doc_object_alloc(json, len, "RayService", sizeof(*rs), (void **)out, err, errlen);
	if (rv)
		return rv;
	rs = *out;
	rs->cfg = rw_doc_get(rs->obj.spec, "rayClusterConfig");
	if (rs->cfg && rs->cfg->type != RW_DOC_OBJ)
		rs->cfg = NULL;
	return 0;
}

void
rw_rayservice_free(struct rw_rayservice *rs)
{
	if (!rs)
		return;
	rw_doc_free(rs->obj.root);
	free(rs);
}

static const char *
or_empty(const char *s)
{
	return s ? s : "";
}

const char *
rw_rayservice_active_name(const struct rw_rayservice *rs)
{
	return or_empty(
	    rw_doc_gets(rw_doc_get(rs->obj.status, "activeServiceStatus"), "rayClusterName"));
}

const char *
rw_rayservice_pending_name(const struct rw_rayservice *rs)
{
	return or_empty(
	    rw_doc_gets(rw_doc_get(rs->obj.status, "pendingServiceStatus"), "rayClusterName"));
}

bool
rw_rayservice_exclude_head(const struct rw_rayservice *rs)
{
	return rw_doc_true(rw_doc_get(rs->obj.spec, "excludeHeadPodFromServeSvc"));
}

bool
rw_rayservice_suspended(const struct rw_rayservice *rs)
{
	return rw_doc_true(rw_doc_get(rs->obj.spec, "suspend"));
}

int64_t
rw_rayservice_deletion_delay_s(const struct rw_rayservice *rs)
{
	int64_t v;
	if (rw_doc_int(rw_doc_get(rs->obj.spec, "rayClusterDeletionDelaySeconds"), &v) == 0 &&
	    v >= 0)
		return v;
	return RW_RAYSERVICE_DEFAULT_DELETION_DELAY_S;
}

bool
rw_rayservice_cond_true(const struct rw_rayservice *rs, const char *type)
{
	return rw_doc_cond_true(rw_doc_get(rs->obj.status, "conditions"), type);
}

void
rw_rayservice_opts_default(struct rw_rayservice_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->version = RW_RAYCLUSTER_DEFAULT_VERSION;
	o->zero_downtime = true;
}

void
rw_rayservice_opts_from_env(struct rw_rayservice_opts *o, char *(*getenv_fn)(const char *))
{
	const char *v = getenv_fn ? getenv_fn("ENABLE_ZERO_DOWNTIME") : NULL;
	if (v && strcasecmp(v, "false") == 0)
		o->zero_downtime = false;
}

/* ---- Go durations (time.ParseDuration) ---- */

static int
go_duration(const char *s, double *ns_out)
{
	static const struct {
		const char *u;
		double ns;
	} units[] = {{"ns", 1},	  {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
		     {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},	   {"h", 3600e9}};
	double total = 0;
	bool neg = false;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (strcmp(s, "0") == 0) {
		*ns_out = 0;
		return 0;
	}
	if (!*s)
		return -EINVAL;
	while (*s) {
		double v = 0, scale = 1;
		bool digits = false;
		size_t best = 0;
		double mult = 0;
		while (*s >= '0' && *s <= '9') {
			v = v * 10 + (*s++ - '0');
			digits = true;
		}
		if (*s == '.') {
			s++;
			while (*s >= '0' && *s <= '9') {
				scale /= 10;
				v += (*s++ - '0') * scale;
				digits = true;
			}
		}
		if (!digits)
			return -EINVAL;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].u);
			if (strncmp(s, units[i].u, n) == 0 && n > best) {
				best = n;
				mult = units[i].ns;
			}
		}
		if (!best)
			return -EINVAL; /* missing or unknown unit */
		s += best;
		total += v * mult;
		if (total > 9223372036854775807.0)
			return -EINVAL; /* overflows int64 nanoseconds */
	}
	*ns_out = neg ? -total : total;
	return 0;
}

/* strconv.Atoi: optional sign, decimal digits, fits in int64. */
static int
go_atoi(const char *s, int64_t *out)
{
	char *end;
	long long v;
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	if (!*p)
		return -EINVAL;
	for (const char *q = p; *q; q++)
		if (*q < '0' || *q > '9')
			return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int
rw_rayservice_parse_timeout(const char *s, int64_t *ms)
{
	double ns;
	int64_t secs;
	if (!s)
		return -EINVAL;
	if (go_duration(s, &ns) == 0) {
		*ms = (int64_t)(ns / 1e6);
		return 0;
	}
	if (go_atoi(s, &secs) == 0 && secs > -9000000000000000LL / 1000 &&
	    secs < 9000000000000000LL / 1000) {
		*ms = secs * 1000;
		return 0;
	}
	return -EINVAL;
}

/* validateInitializingTimeout: 0 or a message in msg. */
static int
check_init_timeout(const struct rw_rayservice *rs, char *msg, size_t mlen)
{
	const char *v = rw_doc_gets(rs->obj.annotations, RW_RAYSERVICE_INIT_TIMEOUT_ANNOTATION);
	double ns;
	int64_t secs;
	if (!v || !*v)
		return 0;
	if (go_duration(v, &ns) == 0) {
		if (ns <= 0) {
			snprintf(msg, mlen, "annotation %s must be a positive duration, got: %s",
				 RW_RAYSERVICE_INIT_TIMEOUT_ANNOTATION, v);
			return -1;
		}
		return 0;
	}
	if (go_atoi(v, &secs) == 0) {
		if (secs <= 0) {
			snprintf(msg, mlen,
				 "annotation %s must be a positive integer (seconds), got: %s",
				 RW_RAYSERVICE_INIT_TIMEOUT_ANNOTATION, v);
			return -1;
		}
		return 0;
	}
	snprintf(msg, mlen,
		 "annotation %s has invalid format: %s. Expected Go duration format (e.g., '5m', "
		 "'1h') or positive integer seconds",
		 RW_RAYSERVICE_INIT_TIMEOUT_ANNOTATION, v);
	return -1;
}

/* ---- serve ports ---- */

static bool
serve_port_name(const char *n)
{
	return n && (strcmp(n, "serve") == 0 || strncmp(n, "serve-", 6) == 0);
}

static node *
head_container(const node *cfg)
{
	node *cs = rw_doc_path(cfg, "headGroupSpec.template.spec.containers");
	return cs && cs->type == RW_DOC_ARR && cs->n > 0 ? cs->kids[0] : NULL;
}

/* Does the head container list ports, and does one of them count as a serve port? */
static bool
head_lists_ports(const node *cfg)
{
	node *ports = rw_doc_get(head_container(cfg), "ports");
	return ports && ports->type == RW_DOC_ARR && ports->n > 0;
}

static bool
head_has_serve_port(const node *cfg)
{
	node *ports = rw_doc_get(head_container(cfg), "ports");
	for (int i = 0; ports && ports->type == RW_DOC_ARR && i < ports->n; i++)
		if (serve_port_name(rw_doc_gets(ports->kids[i], "name")))
			return true;
	return false;
}

static bool
user_serve_port(const node *serve_svc)
{
	node *ports = rw_doc_path(serve_svc, "spec.ports");
	for (int i = 0; ports && ports->type == RW_DOC_ARR && i < ports->n; i++)
		if (serve_port_name(rw_doc_gets(ports->kids[i], "name")))
			return true;
	return false;
}

static const char no_serve_port_msg[] =
    "Please specify the port named 'serve' in the Ray head container; otherwise, the Kubernetes "
    "service for Ray Serve will not be created.";

/* ---- validation ---- */

static int
verr(struct rw_rayservice_verr *out, const char *reason, const char *fmt, const char *arg)
{
	out->reason = reason;
	snprintf(out->msg, sizeof(out->msg), fmt, arg);
	return 1;
}

/* Validate rayClusterConfig with rc_validate's spec rules (on the cluster we would create). */
static int
cluster_spec_error(const struct rw_rayservice *rs, char *msg, size_t mlen)
{
	struct rw_rayservice_opts o;
	struct rw_buf b;
	struct rw_raycluster *c = NULL;
	struct rw_raycluster_verrs v;
	char name[80];
	int rv = 0;

	rw_rayservice_opts_default(&o);
	rw_buf_init(&b, RW_DOC_MAX_OUT);
	snprintf(name, sizeof(name), "%.47s-bbbbb", rs->obj.name);
	if (rw_rayservice_build_cluster(rs, name, &o, &b) != 0 ||
	    rw_raycluster_parse(b.data, b.len, &c, NULL, 0) != 0)
		goto out;
	/* Upgrade strategies of RayClusters are checked on the RayCluster itself. */
	rw_doc_del(c->obj.spec, "upgradeStrategy");
	rw_raycluster_validate(c, &v);
	for (int i = 0; i < v.n; i++) {
		if (streq(v.e[i].reason, "InvalidRayClusterSpec")) {
			snprintf(msg, mlen, "%s", v.e[i].msg);
			rv = -1;
			break;
		}
	}
out:
	rw_raycluster_free(c);
	rw_buf_fini(&b);
	return rv;
}

static int
check_upgrade_options(const struct rw_rayservice *rs, char *msg, size_t mlen)
{
	node *us = rw_doc_get(rs->obj.spec, "upgradeStrategy");
	node *opts = rw_doc_get(us, "clusterUpgradeOptions");
	struct rw_raycluster tmp = {0};
	int64_t surge = 100, step, interval;
	const char *gw;

	tmp.obj.spec = rs->cfg;
	tmp.head = rw_doc_get(rs->cfg, "headGroupSpec");
	if (!rw_raycluster_autoscaling(&tmp)) {
		snprintf(msg, mlen,
			 "Ray Autoscaler is required for NewClusterWithIncrementalUpgrade");
		return -1;
	}
	if (!opts || opts->type != RW_DOC_OBJ) {
		snprintf(msg, mlen,
			 "ClusterUpgradeOptions are required for NewClusterWithIncrementalUpgrade");
		return -1;
	}
	rw_doc_int(rw_doc_get(opts, "maxSurgePercent"), &surge);
	if (surge < 0 || surge > 100) {
		snprintf(msg, mlen, "maxSurgePercent must be between 0 and 100");
		return -1;
	}
	if (rw_doc_int(rw_doc_get(opts, "stepSizePercent"), &step) != 0 || step < 0 || step > 100) {
		snprintf(msg, mlen, "stepSizePercent must be between 0 and 100");
		return -1;
	}
	if (step > surge) {
		snprintf(msg, mlen,
			 "stepSizePercent must be less than or equal to maxSurgePercent");
		return -1;
	}
	if (rw_doc_int(rw_doc_get(opts, "intervalSeconds"), &interval) != 0 || interval <= 0) {
		snprintf(msg, mlen, "intervalSeconds must be greater than 0");
		return -1;
	}
	gw = rw_doc_gets(opts, "gatewayClassName");
	if (!gw || !*gw) {
		snprintf(msg, mlen,
			 "gatewayClassName is required for NewClusterWithIncrementalUpgrade");
		return -1;
	}
	return 0;
}

int
rw_rayservice_validate(const struct rw_rayservice *rs, struct rw_rayservice_verr *out)
{
	static const char meta[] = "InvalidRayServiceMetadata", spec[] = "InvalidRayServiceSpec";
	char tmp[900];
	const char *ut;
	node *delay, *hs;
	int64_t d;

	memset(out, 0, sizeof(*out));
	if (strlen(rs->obj.name) > RW_RAYSERVICE_MAX_NAME) {
		out->reason = meta;
		snprintf(out->msg, sizeof(out->msg),
			 "The RayService metadata is invalid: RayService name should be no more "
			 "than %d characters",
			 RW_RAYSERVICE_MAX_NAME);
		return 1;
	}
	if (!rw_raycluster_dns1035(rs->obj.name, tmp, sizeof(tmp)))
		return verr(out, meta,
			    "The RayService metadata is invalid: RayService name should be a valid "
			    "DNS1035 label: %s",
			    tmp);
	if (check_init_timeout(rs, tmp, sizeof(tmp)))
		return verr(
		    out, meta,
		    "The RayService metadata is invalid: RayService annotations is invalid: "
		    "%s",
		    tmp);
	if (rw_doc_true(rw_doc_path(rs->cfg, "authOptions.enableK8sTokenAuth")))
		return verr(out, spec, "%s",
			    "The RayService spec is invalid: K8s token auth mode is currently not "
			    "supported for RayService");
	if (!rs->cfg)
		return verr(
		    out, spec, "%s",
		    "The RayService spec is invalid: headGroupSpec should have at least one "
		    "container");
	if (cluster_spec_error(rs, tmp, sizeof(tmp)))
		return verr(out, spec, "The RayService spec is invalid: %s", tmp);
	hs = rw_doc_path(rs->cfg, "headGroupSpec.headService");
	if (rw_doc_gets(rw_doc_get(hs, "metadata"), "name") &&
	    *rw_doc_gets(rw_doc_get(hs, "metadata"), "name"))
		return verr(out, spec, "%s",
			    "The RayService spec is invalid: "
			    "spec.rayClusterConfig.headGroupSpec.headService.metadata.name should "
			    "not be set");
	ut = rw_doc_gets(rw_doc_get(rs->obj.spec, "upgradeStrategy"), "type");
	if (ut && strcmp(ut, "None") != 0 && strcmp(ut, "NewCluster") != 0 &&
	    strcmp(ut, "NewClusterWithIncrementalUpgrade") != 0)
		return verr(
		    out, spec,
		    "The RayService spec is invalid: Spec.UpgradeStrategy.Type value %s is "
		    "invalid, valid options are NewClusterWithIncrementalUpgrade, NewCluster, "
		    "or None",
		    ut);
	delay = rw_doc_get(rs->obj.spec, "rayClusterDeletionDelaySeconds");
	if (rw_doc_int(delay, &d) == 0 && d < 0) {
		out->reason = spec;
		snprintf(
		    out->msg, sizeof(out->msg),
		    "The RayService spec is invalid: Spec.RayClusterDeletionDelaySeconds should "
		    "be a non-negative integer, got %lld",
		    (long long)d);
		return 1;
	}
	if (streq(ut, "NewClusterWithIncrementalUpgrade") &&
	    check_upgrade_options(rs, tmp, sizeof(tmp)))
		return verr(out, spec, "The RayService spec is invalid: %s", tmp);
	if (head_lists_ports(rs->cfg) && !head_has_serve_port(rs->cfg)) {
		node *ss = rw_doc_get(rs->obj.spec, "serveService");
		if (!ss || !user_serve_port(ss))
			return verr(out, spec, "The RayService spec is invalid: %s",
				    no_serve_port_msg);
	}
	{
		struct rw_rayservice_serve_cfg sc;
		int rv = rw_rayservice_serve_config(rs, &sc, tmp, sizeof(tmp));
		rw_rayservice_serve_cfg_fini(&sc);
		if (rv == -EINVAL)
			return verr(out, spec, "The RayService spec is invalid: serveConfigV2: %s",
				    tmp);
		if (rv == -EMSGSIZE) {
			out->reason = spec;
			snprintf(out->msg, sizeof(out->msg),
				 "The RayService spec is invalid: serveConfigV2: its JSON form is "
				 "larger than %u bytes",
				 RW_RAYSERVICE_MAX_SERVE_JSON);
			return 1;
		}
	}
	return 0;
}

/* ---- serve config ---- */

void
rw_rayservice_serve_cfg_fini(struct rw_rayservice_serve_cfg *c)
{
	if (!c)
		return;
	free(c->json);
	memset(c, 0, sizeof(*c));
}

int
rw_rayservice_serve_config(const struct rw_rayservice *rs, struct rw_rayservice_serve_cfg *out,
			   char *err, size_t errlen)
{
	const char *yaml = rw_doc_gets(rs->obj.spec, "serveConfigV2");
	struct rw_buf raw, canon;
	struct rw_jw w;
	node *tree = NULL;
	int rv;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	if (!yaml || !*yaml)
		return 0;
	rw_buf_init(&raw, RW_RAYSERVICE_MAX_SERVE_JSON * 2);
	rw_buf_init(&canon, RW_RAYSERVICE_MAX_SERVE_JSON);
	rv = rw_yaml_to_json(yaml, strlen(yaml), &raw, err, errlen);
	if (rv < 0)
		goto out;
	rv = rw_doc_parse(raw.data, raw.len, &tree, err, errlen);
	if (rv)
		goto out;
	if (tree->type == RW_DOC_NULL) {
		rv = 0; /* only comments or whitespace: nothing to deploy */
		goto out;
	}
	if (tree->type != RW_DOC_OBJ) {
		if (err && errlen)
			snprintf(err, errlen, "must be a YAML mapping (a Ray Serve config)");
		rv = -EINVAL;
		goto out;
	}
	rw_jw_init(&w, &canon);
	rw_doc_write_sorted(tree, &w);
	rv = rw_jw_finish(&w);
	if (rv)
		goto out;
	out->json = rw_buf_steal(&canon, &out->len);
	if (!out->json) {
		rv = -ENOMEM;
		goto out;
	}
	rw_sha256_hex(out->json, out->len, out->hash);
out:
	if (rv == -EMSGSIZE && err && errlen)
		snprintf(err, errlen, "larger than %u bytes as JSON", RW_RAYSERVICE_MAX_SERVE_JSON);
	rw_doc_free(tree);
	rw_buf_fini(&raw);
	rw_buf_fini(&canon);
	if (rv < 0)
		rw_rayservice_serve_cfg_fini(out);
	return rv < 0 ? rv : 0;
}

void
rw_rayservice_proxy_location(const struct rw_rayservice *rs, char *out, size_t outlen)
{
	struct rw_rayservice_serve_cfg cfg;
	node *tree = NULL;
	const char *v;

	if (!out || !outlen)
		return;
	out[0] = '\0';
	if (rw_rayservice_serve_config(rs, &cfg, NULL, 0) || !cfg.json)
		goto out;
	if (rw_doc_parse(cfg.json, cfg.len, &tree, NULL, 0))
		goto out;
	v = rw_doc_gets(tree, "proxy_location");
	if (v)
		snprintf(out, outlen, "%s", v);
out:
	rw_doc_free(tree);
	rw_rayservice_serve_cfg_fini(&cfg);
}

/* ---- names ---- */

void
rw_rayservice_random_suffix(const unsigned char rnd[5], char out[6])
{
	rw_name_random_suffix(rnd, out);
}

int
rw_rayservice_cluster_name(const char *rs_name, const char *suffix, char *out, size_t outlen)
{
	return rw_name_suffixed(rs_name, suffix, out, outlen);
}

void
rw_rayservice_head_svc_name(const struct rw_rayservice *rs, char *out, size_t outlen)
{
	char tmp[300];
	snprintf(tmp, sizeof(tmp), "%s-head-svc", rs->obj.name);
	rw_raycluster_check_name(tmp, out, outlen);
}

void
rw_rayservice_serve_svc_name(const struct rw_rayservice *rs, char *out, size_t outlen)
{
	const char *custom =
	    rw_doc_gets(rw_doc_path(rs->obj.spec, "serveService.metadata"), "name");
	char tmp[300];
	if (custom && *custom) {
		snprintf(out, outlen, "%s", custom);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s-serve-svc", rs->obj.name);
	rw_raycluster_check_name(tmp, out, outlen);
}

/* ---- building helpers (sticky error) ---- */

static node *
bclone_or_obj(struct b *b, const node *src)
{
	node *n = b->err			   ? NULL
		  : src && src->type == RW_DOC_OBJ ? rw_doc_clone(src)
						   : rw_doc_new(RW_DOC_OBJ);
	if (!n)
		fail(b, -ENOMEM);
	return n;
}

static void
rs_owner(struct b *b, const struct rw_rayservice *rs, node *meta)
{
	const char *api = rw_doc_gets(rs->obj.root, "apiVersion");
	set_owner(b, meta, api ? api : "ray.io/v1", "RayService", rs->obj.name, rs->obj.uid);
}

/* ---- hash ---- */

int
rw_rayservice_cluster_hash(const struct rw_doc_node *cfg, int ngroups, char out[33])
{
	node *copy;
	node *groups;
	int rv;

	copy = cfg ? rw_doc_clone(cfg) : rw_doc_new(RW_DOC_OBJ);
	if (!copy)
		return -ENOMEM;
	groups = rw_doc_get(copy, "workerGroupSpecs");
	if (groups && groups->type == RW_DOC_ARR) {
		while (ngroups >= 0 && groups->n > ngroups)
			rw_doc_free(groups->kids[--groups->n]);
		if (groups->n == 0)
			rw_doc_del(copy, "workerGroupSpecs"); /* Go: empty slice is omitted */
	}
	rv = rw_raycluster_spec_hash(copy, out);
	rw_doc_free(copy);
	return rv;
}

static int
cfg_ngroups(const node *cfg)
{
	node *g = rw_doc_get(cfg, "workerGroupSpecs");
	return g && g->type == RW_DOC_ARR ? g->n : 0;
}

/* ---- the RayCluster ---- */

static node *
goal_cluster(struct b *b, const struct rw_rayservice *rs, const char *name,
	     const struct rw_rayservice_opts *o)
{
	node *c = b->err ? NULL : rw_doc_new(RW_DOC_OBJ);
	node *meta, *labels, *annos;
	char hash[33], ng[16], loc[32];
	int rv;

	if (!c) {
		fail(b, -ENOMEM);
		return NULL;
	}
	sets(b, c, "apiVersion", "ray.io/v1");
	sets(b, c, "kind", "RayCluster");
	meta = obj(b, c, "metadata");
	sets(b, meta, "name", name);
	sets(b, meta, "namespace", rs->obj.ns);
	labels = bclone_or_obj(b, rs->obj.labels);
	sets(b, labels, "ray.io/originated-from-cr-name", rs->obj.name);
	sets(b, labels, "ray.io/originated-from-crd", "RayService");
	set(b, meta, "labels", labels);
	annos = bclone_or_obj(b, rs->obj.annotations);
	rv = rw_rayservice_cluster_hash(rs->cfg, -1, hash);
	if (rv)
		fail(b, rv);
	snprintf(ng, sizeof(ng), "%d", cfg_ngroups(rs->cfg));
	sets(b, annos, "ray.io/hash-without-replicas-and-workers-to-delete", hash);
	sets(b, annos, "ray.io/num-worker-groups", ng);
	sets(b, annos, "ray.io/kuberay-version",
	     o->version ? o->version : RW_RAYCLUSTER_DEFAULT_VERSION);
	/* No proxy expected on workers: rc_build may keep them Ready without one (kuberay#4994). */
	rw_rayservice_proxy_location(rs, loc, sizeof(loc));
	if (streq(loc, "HeadOnly") || streq(loc, "Disabled"))
		sets(b, annos, RW_RAYCLUSTER_PROXY_LOCATION_ANNOTATION, loc);
	else if (annos)
		rw_doc_del(annos, RW_RAYCLUSTER_PROXY_LOCATION_ANNOTATION);
	set(b, meta, "annotations", annos);
	rs_owner(b, rs, meta);
	set(b, c, "spec", bclone_or_obj(b, rs->cfg));
	return c;
}

int
rw_rayservice_build_cluster(const struct rw_rayservice *rs, const char *name,
			    const struct rw_rayservice_opts *o, struct rw_buf *out)
{
	struct b b = {0};
	node *c = goal_cluster(&b, rs, name, o);
	return finish(&b, c, out);
}

int
rw_rayservice_update_cluster(const struct rw_rayservice *rs, const struct rw_raycluster *cur,
			     const struct rw_rayservice_opts *o, struct rw_buf *out)
{
	struct b b = {0};
	node *goal = goal_cluster(&b, rs, cur->obj.name, o);
	node *upd = b.err ? NULL : rw_doc_clone(cur->obj.root);
	node *meta, *spec, *gmeta = rw_doc_get(goal, "metadata");
	node *suspend = rw_doc_get(cur->obj.spec, "suspend");

	if (!upd) {
		fail(&b, -ENOMEM);
		rw_doc_free(goal);
		return b.err;
	}
	meta = obj(&b, upd, "metadata");
	set(&b, meta, "labels", b.err ? NULL : rw_doc_clone(rw_doc_get(gmeta, "labels")));
	set(&b, meta, "annotations", b.err ? NULL : rw_doc_clone(rw_doc_get(gmeta, "annotations")));
	spec = b.err ? NULL : rw_doc_clone(rw_doc_get(goal, "spec"));
	if (!b.err && spec) {
		struct rw_raycluster tmp = {0};
		tmp.obj.spec = spec;
		tmp.head = rw_doc_get(spec, "headGroupSpec");
		if (suspend)
			set(&b, spec, "suspend", rw_doc_clone(suspend));
		else
			rw_doc_del(spec, "suspend");
		if (rw_raycluster_autoscaling(&tmp)) {
			node *groups = rw_doc_get(spec, "workerGroupSpecs");
			for (int i = 0; groups && groups->type == RW_DOC_ARR && i < groups->n;
			     i++) {
				node *g = groups->kids[i];
				int ci = rw_raycluster_group_index(
				    cur,
				    rw_doc_gets(g, "groupName") ? rw_doc_gets(g, "groupName") : "");
				node *cg = ci >= 0 ? rw_raycluster_group(cur, ci) : NULL;
				node *rep = rw_doc_get(cg, "replicas");
				node *wtd = rw_doc_path(cg, "scaleStrategy.workersToDelete");
				if (!cg)
					continue;
				if (rep)
					set(&b, g, "replicas", rw_doc_clone(rep));
				if (wtd)
					set(&b, obj(&b, g, "scaleStrategy"), "workersToDelete",
					    rw_doc_clone(wtd));
			}
		}
	}
	set(&b, upd, "spec", spec);
	rw_doc_free(goal);
	return finish(&b, upd, out);
}

/* ---- upgrade decision ---- */

enum rw_rayservice_match
rw_rayservice_match_cluster(const struct rw_rayservice *rs, const struct rw_raycluster *c)
{
	const char *have =
	    rw_doc_gets(c->obj.annotations, "ray.io/hash-without-replicas-and-workers-to-delete");
	const char *ngs = rw_doc_gets(c->obj.annotations, "ray.io/num-worker-groups");
	char goal[33];
	int64_t n;

	if (!have)
		have = "";
	if (rw_rayservice_cluster_hash(rs->cfg, -1, goal) == 0 && strcmp(goal, have) == 0)
		return RW_RAYSERVICE_MATCH_EQUAL;
	/* KubeRay: an unreadable group count counts as "equal", i.e. update in place. */
	if (!ngs || go_atoi(ngs, &n) != 0 || n > 1000000 || n < -1000000)
		return RW_RAYSERVICE_MATCH_APPENDED;
	if (cfg_ngroups(rs->cfg) < n)
		return streq(have, "") ? RW_RAYSERVICE_MATCH_APPENDED
				       : RW_RAYSERVICE_MATCH_DIFFERENT;
	if (n < 0)
		return RW_RAYSERVICE_MATCH_DIFFERENT; /* Go would panic slicing [:n] */
	if (rw_rayservice_cluster_hash(rs->cfg, (int)n, goal) == 0 && strcmp(goal, have) == 0)
		return RW_RAYSERVICE_MATCH_APPENDED;
	return RW_RAYSERVICE_MATCH_DIFFERENT;
}

bool
rw_rayservice_zero_downtime(const struct rw_rayservice *rs, const struct rw_rayservice_opts *o)
{
	const char *t = rw_doc_gets(rw_doc_get(rs->obj.spec, "upgradeStrategy"), "type");
	if (t)
		return strcmp(t, "NewCluster") == 0 ||
		       strcmp(t, "NewClusterWithIncrementalUpgrade") == 0;
	return o->zero_downtime;
}

static bool
should_update(const struct rw_rayservice *rs, const struct rw_raycluster *c, bool active,
	      const struct rw_rayservice_opts *o)
{
	const char *v;
	if (!c)
		return false;
	if (active) {
		if (rw_rayservice_cond_true(rs, "UpgradeInProgress"))
			return false;
		v = rw_doc_gets(c->obj.annotations, "ray.io/kuberay-version");
		if (!streq(v, o->version ? o->version : RW_RAYCLUSTER_DEFAULT_VERSION))
			return true;
	}
	return rw_rayservice_match_cluster(rs, c) == RW_RAYSERVICE_MATCH_APPENDED;
}

enum rw_rayservice_cluster_action
rw_rayservice_cluster_action(const struct rw_rayservice *rs, const struct rw_raycluster *active,
			     const struct rw_raycluster *pending,
			     const struct rw_rayservice_opts *o)
{
	if (*rw_rayservice_pending_name(rs) && !pending)
		return RW_RAYSERVICE_CLUSTER_CREATE_PENDING;
	if (should_update(rs, active, true, o))
		return RW_RAYSERVICE_CLUSTER_UPDATE_ACTIVE;
	if (should_update(rs, pending, false, o))
		return RW_RAYSERVICE_CLUSTER_UPDATE_PENDING;
	return RW_RAYSERVICE_CLUSTER_NONE;
}

bool
rw_rayservice_prepare_new_cluster(const struct rw_rayservice *rs,
				  const struct rw_raycluster *active,
				  const struct rw_raycluster *pending, bool pending_serving,
				  const struct rw_rayservice_opts *o)
{
	const struct rw_raycluster *c = pending ? pending : active;
	if (pending_serving)
		return false;
	if (!c)
		return true;
	/*
	 * An active cluster another operator version stamped (KubeRay's, when
	 * raywarden takes over) is updated in place first. KubeRay compares the
	 * object it has just updated, whose hash then matches; the informer's copy
	 * still carries the old hash until the update is seen, or for ever when
	 * the update lost a conflict, and must not start an upgrade.
	 */
	if (!pending && should_update(rs, active, true, o))
		return false;
	if (rw_rayservice_match_cluster(rs, c) != RW_RAYSERVICE_MATCH_DIFFERENT)
		return false;
	return rw_rayservice_zero_downtime(rs, o);
}

/* ---- services ---- */

int
rw_rayservice_build_head_service(const struct rw_rayservice *rs, const struct rw_raycluster *target,
				 const struct rw_raycluster_opts *o, struct rw_buf *out)
{
	const char *api = rw_doc_gets(rs->obj.root, "apiVersion");
	const struct rw_raycluster_owner owner = {
	    api ? api : "ray.io/v1", "RayService", rs->obj.name, rs->obj.uid, rs->obj.ns,
	};
	char name[80];
	rw_rayservice_head_svc_name(rs, name, sizeof(name));
	return rw_raycluster_build_owned_head_service(target, o, &owner, name, out);
}

static int
cmp_port_name(const void *a, const void *b)
{
	const node *x = *(node *const *)a, *y = *(node *const *)b;
	return strcmp(or_empty(rw_doc_gets(x, "name")), or_empty(rw_doc_gets(y, "name")));
}

/* The serve ports of the target's head container (or the default serve:8000). */
static node *
target_serve_ports(struct b *b, const struct rw_raycluster *target)
{
	node *ports = b->err ? NULL : rw_doc_new(RW_DOC_ARR);
	node *cports = rw_doc_get(head_container(target->obj.spec), "ports");
	if (!ports) {
		fail(b, -ENOMEM);
		return NULL;
	}
	if (!cports || cports->type != RW_DOC_ARR || cports->n == 0) {
		node *p = rw_doc_new(RW_DOC_OBJ);
		sets(b, p, "name", "serve");
		seti(b, p, "port", 8000);
		if (!b->err && rw_doc_push(ports, p))
			fail(b, -ENOMEM);
		else if (b->err)
			rw_doc_free(p);
		return ports;
	}
	for (int i = 0; i < cports->n && !b->err; i++) {
		const char *n = rw_doc_gets(cports->kids[i], "name");
		int64_t cp = 0;
		node *p;
		bool dup = false;
		if (!serve_port_name(n))
			continue;
		for (int k = 0; k < ports->n; k++)
			dup |= streq(rw_doc_gets(ports->kids[k], "name"), n); /* last one wins */
		rw_doc_int(rw_doc_get(cports->kids[i], "containerPort"), &cp);
		if (dup) {
			for (int k = 0; k < ports->n; k++)
				if (streq(rw_doc_gets(ports->kids[k], "name"), n))
					seti(b, ports->kids[k], "port", cp);
			continue;
		}
		p = rw_doc_new(RW_DOC_OBJ);
		sets(b, p, "name", n);
		seti(b, p, "port", cp);
		if (!b->err && rw_doc_push(ports, p))
			fail(b, -ENOMEM);
		else if (b->err)
			rw_doc_free(p);
	}
	if (ports->n > 1)
		qsort(ports->kids, (size_t)ports->n, sizeof(ports->kids[0]), cmp_port_name);
	return ports;
}

int
rw_rayservice_build_serve_service(const struct rw_rayservice *rs,
				  const struct rw_raycluster *target, struct rw_buf *out, char *err,
				  size_t errlen)
{
	struct b b = {0};
	node *user = rw_doc_get(rs->obj.spec, "serveService");
	node *ports = target_serve_ports(&b, target);
	node *svc, *meta, *spec, *labels, *sel;
	const char *type = rw_doc_gets(rw_doc_get(rs->cfg, "headGroupSpec"), "serviceType");
	char name[300], slabel[320];

	if (user && user->type != RW_DOC_OBJ)
		user = NULL;
	if (!b.err && ports->n == 0 && !user) {
		rw_doc_free(ports);
		if (err && errlen)
			snprintf(err, errlen, "%s", no_serve_port_msg);
		return -ENOENT;
	}
	if (!b.err && ports->n == 0) {
		/* The user's serveService supplies the serve ports (name and port only). */
		node *up = rw_doc_path(user, "spec.ports");
		for (int i = 0; up && up->type == RW_DOC_ARR && i < up->n && !b.err; i++) {
			const char *n = rw_doc_gets(up->kids[i], "name");
			int64_t pv = 0;
			node *p;
			if (!serve_port_name(n))
				continue;
			rw_doc_int(rw_doc_get(up->kids[i], "port"), &pv);
			p = rw_doc_new(RW_DOC_OBJ);
			sets(&b, p, "name", n);
			seti(&b, p, "port", pv);
			if (!b.err && rw_doc_push(ports, p))
				fail(&b, -ENOMEM);
			else if (b.err)
				rw_doc_free(p);
		}
	}
	svc = user ? bclone_or_obj(&b, user) : bclone_or_obj(&b, NULL);
	sets(&b, svc, "apiVersion", "v1");
	sets(&b, svc, "kind", "Service");
	meta = obj(&b, svc, "metadata");
	spec = obj(&b, svc, "spec");
	rw_rayservice_serve_svc_name(rs, name, sizeof(name));
	sets(&b, meta, "name", name);
	sets(&b, meta, "namespace", rs->obj.ns);
	labels = obj(&b, meta, "labels");
	snprintf(slabel, sizeof(slabel), "%s-serve", rs->obj.name);
	sets(&b, labels, "ray.io/originated-from-cr-name", rs->obj.name);
	sets(&b, labels, "ray.io/originated-from-crd", "RayService");
	sets(&b, labels, "ray.io/serve", slabel);
	rs_owner(&b, rs, meta);
	sel = b.err ? NULL : rw_doc_new(RW_DOC_OBJ);
	sets(&b, sel, "ray.io/cluster", target->obj.name);
	sets(&b, sel, "ray.io/serve", "true");
	set(&b, spec, "selector", sel);
	set(&b, spec, "ports", ports);
	if (!rw_doc_gets(spec, "type") || !*rw_doc_gets(spec, "type")) {
		if (type && *type)
			sets(&b, spec, "type", type);
		else
			rw_doc_del(spec, "type");
	}
	return finish(&b, svc, out);
}
