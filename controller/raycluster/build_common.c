/* build_common.c - options, the parsed RayCluster, KubeRay's names and predicates, spec hash. */

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/md.h>

#include "build_internal.h"
#include "quantity.h"

/* ---- options ---- */

void
rw_raycluster_opts_default(struct rw_raycluster_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->agent = true;
	o->agent_image = RW_RAYCLUSTER_DEFAULT_AGENT_IMAGE;
	o->agent_port = 8477;
	o->agent_cpu_request = "10m";
	o->agent_mem_request = "16Mi";
	o->agent_cpu_limit = "100m";
	o->agent_mem_limit = "64Mi";
	o->proxy_readiness = "auto";
	o->headonly_workers_ready = true;
	o->agent_liveness_grace_s = 60;
	o->readiness_gate = true;
	o->probes = RW_RAYCLUSTER_PROBE_AGENT;
	o->agent_readiness_period_s = 1;
	o->drain_s = RW_RAYCLUSTER_DEFAULT_DRAIN_S;
	o->init_container_injection = true;
	o->probes_injection = true;
	o->cluster_domain = "cluster.local";
	o->version = RW_RAYCLUSTER_DEFAULT_VERSION;
}

void
rw_raycluster_opts_from_env(struct rw_raycluster_opts *o, char *(*getenv_fn)(const char *))
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
	    atoi(v) <= RW_RAYCLUSTER_DRAIN_MAX_S)
		o->drain_s = atoi(v);
}

static int
agent_qty(const char *flag, const char *v, struct rw_qty *q, char *why, size_t n)
{
	if (rw_qty_parse(v ? v : "", q) == 0 && q->units >= 0)
		return 0;
	snprintf(why, n, "--agent-%s: \"%.40s\" is not a Kubernetes quantity", flag, v ? v : "");
	return -EINVAL;
}

