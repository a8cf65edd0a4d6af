/* build_agent.c - the raywarden agent sidecar, its probes and preStop drain in the Ray Pods. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "build_internal.h"

const char *
rw_raycluster_agent_proxy_readiness(const struct rw_raycluster *c,
				    const struct rw_raycluster_opts *o, bool head)
{
	const char *mode = o->proxy_readiness && *o->proxy_readiness ? o->proxy_readiness : "auto";
	const char *loc;
	if (head || !o->headonly_workers_ready || strcmp(mode, "auto") != 0 ||
	    rw_raycluster_creator(c, o) != RW_RAYCLUSTER_CRD_RAYSERVICE)
		return mode;
	loc = rw_doc_gets(c->obj.annotations, RW_RAYCLUSTER_PROXY_LOCATION_ANNOTATION);
	if (streq(loc, "HeadOnly") || streq(loc, "Disabled"))
		return "ignore";
	return mode;
}

/* The agent's probes: readiness from /readyz; liveness that survives agent restarts. */
void
rw_raycluster_agent_probes(struct b *b, const struct rw_raycluster_opts *o, node *ray)
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

/*
 * The agent container. ephemeral: the variant attached to a running pod that has
 * no agent (a head KubeRay made) through the pods/ephemeralcontainers subresource.
 * The API server refuses ports, probes, resources and lifecycle on an ephemeral
 * container and allows only volume mounts of volumes the pod already has, which
 * such a pod lacks for the key: the agent then takes its key from
 * RAYWARDEN_KEY (env valueFrom.secretKeyRef of the same Secret) instead of a
 * mounted file. The caller mounts the key volume of a sidecar.
 */
