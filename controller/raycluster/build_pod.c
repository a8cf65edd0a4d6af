/* build_pod.c - RayCluster -> head and worker Pods (and `ray start`) as KubeRay builds them. */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchsched.h"
#include "build_internal.h"
#include "quantity.h"

/* ---- rayStartParams ---- */

/* Copy rayStartParams as an object of strings (numbers/bools to text). */
static node *
params_copy(struct b *b, const node *src)
{
	node *p = nnew(b, RW_DOC_OBJ);
	for (int i = 0; src && src->type == RW_DOC_OBJ && i < src->n; i++) {
		const char *v = param_raw(src, src->kids[i]->key);
		if (v)
			sets(b, p, src->kids[i]->key, v);
	}
	return p;
}

static int
qty_of(const node *list, const char *key, struct rw_qty *q)
{
	const char *s = rw_doc_gets(list, key);
	node *v = rw_doc_get(list, key);
	if (!s && v && v->type == RW_DOC_NUM)
		s = v->s; /* unquoted YAML numbers */
	if (!s)
		return -ENOENT;
	return rw_qty_parse(s, q);
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
		double d = strtod(rw_doc_get(m, k[i])->s, NULL);
		if (rw_qty_fmt_float(d, num, sizeof(num)) < 0)
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
	n = nnew(b, RW_DOC_NUM);
	if (n && !(n->s = strdup(num))) {
		rw_doc_free(n);
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
	if (!res || res->type != RW_DOC_OBJ || res->n == 0)
		return;
	fmap = nnew(b, RW_DOC_OBJ);
	for (int i = 0; !b->err && i < res->n; i++) {
		const char *name = res->kids[i]->key;
		char lower[256], num[32];
		struct rw_qty q;
		if (qty_of(res, name, &q) != 0)
			continue; /* KubeRay logs and skips unparsable quantities */
		snprintf(lower, sizeof(lower), "%s", name);
		for (char *p = lower; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		snprintf(num, sizeof(num), "%lld", (long long)rw_qty_value(&q));
		if (strcmp(lower, "cpu") == 0)
			sets(b, params, "num-cpus", num);
		else if (strcmp(lower, "memory") == 0)
			sets(b, params, "memory", num);
		else if (rw_raycluster_gpu_key(lower))
			sets(b, params, "num-gpus", num);
		else
			set_float(b, fmap, name, rw_qty_float(&q));
	}
	if (fmap && fmap->n > 0)
		set_quoted_resources(b, params, fmap);
	rw_doc_free(fmap);
}

/* updateRayStartParamsLabels: group `labels` -> labels=k=v,... (sorted). */
static void
params_group_labels(struct b *b, node *params, const node *labels)
{
	struct rw_buf tmp;
	int n;
	const char **k;
	if (!labels || labels->type != RW_DOC_OBJ || labels->n == 0)
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
	if (!head && !rw_doc_get(params, "address")) {
		snprintf(tmp, sizeof(tmp), "%s:%s", fqdn, head_port);
		sets(b, params, "address", tmp);
	}
	if (head && !rw_doc_get(params, "dashboard-host"))
		sets(b, params, "dashboard-host", "0.0.0.0");
	if (!rw_doc_get(params, "metrics-export-port"))
		sets(b, params, "metrics-export-port", "8080");
	sets(b, params, "block", "true");
	if (!rw_doc_get(params, "dashboard-agent-listen-port"))
		sets(b, params, "dashboard-agent-listen-port", "52365");
}

/* getResourcesMap: params["resources"] trimmed of '"` and spaces, as JSON numbers. */
static int
resources_map(struct b *b, const node *params, node **out)
{
	const char *s = rw_doc_gets(params, "resources");
	node *m = NULL;
	*out = NULL;
	if (!s) {
		*out = nnew(b, RW_DOC_OBJ);
		return *out ? 0 : -ENOMEM;
	}
	size_t a = 0, z = strlen(s);
	while (a < z && strchr("'\"` ", s[a]))
		a++;
	while (z > a && strchr("'\"` ", s[z - 1]))
		z--;
	if (rw_doc_parse(s + a, z - a, &m, NULL, 0) != 0)
		return -EINVAL;
	if (m->type == RW_DOC_NULL) {
		rw_doc_free(m);
		*out = nnew(b, RW_DOC_OBJ);
		return *out ? 0 : -ENOMEM;
	}
	if (m->type != RW_DOC_OBJ) {
		rw_doc_free(m);
		return -EINVAL;
	}
	for (int i = 0; i < m->n; i++) {
		if (m->kids[i]->type == RW_DOC_NULL) {
			/* null leaves the float at zero */
			m->kids[i]->type = RW_DOC_NUM;
			m->kids[i]->s = strdup("0");
			if (!m->kids[i]->s) {
				rw_doc_free(m);
				return -ENOMEM;
			}
		} else if (m->kids[i]->type != RW_DOC_NUM) {
			rw_doc_free(m);
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

	if (!limits || limits->type != RW_DOC_OBJ || limits->n == 0)
		return;
	if (resources_map(b, params, &rmap) != 0)
		return; /* KubeRay logs the error and adds nothing */
	for (size_t i = 0; i < sizeof(accel) / sizeof(accel[0]); i++)
		if (rw_doc_get(rmap, accel[i].ray))
			custom_added = true;
	keys = sorted_keys(limits, &n);
	if (!keys) {
		rw_doc_free(rmap);
		fail(b, -ENOMEM);
		return;
	}
	for (int i = 0; i < n && !b->err; i++) {
		struct rw_qty q;
		char num[32];
		if (qty_of(limits, keys[i], &q) != 0)
			continue;
		if (!rw_doc_get(params, "num-gpus") && rw_raycluster_gpu_key(keys[i]) &&
		    !rw_qty_zero(&q)) {
			snprintf(num, sizeof(num), "%lld", (long long)rw_qty_value(&q));
			sets(b, params, "num-gpus", num);
		}
		if (custom_added)
			continue;
		for (size_t a = 0; a < sizeof(accel) / sizeof(accel[0]); a++) {
			if (strcmp(keys[i], accel[a].k8s) != 0 || rw_qty_zero(&q))
				continue;
			if (!rw_doc_get(rmap, accel[a].ray)) {
				set_float(b, rmap, accel[a].ray, rw_qty_float(&q));
				set_quoted_resources(b, params, rmap);
			}
			custom_added = true;
		}
	}
	free(keys);
	rw_doc_free(rmap);
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
	node *limits = rw_doc_get(resources, "limits");
	node *requests = rw_doc_get(resources, "requests");
	struct rw_qty q;
	char num[32];

	if (!rw_doc_get(params, "num-cpus")) {
		if (qty_of(limits, "cpu", &q) == 0 && !rw_qty_zero(&q)) {
			snprintf(num, sizeof(num), "%lld", (long long)rw_qty_value(&q));
			sets(b, params, "num-cpus", num);
		} else if (qty_of(requests, "cpu", &q) == 0 && !rw_qty_zero(&q)) {
			snprintf(num, sizeof(num), "%lld", (long long)rw_qty_value(&q));
			sets(b, params, "num-cpus", num);
		}
	}
	if (!rw_doc_get(params, "memory") && qty_of(limits, "memory", &q) == 0 &&
	    !rw_qty_zero(&q)) {
		snprintf(num, sizeof(num), "%lld", (long long)rw_qty_value(&q));
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
rw_raycluster_ray_start(bool head, const struct rw_doc_node *params,
			const struct rw_doc_node *resources, struct rw_buf *out)
{
	struct b b = {0};
	node *p = params_copy(&b, params);
	gen_ray_start(&b, head, p, resources, out);
	rw_doc_free(p);
	return b.err;
}

static bool
has_port_named(const node *container, const char *name)
{
	return find_container_port(container, name, -1) != -1;
}

/* ---- the pod template stages ---- */

static bool
autoscaling_v1(const struct rw_raycluster *c)
{
	return streq(rw_doc_gets(rw_doc_get(c->obj.spec, "autoscalerOptions"), "version"), "v1");
}

static void
add_metrics_port(struct b *b, node *ray)
{
	if (has_port_named(ray, "metrics"))
		return;
	node *p = nnew(b, RW_DOC_OBJ);
	sets(b, p, "name", "metrics");
	seti(b, p, "containerPort", 8080);
	push(b, arr(b, ray, "ports"), p);
}

/* labelPod with mergeLabels(template labels, group labels). */
static node *
pod_labels(struct b *b, const struct rw_raycluster *c, bool head, const char *group,
	   const node *tmpl_labels, const node *group_labels)
{
	char id[320], idl[80];
	node *l = nnew(b, RW_DOC_OBJ);
	snprintf(id, sizeof(id), "%s-%s", c->obj.name, head ? "head" : "worker");
	rw_raycluster_check_label(id, idl, sizeof(idl));
	sets(b, l, "ray.io/is-ray-node", "yes");
	sets(b, l, "ray.io/cluster", c->obj.name);
	sets(b, l, "ray.io/node-type", head ? "head" : "worker");
	sets(b, l, "ray.io/group", group);
	sets(b, l, "ray.io/identifier", idl);
	sets(b, l, "app.kubernetes.io/name", "kuberay");
	sets(b, l, "app.kubernetes.io/created-by", "kuberay-operator");
	const node *srcs[2] = {tmpl_labels, group_labels};
	for (int s = 0; s < 2; s++) {
		const node *src = srcs[s];
		for (int i = 0; src && src->type == RW_DOC_OBJ && i < src->n; i++) {
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
container_command(struct b *b, const struct rw_raycluster_opts *o, node *container)
{
	node *cmd = nnew(b, RW_DOC_ARR);
	push(b, cmd, nstr(b, "/bin/bash"));
	push(b, cmd, nstr(b, o->login_shell ? "-lc" : "-c"));
	push(b, cmd, nstr(b, "--"));
	set(b, container, "command", cmd);
}

/* RAY_AUTH_TOKEN from the token Secret: authOptions.secretName, else CheckName(<cluster>). */
static void
auth_token_env(struct b *b, const struct rw_raycluster *c, node *env)
{
	char secret[80];
	const char *sn = rw_doc_gets(rw_doc_get(c->obj.spec, "authOptions"), "secretName");
	node *e = nnew(b, RW_DOC_OBJ);
	rw_raycluster_check_name(c->obj.name, secret, sizeof(secret));
	sets(b, e, "name", "RAY_AUTH_TOKEN");
	node *skr = obj(b, obj(b, e, "valueFrom"), "secretKeyRef");
	sets(b, skr, "name", sn && *sn ? sn : secret);
	sets(b, skr, "key", "auth_token");
	push(b, env, e);
}

static void
autoscaler_container(struct b *b, const struct rw_raycluster *c, const struct rw_raycluster_opts *o,
		     node *tmpl_spec)
{
	static const char start[] = "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) "
				    "--cluster-namespace $(RAY_CLUSTER_NAMESPACE)";
	node *ray = container0(tmpl_spec);
	node *opts = rw_doc_get(c->obj.spec, "autoscalerOptions");
	node *a = nnew(b, RW_DOC_OBJ);
	node *v;
	const char *img = rw_doc_gets(ray, "image");

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
	node *args = nnew(b, RW_DOC_ARR);
	push(b, args, nstr(b, start));
	set(b, a, "args", args);
	set(b, a, "resources", resources_obj(b, "500m", "512Mi", "500m", "512Mi"));
	if (streq(rw_doc_gets(rw_doc_get(c->obj.spec, "authOptions"), "mode"), "token")) {
		env_push(b, env, "RAY_AUTH_MODE", "token");
		auth_token_env(b, c, env);
	}
	/* mergeAutoscalerOverrides */
	if (opts && opts->type == RW_DOC_OBJ) {
		if ((v = rw_doc_get(opts, "resources")) && v->type != RW_DOC_NULL)
			set(b, a, "resources", nclone(b, v));
		if ((v = rw_doc_get(opts, "image")) && v->type == RW_DOC_STR)
			set(b, a, "image", nclone(b, v));
		if ((v = rw_doc_get(opts, "imagePullPolicy")) && v->type == RW_DOC_STR)
			set(b, a, "imagePullPolicy", nclone(b, v));
		if ((v = rw_doc_get(opts, "env")) && v->type == RW_DOC_ARR)
			for (int i = 0; i < v->n; i++)
				push(b, env, nclone(b, v->kids[i]));
		if ((v = rw_doc_get(opts, "envFrom")) && v->type == RW_DOC_ARR && v->n > 0) {
			node *ef = arr(b, a, "envFrom");
			for (int i = 0; i < v->n; i++)
				push(b, ef, nclone(b, v->kids[i]));
		}
		if ((v = rw_doc_get(opts, "volumeMounts")) && v->type == RW_DOC_ARR && v->n > 0) {
			node *vm = arr(b, a, "volumeMounts");
			for (int i = 0; i < v->n; i++)
				push(b, vm, nclone(b, v->kids[i]));
		}
		if ((v = rw_doc_get(opts, "securityContext")) && v->type == RW_DOC_OBJ)
			set(b, a, "securityContext", nclone(b, v));
		if ((v = rw_doc_get(opts, "command")) && v->type == RW_DOC_ARR && v->n > 0)
			set(b, a, "command", nclone(b, v));
		if ((v = rw_doc_get(opts, "args")) && v->type == RW_DOC_ARR && v->n > 0)
			set(b, a, "args", nclone(b, v));
	}
	push(b, arr(b, tmpl_spec, "containers"), a);
}

static void
token_auth(struct b *b, const struct rw_raycluster *c, node *container)
{
	node *auth = rw_doc_get(c->obj.spec, "authOptions");
	node *env = arr(b, container, "env");
	if (!streq(rw_doc_gets(auth, "mode"), "token"))
		return;
	if (!env_exists(env, "RAY_AUTH_MODE"))
		env_push(b, env, "RAY_AUTH_MODE", "token");
	if (!env_exists(env, "RAY_AUTH_TOKEN"))
		auth_token_env(b, c, env);
}

/* configureGCSFaultTolerance */
static void
gcs_ft(struct b *b, const struct rw_raycluster *c, node *tmpl, node *params, bool head)
{
	bool ft = rw_raycluster_gcs_ft(c);
	node *annos = obj(b, obj(b, tmpl, "metadata"), "annotations");
	node *opts = rw_doc_get(c->obj.spec, "gcsFaultToleranceOptions");
	node *ray = container0(rw_doc_get(tmpl, "spec"));
	node *env;
	if (opts && opts->type != RW_DOC_OBJ)
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
	if (opts && streq(rw_doc_gets(opts, "backend"), "rocksdb")) {
		/* Embedded storage (alpha in KubeRay). */
		char claim[320];
		node *st = rw_doc_get(opts, "storage");
		const char *cn = rw_doc_gets(st, "claimName");
		const char *sub = rw_doc_gets(st, "subPath");
		if (!env_exists(env, "RAY_gcs_storage"))
			env_push(b, env, "RAY_gcs_storage", "rocksdb");
		if (!env_exists(env, "RAY_gcs_storage_path"))
			env_push(b, env, "RAY_gcs_storage_path", "/data/gcs");
		node *m = nnew(b, RW_DOC_OBJ);
		sets(b, m, "name", "gcs-storage");
		sets(b, m, "mountPath", "/data/gcs");
		if (sub && *sub)
			sets(b, m, "subPath", sub);
		push(b, arr(b, ray, "volumeMounts"), m);
		snprintf(claim, sizeof(claim), "%s-gcs-pvc", c->obj.name);
		node *vol = nnew(b, RW_DOC_OBJ);
		sets(b, vol, "name", "gcs-storage");
		sets(b, obj(b, vol, "persistentVolumeClaim"), "claimName", cn && *cn ? cn : claim);
		push(b, arr(b, rw_doc_get(tmpl, "spec"), "volumes"), vol);
		return;
	}
	const char *ns = c->obj.uid;
	const char *an = param_raw(c->obj.annotations, "ray.io/external-storage-namespace");
	const char *on = rw_doc_gets(opts, "externalStorageNamespace");
	if (an)
		ns = an;
	if (on && *on)
		ns = on;
	sets(b, annos, "ray.io/external-storage-namespace", ns);
	if (!env_exists(env, "RAY_external_storage_namespace"))
		env_push(b, env, "RAY_external_storage_namespace", ns);
	if (opts) {
		const char *addr = rw_doc_gets(opts, "redisAddress");
		node *u = rw_doc_get(opts, "redisUsername"), *p = rw_doc_get(opts, "redisPassword");
		env_push(b, env, "RAY_REDIS_ADDRESS", addr ? addr : "");
		const struct {
			node *src;
			const char *env, *param, *ref;
		} cred[] = {{u, "REDIS_USERNAME", "redis-username", "$REDIS_USERNAME"},
			    {p, "REDIS_PASSWORD", "redis-password", "$REDIS_PASSWORD"}};
		for (int i = 0; i < 2; i++) {
			node *src = cred[i].src, *e, *vf;
			if (!src || src->type != RW_DOC_OBJ)
				continue;
			sets(b, params, cred[i].param, cred[i].ref);
			e = nnew(b, RW_DOC_OBJ);
			sets(b, e, "name", cred[i].env);
			const char *val = rw_doc_gets(src, "value");
			if (val && *val)
				sets(b, e, "value", val);
			vf = rw_doc_get(src, "valueFrom");
			if (vf && vf->type == RW_DOC_OBJ)
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
	node *mounts = rw_doc_get(container, "volumeMounts");
	node *vols = rw_doc_get(pod_spec, "volumes");
	bool have = false;
	for (int i = 0; mounts && mounts->type == RW_DOC_ARR && i < mounts->n; i++)
		if (streq(rw_doc_gets(mounts->kids[i], "mountPath"), path))
			return;
	for (int i = 0; vols && vols->type == RW_DOC_ARR && i < vols->n; i++)
		if (streq(rw_doc_gets(vols->kids[i], "name"), vol))
			have = true;
	if (!have) {
		node *v = nnew(b, RW_DOC_OBJ);
		sets(b, v, "name", vol);
		node *ed = obj(b, v, "emptyDir");
		if (memory) {
			node *res = rw_doc_get(container, "resources");
			node *lim = rw_doc_get(res, "limits"), *req = rw_doc_get(res, "requests");
			node *src = rw_doc_get(lim, "memory") ? lim : req;
			struct rw_qty q;
			char txt[64];
			sets(b, ed, "medium", "Memory");
			if (rw_doc_get(src, "memory")) {
				if (qty_of(src, "memory", &q) == 0 &&
				    rw_qty_format(&q, txt, sizeof(txt)) > 0)
					sets(b, ed, "sizeLimit", txt);
				else
					set(b, ed, "sizeLimit",
					    nclone(b, rw_doc_get(src, "memory")));
			}
		}
		push(b, arr(b, pod_spec, "volumes"), v);
	}
	node *m = nnew(b, RW_DOC_OBJ);
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
wait_gcs_container(struct b *b, const struct rw_raycluster_opts *o, node *tmpl_spec,
		   const char *fqdn, const char *port)
{
	node *ray = container0(tmpl_spec);
	node *ic = nnew(b, RW_DOC_OBJ);
	node *v;
	struct rw_buf script;
	sets(b, ic, "name", "wait-gcs-ready");
	if ((v = rw_doc_get(ray, "image")))
		set(b, ic, "image", nclone(b, v));
	if ((v = rw_doc_get(ray, "imagePullPolicy")))
		set(b, ic, "imagePullPolicy", nclone(b, v));
	container_command(b, o, ic);
	rw_buf_init(&script, 1 << 16);
	if (rw_buf_printf(&script, wait_gcs_fmt, fqdn, port, fqdn, port))
		fail(b, -ENOMEM);
	node *args = nnew(b, RW_DOC_ARR);
	push(b, args, nstr(b, rw_buf_cstr(&script)));
	rw_buf_fini(&script);
	set(b, ic, "args", args);
	if ((v = rw_doc_get(ray, "securityContext")) && v->type == RW_DOC_OBJ)
		set(b, ic, "securityContext", nclone(b, v));
	if ((v = rw_doc_get(ray, "env")) && v->type == RW_DOC_ARR)
		set(b, ic, "env", nclone(b, v));
	if ((v = rw_doc_get(ray, "volumeMounts")) && v->type == RW_DOC_ARR)
		set(b, ic, "volumeMounts", nclone(b, v));
	set(b, ic, "resources", resources_obj(b, "200m", "256Mi", "200m", "256Mi"));
	push(b, arr(b, tmpl_spec, "initContainers"), ic);
}

static void
probe_exec(struct b *b, node *p, const char *cmd)
{
	node *c = nnew(b, RW_DOC_ARR);
	push(b, c, nstr(b, "bash"));
	push(b, c, nstr(b, "-c"));
	push(b, c, nstr(b, cmd));
	set(b, obj(b, p, "exec"), "command", c);
}

/* initLivenessAndReadinessProbe (KubeRay's probes). */
static void
kuberay_probes(struct b *b, node *ray, bool head, bool rayservice, const node *params,
	       const char *ray_version)
{
	char raylet[256], gcs[256], serve[256], cmd[800];
	int agent_port = port_of(params, "dashboard-agent-listen-port", 52365);
	bool http = rw_raycluster_unified_health_check(ray_version);

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

/* The argument string KubeRay's convertCmdToString builds: " a  b ". */
static void
cmd_string(struct b *b, const node *list, struct rw_buf *out)
{
	for (int i = 0; list && list->type == RW_DOC_ARR && i < list->n; i++) {
		const char *s = rw_doc_str(list->kids[i]);
		if (rw_buf_printf(out, " %s ", s ? s : ""))
			fail(b, -ENOMEM);
	}
}

/* setContainerEnvVars */
static void
ray_env(struct b *b, const struct rw_raycluster *c, const struct rw_raycluster_opts *o, node *ray,
	bool head, enum rw_raycluster_crd crd, const char *fqdn, const char *head_port,
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
	if (crd == RW_RAYCLUSTER_CRD_RAYSERVICE) {
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
			 o->version ? o->version : RW_RAYCLUSTER_DEFAULT_VERSION,
			 rw_raycluster_crd_name(crd));
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
build_pod(struct b *b, const struct rw_raycluster *c, const struct rw_raycluster_opts *o,
	  node *tmpl, node *params, bool head, const char *fqdn, const char *head_port)
{
	enum rw_raycluster_crd crd = rw_raycluster_creator(c, o);
	node *pod = nnew(b, RW_DOC_OBJ);
	node *meta, *spec, *ray, *v;
	struct rw_buf cmd, rs;
	const char *ray_version = rw_doc_gets(c->obj.spec, "rayVersion");
	bool rayservice = crd == RW_RAYCLUSTER_CRD_RAYSERVICE;

	meta = obj(b, tmpl, "metadata");
	spec = obj(b, tmpl, "spec");
	if (rayservice)
		sets(b, obj(b, meta, "labels"), "ray.io/serve", head ? "false" : "true");
	sets(b, pod, "apiVersion", "v1");
	sets(b, pod, "kind", "Pod");
	set(b, pod, "metadata", nclone(b, meta));
	set(b, pod, "spec", nclone(b, spec));
	rw_doc_free(tmpl);
	if (b->err)
		return pod;
	meta = rw_doc_get(pod, "metadata");
	spec = rw_doc_get(pod, "spec");
	ray = container0(spec);
	if (!ray) {
		fail(b, -EINVAL);
		return pod;
	}
	if (!rw_doc_get(params, "plasma-directory"))
		add_empty_dir(b, ray, spec, "shared-mem", "/dev/shm", true);
	if (head && rw_raycluster_autoscaling(c)) {
		node *cs = rw_doc_get(spec, "containers");
		node *as = NULL;
		for (int i = 0; cs && i < cs->n; i++)
			if (streq(rw_doc_gets(cs->kids[i], "name"), "autoscaler"))
				as = cs->kids[i];
		add_empty_dir(b, ray, spec, "ray-logs", "/tmp/ray", false);
		if (as)
			add_empty_dir(b, as, spec, "ray-logs", "/tmp/ray", false);
	}

	rw_buf_init(&cmd, 1 << 20);
	rw_buf_init(&rs, 1 << 20);
	cmd_string(b, rw_doc_get(ray, "command"), &cmd);
	cmd_string(b, rw_doc_get(ray, "args"), &cmd);
	gen_ray_start(b, head, params, rw_doc_get(ray, "resources"), &rs);
	if (!overwrite_cmd(rw_doc_get(meta, "annotations")) &&
	    !strstr(rw_buf_cstr(&cmd), "ray start")) {
		struct rw_buf a;
		rw_buf_init(&a, 1 << 20);
		if (cmd.len)
			rw_buf_printf(&a, "%s && ", rw_buf_cstr(&cmd));
		if (rw_buf_printf(&a, "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; %s",
				  rw_buf_cstr(&rs)))
			fail(b, -ENOMEM);
		container_command(b, o, ray);
		node *args = nnew(b, RW_DOC_ARR);
		push(b, args, nstr(b, rw_buf_cstr(&a)));
		set(b, ray, "args", args);
		rw_buf_fini(&a);
	}
	v = rw_doc_get(spec, "initContainers");
	for (int i = 0; v && v->type == RW_DOC_ARR && i < v->n; i++) {
		char ip[320];
		node *ic = v->kids[i];
		if (ic->type != RW_DOC_OBJ)
			continue;
		snprintf(ip, sizeof(ip), "%.*s", (int)strcspn(fqdn, "."), fqdn);
		env_push(b, arr(b, ic, "env"), "FQ_RAY_IP", fqdn);
		env_push(b, arr(b, ic, "env"), "RAY_IP", ip);
	}
	ray_env(b, c, o, ray, head, crd, fqdn, head_port, rw_buf_cstr(&rs));
	rw_buf_fini(&cmd);
	rw_buf_fini(&rs);
	if (o->probes_injection) {
		if (o->agent && o->probes == RW_RAYCLUSTER_PROBE_AGENT)
			rw_raycluster_agent_probes(b, o, ray);
		else
			kuberay_probes(b, ray, head, rayservice, params, ray_version);
	}
	if (o->agent)
		rw_raycluster_agent_sidecar(b, c, o, spec, params, head, rayservice);
	if (o->agent && rayservice && o->drain_s > 0 && o->drain_token && *o->drain_token &&
	    strlen(o->drain_token) <= RW_RAYCLUSTER_DRAIN_TOKEN_MAX)
		rw_raycluster_drain_hooks(b, o, spec);
	v = rw_doc_get(meta, "annotations");
	if (v && v->type == RW_DOC_OBJ && v->n == 0)
		rw_doc_del(meta, "annotations"); /* Go drops an empty map (omitempty) */
	owner_ref(b, c, meta);
	return pod;
}

/* The template copy both node types start from. */
static node *
template_copy(struct b *b, const node *group)
{
	node *t = rw_doc_get(group, "template");
	node *copy = t && t->type == RW_DOC_OBJ ? nclone(b, t) : nnew(b, RW_DOC_OBJ);
	obj(b, copy, "metadata");
	obj(b, copy, "spec");
	return copy;
}

/* A group's rayStartParams with its resources and labels folded in (both node types). */
static node *
group_params(struct b *b, const node *group)
{
	node *params = params_copy(b, rw_doc_get(group, "rayStartParams"));
	params_group_resources(b, params, rw_doc_get(group, "resources"));
	params_group_labels(b, params, rw_doc_get(group, "labels"));
	return params;
}

/* The last stage of both node types: BuildPod from tmpl, then JSON. Takes tmpl and params. */
static int
pod_out(struct b *b, const struct rw_raycluster *c, const struct rw_raycluster_opts *o, node *tmpl,
	node *params, bool head, const char *group, const char *fqdn, const char *head_port,
	struct rw_buf *out)
{
	node *pod;
	if (b->err) {
		rw_doc_free(tmpl);
		rw_doc_free(params);
		return b->err;
	}
	pod = build_pod(b, c, o, tmpl, params, head, fqdn, head_port);
	rw_doc_free(params);
	/* createHeadPod/createWorkerPod: the batch scheduler's metadata comes last. */
	if (!b->err && o->batch_scheduler != RW_BS_NONE) {
		struct rw_bs_parent p = {
		    .name = c->obj.name,
		    .ns = c->obj.ns,
		    .uid = c->obj.uid,
		    .labels = c->obj.labels,
		    .annotations = c->obj.annotations,
		    .cluster_spec = c->obj.spec,
		};
		int rv =
		    rw_bs_child_metadata((enum rw_bs_kind)o->batch_scheduler, &p, pod, true, group);
		if (rv)
			fail(b, rv);
	}
	return finish(b, pod, out);
}

int
rw_raycluster_build_head_pod(const struct rw_raycluster *c, const struct rw_raycluster_opts *o,
			     struct rw_buf *out)
{
	struct b b = {0};
	char name[128], fqdn[700], hash[33], sa[320], sac[80];
	node *tmpl, *meta, *spec, *params, *ray, *annos;
	const char *head_port = rw_raycluster_head_port(c);

	if (!c->head || !container0(rw_doc_path(c->head, "template.spec")))
		return -EINVAL;
	rw_raycluster_fqdn(c, o, fqdn, sizeof(fqdn));
	tmpl = template_copy(&b, c->head);
	meta = obj(&b, tmpl, "metadata");
	spec = obj(&b, tmpl, "spec");
	rw_raycluster_pod_name(c->obj.name, true, !o->deterministic_head_name, name, sizeof(name));
	sets(&b, meta, o->deterministic_head_name ? "name" : "generateName", name);
	sets(&b, meta, "namespace", c->obj.ns);
	params = group_params(&b, c->head);
	set(&b, meta, "labels",
	    pod_labels(&b, c, true, "headgroup", rw_doc_get(meta, "labels"),
		       rw_doc_get(c->head, "labels")));
	params_missing(&b, params, true, head_port, "");
	annos = obj(&b, meta, "annotations");
	if (overwrite_cmd(c->obj.annotations))
		sets(&b, annos, "ray.io/overwrite-container-cmd", "true");
	ray = container0(spec);
	if (rw_raycluster_autoscaling(c)) {
		const char *tsa = rw_doc_gets(spec, "serviceAccountName");
		sets(&b, params, "no-monitor", "true");
		snprintf(sa, sizeof(sa), "%s", tsa && *tsa ? tsa : c->obj.name);
		rw_raycluster_check_name(sa, sac, sizeof(sac));
		sets(&b, spec, "serviceAccountName", sac);
		autoscaler_container(&b, c, o, spec);
		ray = container0(spec);
		if (rw_raycluster_autoscaling_v2(c)) {
			if (rw_doc_gets(rw_doc_get(c->obj.spec, "autoscalerOptions"), "version"))
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
	if (rw_raycluster_spec_hash(c->obj.spec, hash) == 0)
		sets(&b, annos, "ray.io/upgrade-strategy-recreate-hash", hash);
	sets(&b, annos, "ray.io/kuberay-version",
	     o->version ? o->version : RW_RAYCLUSTER_DEFAULT_VERSION);
	return pod_out(&b, c, o, tmpl, params, true, "headgroup", fqdn, head_port, out);
}

int
rw_raycluster_build_worker_pod(const struct rw_raycluster *c, const struct rw_raycluster_opts *o,
			       int group, const struct rw_raycluster_slot *slot, struct rw_buf *out)
{
	struct b b = {0};
	char name[160], prefix[320], fqdn[700], num[32];
	node *g = rw_raycluster_group(c, group);
	node *tmpl, *meta, *spec, *params, *labels, *annos;
	const char *head_port = rw_raycluster_head_port(c);
	const char *gname = rw_raycluster_group_name(c, group);
	int64_t hosts = 1;

	if (!g || !container0(rw_doc_path(g, "template.spec")))
		return -EINVAL;
	rw_doc_int(rw_doc_get(g, "numOfHosts"), &hosts);
	rw_raycluster_fqdn(c, o, fqdn, sizeof(fqdn));
	tmpl = template_copy(&b, g);
	meta = obj(&b, tmpl, "metadata");
	spec = obj(&b, tmpl, "spec");
	snprintf(prefix, sizeof(prefix), "%s-%s", c->obj.name, gname);
	rw_raycluster_pod_name(prefix, false, true, name, sizeof(name));
	sets(&b, meta, "generateName", name);
	sets(&b, meta, "namespace", c->obj.ns);
	if (o->init_container_injection)
		wait_gcs_container(&b, o, spec, fqdn, head_port);
	rw_doc_del(meta, "name");
	params = group_params(&b, g);
	labels =
	    pod_labels(&b, c, false, gname, rw_doc_get(meta, "labels"), rw_doc_get(g, "labels"));
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
	if (overwrite_cmd(c->obj.annotations))
		sets(&b, annos, "ray.io/overwrite-container-cmd", "true");
	gcs_ft(&b, c, tmpl, params, false);
	add_metrics_port(&b, container0(spec));
	if (rw_raycluster_autoscaling(c) && rw_raycluster_autoscaling_v2(c))
		sets(&b, spec, "restartPolicy", "Never");
	token_auth(&b, c, container0(spec));
	if (streq(rw_doc_gets(rw_doc_get(c->obj.spec, "authOptions"), "mode"), "token")) {
		node *ics = rw_doc_get(spec, "initContainers");
		for (int i = 0; ics && ics->type == RW_DOC_ARR && i < ics->n; i++)
			if (streq(rw_doc_gets(ics->kids[i], "name"), "wait-gcs-ready"))
				token_auth(&b, c, ics->kids[i]);
	}
	return pod_out(&b, c, o, tmpl, params, false, gname, fqdn, head_port, out);
}
