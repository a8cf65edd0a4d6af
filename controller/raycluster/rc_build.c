/* rc_build.c - RayCluster -> Pods, Services, RBAC as KubeRay builds them, plus the agent. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/md.h>

#include "rc_build.h"
#include "rc_quantity.h"

/* ---- builder context: a sticky error so calls can be chained ---- */

struct b {
	int err;
};

typedef struct rw_rc_node node;

static void
fail(struct b *b, int err)
{
	if (!b->err)
		b->err = err;
}

static node *
nnew(struct b *b, enum rw_rc_type t)
{
	node *n = b->err ? NULL : rw_rc_new(t);
	if (!n)
		fail(b, -ENOMEM);
	return n;
}

static node *
nstr(struct b *b, const char *s)
{
	node *n = b->err ? NULL : rw_rc_new_str(s);
	if (!n)
		fail(b, -ENOMEM);
	return n;
}

static node *
nclone(struct b *b, const node *src)
{
	node *n = b->err ? NULL : rw_rc_clone(src);
	if (!n && src)
		fail(b, -ENOMEM);
	return n;
}

static void
set(struct b *b, node *o, const char *key, node *v)
{
	int rv;
	if (b->err || !o) {
		rw_rc_free(v);
		if (!o)
			fail(b, -ENOMEM);
		return;
	}
	rv = rw_rc_set(o, key, v);
	if (rv)
		fail(b, rv);
}

static void
sets(struct b *b, node *o, const char *key, const char *v)
{
	set(b, o, key, nstr(b, v));
}

static void
seti(struct b *b, node *o, const char *key, int64_t v)
{
	node *n = b->err ? NULL : rw_rc_new_int(v);
	if (!n)
		fail(b, -ENOMEM);
	set(b, o, key, n);
}

static void
setb(struct b *b, node *o, const char *key, bool v)
{
	node *n = b->err ? NULL : rw_rc_new_bool(v);
	if (!n)
		fail(b, -ENOMEM);
	set(b, o, key, n);
}

static void
push(struct b *b, node *a, node *v)
{
	int rv;
	if (b->err || !a) {
		rw_rc_free(v);
		if (!a)
			fail(b, -ENOMEM);
		return;
	}
	rv = rw_rc_push(a, v);
	if (rv)
		fail(b, rv);
}

static node *
obj(struct b *b, node *o, const char *key)
{
	node *n = b->err ? NULL : rw_rc_obj(o, key);
	if (!n)
		fail(b, -ENOMEM);
	return n;
}

static node *
arr(struct b *b, node *o, const char *key)
{
	node *n = b->err ? NULL : rw_rc_arr(o, key);
	if (!n)
		fail(b, -ENOMEM);
	return n;
}

static bool
streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static bool
lower_is(const char *v, const char *want)
{
	return v && strcasecmp(v, want) == 0;
}

static int64_t int_or(const node *o, const char *key, int64_t def);

/* ---- options ---- */

void
rw_rc_opts_default(struct rw_rc_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->agent = true;
	o->agent_image = RW_RC_DEFAULT_AGENT_IMAGE;
	o->agent_port = 8477;
	o->agent_cpu_request = "10m";
	o->agent_mem_request = "16Mi";
	o->agent_cpu_limit = "100m";
	o->agent_mem_limit = "64Mi";
	o->proxy_readiness = "auto";
	o->headonly_workers_ready = true;
	o->agent_liveness_grace_s = 60;
	o->readiness_gate = true;
	o->probes = RW_RC_PROBE_AGENT;
	o->agent_readiness_period_s = 1;
	o->drain_s = RW_RC_DEFAULT_DRAIN_S;
	o->init_container_injection = true;
	o->probes_injection = true;
	o->cluster_domain = "cluster.local";
	o->version = RW_RC_DEFAULT_VERSION;
}

void
rw_rc_opts_from_env(struct rw_rc_opts *o, char *(*getenv_fn)(const char *))
{
	const char *v;
	if (!getenv_fn)
		return;
	/* Default-on knobs turn off only with "false"; default-off ones on only with "true". */
	o->init_container_injection =
	    !lower_is(getenv_fn("ENABLE_INIT_CONTAINER_INJECTION"), "false");
	o->probes_injection = !lower_is(getenv_fn("ENABLE_PROBES_INJECTION"), "false");
	o->head_cluster_ip_service =
	    lower_is(getenv_fn("ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE"), "true");
	o->login_shell = lower_is(getenv_fn("ENABLE_LOGIN_SHELL"), "true");
	o->deterministic_head_name =
	    lower_is(getenv_fn("ENABLE_DETERMINISTIC_HEAD_POD_NAME"), "true");
	o->random_pod_delete = lower_is(getenv_fn("ENABLE_RANDOM_POD_DELETE"), "true");
	v = getenv_fn("CLUSTER_DOMAIN");
	if (v && *v)
		o->cluster_domain = v;
	o->headonly_workers_ready =
	    !lower_is(getenv_fn("RAYWARDEN_HEADONLY_WORKERS_READY"), "false");
	v = getenv_fn("RAYWARDEN_RAYSERVICE_DRAIN_SECONDS");
	if (v && *v && strspn(v, "0123456789") == strlen(v) && strlen(v) <= 4 &&
	    atoi(v) <= RW_RC_DRAIN_MAX_S)
		o->drain_s = atoi(v);
}

const char *
rw_rc_agent_proxy_readiness(const struct rw_rc_cluster *c, const struct rw_rc_opts *o, bool head)
{
	const char *mode = o->proxy_readiness && *o->proxy_readiness ? o->proxy_readiness : "auto";
	const char *loc;
	if (head || !o->headonly_workers_ready || strcmp(mode, "auto") != 0 ||
	    rw_rc_creator(c, o) != RW_RC_CRD_RAYSERVICE)
		return mode;
	loc = rw_rc_gets(c->annotations, RW_RC_PROXY_LOCATION_ANNOTATION);
	if (streq(loc, "HeadOnly") || streq(loc, "Disabled"))
		return "ignore";
	return mode;
}

/* ---- cluster ---- */

struct rw_rc_node *
rw_rc_group(const struct rw_rc_cluster *c, int i)
{
	node *g = rw_rc_at(c->groups, i);
	return g && g->type == RW_RC_OBJ ? g : NULL;
}

const char *
rw_rc_group_name(const struct rw_rc_cluster *c, int i)
{
	const char *n = rw_rc_gets(rw_rc_group(c, i), "groupName");
	return n ? n : "";
}

int
rw_rc_group_index(const struct rw_rc_cluster *c, const char *name)
{
	for (int i = 0; i < c->ngroups; i++)
		if (streq(rw_rc_group_name(c, i), name))
			return i;
	return -1;
}

int
rw_rc_cluster_parse(const char *json, size_t len, struct rw_rc_cluster **out, char *err,
		    size_t errlen)
{
	struct rw_rc_cluster *c;
	struct rw_rc_object o;
	int rv;

	*out = NULL;
	rv = rw_rc_object_parse(json, len, "RayCluster", &o, err, errlen);
	if (rv)
		return rv;
	c = calloc(1, sizeof(*c));
	if (!c) {
		rw_rc_free(o.root);
		return -ENOMEM;
	}
	c->root = o.root, c->name = o.name, c->ns = o.ns, c->uid = o.uid;
	c->generation = o.generation, c->labels = o.labels, c->annotations = o.annotations;
	c->spec = o.spec;
	c->head = rw_rc_get(c->spec, "headGroupSpec");
	if (c->head && c->head->type != RW_RC_OBJ)
		c->head = NULL;
	c->groups = rw_rc_get(c->spec, "workerGroupSpecs");
	if (c->groups && c->groups->type != RW_RC_ARR)
		c->groups = NULL;
	c->ngroups = c->groups ? c->groups->n : 0;
	*out = c;
	return 0;
}

void
rw_rc_cluster_free(struct rw_rc_cluster *c)
{
	if (!c)
		return;
	rw_rc_free(c->root);
	free(c);
}

/* ---- names ---- */

static bool
go_ispunct(unsigned char ch)
{
	/* unicode.IsPunct on ASCII: punctuation but not symbols ($+<=>^`|~). */
	return ch < 128 && ispunct(ch) && !strchr("$+<=>^`|~", ch);
}

void
rw_rc_check_name(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in);
	const char *s = n > 50 ? in + (n - 50) : in;
	snprintf(out, outlen, "%s", s);
	if (out[0] && (isdigit((unsigned char)out[0]) || go_ispunct((unsigned char)out[0])))
		out[0] = 'r';
	/* A digit replaced above can no longer be punctuation; Go checks both in turn. */
}

void
rw_rc_check_label(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in);
	const char *s = n > 63 ? in + (n - 63) : in;
	snprintf(out, outlen, "%s", s);
	if (out[0] && go_ispunct((unsigned char)out[0]))
		out[0] = 'r';
}