int
rw_raycluster_opts_check(const struct rw_raycluster_opts *o, char *why, size_t n)
{
	static const char *const res[] = {"cpu", "memory"};
	const char *req[] = {o->agent_cpu_request, o->agent_mem_request};
	const char *lim[] = {o->agent_cpu_limit, o->agent_mem_limit};
	char flag[32];
	for (int i = 0; i < 2; i++) {
		struct rw_qty rq, lq;
		snprintf(flag, sizeof(flag), "%s-request", res[i]);
		if (agent_qty(flag, req[i], &rq, why, n) != 0)
			return -EINVAL;
		snprintf(flag, sizeof(flag), "%s-limit", res[i]);
		if (agent_qty(flag, lim[i], &lq, why, n) != 0)
			return -EINVAL;
		if (rq.units > lq.units || (rq.units == lq.units && rq.nano > lq.nano)) {
			snprintf(why, n,
				 "the agent's %s request %.40s is above its limit %.40s "
				 "(--agent-%s-request, --agent-%s-limit)",
				 res[i], req[i], lim[i], res[i], res[i]);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- cluster ---- */

struct rw_doc_node *
rw_raycluster_group(const struct rw_raycluster *c, int i)
{
	node *g = rw_doc_at(c->groups, i);
	return g && g->type == RW_DOC_OBJ ? g : NULL;
}

const char *
rw_raycluster_group_name(const struct rw_raycluster *c, int i)
{
	const char *n = rw_doc_gets(rw_raycluster_group(c, i), "groupName");
	return n ? n : "";
}

int
rw_raycluster_group_index(const struct rw_raycluster *c, const char *name)
{
	for (int i = 0; i < c->ngroups; i++)
		if (streq(rw_raycluster_group_name(c, i), name))
			return i;
	return -1;
}

static_assert(offsetof(struct rw_raycluster, obj) == 0, "rw_doc_object_alloc's layout");

int
rw_raycluster_parse(const char *json, size_t len, struct rw_raycluster **out, char *err,
		    size_t errlen)
{
	struct rw_raycluster *c;
	int rv =
	    rw_doc_object_alloc(json, len, "RayCluster", sizeof(*c), (void **)out, err, errlen);
	if (rv)
		return rv;
	c = *out;
	c->head = rw_doc_get(c->obj.spec, "headGroupSpec");
	if (c->head && c->head->type != RW_DOC_OBJ)
		c->head = NULL;
	c->groups = rw_doc_get(c->obj.spec, "workerGroupSpecs");
	if (c->groups && c->groups->type != RW_DOC_ARR)
		c->groups = NULL;
	c->ngroups = c->groups ? c->groups->n : 0;
	return 0;
}

void
rw_raycluster_free(struct rw_raycluster *c)
{
	if (!c)
		return;
	rw_doc_free(c->obj.root);
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
rw_raycluster_check_name(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in);
	const char *s = n > 50 ? in + (n - 50) : in;
	snprintf(out, outlen, "%s", s);
	if (out[0] && (isdigit((unsigned char)out[0]) || go_ispunct((unsigned char)out[0])))
		out[0] = 'r';
	/* A digit replaced above can no longer be punctuation; Go checks both in turn. */
}

void
rw_raycluster_check_label(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in);
	const char *s = n > 63 ? in + (n - 63) : in;
	snprintf(out, outlen, "%s", s);
	if (out[0] && go_ispunct((unsigned char)out[0]))
		out[0] = 'r';
}

void
rw_raycluster_pod_name(const char *prefix, bool head, bool generate, char *out, size_t outlen)
{
	size_t n = strlen(prefix);
	snprintf(out, outlen, "%.*s-%s%s", (int)(n > 50 ? 50 : n), prefix, head ? "head" : "worker",
		 generate ? "-" : "");
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

void
rw_raycluster_head_svc_name(const struct rw_raycluster *c, char *out, size_t outlen)
{
	char tmp[320];
	const char *custom = rw_doc_gets(rw_doc_path(c->head, "headService.metadata"), "name");
	if (custom && *custom) {
		snprintf(out, outlen, "%s", custom);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s-head-svc", c->obj.name);
	rw_raycluster_check_name(tmp, out, outlen);
}

void
rw_raycluster_fqdn(const struct rw_raycluster *c, const struct rw_raycluster_opts *o, char *out,
		   size_t outlen)
{
	char svc[320];
	rw_raycluster_head_svc_name(c, svc, sizeof(svc));
	snprintf(out, outlen, "%s.%s.svc.%s", svc, c->obj.ns,
		 o->cluster_domain && *o->cluster_domain ? o->cluster_domain : "cluster.local");
}

const char *
rw_raycluster_head_port(const struct rw_raycluster *c)
{
	const char *p = param_raw(rw_doc_get(c->head, "rayStartParams"), "port");
	return p ? p : "6379";
}

void
rw_raycluster_agent_secret_name(const struct rw_raycluster *c, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s-raywarden-key", c->obj.name);
}

/* ---- predicates ---- */

bool
rw_raycluster_autoscaling(const struct rw_raycluster *c)
{
	return rw_doc_true(rw_doc_get(c->obj.spec, "enableInTreeAutoscaling"));
}

bool
rw_raycluster_autoscaling_v2(const struct rw_raycluster *c)
{
	const char *ver = rw_doc_gets(rw_doc_get(c->obj.spec, "autoscalerOptions"), "version");
	node *e;
	if (ver)
		return strcmp(ver, "v2") == 0;
	e = env_find(rw_doc_get(container0(rw_doc_path(c->head, "template.spec")), "env"),
		     "RAY_enable_autoscaler_v2");
	return e && (streq(rw_doc_gets(e, "value"), "1") || streq(rw_doc_gets(e, "value"), "true"));
}

bool
rw_raycluster_gcs_ft(const struct rw_raycluster *c)
{
	node *opts = rw_doc_get(c->obj.spec, "gcsFaultToleranceOptions");
	return lower_is(rw_doc_gets(c->obj.annotations, "ray.io/ft-enabled"), "true") ||
	       (opts && opts->type != RW_DOC_NULL);
}

bool
rw_raycluster_suspended(const struct rw_raycluster *c)
{
	return rw_doc_true(rw_doc_get(c->obj.spec, "suspend"));
}

enum rw_raycluster_crd
rw_raycluster_creator(const struct rw_raycluster *c, const struct rw_raycluster_opts *o)
{
	const char *l;
	if (o && o->crd != RW_RAYCLUSTER_CRD_AUTO)
		return o->crd;
	l = rw_doc_gets(c->obj.labels, "ray.io/originated-from-crd");
	if (streq(l, "RayJob"))
		return RW_RAYCLUSTER_CRD_RAYJOB;
	if (streq(l, "RayService"))
		return RW_RAYCLUSTER_CRD_RAYSERVICE;
	return RW_RAYCLUSTER_CRD_RAYCLUSTER;
}

const char *
rw_raycluster_crd_name(enum rw_raycluster_crd crd)
{
	switch (crd) {
	case RW_RAYCLUSTER_CRD_RAYJOB:
		return "RayJob";
	case RW_RAYCLUSTER_CRD_RAYSERVICE:
		return "RayService";
	default:
		return "RayCluster";
	}
}

bool
rw_raycluster_unified_health_check(const char *v)
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
rw_raycluster_gpu_key(const char *key)
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

/* ---- hash ---- */

int
rw_raycluster_spec_hash(const struct rw_doc_node *spec, char out[33])
{
	static const char alpha[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
	node *s = spec ? rw_doc_clone(spec) : rw_doc_new(RW_DOC_OBJ);
	struct rw_buf buf;
	struct rw_jw w;
	unsigned char dig[20];
	int rv;

	if (!s)
		return -ENOMEM;
	if (s->type == RW_DOC_OBJ) {
		node *groups = rw_doc_get(s, "workerGroupSpecs");
		for (int i = 0; groups && groups->type == RW_DOC_ARR && i < groups->n; i++) {
			node *g = groups->kids[i];
			rw_doc_del(g, "replicas");
			rw_doc_del(g, "minReplicas");
			rw_doc_del(g, "maxReplicas");
			rw_doc_del(rw_doc_get(g, "scaleStrategy"), "workersToDelete");
			if (rw_doc_get(g, "scaleStrategy") &&
			    rw_doc_get(g, "scaleStrategy")->n == 0)
				rw_doc_del(g, "scaleStrategy"); /* Go always writes the struct */
			rw_doc_del(rw_doc_path(g, "template.spec"), "tolerations");
			rw_doc_del(rw_doc_path(g, "template.spec"), "schedulingGates");
		}
		rw_doc_del(rw_doc_path(s, "headGroupSpec.template.spec"), "tolerations");
		rw_doc_del(rw_doc_path(s, "headGroupSpec.template.spec"), "schedulingGates");
		rw_doc_del(s, "upgradeStrategy");
		rw_doc_del(s, "suspend");
	}
	rw_buf_init(&buf, RW_DOC_MAX_OUT);
	rw_jw_init(&w, &buf);
	rw_doc_write_sorted(s, &w);
	rv = rw_jw_finish(&w);
	rw_doc_free(s);
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