static node *
agent_container(struct b *b, const struct rw_raycluster *c, const struct rw_raycluster_opts *o,
		const node *ray, const node *params, bool head, bool rayservice, bool ephemeral)
{
	node *a = nnew(b, RW_DOC_OBJ);
	char num[32], secret[320];
	bool ctl = o->controller_addr && *o->controller_addr;

	sets(b, a, "name", RW_RAYCLUSTER_AGENT_CONTAINER);
	sets(b, a, "image", o->agent_image ? o->agent_image : RW_RAYCLUSTER_DEFAULT_AGENT_IMAGE);
	sets(b, a, "imagePullPolicy", "IfNotPresent");
	if (!ephemeral) {
		node *ports = arr(b, a, "ports");
		node *p = nnew(b, RW_DOC_OBJ);
		sets(b, p, "name", RW_RAYCLUSTER_AGENT_PORT_NAME);
		seti(b, p, "containerPort", o->agent_port);
		sets(b, p, "protocol", "TCP");
		push(b, ports, p);
	}
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
	env_push(b, env, "RAYWARDEN_PROXY_READINESS",
		 rw_raycluster_agent_proxy_readiness(c, o, head));
	if (ctl) {
		env_push(b, env, "RAYWARDEN_CONTROLLER", o->controller_addr);
		if (ephemeral) {
			node *e = nnew(b, RW_DOC_OBJ);
			sets(b, e, "name", "RAYWARDEN_KEY");
			node *ref = obj(b, obj(b, e, "valueFrom"), "secretKeyRef");
			rw_raycluster_agent_secret_name(c, secret, sizeof(secret));
			sets(b, ref, "name", secret);
			sets(b, ref, "key", "key");
			push(b, env, e);
		} else {
			env_push(b, env, "RAYWARDEN_KEY_FILE", RW_RAYCLUSTER_AGENT_KEY_DIR "/key");
		}
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
	if (!ephemeral)
		set(b, a, "resources",
		    resources_obj(b, o->agent_cpu_request, o->agent_mem_request, o->agent_cpu_limit,
				  o->agent_mem_limit));
	/* The restricted Pod Security Standard: the agent needs no privilege, writes
	   nothing to its filesystem and reads its key as an ordinary user. */
	node *sc = obj(b, a, "securityContext");
	setb(b, sc, "runAsNonRoot", true);
	seti(b, sc, "runAsUser", RW_RAYCLUSTER_AGENT_UID);
	seti(b, sc, "runAsGroup", RW_RAYCLUSTER_AGENT_UID);
	setb(b, sc, "allowPrivilegeEscalation", false);
	setb(b, sc, "readOnlyRootFilesystem", true);
	node *drop = nnew(b, RW_DOC_ARR);
	push(b, drop, nstr(b, "ALL"));
	set(b, obj(b, sc, "capabilities"), "drop", drop);
	sets(b, obj(b, sc, "seccompProfile"), "type", "RuntimeDefault");
	return a;
}

void
rw_raycluster_agent_sidecar(struct b *b, const struct rw_raycluster *c,
			    const struct rw_raycluster_opts *o, node *pod_spec, const node *params,
			    bool head, bool rayservice)
{
	char secret[320];
	node *a = agent_container(b, c, o, container0(pod_spec), params, head, rayservice, false);
	if (o->controller_addr && *o->controller_addr) {
		node *m = nnew(b, RW_DOC_OBJ);
		sets(b, m, "name", RW_RAYCLUSTER_AGENT_KEY_VOLUME);
		sets(b, m, "mountPath", RW_RAYCLUSTER_AGENT_KEY_DIR);
		setb(b, m, "readOnly", true);
		push(b, arr(b, a, "volumeMounts"), m);
		node *v = nnew(b, RW_DOC_OBJ);
		sets(b, v, "name", RW_RAYCLUSTER_AGENT_KEY_VOLUME);
		node *s = obj(b, v, "secret");
		rw_raycluster_agent_secret_name(c, secret, sizeof(secret));
		sets(b, s, "secretName", secret);
		seti(b, s, "defaultMode", RW_RAYCLUSTER_AGENT_KEY_MODE);
		push(b, arr(b, pod_spec, "volumes"), v);
	}
	push(b, arr(b, pod_spec, "containers"), a);
	if (o->readiness_gate) {
		node *g = nnew(b, RW_DOC_OBJ);
		sets(b, g, "conditionType", RW_RAYCLUSTER_AGENT_GATE);
		push(b, arr(b, pod_spec, "readinessGates"), g);
	}
}

int
rw_raycluster_build_ephemeral_agent(const struct rw_raycluster *c,
				    const struct rw_raycluster_opts *o, struct rw_buf *out)
{
	struct b b = {0};
	const node *ray = container0(rw_doc_path(c->head, "template.spec"));
	if (!ray || !o->controller_addr || !*o->controller_addr)
		return -EINVAL;
	bool rayservice = rw_raycluster_creator(c, o) == RW_RAYCLUSTER_CRD_RAYSERVICE;
	node *patch = nnew(&b, RW_DOC_OBJ);
	node *list = arr(&b, obj(&b, patch, "spec"), "ephemeralContainers");
	push(&b, list,
	     agent_container(&b, c, o, ray, rw_doc_get(c->head, "rayStartParams"), true, rayservice,
			     true));
	return finish(&b, patch, out);
}

bool
rw_raycluster_ephemeral_agent_wanted(const struct rw_raycluster_opts *o,
				     const struct rw_raycluster_head_agent *h)
{
	if (!o->agent || !o->controller_addr || !*o->controller_addr)
		return false; /* --no-agent-injection, or agents that report to nobody */
	if (!h || !h->exists || h->deleting || h->has_agent)
		return false;
	if (!h->key_ready)
		return false; /* its env names the Secret: the kubelet would wait for it */
	if (h->phase_ended)
		return false; /* the kubelet starts nothing in a finished pod */
	/* Sent for this pod already: its update (then has_agent) is on its way. */
	return !(h->uid && *h->uid && h->attached_uid && strcmp(h->uid, h->attached_uid) == 0);
}

/*
 * lifecycle.preStop.httpGet to the agent's /drain with the cluster's drain
 * token, unless the container has a preStop. The token is in the pod spec:
 * whoever may read the pod may drain it (docs/security.md).
 */
static void
drain_hook(struct b *b, const struct rw_raycluster_opts *o, node *container)
{
	char auth[16 + 2 * RW_RAYCLUSTER_DRAIN_TOKEN_MAX];
	char path[64];
	node *lc = rw_doc_get(container, "lifecycle");
	if (lc && lc->type == RW_DOC_OBJ && present(lc, "preStop"))
		return;
	if (lc && lc->type != RW_DOC_OBJ)
		rw_doc_del(container, "lifecycle");
	snprintf(path, sizeof(path), "/drain?seconds=%d", o->drain_s);
	node *h = obj(b, obj(b, obj(b, container, "lifecycle"), "preStop"), "httpGet");
	sets(b, h, "path", path);
	seti(b, h, "port", o->agent_port);
	snprintf(auth, sizeof(auth), "Bearer %s", o->drain_token);
	node *hdr = nnew(b, RW_DOC_OBJ);
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
 * (30 s when unset) is raised to N + RW_RAYCLUSTER_MIN_STOP_S when shorter.
 */
void
rw_raycluster_drain_hooks(struct b *b, const struct rw_raycluster_opts *o, node *pod_spec)
{
	node *cs = rw_doc_get(pod_spec, "containers");
	for (int i = 0; cs && cs->type == RW_DOC_ARR && i < cs->n; i++) {
		node *k = cs->kids[i];
		if (k->type == RW_DOC_OBJ &&
		    (i == 0 || streq(rw_doc_gets(k, "name"), RW_RAYCLUSTER_AGENT_CONTAINER)))
			drain_hook(b, o, k);
	}
	if (rw_doc_int_or(pod_spec, "terminationGracePeriodSeconds", 30) <
	    o->drain_s + RW_RAYCLUSTER_MIN_STOP_S)
		seti(b, pod_spec, "terminationGracePeriodSeconds",
		     o->drain_s + RW_RAYCLUSTER_MIN_STOP_S);
}

/*
 * "--dashboard-agent-listen-port=N" and "--dashboard-port=N" as KubeRay writes them into the
 * Ray container's command (ray start): the ports the agent probes, as rayStartParams.
 */
static node *
params_from_command(struct b *b, const node *ray)
{
	static const char *const keys[] = {"dashboard-agent-listen-port", "dashboard-port"};
	node *params = nnew(b, RW_DOC_OBJ);
	const char *fields[] = {"command", "args"};
	for (int f = 0; f < 2; f++) {
		node *a = rw_doc_get(ray, fields[f]);
		for (int i = 0; a && a->type == RW_DOC_ARR && i < a->n; i++) {
			const char *s = a->kids[i]->type == RW_DOC_STR ? a->kids[i]->s : NULL;
			for (int k = 0; s && k < 2; k++) {
				char flag[64];
				const char *at;
				int n = snprintf(flag, sizeof(flag), "--%s=", keys[k]);
				/* A word of a shell line: the flag starts the string or follows a
				   blank, so --dashboard-port never matches inside another flag. */
				for (at = strstr(s, flag); at; at = strstr(at + 1, flag)) {
					if (at == s || at[-1] == ' ')
						break;
				}
				if (!at)
					continue;
				char num[16];
				size_t l = strspn(at + n, "0123456789");
				if (l == 0 || l >= sizeof(num))
					continue;
				memcpy(num, at + n, l);
				num[l] = '\0';
				sets(b, params, keys[k], num);
			}
		}
	}
	return params;
}

static void
patch_add(struct rw_jw *w, const char *path, const node *v)
{
	rw_jw_obj_begin(w);
	rw_jw_kstr(w, "op", "add");
	rw_jw_kstr(w, "path", path);
	rw_jw_key(w, "value");
	rw_doc_write(v, w);
	rw_jw_obj_end(w);
}

int
rw_raycluster_agent_inject_patch(const node *pod, const struct rw_raycluster_opts *o,
				 struct rw_buf *out)
{
	struct b b = {0};
	const node *md = rw_doc_get(pod, "metadata"), *spec = rw_doc_get(pod, "spec");
	struct rw_raycluster c;
	const char *cluster, *type;
	bool head;
	struct rw_jw w;

	memset(&c, 0, sizeof(c));
	c.obj.labels = rw_doc_get(md, "labels");
	c.obj.annotations = rw_doc_get(md, "annotations");
	cluster = rw_doc_gets(c.obj.labels, "ray.io/cluster");
	type = rw_doc_gets(c.obj.labels, "ray.io/node-type");
	if (!spec || spec->type != RW_DOC_OBJ || !container0(spec) || !cluster || !*cluster ||
	    (!streq(type, "head") && !streq(type, "worker")))
		return -EINVAL;
	head = streq(type, "head");
	c.obj.name = cluster;
	c.obj.ns = "";
	c.obj.uid = "";
	node *s = nclone(&b, spec);
	node *params = params_from_command(&b, container0(spec));
	if (!b.err)
		rw_raycluster_agent_sidecar(
		    &b, &c, o, s, params, head,
		    streq(rw_doc_gets(c.obj.labels, "ray.io/originated-from-crd"), "RayService"));
	rw_doc_free(params);
	if (b.err) {
		rw_doc_free(s);
		return b.err;
	}
	/* "add" of an existing member replaces it (RFC 6902 4.1): each list is written whole,
	   so the patch holds whatever the pod already had in it. */
	rw_jw_init(&w, out);
	rw_jw_arr_begin(&w);
	patch_add(&w, "/spec/containers", rw_doc_get(s, "containers"));
	if (rw_doc_get(s, "volumes"))
		patch_add(&w, "/spec/volumes", rw_doc_get(s, "volumes"));
	if (rw_doc_get(s, "readinessGates"))
		patch_add(&w, "/spec/readinessGates", rw_doc_get(s, "readinessGates"));
	rw_jw_arr_end(&w);
	rw_doc_free(s);
	return rw_jw_finish(&w) != 0 ? -ENOMEM : 0;
}