void
rw_rc_pod_name(const char *prefix, bool head, bool generate, char *out, size_t outlen)
{
	size_t n = strlen(prefix);
	snprintf(out, outlen, "%.*s-%s%s", (int)(n > 50 ? 50 : n), prefix, head ? "head" : "worker",
		 generate ? "-" : "");
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

void
rw_rc_head_svc_name(const struct rw_rc_cluster *c, char *out, size_t outlen)
{
	char tmp[320];
	const char *custom = rw_rc_gets(rw_rc_path(c->head, "headService.metadata"), "name");
	if (custom && *custom) {
		snprintf(out, outlen, "%s", custom);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s-head-svc", c->name);
	rw_rc_check_name(tmp, out, outlen);
}

void
rw_rc_fqdn(const struct rw_rc_cluster *c, const struct rw_rc_opts *o, char *out, size_t outlen)
{
	char svc[320];
	rw_rc_head_svc_name(c, svc, sizeof(svc));
	snprintf(out, outlen, "%s.%s.svc.%s", svc, c->ns,
		 o->cluster_domain && *o->cluster_domain ? o->cluster_domain : "cluster.local");
}

static const char *
param_raw(const node *params, const char *key)
{
	node *v = rw_rc_get(params, key);
	if (!v)
		return NULL;
	if (v->type == RW_RC_STR || v->type == RW_RC_NUM)
		return v->s;
	if (v->type == RW_RC_BOOL)
		return v->b ? "true" : "false";
	return NULL;
}

const char *
rw_rc_head_port(const struct rw_rc_cluster *c)
{
	const char *p = param_raw(rw_rc_get(c->head, "rayStartParams"), "port");
	return p ? p : "6379";
}

void
rw_rc_agent_secret_name(const struct rw_rc_cluster *c, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s-raywarden-key", c->name);
}

/* ---- predicates ---- */

bool
rw_rc_autoscaling(const struct rw_rc_cluster *c)
{
	return rw_rc_true(rw_rc_get(c->spec, "enableInTreeAutoscaling"));
}

static node *
container0(const node *tmpl_spec)
{
	node *cs = rw_rc_get(tmpl_spec, "containers");
	node *c0 = rw_rc_at(cs, 0);
	return c0 && c0->type == RW_RC_OBJ ? c0 : NULL;
}

static node *
env_find(const node *env, const char *name)
{
	for (int i = 0; env && env->type == RW_RC_ARR && i < env->n; i++)
		if (streq(rw_rc_gets(env->kids[i], "name"), name))
			return env->kids[i];
	return NULL;
}

static bool
env_exists(const node *env, const char *name)
{
	return env_find(env, name) != NULL;
}

bool
rw_rc_autoscaling_v2(const struct rw_rc_cluster *c)
{
	const char *ver = rw_rc_gets(rw_rc_get(c->spec, "autoscalerOptions"), "version");
	node *e;
	if (ver)
		return strcmp(ver, "v2") == 0;
	e = env_find(rw_rc_get(container0(rw_rc_path(c->head, "template.spec")), "env"),
		     "RAY_enable_autoscaler_v2");
	return e && (streq(rw_rc_gets(e, "value"), "1") || streq(rw_rc_gets(e, "value"), "true"));
}

static bool
autoscaling_v1(const struct rw_rc_cluster *c)
{
	return streq(rw_rc_gets(rw_rc_get(c->spec, "autoscalerOptions"), "version"), "v1");
}

bool
rw_rc_gcs_ft(const struct rw_rc_cluster *c)
{
	node *opts = rw_rc_get(c->spec, "gcsFaultToleranceOptions");
	return lower_is(rw_rc_gets(c->annotations, "ray.io/ft-enabled"), "true") ||
	       (opts && opts->type != RW_RC_NULL);
}

bool
rw_rc_suspended(const struct rw_rc_cluster *c)
{
	return rw_rc_true(rw_rc_get(c->spec, "suspend"));
}

enum rw_rc_crd
rw_rc_creator(const struct rw_rc_cluster *c, const struct rw_rc_opts *o)
{
	const char *l;
	if (o && o->crd != RW_RC_CRD_AUTO)
		return o->crd;
	l = rw_rc_gets(c->labels, "ray.io/originated-from-crd");
	if (streq(l, "RayJob"))
		return RW_RC_CRD_RAYJOB;
	if (streq(l, "RayService"))
		return RW_RC_CRD_RAYSERVICE;
	return RW_RC_CRD_RAYCLUSTER;
}

const char *
rw_rc_crd_name(enum rw_rc_crd crd)
{
	switch (crd) {
	case RW_RC_CRD_RAYJOB:
		return "RayJob";
	case RW_RC_CRD_RAYSERVICE:
		return "RayService";
	default:
		return "RayCluster";
	}
}

bool
rw_rc_unified_health_check(const char *v)
{
	/* k8s.io/apimachinery version.ParseGeneric: [space][v]N(.N)+ then anything. */
	unsigned long comp[3] = {0, 0, 0};
	int n = 0;
	const char *p = v;
	if (!p)
		return false;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')
		p++;
	if (*p == 'v')
		p++;
	for (;;) {
		const char *s = p;
		unsigned long x = 0;
		if (!isdigit((unsigned char)*p))
			return false;
		if (n == 0 && *p == '0' && isdigit((unsigned char)p[1]))
			return false; /* zero-prefixed first component */
		while (isdigit((unsigned char)*p)) {
			if (x > 100000000UL)
				return false;
			x = x * 10 + (unsigned long)(*p - '0');
			p++;
		}
		(void)s;
		if (n < 3)
			comp[n] = x;
		n++;
		if (*p == '.' && isdigit((unsigned char)p[1])) {
			p++;
			continue;
		}
		break;
	}
	if (n < 2)
		return false;
	if (comp[0] != 2)
		return comp[0] > 2;
	if (comp[1] != 53)
		return comp[1] > 53;
	return true;
}

bool
rw_rc_gpu_key(const char *key)
{
	size_t n = strlen(key);
	const char *p;
	if (n >= 3 && strcmp(key + n - 3, "gpu") == 0)
		return true;
	/* nvidia\.com/mig-\d+g\.\d+gb$ anywhere in the key */
	for (p = strstr(key, "nvidia.com/mig-"); p; p = strstr(p + 1, "nvidia.com/mig-")) {
		const char *q = p + strlen("nvidia.com/mig-");
		if (!isdigit((unsigned char)*q))
			continue;
		while (isdigit((unsigned char)*q))
			q++;
		if (*q++ != 'g' || *q++ != '.' || !isdigit((unsigned char)*q))
			continue;
		while (isdigit((unsigned char)*q))
			q++;
		if (strcmp(q, "gb") == 0)
			return true;
	}
	return false;
}

/* ---- rayStartParams ---- */

/* Copy rayStartParams as an object of strings (numbers/bools to text). */
static node *
params_copy(struct b *b, const node *src)
{
	node *p = nnew(b, RW_RC_OBJ);
	for (int i = 0; src && src->type == RW_RC_OBJ && i < src->n; i++) {
		const char *v = param_raw(src, src->kids[i]->key);
		if (v)
			sets(b, p, src->kids[i]->key, v);
	}
	return p;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted member keys of object o (malloc'd array of borrowed strings). */
static const char **
sorted_keys(const node *o, int *n)
{
	const char **k;
	*n = 0;
	if (!o || o->type != RW_RC_OBJ || o->n == 0)
		return NULL;
	k = malloc((size_t)o->n * sizeof(*k));
	if (!k)
		return NULL;
	for (int i = 0; i < o->n; i++)
		k[i] = o->kids[i]->key;
	qsort(k, (size_t)o->n, sizeof(*k), cmp_str);
	*n = o->n;
	return k;
}

static int
qty_of(const node *list, const char *key, struct rw_rc_qty *q)
{
	const char *s = rw_rc_gets(list, key);
	node *v = rw_rc_get(list, key);
	if (!s && v && v->type == RW_RC_NUM)
		s = v->s; /* unquoted YAML numbers */
	if (!s)
		return -ENOENT;
	return rw_rc_qty_parse(s, q);
}

/* A JSON object of float64 as Go's json.Marshal(map[string]float64) writes it. */
static void
float_map_json(struct b *b, const node *m, struct rw_buf *out)
{
	int n;
	const char **k = sorted_keys(m, &n);
	if (n > 0 && !k) {
		fail(b, -ENOMEM);
		return;
	}
	if (rw_buf_putc(out, '{'))
		fail(b, -ENOMEM);
	for (int i = 0; i < n; i++) {
		char num[64];
		double d = strtod(rw_rc_get(m, k[i])->s, NULL);
		if (rw_rc_fmt_float(d, num, sizeof(num)) < 0)
			snprintf(num, sizeof(num), "0");
		if ((i && rw_buf_putc(out, ',')) || rw_json_quote(out, k[i], strlen(k[i])) ||
		    rw_buf_putc(out, ':') || rw_buf_puts(out, num))
			fail(b, -ENOMEM);
	}
	if (rw_buf_putc(out, '}'))
		fail(b, -ENOMEM);
	free(k);
}

static void
set_quoted_resources(struct b *b, node *params, const node *fmap)
{
	struct rw_buf tmp;
	rw_buf_init(&tmp, 1 << 20);
	if (rw_buf_putc(&tmp, '\''))
		fail(b, -ENOMEM);
	float_map_json(b, fmap, &tmp);
	if (rw_buf_putc(&tmp, '\''))
		fail(b, -ENOMEM);
	sets(b, params, "resources", rw_buf_cstr(&tmp));
	rw_buf_fini(&tmp);
}

static void
set_float(struct b *b, node *m, const char *key, double d)
{
	char num[64];
	node *n;
	snprintf(num, sizeof(num), "%.17g", d);
	n = nnew(b, RW_RC_NUM);
	if (n && !(n->s = strdup(num))) {
		rw_rc_free(n);
		n = NULL;
		fail(b, -ENOMEM);
	}
	set(b, m, key, n);
}

/* updateRayStartParamsResources: group `resources` override the params. */
static void
params_group_resources(struct b *b, node *params, const node *res)
{
	node *fmap;
	if (!res || res->type != RW_RC_OBJ || res->n == 0)
		return;
	fmap = nnew(b, RW_RC_OBJ);
	for (int i = 0; !b->err && i < res->n; i++) {
		const char *name = res->kids[i]->key;
		char lower[256], num[32];
		struct rw_rc_qty q;
		if (qty_of(res, name, &q) != 0)
			continue; /* KubeRay logs and skips unparsable quantities */
		snprintf(lower, sizeof(lower), "%s", name);
		for (char *p = lower; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		snprintf(num, sizeof(num), "%lld", (long long)rw_rc_qty_value(&q));
		if (strcmp(lower, "cpu") == 0)
			sets(b, params, "num-cpus", num);
		else if (strcmp(lower, "memory") == 0)
			sets(b, params, "memory", num);
		else if (rw_rc_gpu_key(lower))
			sets(b, params, "num-gpus", num);
		else
			set_float(b, fmap, name, rw_rc_qty_float(&q));
	}
	if (fmap && fmap->n > 0)
		set_quoted_resources(b, params, fmap);
	rw_rc_free(fmap);
}

/* updateRayStartParamsLabels: group `labels` -> labels=k=v,... (sorted). */
static void
params_group_labels(struct b *b, node *params, const node *labels)
{
	struct rw_buf tmp;
	int n;
	const char **k;
	if (!labels || labels->type != RW_RC_OBJ || labels->n == 0)
		return;
	k = sorted_keys(labels, &n);
	if (!k) {
		fail(b, -ENOMEM);
		return;
	}
	rw_buf_init(&tmp, 1 << 20);
	for (int i = 0; i < n; i++) {
		const char *v = param_raw(labels, k[i]);
		if (rw_buf_printf(&tmp, "%s%s=%s", i ? "," : "", k[i], v ? v : ""))
			fail(b, -ENOMEM);
	}
	sets(b, params, "labels", rw_buf_cstr(&tmp));
	rw_buf_fini(&tmp);
	free(k);
}

/* setMissingRayStartParams */
static void
params_missing(struct b *b, node *params, bool head, const char *head_port, const char *fqdn)
{
	char tmp[600];
	if (!head && !rw_rc_get(params, "address")) {
		snprintf(tmp, sizeof(tmp), "%s:%s", fqdn, head_port);
		sets(b, params, "address", tmp);
	}
	if (head && !rw_rc_get(params, "dashboard-host"))
		sets(b, params, "dashboard-host", "0.0.0.0");
	if (!rw_rc_get(params, "metrics-export-port"))
		sets(b, params, "metrics-export-port", "8080");
	sets(b, params, "block", "true");
	if (!rw_rc_get(params, "dashboard-agent-listen-port"))
		sets(b, params, "dashboard-agent-listen-port", "52365");
}

/* getResourcesMap: params["resources"] trimmed of '"` and spaces, as JSON numbers. */
static int
resources_map(struct b *b, const node *params, node **out)
{
	const char *s = rw_rc_gets(params, "resources");
	node *m = NULL;
	*out = NULL;
	if (!s) {
		*out = nnew(b, RW_RC_OBJ);
		return *out ? 0 : -ENOMEM;
	}
	size_t a = 0, z = strlen(s);
	while (a < z && strchr("'\"` ", s[a]))
		a++;
	while (z > a && strchr("'\"` ", s[z - 1]))
		z--;
	if (rw_rc_parse(s + a, z - a, &m, NULL, 0) != 0)
		return -EINVAL;
	if (m->type == RW_RC_NULL) {
		rw_rc_free(m);
		*out = nnew(b, RW_RC_OBJ);
		return *out ? 0 : -ENOMEM;
	}
	if (m->type != RW_RC_OBJ) {
		rw_rc_free(m);
		return -EINVAL;
	}
	for (int i = 0; i < m->n; i++) {
		if (m->kids[i]->type == RW_RC_NULL) {
			/* null leaves the float at zero */
			m->kids[i]->type = RW_RC_NUM;
			m->kids[i]->s = strdup("0");
			if (!m->kids[i]->s) {
				rw_rc_free(m);
				return -ENOMEM;
			}
		} else if (m->kids[i]->type != RW_RC_NUM) {
			rw_rc_free(m);
			return -EINVAL;
		}
	}
	*out = m;
	return 0;
}

/* addWellKnownAcceleratorResources */
static void
params_accelerators(struct b *b, node *params, const node *limits)
{
	static const struct {
		const char *k8s, *ray;
	} accel[] = {{"aws.amazon.com/neuroncore", "neuron_cores"}, {"google.com/tpu", "TPU"}};
	node *rmap = NULL;
	bool custom_added = false;
	int n;
	const char **keys;

	if (!limits || limits->type != RW_RC_OBJ || limits->n == 0)
		return;
	if (resources_map(b, params, &rmap) != 0)
		return; /* KubeRay logs the error and adds nothing */
	for (size_t i = 0; i < sizeof(accel) / sizeof(accel[0]); i++)
		if (rw_rc_get(rmap, accel[i].ray))
			custom_added = true;
	keys = sorted_keys(limits, &n);
	if (!keys) {
		rw_rc_free(rmap);
		fail(b, -ENOMEM);
		return;
	}
	for (int i = 0; i < n && !b->err; i++) {
		struct rw_rc_qty q;
		char num[32];
		if (qty_of(limits, keys[i], &q) != 0)
			continue;
		if (!rw_rc_get(params, "num-gpus") && rw_rc_gpu_key(keys[i]) &&
		    !rw_rc_qty_zero(&q)) {
			snprintf(num, sizeof(num), "%lld", (long long)rw_rc_qty_value(&q));
			sets(b, params, "num-gpus", num);
		}
		if (custom_added)
			continue;
		for (size_t a = 0; a < sizeof(accel) / sizeof(accel[0]); a++) {
			if (strcmp(keys[i], accel[a].k8s) != 0 || rw_rc_qty_zero(&q))
				continue;
			if (!rw_rc_get(rmap, accel[a].ray)) {
				set_float(b, rmap, accel[a].ray, rw_rc_qty_float(&q));
				set_quoted_resources(b, params, rmap);
			}
			custom_added = true;
		}
	}
	free(keys);
	rw_rc_free(rmap);
}

/* convertParamMap */
static int
render_params(const node *params, struct rw_buf *out)
{
	static const char *const special[] = {"log-color", "include-dashboard",
					      "include-log-monitor"};
	int n, rv = 0;
	const char **k = sorted_keys(params, &n);
	if (n > 0 && !k)
		return -ENOMEM;
	for (int i = 0; i < n && !rv; i++) {
		const char *v = param_raw(params, k[i]);
		bool sp = false;
		if (!v)
			continue;
		for (size_t s = 0; s < 3; s++)
			sp = sp || strcmp(k[i], special[s]) == 0;
		if ((lower_is(v, "true") || lower_is(v, "false")) && !sp) {
			if (lower_is(v, "true"))
				rv = rw_buf_printf(out, " --%s ", k[i]);
		} else {
			rv = rw_buf_printf(out, " --%s=%s ", k[i], v);
		}
	}
	free(k);
	return rv;
}

/* generateRayStartCommand: fills num-cpus/memory/accelerators into params. */
static void
gen_ray_start(struct b *b, bool head, node *params, const node *resources, struct rw_buf *out)
{
	node *limits = rw_rc_get(resources, "limits");
	node *requests = rw_rc_get(resources, "requests");
	struct rw_rc_qty q;
	char num[32];

	if (!rw_rc_get(params, "num-cpus")) {
		if (qty_of(limits, "cpu", &q) == 0 && !rw_rc_qty_zero(&q)) {
			snprintf(num, sizeof(num), "%lld", (long long)rw_rc_qty_value(&q));
			sets(b, params, "num-cpus", num);
		} else if (qty_of(requests, "cpu", &q) == 0 && !rw_rc_qty_zero(&q)) {
			snprintf(num, sizeof(num), "%lld", (long long)rw_rc_qty_value(&q));
			sets(b, params, "num-cpus", num);
		}
	}
	if (!rw_rc_get(params, "memory") && qty_of(limits, "memory", &q) == 0 &&
	    !rw_rc_qty_zero(&q)) {
		snprintf(num, sizeof(num), "%lld", (long long)rw_rc_qty_value(&q));
		sets(b, params, "memory", num);
	}
	params_accelerators(b, params, limits);
	if (b->err)
		return;
	if (rw_buf_puts(out, head ? "ray start --head " : "ray start ") ||
	    render_params(params, out))
		fail(b, -ENOMEM);
}

int
rw_rc_ray_start(bool head, const struct rw_rc_node *params, const struct rw_rc_node *resources,
		struct rw_buf *out)
{
	struct b b = {0};
	node *p = params_copy(&b, params);
	gen_ray_start(&b, head, p, resources, out);
	rw_rc_free(p);
	return b.err;
}

/* ---- small object helpers ---- */

static void
env_push(struct b *b, node *env, const char *name, const char *value)
{
	node *e = nnew(b, RW_RC_OBJ);
	sets(b, e, "name", name);
	sets(b, e, "value", value);
	push(b, env, e);
}

static void
env_push_field(struct b *b, node *env, const char *name, const char *path)
{
	node *e = nnew(b, RW_RC_OBJ);
	sets(b, e, "name", name);
	node *vf = obj(b, e, "valueFrom");
	node *fr = obj(b, vf, "fieldRef");
	sets(b, fr, "fieldPath", path);
	push(b, env, e);
}

static node *
resources_obj(struct b *b, const char *cpu_req, const char *mem_req, const char *cpu_lim,
	      const char *mem_lim)
{
	node *r = nnew(b, RW_RC_OBJ);
	node *l = obj(b, r, "limits");
	sets(b, l, "cpu", cpu_lim);
	sets(b, l, "memory", mem_lim);
	node *q = obj(b, r, "requests");
	sets(b, q, "cpu", cpu_req);
	sets(b, q, "memory", mem_req);
	return r;
}

static void
owner_ref(struct b *b, const struct rw_rc_cluster *c, node *meta)
{
	node *refs = nnew(b, RW_RC_ARR);
	node *r = nnew(b, RW_RC_OBJ);
	const char *api = rw_rc_gets(c->root, "apiVersion");
	const char *kind = rw_rc_gets(c->root, "kind");
	sets(b, r, "apiVersion", api ? api : "ray.io/v1");
	sets(b, r, "kind", kind ? kind : "RayCluster");
	sets(b, r, "name", c->name);
	sets(b, r, "uid", c->uid);
	setb(b, r, "controller", true);
	setb(b, r, "blockOwnerDeletion", true);
	push(b, refs, r);
	set(b, meta, "ownerReferences", refs);
}

static int
port_of(const node *params, const char *key, int def)
{
	/* strconv.ParseInt(s, 10, 32): optional sign, decimal digits, int32 range. */
	const char *s = param_raw(params, key);
	char *end;
	long v;
	if (!s || !*s)
		return def;
	if (!(isdigit((unsigned char)s[0]) || ((s[0] == '+' || s[0] == '-') && s[1])))
		return def;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end || errno || v > 2147483647L || v < -2147483648L)
		return def;
	for (const char *p = s + (s[0] == '+' || s[0] == '-'); *p; p++)
		if (!isdigit((unsigned char)*p))
			return def;
	return (int)v;
}

static int
find_container_port(const node *container, const char *name, int def)
{
	node *ports = rw_rc_get(container, "ports");
	for (int i = 0; ports && ports->type == RW_RC_ARR && i < ports->n; i++) {
		int64_t v;
		if (streq(rw_rc_gets(ports->kids[i], "name"), name) &&
		    rw_rc_int(rw_rc_get(ports->kids[i], "containerPort"), &v) == 0)
			return (int)v;
	}
	return def;
}

static bool
has_port_named(const node *container, const char *name)
{
	return find_container_port(container, name, -1) != -1;
}

/* ---- the pod template stages ---- */

static void
add_metrics_port(struct b *b, node *ray)
{
	if (has_port_named(ray, "metrics"))
		return;
	node *p = nnew(b, RW_RC_OBJ);
	sets(b, p, "name", "metrics");
	seti(b, p, "containerPort", 8080);
	push(b, arr(b, ray, "ports"), p);
}

/* labelPod with mergeLabels(template labels, group labels). */
static node *
pod_labels(struct b *b, const struct rw_rc_cluster *c, bool head, const char *group,
	   const node *tmpl_labels, const node *group_labels)
{
	char id[320], idl[80];
	node *l = nnew(b, RW_RC_OBJ);
	snprintf(id, sizeof(id), "%s-%s", c->name, head ? "head" : "worker");
	rw_rc_check_label(id, idl, sizeof(idl));
	sets(b, l, "ray.io/is-ray-node", "yes");
	sets(b, l, "ray.io/cluster", c->name);
	sets(b, l, "ray.io/node-type", head ? "head" : "worker");
	sets(b, l, "ray.io/group", group);
	sets(b, l, "ray.io/identifier", idl);
	sets(b, l, "app.kubernetes.io/name", "kuberay");
	sets(b, l, "app.kubernetes.io/created-by", "kuberay-operator");
	const node *srcs[2] = {tmpl_labels, group_labels};
	for (int s = 0; s < 2; s++) {
		const node *src = srcs[s];
		for (int i = 0; src && src->type == RW_RC_OBJ && i < src->n; i++) {
			const char *k = src->kids[i]->key;
			const char *v = param_raw(src, k);
			if (!v || streq(k, "ray.io/node-type") || streq(k, "ray.io/group") ||
			    streq(k, "ray.io/cluster"))
				continue;
			sets(b, l, k, v);
		}
	}
	return l;
}

static bool
overwrite_cmd(const node *annotations)
{
	return lower_is(param_raw(annotations, "ray.io/overwrite-container-cmd"), "true");
}

static void
container_command(struct b *b, const struct rw_rc_opts *o, node *container)
{
	node *cmd = nnew(b, RW_RC_ARR);
	push(b, cmd, nstr(b, "/bin/bash"));
	push(b, cmd, nstr(b, o->login_shell ? "-lc" : "-c"));
	push(b, cmd, nstr(b, "--"));
	set(b, container, "command", cmd);
}

static void
autoscaler_container(struct b *b, const struct rw_rc_cluster *c, const struct rw_rc_opts *o,
		     node *tmpl_spec)
{
	static const char start[] = "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) "
				    "--cluster-namespace $(RAY_CLUSTER_NAMESPACE)";
	node *ray = container0(tmpl_spec);
	node *opts = rw_rc_get(c->spec, "autoscalerOptions");
	node *a = nnew(b, RW_RC_OBJ);
	node *v;
	const char *img = rw_rc_gets(ray, "image");

	sets(b, a, "name", "autoscaler");
	sets(b, a, "image", img ? img : "");
	sets(b, a, "imagePullPolicy", "IfNotPresent");
	node *env = arr(b, a, "env");
	env_push_field(b, env, "RAY_CLUSTER_NAME", "metadata.labels['ray.io/cluster']");
	env_push_field(b, env, "RAY_CLUSTER_NAMESPACE", "metadata.namespace");
	env_push_field(b, env, "RAY_HEAD_POD_NAME", "metadata.name");
	env_push(b, env, "KUBERAY_CRD_VER", "v1");
	env_push(b, env, "KUBERAY_GEN_AUTOSCALER_START_CMD", start);
	container_command(b, o, a);
	node *args = nnew(b, RW_RC_ARR);
	push(b, args, nstr(b, start));
	set(b, a, "args", args);
	set(b, a, "resources", resources_obj(b, "500m", "512Mi", "500m", "512Mi"));
	if (streq(rw_rc_gets(rw_rc_get(c->spec, "authOptions"), "mode"), "token")) {
		char secret[80];
		const char *sn = rw_rc_gets(rw_rc_get(c->spec, "authOptions"), "secretName");
		rw_rc_check_name(c->name, secret, sizeof(secret));
		env_push(b, env, "RAY_AUTH_MODE", "token");
		node *e = nnew(b, RW_RC_OBJ);
		sets(b, e, "name", "RAY_AUTH_TOKEN");
		node *skr = obj(b, obj(b, e, "valueFrom"), "secretKeyRef");
		sets(b, skr, "name", sn && *sn ? sn : secret);
		sets(b, skr, "key", "auth_token");
		push(b, env, e);
	}
	/* mergeAutoscalerOverrides */
	if (opts && opts->type == RW_RC_OBJ) {
		if ((v = rw_rc_get(opts, "resources")) && v->type != RW_RC_NULL)
			set(b, a, "resources", nclone(b, v));
		if ((v = rw_rc_get(opts, "image")) && v->type == RW_RC_STR)
			set(b, a, "image", nclone(b, v));
		if ((v = rw_rc_get(opts, "imagePullPolicy")) && v->type == RW_RC_STR)
			set(b, a, "imagePullPolicy", nclone(b, v));
		if ((v = rw_rc_get(opts, "env")) && v->type == RW_RC_ARR)
			for (int i = 0; i < v->n; i++)
				push(b, env, nclone(b, v->kids[i]));
		if ((v = rw_rc_get(opts, "envFrom")) && v->type == RW_RC_ARR && v->n > 0) {
			node *ef = arr(b, a, "envFrom");
			for (int i = 0; i < v->n; i++)
				push(b, ef, nclone(b, v->kids[i]));
		}
		if ((v = rw_rc_get(opts, "volumeMounts")) && v->type == RW_RC_ARR && v->n > 0) {
			node *vm = arr(b, a, "volumeMounts");
			for (int i = 0; i < v->n; i++)
				push(b, vm, nclone(b, v->kids[i]));
		}
		if ((v = rw_rc_get(opts, "securityContext")) && v->type == RW_RC_OBJ)
			set(b, a, "securityContext", nclone(b, v));
		if ((v = rw_rc_get(opts, "command")) && v->type == RW_RC_ARR && v->n > 0)
			set(b, a, "command", nclone(b, v));
		if ((v = rw_rc_get(opts, "args")) && v->type == RW_RC_ARR && v->n > 0)
			set(b, a, "args", nclone(b, v));
	}
	push(b, arr(b, tmpl_spec, "containers"), a);
}

static void
token_auth(struct b *b, const struct rw_rc_cluster *c, node *container)
{
	node *auth = rw_rc_get(c->spec, "authOptions");
	char secret[80];
	const char *sn = rw_rc_gets(auth, "secretName");
	node *env = arr(b, container, "env");
	if (!streq(rw_rc_gets(auth, "mode"), "token"))
		return;
	rw_rc_check_name(c->name, secret, sizeof(secret));
	if (!env_exists(env, "RAY_AUTH_MODE"))
		env_push(b, env, "RAY_AUTH_MODE", "token");
	if (!env_exists(env, "RAY_AUTH_TOKEN")) {
		node *e = nnew(b, RW_RC_OBJ);
		sets(b, e, "name", "RAY_AUTH_TOKEN");
		node *skr = obj(b, obj(b, e, "valueFrom"), "secretKeyRef");
		sets(b, skr, "name", sn && *sn ? sn : secret);
		sets(b, skr, "key", "auth_token");
		push(b, env, e);
	}
}

/* configureGCSFaultTolerance */
static void
gcs_ft(struct b *b, const struct rw_rc_cluster *c, node *tmpl, node *params, bool head)
{
	bool ft = rw_rc_gcs_ft(c);
	node *annos = obj(b, obj(b, tmpl, "metadata"), "annotations");
	node *opts = rw_rc_get(c->spec, "gcsFaultToleranceOptions");
	node *ray = container0(rw_rc_get(tmpl, "spec"));
	node *env;
	if (opts && opts->type != RW_RC_OBJ)
		opts = NULL;
	if (head)
		sets(b, annos, "ray.io/ft-enabled", ft ? "true" : "false");
	if (!ft || !ray)
		return;
	env = arr(b, ray, "env");
	if (!head) {
		if (!env_exists(env, "RAY_gcs_rpc_server_reconnect_timeout_s"))
			env_push(b, env, "RAY_gcs_rpc_server_reconnect_timeout_s", "600");
		return;
	}
	if (opts && streq(rw_rc_gets(opts, "backend"), "rocksdb")) {
		/* Embedded storage (alpha in KubeRay). */
		char claim[320];
		node *st = rw_rc_get(opts, "storage");
		const char *cn = rw_rc_gets(st, "claimName");
		const char *sub = rw_rc_gets(st, "subPath");
		if (!env_exists(env, "RAY_gcs_storage"))
			env_push(b, env, "RAY_gcs_storage", "rocksdb");
		if (!env_exists(env, "RAY_gcs_storage_path"))
			env_push(b, env, "RAY_gcs_storage_path", "/data/gcs");
		node *m = nnew(b, RW_RC_OBJ);
		sets(b, m, "name", "gcs-storage");
		sets(b, m, "mountPath", "/data/gcs");
		if (sub && *sub)
			sets(b, m, "subPath", sub);
		push(b, arr(b, ray, "volumeMounts"), m);
		snprintf(claim, sizeof(claim), "%s-gcs-pvc", c->name);
		node *vol = nnew(b, RW_RC_OBJ);
		sets(b, vol, "name", "gcs-storage");
		sets(b, obj(b, vol, "persistentVolumeClaim"), "claimName", cn && *cn ? cn : claim);
		push(b, arr(b, rw_rc_get(tmpl, "spec"), "volumes"), vol);
		return;
	}
	const char *ns = c->uid;
	const char *an = param_raw(c->annotations, "ray.io/external-storage-namespace");
	const char *on = rw_rc_gets(opts, "externalStorageNamespace");
	if (an)
		ns = an;
	if (on && *on)
		ns = on;
	sets(b, annos, "ray.io/external-storage-namespace", ns);
	if (!env_exists(env, "RAY_external_storage_namespace"))
		env_push(b, env, "RAY_external_storage_namespace", ns);
	if (opts) {
		const char *addr = rw_rc_gets(opts, "redisAddress");
		node *u = rw_rc_get(opts, "redisUsername"), *p = rw_rc_get(opts, "redisPassword");
		env_push(b, env, "RAY_REDIS_ADDRESS", addr ? addr : "");
		const struct {
			node *src;
			const char *env, *param, *ref;
		} cred[] = {{u, "REDIS_USERNAME", "redis-username", "$REDIS_USERNAME"},
			    {p, "REDIS_PASSWORD", "redis-password", "$REDIS_PASSWORD"}};
		for (int i = 0; i < 2; i++) {
			node *src = cred[i].src, *e, *vf;
			if (!src || src->type != RW_RC_OBJ)
				continue;
			sets(b, params, cred[i].param, cred[i].ref);
			e = nnew(b, RW_RC_OBJ);
			sets(b, e, "name", cred[i].env);
			const char *val = rw_rc_gets(src, "value");
			if (val && *val)
				sets(b, e, "value", val);
			vf = rw_rc_get(src, "valueFrom");
			if (vf && vf->type == RW_RC_OBJ)
				set(b, e, "valueFrom", nclone(b, vf));
			push(b, env, e);
		}
	} else if (!env_exists(env, "REDIS_PASSWORD")) {
		const char *pw = param_raw(params, "redis-password");
		if (pw)
			env_push(b, env, "REDIS_PASSWORD", pw);
	}
}

/* addEmptyDir */
static void
add_empty_dir(struct b *b, node *container, node *pod_spec, const char *vol, const char *path,
	      bool memory)
{
	node *mounts = rw_rc_get(container, "volumeMounts");
	node *vols = rw_rc_get(pod_spec, "volumes");
	bool have = false;
	for (int i = 0; mounts && mounts->type == RW_RC_ARR && i < mounts->n; i++)
		if (streq(rw_rc_gets(mounts->kids[i], "mountPath"), path))
			return;
	for (int i = 0; vols && vols->type == RW_RC_ARR && i < vols->n; i++)
		if (streq(rw_rc_gets(vols->kids[i], "name"), vol))
			have = true;
	if (!have) {
		node *v = nnew(b, RW_RC_OBJ);
		sets(b, v, "name", vol);
		node *ed = obj(b, v, "emptyDir");
		if (memory) {
			node *res = rw_rc_get(container, "resources");
			node *lim = rw_rc_get(res, "limits"), *req = rw_rc_get(res, "requests");
			node *src = rw_rc_get(lim, "memory") ? lim : req;
			struct rw_rc_qty q;
			char txt[64];
			sets(b, ed, "medium", "Memory");
			if (rw_rc_get(src, "memory")) {
				if (qty_of(src, "memory", &q) == 0 &&
				    rw_rc_qty_format(&q, txt, sizeof(txt)) > 0)
					sets(b, ed, "sizeLimit", txt);
				else
					set(b, ed, "sizeLimit",
					    nclone(b, rw_rc_get(src, "memory")));
			}
		}
		push(b, arr(b, pod_spec, "volumes"), v);
	}
	node *m = nnew(b, RW_RC_OBJ);
	sets(b, m, "mountPath", path);
	sets(b, m, "name", vol);
	push(b, arr(b, container, "volumeMounts"), m);
}

static const char wait_gcs_fmt[] =
    "\n"
    "\t\t\t\t\tSECONDS=0\n"
    "\t\t\t\t\twhile true; do\n"
    "\t\t\t\t\t\tif (( SECONDS <= 120 )); then\n"
    "\t\t\t\t\t\t\tif ray health-check --address %s:%s > /dev/null 2>&1; then\n"
    "\t\t\t\t\t\t\t\techo \"GCS is ready.\"\n"
    "\t\t\t\t\t\t\t\tbreak\n"
    "\t\t\t\t\t\t\tfi\n"
    "\t\t\t\t\t\t\techo \"$SECONDS seconds elapsed: Waiting for GCS to be ready.\"\n"
    "\t\t\t\t\t\telse\n"
    "\t\t\t\t\t\t\tif ray health-check --address %s:%s; then\n"
    "\t\t\t\t\t\t\t\techo \"GCS is ready. Any error messages above can be safely ignored.\"\n"
    "\t\t\t\t\t\t\t\tbreak\n"
    "\t\t\t\t\t\t\tfi\n"
    "\t\t\t\t\t\t\techo \"$SECONDS seconds elapsed: Still waiting for GCS to be ready. For "
    "troubleshooting, refer to the FAQ at "
    "https://docs.ray.io/en/master/cluster/kubernetes/troubleshooting.html.\"\n"
    "\t\t\t\t\t\tfi\n"
    "\t\t\t\t\t\tsleep 5\n"
    "\t\t\t\t\tdone\n"
    "\t\t\t\t";

static void
wait_gcs_container(struct b *b, const struct rw_rc_opts *o, node *tmpl_spec, const char *fqdn,
		   const char *port)
{
	node *ray = container0(tmpl_spec);
	node *ic = nnew(b, RW_RC_OBJ);
	node *v;
	struct rw_buf script;
	sets(b, ic, "name", "wait-gcs-ready");
	if ((v = rw_rc_get(ray, "image")))
		set(b, ic, "image", nclone(b, v));
	if ((v = rw_rc_get(ray, "imagePullPolicy")))
		set(b, ic, "imagePullPolicy", nclone(b, v));
	container_command(b, o, ic);
	rw_buf_init(&script, 1 << 16);
	if (rw_buf_printf(&script, wait_gcs_fmt, fqdn, port, fqdn, port))
		fail(b, -ENOMEM);
	node *args = nnew(b, RW_RC_ARR);
	push(b, args, nstr(b, rw_buf_cstr(&script)));
	rw_buf_fini(&script);
	set(b, ic, "args", args);
	if ((v = rw_rc_get(ray, "securityContext")) && v->type == RW_RC_OBJ)
		set(b, ic, "securityContext", nclone(b, v));
	if ((v = rw_rc_get(ray, "env")) && v->type == RW_RC_ARR)
		set(b, ic, "env", nclone(b, v));
	if ((v = rw_rc_get(ray, "volumeMounts")) && v->type == RW_RC_ARR)
		set(b, ic, "volumeMounts", nclone(b, v));
	set(b, ic, "resources", resources_obj(b, "200m", "256Mi", "200m", "256Mi"));
	push(b, arr(b, tmpl_spec, "initContainers"), ic);
}

static node *
probe_obj(struct b *b, int initial, int timeout, int period, int success, int failure)
{
	node *p = nnew(b, RW_RC_OBJ);
	if (initial)
		seti(b, p, "initialDelaySeconds", initial);
	seti(b, p, "timeoutSeconds", timeout);
	seti(b, p, "periodSeconds", period);
	seti(b, p, "successThreshold", success);
	seti(b, p, "failureThreshold", failure);
	return p;
}

static void
probe_exec(struct b *b, node *p, const char *cmd)
{
	node *c = nnew(b, RW_RC_ARR);
	push(b, c, nstr(b, "bash"));
	push(b, c, nstr(b, "-c"));
	push(b, c, nstr(b, cmd));
	set(b, obj(b, p, "exec"), "command", c);
}

static void
probe_http(struct b *b, node *p, const char *path, int port)
{
	node *h = obj(b, p, "httpGet");
	sets(b, h, "path", path);
	seti(b, h, "port", port);
}

static bool
present(const node *container, const char *key)
{
	node *v = rw_rc_get(container, key);
	return v && v->type != RW_RC_NULL;
}

/* initLivenessAndReadinessProbe (KubeRay's probes). */
static void
kuberay_probes(struct b *b, node *ray, bool head, bool rayservice, const node *params,
	       const char *ray_version)
{
	char raylet[256], gcs[256], serve[256], cmd[800];
	int agent_port = port_of(params, "dashboard-agent-listen-port", 52365);
	bool http = rw_rc_unified_health_check(ray_version);

	snprintf(raylet, sizeof(raylet),
		 "wget --tries 1 -T %d -q -O- http://localhost:%d/%s | grep success", 2, agent_port,
		 "api/local_raylet_healthz");
	snprintf(gcs, sizeof(gcs),
		 "wget --tries 1 -T %d -q -O- http://localhost:%d/%s | grep success", 10,
		 port_of(params, "dashboard-port", 8265), "api/gcs_healthz");
	if (head)
		snprintf(cmd, sizeof(cmd), "%s && %s", raylet, gcs);
	else
		snprintf(cmd, sizeof(cmd), "%s", raylet);
	if (!present(ray, "livenessProbe")) {
		node *p = probe_obj(b, 30, head ? 5 : 2, 5, 1, 120);
		if (http)
			probe_http(b, p, "/api/healthz", agent_port);
		else
			probe_exec(b, p, cmd);
		set(b, ray, "livenessProbe", p);
	}
	if (!present(ray, "readinessProbe")) {
		node *p = probe_obj(b, 10, head ? 5 : 2, 5, 1, 10);
		if (rayservice && !head) {
			snprintf(
			    serve, sizeof(serve),
			    "wget --tries 1 -T %d -q -O- http://localhost:%d/%s | grep success", 10,
			    find_container_port(ray, "serve", 8000), "-/healthz");
			snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " && %s", serve);
			seti(b, p, "failureThreshold", 1);
			probe_exec(b, p, cmd);
		} else if (http) {
			probe_http(b, p, "/api/healthz", agent_port);
		} else {
			probe_exec(b, p, cmd);
		}
		set(b, ray, "readinessProbe", p);
	}
}

/* The agent's probes: readiness from /readyz; liveness that survives agent restarts. */
static void
agent_probes(struct b *b, const struct rw_rc_opts *o, node *ray)
{
	if (!present(ray, "readinessProbe")) {
		int period = o->agent_readiness_period_s > 0 ? o->agent_readiness_period_s : 1;
		node *p = probe_obj(b, 0, 1, period, 1, 1);
		probe_http(b, p, "/readyz", o->agent_port);
		set(b, ray, "readinessProbe", p);
	}
	if (!present(ray, "livenessProbe")) {
		/*
		 * An agent that is down answers nothing, which the kubelet counts as a
		 * failure. 120 x 5 s = 600 s of consecutive failures is twice the
		 * kubelet's longest CrashLoopBackOff delay (300 s), so a restarting or
		 * crash-looping agent never gets the Ray container killed; /livez itself
		 * turns 503 only after the agent saw the raylet fail continuously.
		 */
		node *p = probe_obj(b, 30, 2, 5, 1, 120);
		probe_http(b, p, "/livez", o->agent_port);
		set(b, ray, "livenessProbe", p);
	}
}

static void
agent_sidecar(struct b *b, const struct rw_rc_cluster *c, const struct rw_rc_opts *o,
	      node *pod_spec, const node *params, bool head, bool rayservice)
{
	node *ray = container0(pod_spec);
	node *a = nnew(b, RW_RC_OBJ);
	char num[32], secret[320];
	bool ctl = o->controller_addr && *o->controller_addr;

	sets(b, a, "name", RW_RC_AGENT_CONTAINER);
	sets(b, a, "image", o->agent_image ? o->agent_image : RW_RC_DEFAULT_AGENT_IMAGE);
	sets(b, a, "imagePullPolicy", "IfNotPresent");
	node *ports = arr(b, a, "ports");
	node *p = nnew(b, RW_RC_OBJ);
	sets(b, p, "name", RW_RC_AGENT_PORT_NAME);
	seti(b, p, "containerPort", o->agent_port);
	sets(b, p, "protocol", "TCP");
	push(b, ports, p);
	node *env = arr(b, a, "env");
	env_push_field(b, env, "RAYWARDEN_POD_NAME", "metadata.name");
	env_push_field(b, env, "RAYWARDEN_POD_NAMESPACE", "metadata.namespace");
	env_push_field(b, env, "RAYWARDEN_POD_UID", "metadata.uid");
	env_push_field(b, env, "RAYWARDEN_POD_IP", "status.podIP");
	/* The endpoints listen on the pod IP only, where the kubelet's probes and the
	   preStop hook arrive (not on every address of the pod). */
	env_push_field(b, env, "RAYWARDEN_LISTEN_HOST", "status.podIP");
	env_push_field(b, env, "RAYWARDEN_CLUSTER", "metadata.labels['ray.io/cluster']");
	env_push_field(b, env, "RAYWARDEN_GROUP", "metadata.labels['ray.io/group']");
	env_push(b, env, "RAYWARDEN_NODE_TYPE", head ? "head" : "worker");
	env_push(b, env, "RAYWARDEN_RAYSERVICE", rayservice ? "true" : "false");
	env_push(b, env, "RAYWARDEN_PROXY_READINESS", rw_rc_agent_proxy_readiness(c, o, head));
	if (ctl) {
		env_push(b, env, "RAYWARDEN_CONTROLLER", o->controller_addr);
		env_push(b, env, "RAYWARDEN_KEY_FILE", RW_RC_AGENT_KEY_DIR "/key");
	}
	snprintf(num, sizeof(num), "%d", o->agent_port);
	env_push(b, env, "RAYWARDEN_PORT", num);
	snprintf(num, sizeof(num), "%d", port_of(params, "dashboard-agent-listen-port", 52365));
	env_push(b, env, "RAYWARDEN_RAYLET_PORT", num);
	snprintf(num, sizeof(num), "%d", port_of(params, "dashboard-port", 8265));
	env_push(b, env, "RAYWARDEN_DASHBOARD_PORT", num);
	snprintf(num, sizeof(num), "%d", find_container_port(ray, "serve", 8000));
	env_push(b, env, "RAYWARDEN_SERVE_PORT", num);
	snprintf(num, sizeof(num), "%d",
		 o->agent_liveness_grace_s > 0 ? o->agent_liveness_grace_s : 60);
	env_push(b, env, "RAYWARDEN_LIVENESS_GRACE_S", num);
	set(b, a, "resources",
	    resources_obj(b, o->agent_cpu_request, o->agent_mem_request, o->agent_cpu_limit,
			  o->agent_mem_limit));
	/* The restricted Pod Security Standard: the agent needs no privilege, writes
	   nothing to its filesystem and reads its key as an ordinary user. */
	node *sc = obj(b, a, "securityContext");
	setb(b, sc, "runAsNonRoot", true);
	seti(b, sc, "runAsUser", RW_RC_AGENT_UID);
	seti(b, sc, "runAsGroup", RW_RC_AGENT_UID);
	setb(b, sc, "allowPrivilegeEscalation", false);
	setb(b, sc, "readOnlyRootFilesystem", true);
	node *drop = nnew(b, RW_RC_ARR);
	push(b, drop, nstr(b, "ALL"));
	set(b, obj(b, sc, "capabilities"), "drop", drop);
	sets(b, obj(b, sc, "seccompProfile"), "type", "RuntimeDefault");
	if (ctl) {
		node *m = nnew(b, RW_RC_OBJ);
		sets(b, m, "name", RW_RC_AGENT_KEY_VOLUME);
		sets(b, m, "mountPath", RW_RC_AGENT_KEY_DIR);
		setb(b, m, "readOnly", true);
		push(b, arr(b, a, "volumeMounts"), m);
		node *v = nnew(b, RW_RC_OBJ);
		sets(b, v, "name", RW_RC_AGENT_KEY_VOLUME);
		node *s = obj(b, v, "secret");
		rw_rc_agent_secret_name(c, secret, sizeof(secret));
		sets(b, s, "secretName", secret);
		seti(b, s, "defaultMode", RW_RC_AGENT_KEY_MODE);
		push(b, arr(b, pod_spec, "volumes"), v);
	}
	push(b, arr(b, pod_spec, "containers"), a);
	if (o->readiness_gate) {
		node *g = nnew(b, RW_RC_OBJ);
		sets(b, g, "conditionType", RW_RC_AGENT_GATE);
		push(b, arr(b, pod_spec, "readinessGates"), g);
	}
}

/*
 * lifecycle.preStop.httpGet to the agent's /drain with the cluster's drain
 * token, unless the container has a preStop. The token is in the pod spec:
 * whoever may read the pod may drain it (docs/security.md).
 */
static void
drain_hook(struct b *b, const struct rw_rc_opts *o, node *container)
{
	char auth[16 + 2 * RW_RC_DRAIN_TOKEN_MAX];
	char path[64];
	node *lc = rw_rc_get(container, "lifecycle");
	if (lc && lc->type == RW_RC_OBJ && present(lc, "preStop"))
		return;
	if (lc && lc->type != RW_RC_OBJ)
		rw_rc_del(container, "lifecycle");
	snprintf(path, sizeof(path), "/drain?seconds=%d", o->drain_s);
	node *h = obj(b, obj(b, obj(b, container, "lifecycle"), "preStop"), "httpGet");
	sets(b, h, "path", path);
	seti(b, h, "port", o->agent_port);
	snprintf(auth, sizeof(auth), "Bearer %s", o->drain_token);
	node *hdr = nnew(b, RW_RC_OBJ);
	sets(b, hdr, "name", "Authorization");
	sets(b, hdr, "value", auth);
	push(b, arr(b, h, "httpHeaders"), hdr);
}

/*
 * RayService pods (KubeRay sets no preStop): the Ray container and the agent
 * get a preStop hook GET /drain?seconds=N on the agent, which turns the pod
 * NotReady at once and answers after N seconds. The kubelet runs preStop
 * hooks before SIGTERM and counts them against terminationGracePeriodSeconds,
 * so the Ray container keeps serving (and the agent keeps answering probes)
 * while the endpoint removal reaches every service proxy, and requests in
 * flight finish. A container with its own preStop keeps it. The grace period
 * (30 s when unset) is raised to N + RW_RC_MIN_STOP_S when shorter.
 */
static void
drain_hooks(struct b *b, const struct rw_rc_opts *o, node *pod_spec)
{
	node *cs = rw_rc_get(pod_spec, "containers");
	for (int i = 0; cs && cs->type == RW_RC_ARR && i < cs->n; i++) {
		node *k = cs->kids[i];
		if (k->type == RW_RC_OBJ &&
		    (i == 0 || streq(rw_rc_gets(k, "name"), RW_RC_AGENT_CONTAINER)))
			drain_hook(b, o, k);
	}
	if (int_or(pod_spec, "terminationGracePeriodSeconds", 30) < o->drain_s + RW_RC_MIN_STOP_S)
		seti(b, pod_spec, "terminationGracePeriodSeconds", o->drain_s + RW_RC_MIN_STOP_S);
}

/* The argument string KubeRay's convertCmdToString builds: " a  b ". */
static void
cmd_string(struct b *b, const node *list, struct rw_buf *out)
{
	for (int i = 0; list && list->type == RW_RC_ARR && i < list->n; i++) {
		const char *s = rw_rc_str(list->kids[i]);
		if (rw_buf_printf(out, " %s ", s ? s : ""))
			fail(b, -ENOMEM);
	}
}

/* setContainerEnvVars */
static void
ray_env(struct b *b, const struct rw_rc_cluster *c, const struct rw_rc_opts *o, node *ray,
	bool head, enum rw_rc_crd crd, const char *fqdn, const char *head_port,
	const char *ray_start)
{
	node *env = arr(b, ray, "env");
	char tmp[700];
	for (size_t i = 0; i < o->n_default_envs; i++)
		if (o->default_envs[i].name && !env_exists(env, o->default_envs[i].name))
			env_push(b, env, o->default_envs[i].name,
				 o->default_envs[i].value ? o->default_envs[i].value : "");
	if (!head) {
		size_t n = strcspn(fqdn, ".");
		env_push(b, env, "FQ_RAY_IP", fqdn);
		snprintf(tmp, sizeof(tmp), "%.*s", (int)n, fqdn);
		env_push(b, env, "RAY_IP", tmp);
	}
	env_push_field(b, env, "RAY_CLUSTER_NAME", "metadata.labels['ray.io/cluster']");
	env_push_field(b, env, "RAY_CLUSTER_NAMESPACE", "metadata.namespace");
	env_push_field(b, env, "RAY_CLOUD_INSTANCE_ID", "metadata.name");
	env_push_field(b, env, "RAY_NODE_TYPE_NAME", "metadata.labels['ray.io/group']");
	env_push(b, env, "KUBERAY_GEN_RAY_START_CMD", ray_start);
	if (!env_exists(env, "RAY_PORT"))
		env_push(b, env, "RAY_PORT", head_port);
	if (crd == RW_RC_CRD_RAYSERVICE) {
		if (!env_exists(env, "RAY_timeout_ms_task_wait_for_death_info"))
			env_push(b, env, "RAY_timeout_ms_task_wait_for_death_info", "0");
		if (!env_exists(env, "RAY_gcs_server_request_timeout_seconds"))
			env_push(b, env, "RAY_gcs_server_request_timeout_seconds", "5");
		if (!env_exists(env, "RAY_SERVE_KV_TIMEOUT_S"))
			env_push(b, env, "RAY_SERVE_KV_TIMEOUT_S", "5");
	}
	if (!env_exists(env, "RAY_ADDRESS")) {
		snprintf(tmp, sizeof(tmp), "%s:%s", head ? "127.0.0.1" : fqdn, head_port);
		env_push(b, env, "RAY_ADDRESS", tmp);
	}
	if (!env_exists(env, "RAY_USAGE_STATS_KUBERAY_IN_USE"))
		env_push(b, env, "RAY_USAGE_STATS_KUBERAY_IN_USE", "1");
	if (head) {
		snprintf(tmp, sizeof(tmp), "kuberay_version=%s;kuberay_crd=%s",
			 o->version ? o->version : RW_RC_DEFAULT_VERSION, rw_rc_crd_name(crd));
		env_push(b, env, "RAY_USAGE_STATS_EXTRA_TAGS", tmp);
	}
	if (!env_exists(env, "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE"))
		env_push(b, env, "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE", "1");
	(void)c;
}

/*
 * BuildPod: the stage shared by head and worker. tmpl is the prepared
 * template (consumed), params the completed rayStartParams.
 */
static node *
build_pod(struct b *b, const struct rw_rc_cluster *c, const struct rw_rc_opts *o, node *tmpl,
	  node *params, bool head, const char *fqdn, const char *head_port)
{
	enum rw_rc_crd crd = rw_rc_creator(c, o);
	node *pod = nnew(b, RW_RC_OBJ);
	node *meta, *spec, *ray, *v;
	struct rw_buf cmd, rs;
	const char *ray_version = rw_rc_gets(c->spec, "rayVersion");
	bool rayservice = crd == RW_RC_CRD_RAYSERVICE;

	meta = obj(b, tmpl, "metadata");
	spec = obj(b, tmpl, "spec");
	if (rayservice)
		sets(b, obj(b, meta, "labels"), "ray.io/serve", head ? "false" : "true");
	sets(b, pod, "apiVersion", "v1");
	sets(b, pod, "kind", "Pod");
	set(b, pod, "metadata", nclone(b, meta));
	set(b, pod, "spec", nclone(b, spec));
	rw_rc_free(tmpl);
	if (b->err)
		return pod;
	meta = rw_rc_get(pod, "metadata");
	spec = rw_rc_get(pod, "spec");
	ray = container0(spec);
	if (!ray) {
		fail(b, -EINVAL);
		return pod;
	}
	if (!rw_rc_get(params, "plasma-directory"))
		add_empty_dir(b, ray, spec, "shared-mem", "/dev/shm", true);
	if (head && rw_rc_autoscaling(c)) {
		node *cs = rw_rc_get(spec, "containers");
		node *as = NULL;
		for (int i = 0; cs && i < cs->n; i++)
			if (streq(rw_rc_gets(cs->kids[i], "name"), "autoscaler"))
				as = cs->kids[i];
		add_empty_dir(b, ray, spec, "ray-logs", "/tmp/ray", false);
		if (as)
			add_empty_dir(b, as, spec, "ray-logs", "/tmp/ray", false);
	}

	rw_buf_init(&cmd, 1 << 20);
	rw_buf_init(&rs, 1 << 20);
	cmd_string(b, rw_rc_get(ray, "command"), &cmd);
	cmd_string(b, rw_rc_get(ray, "args"), &cmd);
	gen_ray_start(b, head, params, rw_rc_get(ray, "resources"), &rs);
	if (!overwrite_cmd(rw_rc_get(meta, "annotations")) &&
	    !strstr(rw_buf_cstr(&cmd), "ray start")) {
		struct rw_buf a;
		rw_buf_init(&a, 1 << 20);
		if (cmd.len)
			rw_buf_printf(&a, "%s && ", rw_buf_cstr(&cmd));
		if (rw_buf_printf(&a, "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; %s",
				  rw_buf_cstr(&rs)))
			fail(b, -ENOMEM);
		container_command(b, o, ray);
		node *args = nnew(b, RW_RC_ARR);
		push(b, args, nstr(b, rw_buf_cstr(&a)));
		set(b, ray, "args", args);
		rw_buf_fini(&a);
	}
	v = rw_rc_get(spec, "initContainers");
	for (int i = 0; v && v->type == RW_RC_ARR && i < v->n; i++) {
		char ip[320];
		node *ic = v->kids[i];
		if (ic->type != RW_RC_OBJ)
			continue;
		snprintf(ip, sizeof(ip), "%.*s", (int)strcspn(fqdn, "."), fqdn);
		env_push(b, arr(b, ic, "env"), "FQ_RAY_IP", fqdn);
		env_push(b, arr(b, ic, "env"), "RAY_IP", ip);
	}
	ray_env(b, c, o, ray, head, crd, fqdn, head_port, rw_buf_cstr(&rs));
	rw_buf_fini(&cmd);
	rw_buf_fini(&rs);
	if (o->probes_injection) {
		if (o->agent && o->probes == RW_RC_PROBE_AGENT)
			agent_probes(b, o, ray);
		else
			kuberay_probes(b, ray, head, rayservice, params, ray_version);
	}
	if (o->agent)
		agent_sidecar(b, c, o, spec, params, head, rayservice);
	if (o->agent && rayservice && o->drain_s > 0 && o->drain_token && *o->drain_token &&
	    strlen(o->drain_token) <= RW_RC_DRAIN_TOKEN_MAX)
		drain_hooks(b, o, spec);
	v = rw_rc_get(meta, "annotations");
	if (v && v->type == RW_RC_OBJ && v->n == 0)
		rw_rc_del(meta, "annotations"); /* Go drops an empty map (omitempty) */
	owner_ref(b, c, meta);
	return pod;
}

/* The template copy both node types start from. */
static node *
template_copy(struct b *b, const node *group)
{
	node *t = rw_rc_get(group, "template");
	node *copy = t && t->type == RW_RC_OBJ ? nclone(b, t) : nnew(b, RW_RC_OBJ);
	obj(b, copy, "metadata");
	obj(b, copy, "spec");
	return copy;
}

static int
finish(struct b *b, node *n, struct rw_buf *out)
{
	int rv = b->err;
	if (!rv)
		rv = rw_rc_dump(n, out);
	rw_rc_free(n);
	return rv;
}

int
rw_rc_build_head_pod(const struct rw_rc_cluster *c, const struct rw_rc_opts *o, struct rw_buf *out)
{
	struct b b = {0};
	char name[128], fqdn[700], hash[33], sa[320], sac[80];
	node *tmpl, *meta, *spec, *params, *pod, *ray, *annos;
	const char *head_port = rw_rc_head_port(c);

	if (!c->head || !container0(rw_rc_path(c->head, "template.spec")))
		return -EINVAL;
	rw_rc_fqdn(c, o, fqdn, sizeof(fqdn));
	tmpl = template_copy(&b, c->head);
	meta = obj(&b, tmpl, "metadata");
	spec = obj(&b, tmpl, "spec");
	rw_rc_pod_name(c->name, true, !o->deterministic_head_name, name, sizeof(name));
	sets(&b, meta, o->deterministic_head_name ? "name" : "generateName", name);
	sets(&b, meta, "namespace", c->ns);
	params = params_copy(&b, rw_rc_get(c->head, "rayStartParams"));
	params_group_resources(&b, params, rw_rc_get(c->head, "resources"));
	params_group_labels(&b, params, rw_rc_get(c->head, "labels"));
	set(&b, meta, "labels",
	    pod_labels(&b, c, true, "headgroup", rw_rc_get(meta, "labels"),
		       rw_rc_get(c->head, "labels")));
	params_missing(&b, params, true, head_port, "");
	annos = obj(&b, meta, "annotations");
	if (overwrite_cmd(c->annotations))
		sets(&b, annos, "ray.io/overwrite-container-cmd", "true");
	ray = container0(spec);
	if (rw_rc_autoscaling(c)) {
		const char *tsa = rw_rc_gets(spec, "serviceAccountName");
		sets(&b, params, "no-monitor", "true");
		snprintf(sa, sizeof(sa), "%s", tsa && *tsa ? tsa : c->name);
		rw_rc_check_name(sa, sac, sizeof(sac));
		sets(&b, spec, "serviceAccountName", sac);
		autoscaler_container(&b, c, o, spec);
		ray = container0(spec);
		if (rw_rc_autoscaling_v2(c)) {
			if (rw_rc_gets(rw_rc_get(c->spec, "autoscalerOptions"), "version"))
				env_push(&b, arr(&b, ray, "env"), "RAY_enable_autoscaler_v2",
					 "true");
			sets(&b, spec, "restartPolicy", "Never");
		} else if (autoscaling_v1(c)) {
			env_push(&b, arr(&b, ray, "env"), "RAY_enable_autoscaler_v2", "false");
		}
	}
	gcs_ft(&b, c, tmpl, params, true);
	add_metrics_port(&b, container0(spec));
	token_auth(&b, c, container0(spec));
	/* createHeadPod: the upgrade hash and the operator version. */
	if (rw_rc_spec_hash(c->spec, hash) == 0)
		sets(&b, annos, "ray.io/upgrade-strategy-recreate-hash", hash);
	sets(&b, annos, "ray.io/kuberay-version", o->version ? o->version : RW_RC_DEFAULT_VERSION);
	if (b.err) {
		rw_rc_free(tmpl);
		rw_rc_free(params);
		return b.err;
	}
	pod = build_pod(&b, c, o, tmpl, params, true, fqdn, head_port);
	rw_rc_free(params);
	return finish(&b, pod, out);
}

int
rw_rc_build_worker_pod(const struct rw_rc_cluster *c, const struct rw_rc_opts *o, int group,
		       const struct rw_rc_slot *slot, struct rw_buf *out)
{
	struct b b = {0};
	char name[160], prefix[320], fqdn[700], num[32];
	node *g = rw_rc_group(c, group);
	node *tmpl, *meta, *spec, *params, *labels, *pod, *annos;
	const char *head_port = rw_rc_head_port(c);
	const char *gname = rw_rc_group_name(c, group);
	int64_t hosts = 1;

	if (!g || !container0(rw_rc_path(g, "template.spec")))
		return -EINVAL;
	rw_rc_int(rw_rc_get(g, "numOfHosts"), &hosts);
	rw_rc_fqdn(c, o, fqdn, sizeof(fqdn));
	tmpl = template_copy(&b, g);
	meta = obj(&b, tmpl, "metadata");
	spec = obj(&b, tmpl, "spec");
	snprintf(prefix, sizeof(prefix), "%s-%s", c->name, gname);
	rw_rc_pod_name(prefix, false, true, name, sizeof(name));
	sets(&b, meta, "generateName", name);
	sets(&b, meta, "namespace", c->ns);
	if (o->init_container_injection)
		wait_gcs_container(&b, o, spec, fqdn, head_port);
	rw_rc_del(meta, "name");
	params = params_copy(&b, rw_rc_get(g, "rayStartParams"));
	params_group_resources(&b, params, rw_rc_get(g, "resources"));
	params_group_labels(&b, params, rw_rc_get(g, "labels"));
	labels = pod_labels(&b, c, false, gname, rw_rc_get(meta, "labels"), rw_rc_get(g, "labels"));
	if (slot && slot->replica_index >= 0) {
		snprintf(num, sizeof(num), "%d", slot->replica_index);
		sets(&b, labels, "ray.io/worker-group-replica-index", num);
		if (hosts > 1) {
			sets(&b, labels, "ray.io/worker-group-replica-name",
			     slot->replica_name ? slot->replica_name : "");
			snprintf(num, sizeof(num), "%d", slot->host_index);
			sets(&b, labels, "ray.io/replica-host-index", num);
		}
	}
	set(&b, meta, "labels", labels);
	params_missing(&b, params, false, head_port, fqdn);
	annos = obj(&b, meta, "annotations");
	if (overwrite_cmd(c->annotations))
		sets(&b, annos, "ray.io/overwrite-container-cmd", "true");
	gcs_ft(&b, c, tmpl, params, false);
	add_metrics_port(&b, container0(spec));
	if (rw_rc_autoscaling(c) && rw_rc_autoscaling_v2(c))
		sets(&b, spec, "restartPolicy", "Never");
	token_auth(&b, c, container0(spec));
	if (streq(rw_rc_gets(rw_rc_get(c->spec, "authOptions"), "mode"), "token")) {
		node *ics = rw_rc_get(spec, "initContainers");
		for (int i = 0; ics && ics->type == RW_RC_ARR && i < ics->n; i++)
			if (streq(rw_rc_gets(ics->kids[i], "name"), "wait-gcs-ready"))
				token_auth(&b, c, ics->kids[i]);
	}
	if (b.err) {
		rw_rc_free(tmpl);
		rw_rc_free(params);
		return b.err;
	}
	pod = build_pod(&b, c, o, tmpl, params, false, fqdn, head_port);
	rw_rc_free(params);
	return finish(&b, pod, out);
}

/* ---- services ---- */

/* getServicePorts: head container ports by name (or defaults) plus metrics. */
static node *
service_ports(struct b *b, const struct rw_rc_cluster *c)
{
	node *m = nnew(b, RW_RC_OBJ);
	node *ray = container0(rw_rc_path(c->head, "template.spec"));
	node *ports = rw_rc_get(ray, "ports");
	for (int i = 0; ports && ports->type == RW_RC_ARR && i < ports->n; i++) {
		int64_t cp = 0;
		char nm[300];
		const char *name = rw_rc_gets(ports->kids[i], "name");
		rw_rc_int(rw_rc_get(ports->kids[i], "containerPort"), &cp);
		if (!name || !*name) {
			snprintf(nm, sizeof(nm), "%lld-port", (long long)cp);
			name = nm;
		}
		seti(b, m, name, cp);
	}
	if (m && m->n == 0) {
		seti(b, m, "client", 10001);
		seti(b, m, "gcs-server", 6379);
		seti(b, m, "dashboard", 8265);
		seti(b, m, "metrics", 8080);
		seti(b, m, "serve", 8000);
	}
	if (!rw_rc_get(m, "metrics"))
		seti(b, m, "metrics", 8080);
	return m;
}

static void
svc_meta(struct b *b, const struct rw_rc_cluster *c, node *svc, const char *name)
{
	char nm[80];
	node *meta = obj(b, svc, "metadata");
	rw_rc_check_name(name, nm, sizeof(nm));
	sets(b, meta, "name", nm);
	sets(b, meta, "namespace", c->ns);
	owner_ref(b, c, meta);
}

static node *
head_selector(struct b *b, const struct rw_rc_cluster *c)
{
	char id[320], idl[80];
	node *s = nnew(b, RW_RC_OBJ);
	const char *app =
	    param_raw(rw_rc_path(c->head, "template.metadata.labels"), "app.kubernetes.io/name");
	snprintf(id, sizeof(id), "%s-head", c->name);
	rw_rc_check_label(id, idl, sizeof(idl));
	sets(b, s, "ray.io/cluster", c->name);
	sets(b, s, "ray.io/node-type", "head");
	sets(b, s, "ray.io/identifier", idl);
	sets(b, s, "app.kubernetes.io/name", app ? app : "kuberay");
	sets(b, s, "app.kubernetes.io/created-by", "kuberay-operator");
	return s;
}

int
rw_rc_build_head_service(const struct rw_rc_cluster *c, const struct rw_rc_opts *o,
			 struct rw_buf *out)
{
	struct b b = {0};
	char name[320];
	node *svc, *meta, *spec, *ports, *pm, *custom, *annos, *sel;
	const char *type = rw_rc_gets(c->head, "serviceType");
	node *hsa = rw_rc_get(c->spec, "headServiceAnnotations");
	int n;
	const char **keys;

	if (!c->head)
		return -EINVAL;
	rw_rc_head_svc_name(c, name, sizeof(name));
	pm = service_ports(&b, c);
	sel = head_selector(&b, c);
	keys = sorted_keys(pm, &n);
	if (n > 0 && !keys)
		fail(&b, -ENOMEM);
	ports = nnew(&b, RW_RC_ARR);
	for (int i = 0; i < n; i++) {
		node *p = nnew(&b, RW_RC_OBJ);
		int64_t v = 0;
		rw_rc_int(rw_rc_get(pm, keys[i]), &v);
		sets(&b, p, "name", keys[i]);
		seti(&b, p, "port", v);
		sets(&b, p, "appProtocol", "tcp");
		push(&b, ports, p);
	}
	free(keys);
	rw_rc_free(pm);
	custom = rw_rc_get(c->head, "headService");
	if (custom && custom->type == RW_RC_OBJ) {
		svc = nclone(&b, custom);
		sets(&b, svc, "apiVersion", "v1");
		sets(&b, svc, "kind", "Service");
		meta = obj(&b, svc, "metadata");
		spec = obj(&b, svc, "spec");
		set(&b, spec, "selector", nclone(&b, sel));
		annos = obj(&b, meta, "annotations");
		for (int i = 0; hsa && hsa->type == RW_RC_OBJ && i < hsa->n; i++)
			set(&b, annos, hsa->kids[i]->key, nclone(&b, hsa->kids[i]));
		if (annos && annos->n == 0)
			rw_rc_del(meta, "annotations");
		node *sp = arr(&b, spec, "ports");
		for (int i = 0; ports && i < ports->n; i++)
			push(&b, sp, nclone(&b, ports->kids[i]));
		node *lab = obj(&b, meta, "labels");
		for (int i = 0; sel && i < sel->n; i++)
			set(&b, lab, sel->kids[i]->key, nclone(&b, sel->kids[i]));
		const char *cn = rw_rc_gets(meta, "name");
		if (!cn || !*cn)
			sets(&b, meta, "name", name);
		sets(&b, meta, "namespace", c->ns);
		const char *ct = rw_rc_gets(spec, "type");
		if ((!ct || !*ct) && type && *type)
			sets(&b, spec, "type", type);
		char nm[80];
		rw_rc_check_name(rw_rc_gets(meta, "name") ? rw_rc_gets(meta, "name") : name, nm,
				 sizeof(nm));
		sets(&b, meta, "name", nm);
		owner_ref(&b, c, meta);
		rw_rc_free(ports);
		rw_rc_free(sel);
		return finish(&b, svc, out);
	}
	svc = nnew(&b, RW_RC_OBJ);
	sets(&b, svc, "apiVersion", "v1");
	sets(&b, svc, "kind", "Service");
	svc_meta(&b, c, svc, name);
	meta = obj(&b, svc, "metadata");
	set(&b, meta, "labels", nclone(&b, sel));
	if (hsa && hsa->type == RW_RC_OBJ && hsa->n > 0)
		set(&b, meta, "annotations", nclone(&b, hsa));
	spec = obj(&b, svc, "spec");
	set(&b, spec, "selector", sel);
	set(&b, spec, "ports", ports);
	if (type && *type)
		sets(&b, spec, "type", type);
	if (!o->head_cluster_ip_service && (!type || !*type || streq(type, "ClusterIP"))) {
		sets(&b, spec, "clusterIP", "None");
		setb(&b, spec, "publishNotReadyAddresses", true);
	}
	return finish(&b, svc, out);
}

bool
rw_rc_wants_serve_service(const struct rw_rc_cluster *c)
{
	return streq(param_raw(c->annotations, "ray.io/enable-serve-service"), "true");
}

int
rw_rc_build_serve_service(const struct rw_rc_cluster *c, const struct rw_rc_opts *o,
			  struct rw_buf *out)
{
	struct b b = {0};
	char name[320], label[320];
	node *pm, *svc, *meta, *l, *spec, *p;
	int64_t port = 0;
	const char *type = rw_rc_gets(c->head, "serviceType");
	(void)o;

	if (!c->head)
		return -EINVAL;
	pm = service_ports(&b, c);
	if (rw_rc_int(rw_rc_get(pm, "serve"), &port) != 0) {
		rw_rc_free(pm);
		return b.err ? b.err : -ENOENT;
	}
	rw_rc_free(pm);
	snprintf(name, sizeof(name), "%s-serve-svc", c->name);
	snprintf(label, sizeof(label), "%s-serve", c->name);
	svc = nnew(&b, RW_RC_OBJ);
	sets(&b, svc, "apiVersion", "v1");
	sets(&b, svc, "kind", "Service");
	svc_meta(&b, c, svc, name);
	meta = obj(&b, svc, "metadata");
	l = obj(&b, meta, "labels");
	sets(&b, l, "ray.io/originated-from-cr-name", c->name);
	sets(&b, l, "ray.io/originated-from-crd", "RayCluster");
	sets(&b, l, "ray.io/serve", label);
	spec = obj(&b, svc, "spec");
	sets(&b, obj(&b, spec, "selector"), "ray.io/cluster", c->name);
	p = nnew(&b, RW_RC_OBJ);
	sets(&b, p, "name", "serve");
	seti(&b, p, "port", port);
	push(&b, arr(&b, spec, "ports"), p);
	if (type && *type)
		sets(&b, spec, "type", type);
	return finish(&b, svc, out);
}

bool
rw_rc_wants_headless_service(const struct rw_rc_cluster *c)
{
	for (int i = 0; i < c->ngroups; i++) {
		int64_t h = 1;
		if (rw_rc_int(rw_rc_get(rw_rc_group(c, i), "numOfHosts"), &h) == 0 && h > 1)
			return true;
	}
	return false;
}

int
rw_rc_build_headless_service(const struct rw_rc_cluster *c, struct rw_buf *out)
{
	struct b b = {0};
	char name[320];
	node *svc = nnew(&b, RW_RC_OBJ), *meta, *spec, *sel;
	snprintf(name, sizeof(name), "%s-headless", c->name);
	sets(&b, svc, "apiVersion", "v1");
	sets(&b, svc, "kind", "Service");
	svc_meta(&b, c, svc, name);
	meta = obj(&b, svc, "metadata");
	sets(&b, obj(&b, meta, "labels"), "ray.io/headless-worker-svc", c->name);
	spec = obj(&b, svc, "spec");
	sets(&b, spec, "clusterIP", "None");
	sel = obj(&b, spec, "selector");
	sets(&b, sel, "ray.io/cluster", c->name);
	sets(&b, sel, "ray.io/node-type", "worker");
	sets(&b, spec, "type", "ClusterIP");
	setb(&b, spec, "publishNotReadyAddresses", true);
	return finish(&b, svc, out);
}

/* ---- autoscaler RBAC (common/rbac.go) ---- */

static node *
rbac_obj(struct b *b, const struct rw_rc_cluster *c, const char *api, const char *kind,
	 const char *name)
{
	node *o = nnew(b, RW_RC_OBJ);
	char nm[80];
	sets(b, o, "apiVersion", api);
	sets(b, o, "kind", kind);
	node *meta = obj(b, o, "metadata");
	rw_rc_check_name(name, nm, sizeof(nm));
	sets(b, meta, "name", nm);
	sets(b, meta, "namespace", c->ns);
	node *l = obj(b, meta, "labels");
	sets(b, l, "ray.io/cluster", c->name);
	sets(b, l, "app.kubernetes.io/name", "kuberay");
	sets(b, l, "app.kubernetes.io/created-by", "kuberay-operator");
	owner_ref(b, c, meta);
	return o;
}

static const char *
sa_name(const struct rw_rc_cluster *c)
{
	const char *t = rw_rc_gets(rw_rc_path(c->head, "template.spec"), "serviceAccountName");
	return t && *t ? t : c->name;
}

int
rw_rc_build_service_account(const struct rw_rc_cluster *c, struct rw_buf *out)
{
	struct b b = {0};
	return finish(&b, rbac_obj(&b, c, "v1", "ServiceAccount", sa_name(c)), out);
}

static node *
rule(struct b *b, const char *group, const char *res, const char *const *verbs)
{
	node *r = nnew(b, RW_RC_OBJ);
	node *g = arr(b, r, "apiGroups"), *rs = arr(b, r, "resources"), *v = arr(b, r, "verbs");
	push(b, g, nstr(b, group));
	push(b, rs, nstr(b, res));
	for (; *verbs; verbs++)
		push(b, v, nstr(b, *verbs));
	return r;
}

int
rw_rc_build_role(const struct rw_rc_cluster *c, struct rw_buf *out)
{
	static const char *const pods[] = {"get", "list", "watch", "patch", NULL};
	static const char *const resize[] = {"patch", NULL};
	static const char *const rcs[] = {"get", "patch", NULL};
	struct b b = {0};
	node *r = rbac_obj(&b, c, "rbac.authorization.k8s.io/v1", "Role", c->name);
	node *rules = arr(&b, r, "rules");
	push(&b, rules, rule(&b, "", "pods", pods));
	push(&b, rules, rule(&b, "", "pods/resize", resize));
	push(&b, rules, rule(&b, "ray.io", "rayclusters", rcs));
	return finish(&b, r, out);
}

int
rw_rc_build_role_binding(const struct rw_rc_cluster *c, struct rw_buf *out)
{
	struct b b = {0};
	char sa[80], role[80];
	node *rb = rbac_obj(&b, c, "rbac.authorization.k8s.io/v1", "RoleBinding", c->name);
	node *s = nnew(&b, RW_RC_OBJ);
	rw_rc_check_name(sa_name(c), sa, sizeof(sa));
	rw_rc_check_name(c->name, role, sizeof(role));
	sets(&b, s, "kind", "ServiceAccount");
	sets(&b, s, "name", sa);
	sets(&b, s, "namespace", c->ns);
	push(&b, arr(&b, rb, "subjects"), s);
	node *ref = obj(&b, rb, "roleRef");
	sets(&b, ref, "apiGroup", "rbac.authorization.k8s.io");
	sets(&b, ref, "kind", "Role");
	sets(&b, ref, "name", role);
	return finish(&b, rb, out);
}

/* ---- pods and scaling ---- */

static void
copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

int
rw_rc_pod_parse(const char *json, size_t len, struct rw_rc_pod_buf *out)
{
	node *root = NULL, *md, *st, *conds, *cs;
	const char *t;
	int rv = rw_rc_parse(json, len, &root, NULL, 0);
	memset(out, 0, sizeof(*out));
	if (rv)
		return rv;
	if (root->type != RW_RC_OBJ) {
		rw_rc_free(root);
		return -EINVAL;
	}
	md = rw_rc_get(root, "metadata");
	st = rw_rc_get(root, "status");
	copy_str(out->name, sizeof(out->name), rw_rc_gets(md, "name"));
	copy_str(out->group, sizeof(out->group),
		 rw_rc_gets(rw_rc_get(md, "labels"), "ray.io/group"));
	t = rw_rc_gets(rw_rc_get(md, "labels"), "ray.io/node-type");
	out->pod.type = streq(t, "head")     ? RW_RC_NT_HEAD
			: streq(t, "worker") ? RW_RC_NT_WORKER
					     : RW_RC_NT_OTHER;
	copy_str(out->phase, sizeof(out->phase), rw_rc_gets(st, "phase"));
	copy_str(out->ip, sizeof(out->ip), rw_rc_gets(st, "podIP"));
	copy_str(out->restart, sizeof(out->restart),
		 rw_rc_gets(rw_rc_get(root, "spec"), "restartPolicy"));
	out->pod.deleting = rw_rc_get(md, "deletionTimestamp") &&
			    rw_rc_get(md, "deletionTimestamp")->type != RW_RC_NULL;
	conds = rw_rc_get(st, "conditions");
	for (int i = 0; conds && conds->type == RW_RC_ARR && i < conds->n; i++) {
		if (!streq(rw_rc_gets(conds->kids[i], "type"), "Ready"))
			continue;
		out->pod.ready_cond = true;
		out->pod.ready = streq(rw_rc_gets(conds->kids[i], "status"), "True");
		copy_str(out->reason, sizeof(out->reason), rw_rc_gets(conds->kids[i], "reason"));
		copy_str(out->message, sizeof(out->message), rw_rc_gets(conds->kids[i], "message"));
		out->pod.ready_reason = out->reason;
		out->pod.ready_message = out->message;
		break;
	}
	/* The Ray container is containers[0]: match its status by name. */
	cs = rw_rc_get(st, "containerStatuses");
	t = rw_rc_gets(rw_rc_at(rw_rc_path(root, "spec.containers"), 0), "name");
	for (int i = 0; t && cs && cs->type == RW_RC_ARR && i < cs->n; i++)
		if (streq(rw_rc_gets(cs->kids[i], "name"), t) &&
		    rw_rc_path(cs->kids[i], "state.terminated"))
			out->pod.ray_terminated = true;
	out->pod.name = out->name;
	out->pod.group = out->group;
	out->pod.phase = out->phase;
	out->pod.pod_ip = out->ip;
	out->pod.restart_policy = out->restart;
	rw_rc_free(root);
	return 0;
}

static int64_t
int_or(const node *o, const char *key, int64_t def)
{
	int64_t v;
	node *n = rw_rc_get(o, key);
	if (!n || n->type == RW_RC_NULL || rw_rc_int(n, &v) != 0)
		return def;
	return v;
}

static int32_t
sat32(int64_t v)
{
	return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

int32_t
rw_rc_group_desired(const struct rw_rc_cluster *c, int group)
{
	node *g = rw_rc_group(c, group);
	int64_t min, max, rep, hosts, w;
	if (!g || rw_rc_true(rw_rc_get(g, "suspend")))
		return 0;
	min = int_or(g, "minReplicas", 0);
	max = int_or(g, "maxReplicas", INT32_MAX);
	hosts = int_or(g, "numOfHosts", 1);
	if (!rw_rc_get(g, "replicas") || rw_rc_get(g, "replicas")->type == RW_RC_NULL)
		rep = -1;
	else
		rep = int_or(g, "replicas", 0);
	if (min > max)
		w = max;
	else if (rep < 0 || rep < min)
		w = min;
	else if (rep > max)
		w = max;
	else
		w = rep;
	if (hosts < 1)
		hosts = 1;
	if (w < 0)
		w = 0; /* negative bounds are refused by validation; never plan below zero */
	return sat32((int64_t)sat32(w) * sat32(hosts)); /* int32 fields in Go */
}

int32_t
rw_rc_desired_workers(const struct rw_rc_cluster *c)
{
	int64_t s = 0;
	for (int i = 0; i < c->ngroups; i++)
		s += rw_rc_group_desired(c, i);
	return sat32(s);
}

static int32_t
sum_groups(const struct rw_rc_cluster *c, const char *key, int64_t def)
{
	int64_t s = 0;
	for (int i = 0; i < c->ngroups; i++) {
		node *g = rw_rc_group(c, i);
		if (!g || rw_rc_true(rw_rc_get(g, "suspend")))
			continue;
		s += sat32((int64_t)sat32(int_or(g, key, def)) * sat32(int_or(g, "numOfHosts", 1)));
	}
	return sat32(s);
}

int32_t
rw_rc_min_workers(const struct rw_rc_cluster *c)
{
	return sum_groups(c, "minReplicas", 0);
}

int32_t
rw_rc_max_workers(const struct rw_rc_cluster *c)
{
	return sum_groups(c, "maxReplicas", INT32_MAX);
}

bool
rw_rc_should_delete_pod(const struct rw_rc_pod *p, bool head, char *reason, size_t rlen)
{
	const char *nt = head ? "head" : "worker";
	const char *name = p->name ? p->name : "";
	const char *phase = p->phase ? p->phase : "";
	if (streq(phase, "Failed") || streq(phase, "Succeeded")) {
		if (reason)
			snprintf(
			    reason, rlen,
			    "The %s Pod %s status is %s which is a terminal state. KubeRay will "
			    "delete the Pod and create new Pods in the next reconciliation if "
			    "necessary.",
			    nt, name, phase);
		return true;
	}
	if (streq(phase, "Running") && p->ray_terminated) {
		if (streq(p->restart_policy, "Never")) {
			if (reason)
				snprintf(
				    reason, rlen,
				    "The Pod status of the %s Pod %s is %s, and the Ray container "
				    "terminated status is not nil. Since the Pod's restart policy "
				    "is Never, KubeRay will delete the Pod.",
				    nt, name, phase);
			return true;
		}
		if (reason)
			snprintf(reason, rlen,
				 "The Pod status of the %s Pod %s is %s, and the Ray container "
				 "terminated status is not nil. The Pod will be restarted by its "
				 "restart policy.",
				 nt, name, phase);
		return false;
	}
	if (reason)
		snprintf(reason, rlen,
			 "KubeRay does not need to delete the %s Pod %s. The Pod status is %s.", nt,
			 name, phase);
	return false;
}

enum rw_rc_head_action
rw_rc_plan_head(const struct rw_rc_cluster *c, const struct rw_rc_pod *pods, size_t npods,
		bool provisioned, const char **name)
{
	const struct rw_rc_pod *head = NULL;
	size_t n = 0;
	*name = NULL;
	for (size_t i = 0; i < npods; i++)
		if (pods[i].type == RW_RC_NT_HEAD) {
			head = &pods[i];
			n++;
		}
	if (n == 0)
		return RW_RC_HEAD_CREATE;
	if (n > 1)
		return RW_RC_HEAD_MANY;
	if (provisioned &&
	    lower_is(param_raw(c->annotations, "ray.io/disable-provisioned-head-restart"), "true"))
		return RW_RC_HEAD_OK;
	if (rw_rc_should_delete_pod(head, true, NULL, 0)) {
		*name = head->name;
		return RW_RC_HEAD_DELETE;
	}
	return RW_RC_HEAD_OK;
}

static int
plan_add(struct rw_rc_group_plan *plan, const char *name)
{
	const char **d;
	for (size_t i = 0; i < plan->ndel; i++)
		if (streq(plan->del[i], name))
			return 0;
	d = realloc(plan->del, (plan->ndel + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	plan->del = d;
	plan->del[plan->ndel++] = name;
	return 0;
}

static bool
planned(const struct rw_rc_group_plan *plan, const char *name)
{
	for (size_t i = 0; i < plan->ndel; i++)
		if (streq(plan->del[i], name))
			return true;
	return false;
}

int
rw_rc_plan_group(const struct rw_rc_cluster *c, const struct rw_rc_opts *o, int group,
		 const struct rw_rc_pod *pods, size_t npods, struct rw_rc_group_plan *plan)
{
	node *g = rw_rc_group(c, group);
	const char *gname = rw_rc_group_name(c, group);
	node *wtd;
	size_t running = 0;
	int rv = 0;

	memset(plan, 0, sizeof(*plan));
	if (!g)
		return -EINVAL;
	plan->desired = rw_rc_group_desired(c, group);
	if (rw_rc_suspended(c) || rw_rc_true(rw_rc_get(g, "suspend"))) {
		plan->desired = 0;
		for (size_t i = 0; i < npods && !rv; i++)
			if (pods[i].type == RW_RC_NT_WORKER && streq(pods[i].group, gname) &&
			    !pods[i].deleting)
				rv = plan_add(plan, pods[i].name);
		return rv;
	}
	for (size_t i = 0; i < npods && !rv; i++) {
		if (pods[i].type != RW_RC_NT_WORKER || !streq(pods[i].group, gname))
			continue;
		if (rw_rc_should_delete_pod(&pods[i], false, NULL, 0)) {
			rv = plan_add(plan, pods[i].name);
			plan->unhealthy = true;
		}
	}
	if (rv || plan->unhealthy)
		return rv;
	wtd = rw_rc_path(g, "scaleStrategy.workersToDelete");
	for (int i = 0; wtd && wtd->type == RW_RC_ARR && i < wtd->n && !rv; i++)
		if (rw_rc_str(wtd->kids[i]))
			rv = plan_add(plan, wtd->kids[i]->s);
	for (size_t i = 0; i < npods; i++)
		if (pods[i].type == RW_RC_NT_WORKER && streq(pods[i].group, gname) &&
		    !pods[i].deleting && !planned(plan, pods[i].name))
			running++;
	if ((int64_t)plan->desired > (int64_t)running) {
		plan->create = (int32_t)(plan->desired - (int64_t)running);
	} else if ((int64_t)plan->desired < (int64_t)running) {
		bool autoscale = rw_rc_autoscaling(c);
		if (!autoscale || o->random_pod_delete) {
			size_t surplus = running - (size_t)plan->desired;
			for (size_t i = 0; i < npods && surplus > 0 && !rv; i++) {
				if (pods[i].type != RW_RC_NT_WORKER ||
				    !streq(pods[i].group, gname) || pods[i].deleting ||
				    planned(plan, pods[i].name))
					continue;
				rv = plan_add(plan, pods[i].name);
				surplus--;
			}
		}
	}
	return rv;
}

void
rw_rc_group_plan_fini(struct rw_rc_group_plan *plan)
{
	free(plan->del);
	memset(plan, 0, sizeof(*plan));
}

/* ---- hash ---- */

int
rw_rc_spec_hash(const struct rw_rc_node *spec, char out[33])
{
	static const char alpha[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
	node *s = spec ? rw_rc_clone(spec) : rw_rc_new(RW_RC_OBJ);
	struct rw_buf buf;
	struct rw_jw w;
	unsigned char dig[20];
	int rv;

	if (!s)
		return -ENOMEM;
	if (s->type == RW_RC_OBJ) {
		node *groups = rw_rc_get(s, "workerGroupSpecs");
		for (int i = 0; groups && groups->type == RW_RC_ARR && i < groups->n; i++) {
			node *g = groups->kids[i];
			rw_rc_del(g, "replicas");
			rw_rc_del(g, "minReplicas");
			rw_rc_del(g, "maxReplicas");
			rw_rc_del(rw_rc_get(g, "scaleStrategy"), "workersToDelete");
			if (rw_rc_get(g, "scaleStrategy") && rw_rc_get(g, "scaleStrategy")->n == 0)
				rw_rc_del(g, "scaleStrategy"); /* Go always writes the struct */
			rw_rc_del(rw_rc_path(g, "template.spec"), "tolerations");
			rw_rc_del(rw_rc_path(g, "template.spec"), "schedulingGates");
		}
		rw_rc_del(rw_rc_path(s, "headGroupSpec.template.spec"), "tolerations");
		rw_rc_del(rw_rc_path(s, "headGroupSpec.template.spec"), "schedulingGates");
		rw_rc_del(s, "upgradeStrategy");
		rw_rc_del(s, "suspend");
	}
	rw_buf_init(&buf, RW_RC_MAX_OUT);
	rw_jw_init(&w, &buf);
	rw_rc_write_sorted(s, &w);
	rv = rw_jw_finish(&w);
	rw_rc_free(s);
	if (rv == 0) {
		const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA1);
		if (!md || mbedtls_md(md, (const unsigned char *)rw_buf_cstr(&buf), buf.len, dig))
			rv = -EIO;
	}
	rw_buf_fini(&buf);
	if (rv)
		return rv;
	/* base32hex (RFC 4648 "extended hex"): 160 bits -> 32 characters, no padding. */
	for (int i = 0; i < 32; i++) {
		int bit = i * 5, byte = bit / 8, off = bit % 8;
		unsigned v = (unsigned)dig[byte] << 8 | (byte + 1 < 20 ? dig[byte + 1] : 0);
		out[i] = alpha[(v >> (11 - off)) & 31];
	}
	out[32] = '\0';
	return 0;
}
