/*
 * rj_build.c - what the RayJob reconciler creates or sends: the RayCluster
 * (constructRayClusterForRayJob), the submitter (common.BuildJobSubmitCommand,
 * GetSubmitterTemplate, configureSubmitterContainer, createNewK8sJob), the
 * HTTPMode submission (dashboardclient.ConvertRayJobToReq) and the head
 * Service (BuildHeadServiceForRayJob).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_common.h"
#include "build_service.h"
#include "doc_builder.h"
#include "rj_decide.h"
#include "rj_internal.h"
#include "rw/wire.h"

/* ---- the submit command ---- */

/*
 * KubeRay quotes the JSON arguments with Go's strconv.Quote and bash reads
 * them in double quotes. For printable text without $ and ` this writes the
 * same bytes; where strconv.Quote would let bash change the value ($ and `
 * expand, \n and \u stay two characters) it escapes what bash expands and
 * keeps other bytes as they are, so the job gets the JSON that was written.
 */
static int
bash_dq(struct rw_buf *out, const char *s, size_t n)
{
	int rv = rw_buf_putc(out, '"');
	for (size_t i = 0; !rv && i < n; i++) {
		if (s[i] == '"' || s[i] == '\\' || s[i] == '$' || s[i] == '`')
			rv = rw_buf_putc(out, '\\');
		if (!rv)
			rv = rw_buf_putc(out, s[i]);
	}
	return rv ? rv : rw_buf_putc(out, '"');
}

static bool
go_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* strings.TrimSpace (ASCII white space): the start and length of the trimmed entrypoint. */
static const char *
trimmed(const char *s, size_t *len)
{
	size_t n;
	if (!s)
		s = "";
	while (go_space(*s))
		s++;
	n = strlen(s);
	while (n > 0 && go_space(s[n - 1]))
		n--;
	*len = n;
	return s;
}

/* entrypointNumCpus/Gpus: a float32 in KubeRay, so round through float; 0 when absent. */
static double
num_f32(const struct rw_rayjob *j, const char *key)
{
	node *n = rw_doc_get(j->obj.spec, key);
	char *end;
	double v;
	if (!n || n->type != RW_DOC_NUM || !n->s)
		return 0;
	v = strtod(n->s, &end);
	if (*end)
		return 0;
	return (double)(float)v;
}

/* Python, not wget: slim Ray images ship no wget (KubeRay's BasePythonHealthCommand). */
#define GCS_HEALTH_CMD                                                                             \
	"python -c \"import urllib.request; r=urllib.request.urlopen('%s', timeout=10); "          \
	"exit(0 if b'success' in r.read() else 1)\""

static int
append_command(const struct rw_rayjob *j, const char *address, const char *job_id,
	       struct rw_buf *out)
{
	char addr[600], health[700], wait_msg[700];
	struct rw_buf json;
	const char *ep;
	size_t eplen;
	double cpus = num_f32(j, "entrypointNumCpus"), gpus = num_f32(j, "entrypointNumGpus");
	bool sidecar = j->mode == RW_RAYJOB_SIDECAR;
	node *md = rw_doc_get(j->obj.spec, "metadata");
	int rv;

	if (sidecar) {
		int port = rj_dashboard_port(j);
		snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", port);
		snprintf(health, sizeof(health), "http://localhost:%d/api/gcs_healthz", port);
	} else if (j->mode == RW_RAYJOB_K8SJOB && address && *address) {
		if ((size_t)snprintf(addr, sizeof(addr), "%s%s",
				     strncmp(address, "http://", 7) == 0 ? "" : "http://",
				     address) >= sizeof(addr))
			return -EINVAL;
		snprintf(health, sizeof(health), "%s/api/gcs_healthz", addr);
	} else {
		return -EINVAL;
	}
	if (!job_id)
		job_id = "";
	snprintf(wait_msg, sizeof(wait_msg),
		 "Waiting for Ray Dashboard GCS to become healthy at %s ...", addr);

	/* Wait for the GCS first: a submission before it is up fails the job at once. */
	rv = rw_buf_puts(out, "until ");
	if (!rv)
		rv = rw_buf_printf(out, GCS_HEALTH_CMD, health);
	if (!rv)
		rv = rw_buf_puts(out, " >/dev/null 2>&1 ; do echo ");
	if (!rv)
		rv = bash_dq(out, wait_msg, strlen(wait_msg));
	if (!rv)
		rv = rw_buf_puts(out, " ; sleep 2 ; done ; ");
	/*
	 * A batch Job retries its pod: check the submission id first so a
	 * retry follows the job instead of submitting it twice (kuberay#2154).
	 * The sidecar runs once (restartPolicy Never) and waits for the job.
	 */
	if (!rv && !sidecar)
		rv = rw_buf_printf(out,
				   "if ! ray job status --address %s %s >/dev/null 2>&1 ; then ",
				   addr, job_id);
	if (!rv)
		rv = rw_buf_printf(out, "ray job submit --address %s", addr);
	if (!rv && !sidecar)
		rv = rw_buf_puts(out, " --no-wait");

	rw_buf_init(&json, RW_RAYJOB_MAX_SUBMISSION);
	if (!rv) {
		rv = rj_runtime_env_json(j, &json, NULL, 0);
		if (!rv && json.len) {
			rv = rw_buf_puts(out, " --runtime-env-json ");
			if (!rv)
				rv = bash_dq(out, json.data, json.len);
		}
	}
	if (!rv && md && md->type == RW_DOC_OBJ && md->n > 0) {
		rw_buf_reset(&json);
		rv = rj_metadata_version_ok(j, NULL, 0);
		if (!rv)
			rv = rj_metadata_json(j, &json);
		if (!rv && json.len) {
			rv = rw_buf_puts(out, " --metadata-json ");
			if (!rv)
				rv = bash_dq(out, json.data, json.len);
		}
	}
	rw_buf_fini(&json);
	if (!rv && *job_id)
		rv = rw_buf_printf(out, " --submission-id %s", job_id);
	if (!rv && cpus > 0)
		rv = rw_buf_printf(out, " --entrypoint-num-cpus %f", cpus);
	if (!rv && gpus > 0)
		rv = rw_buf_printf(out, " --entrypoint-num-gpus %f", gpus);
	if (!rv) {
		/* As written, like KubeRay; validation has checked it is a JSON object. */
		const char *res = rw_doc_gets(j->obj.spec, "entrypointResources");
		if (res && *res) {
			rv = rw_buf_puts(out, " --entrypoint-resources ");
			if (!rv)
				rv = bash_dq(out, res, strlen(res));
		}
	}
	/* The entrypoint is a shell command line: bash parses it, unquoted. */
	ep = trimmed(j->entrypoint, &eplen);
	if (!rv)
		rv = rw_buf_puts(out, " -- ");
	if (!rv)
		rv = rw_buf_append(out, ep, eplen);
	if (!rv)
		rv = rw_buf_puts(out, " ;");
	if (!rv && !sidecar)
		rv =
		    rw_buf_printf(out, " fi ; ray job logs --address %s --follow %s", addr, job_id);
	return rv;
}

int
rw_rayjob_submit_command(const struct rw_rayjob *j, const char *address, const char *job_id,
			 struct rw_buf *out)
{
	size_t was = out->len;
	int rv = append_command(j, address, job_id, out);
	if (rv && out->data) {
		out->len = was;
		out->data[was] = '\0';
	}
	return rv;
}

/* ---- the submitter container ---- */

static bool
env_exists(const node *env, const char *name)
{
	for (int i = 0; env && env->type == RW_DOC_ARR && i < env->n; i++)
		if (streq(rw_doc_gets(env->kids[i], "name"), name))
			return true;
	return false;
}

/* An empty value is left out, as KubeRay's EnvVar (value,omitempty) is. */
static void
env_push(struct b *b, node *env, const char *name, const char *value)
{
	node *e = nnew(b, RW_DOC_OBJ);
	sets(b, e, "name", name);
	if (value && *value)
		sets(b, e, "value", value);
	push(b, env, e);
}

static node *
quantities(struct b *b, const char *cpu, const char *mem)
{
	node *q = nnew(b, RW_DOC_OBJ);
	sets(b, q, "cpu", cpu);
	sets(b, q, "memory", mem);
	return q;
}

/* GetDefaultSubmitterContainer: the head's image, 500m/200Mi requested, 1/1Gi limits. */
static node *
default_container(struct b *b, const char *image)
{
	node *c = nnew(b, RW_DOC_OBJ), *res;
	sets(b, c, "name", RW_RAYJOB_SUBMITTER_CONTAINER);
	sets(b, c, "image", image ? image : "");
	res = obj(b, c, "resources");
	set(b, res, "limits", quantities(b, "1", "1Gi"));
	set(b, res, "requests", quantities(b, "500m", "200Mi"));
	return c;
}

/*
 * configureSubmitterContainer: the command when the container has none
 * (always in SidecarMode), then the environment appended, then token
 * authentication when the cluster uses it.
 */
static void
configure(struct b *b, const struct rw_rayjob *j, node *c, const char *script,
	  const char *dashboard_url, const char *job_id, const char *cluster_name)
{
	node *cmd = rw_doc_get(c, "command"), *env;
	node *auth = rw_doc_get(j->cluster_spec, "authOptions");

	if (!cmd || cmd->type != RW_DOC_ARR || cmd->n == 0 || j->mode == RW_RAYJOB_SIDECAR) {
		node *args = nnew(b, RW_DOC_ARR);
		cmd = nnew(b, RW_DOC_ARR);
		/* -e: stop at the first failing command instead of reporting success. */
		push(b, cmd, nstr(b, "/bin/bash"));
		push(b, cmd, nstr(b, "-ce"));
		push(b, cmd, nstr(b, "--"));
		set(b, c, "command", cmd);
		push(b, args, nstr(b, script));
		set(b, c, "args", args);
	}
	env = arr(b, c, "env");
	env_push(b, env, "PYTHONUNBUFFERED", "1");
	env_push(b, env, "RAY_DASHBOARD_ADDRESS", dashboard_url ? dashboard_url : "");
	env_push(b, env, "RAY_JOB_SUBMISSION_ID", job_id ? job_id : "");
	if (streq(rw_doc_gets(auth, "mode"), "token")) {
		const char *sn = rw_doc_gets(auth, "secretName");
		char secret[80];
		node *e, *ref;
		rw_raycluster_check_name(cluster_name ? cluster_name : "", secret, sizeof(secret));
		if (!env_exists(env, "RAY_AUTH_MODE"))
			env_push(b, env, "RAY_AUTH_MODE", "token");
		if (!env_exists(env, "RAY_AUTH_TOKEN")) {
			e = nnew(b, RW_DOC_OBJ);
			sets(b, e, "name", "RAY_AUTH_TOKEN");
			ref = obj(b, obj(b, e, "valueFrom"), "secretKeyRef");
			sets(b, ref, "name", sn && *sn ? sn : secret);
			sets(b, ref, "key", "auth_token");
			push(b, env, e);
		}
	}
}

static void
job_owner(struct b *b, const struct rw_rayjob *j, node *meta)
{
	const char *api = rw_doc_gets(j->obj.root, "apiVersion");
	set_owner(b, meta, api ? api : "ray.io/v1", "RayJob", j->obj.name, j->obj.uid);
}

static node *
clone_or_obj(struct b *b, const node *src)
{
	return src && src->type == RW_DOC_OBJ ? nclone(b, src) : nnew(b, RW_DOC_OBJ);
}

/* The script, or the error that stops the build. */
static char *
script_for(struct b *b, const struct rw_rayjob *j, const char *address, const char *job_id)
{
	struct rw_buf s;
	char *text;
	size_t len;
	int rv;
	if (b->err)
		return NULL;
	rw_buf_init(&s, RW_RAYJOB_MAX_SUBMISSION);
	rv = rw_rayjob_submit_command(j, address, job_id, &s);
	if (!rv && !s.data)
		rv = -EINVAL;
	text = rv ? NULL : rw_buf_steal(&s, &len);
	rw_buf_fini(&s);
	if (rv)
		fail(b, rv);
	return text;
}

/* ---- the RayCluster ---- */

int
rw_rayjob_build_cluster(const struct rw_rayjob *j, const char *name, const char *job_id,
			struct rw_buf *out)
{
	struct b b = {0};
	node *c, *meta, *labels, *annos, *spec;
	char *script = NULL;

	if (!j->cluster_spec || !name)
		return -EINVAL;
	c = nnew(&b, RW_DOC_OBJ);
	sets(&b, c, "apiVersion", "ray.io/v1");
	sets(&b, c, "kind", "RayCluster");
	meta = obj(&b, c, "metadata");
	sets(&b, meta, "name", name);
	sets(&b, meta, "namespace", j->obj.ns);
	labels = clone_or_obj(&b, j->obj.labels);
	sets(&b, labels, "ray.io/originated-from-cr-name", j->obj.name);
	sets(&b, labels, "ray.io/originated-from-crd", "RayJob");
	sets(&b, labels, "ray.io/job-submission-mode", rw_rayjob_mode_name(j->mode));
	set(&b, meta, "labels", labels);
	annos = clone_or_obj(&b, j->obj.annotations);
	/* A lost head would take the submitter with it: let the job fail instead. */
	if (j->mode == RW_RAYJOB_SIDECAR)
		sets(&b, annos, "ray.io/disable-provisioned-head-restart", "true");
	set(&b, meta, "annotations", annos);
	job_owner(&b, j, meta);
	spec = nclone(&b, j->cluster_spec);
	set(&b, c, "spec", spec);
	if (j->mode == RW_RAYJOB_SIDECAR && !b.err) {
		node *pod = rw_doc_path(spec, "headGroupSpec.template.spec");
		node *cs = rw_doc_get(pod, "containers"), *sub;
		const char *dash = rw_doc_gets(j->obj.status, "dashboardURL");
		if (!cs || cs->type != RW_DOC_ARR || cs->n == 0 ||
		    cs->kids[0]->type != RW_DOC_OBJ) {
			rw_doc_free(c);
			return -EINVAL; /* validation refuses a head without a container */
		}
		script = script_for(&b, j, NULL, job_id);
		sub = default_container(&b, rw_doc_gets(cs->kids[0], "image"));
		configure(&b, j, sub, script, dash, job_id, name);
		push(&b, cs, sub);
		sets(&b, pod, "restartPolicy", "Never");
	}
	free(script);
	return finish(&b, c, out);
}

/* ---- the K8sJobMode submitter ---- */

int
rw_rayjob_build_submitter(const struct rw_rayjob *j, const char *job_id, const char *dashboard_url,
			  const char *head_image, struct rw_buf *out)
{
	static const char *const labels[][2] = {
	    {"ray.io/originated-from-crd", "RayJob"},
	    {"app.kubernetes.io/created-by", "kuberay-operator"},
	};
	struct b b = {0};
	node *job, *meta, *jl, *spec, *tmpl, *tl, *pod, *cs;
	char *script;
	const char *cluster = rw_doc_gets(j->obj.status, "rayClusterName");

	if (j->mode != RW_RAYJOB_K8SJOB)
		return -EINVAL;
	if (!head_image)
		head_image = rw_doc_gets(rj_head_container(j), "image");
	script = script_for(&b, j, dashboard_url, job_id);
	if (b.err)
		return b.err;
	job = nnew(&b, RW_DOC_OBJ);
	sets(&b, job, "apiVersion", "batch/v1");
	sets(&b, job, "kind", "Job");
	meta = obj(&b, job, "metadata");
	sets(&b, meta, "name", j->obj.name);
	sets(&b, meta, "namespace", j->obj.ns);
	jl = obj(&b, meta, "labels");
	sets(&b, jl, "ray.io/originated-from-cr-name", j->obj.name);
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		sets(&b, jl, labels[i][0], labels[i][1]);
	job_owner(&b, j, meta);
	spec = obj(&b, job, "spec");
	seti(&b, spec, "backoffLimit", j->submitter_backoff_limit);
	if (j->submitter_template) {
		tmpl = nclone(&b, j->submitter_template);
	} else {
		tmpl = nnew(&b, RW_DOC_OBJ);
		pod = obj(&b, tmpl, "spec");
		push(&b, arr(&b, pod, "containers"), default_container(&b, head_image));
		sets(&b, pod, "restartPolicy", "Never");
	}
	set(&b, spec, "template", tmpl);
	if (!b.err) {
		cs = rw_doc_path(tmpl, "spec.containers");
		if (!cs || cs->type != RW_DOC_ARR || cs->n == 0 ||
		    cs->kids[0]->type != RW_DOC_OBJ) {
			free(script);
			rw_doc_free(job);
			return -EINVAL; /* validation refuses a template without a container */
		}
		configure(&b, j, cs->kids[0], script, dashboard_url, job_id,
			  cluster ? cluster : j->selector_cluster);
	}
	/* The pod carries the Job's labels, so its pods can be found by RayJob. */
	tl = obj(&b, obj(&b, tmpl, "metadata"), "labels");
	sets(&b, tl, "ray.io/originated-from-cr-name", j->obj.name);
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		sets(&b, tl, labels[i][0], labels[i][1]);
	free(script);
	return finish(&b, job, out);
}

/* ---- the HTTPMode submission ---- */

static void
submit_clear(struct rw_job_submit *s)
{
	free(s->entrypoint);
	free(s->runtime_env_json);
	free(s->metadata_json);
	free(s->resources_json);
	memset(s, 0, sizeof(*s));
	s->num_cpus = s->num_gpus = -1;
	s->memory = -1;
}

/* One JSON text of the submission: NULL when the part is absent, else a copy. */
static int
take(struct rw_buf *b, char **out, size_t *total)
{
	size_t len;
	if (b->len == 0)
		return 0;
	*total += b->len;
	if (*total > RW_RAYJOB_MAX_SUBMISSION)
		return -EMSGSIZE;
	*out = rw_buf_steal(b, &len);
	return *out ? 0 : -ENOMEM;
}

int
rw_rayjob_http_submission(const struct rw_rayjob *j, const char *job_id, struct rw_job_submit *out,
			  char *err, size_t errlen)
{
	struct rw_buf b;
	const char *ep;
	size_t eplen, total = 0;
	double v;
	int rv = 0;

	memset(out, 0, sizeof(*out));
	submit_clear(out);
	if (err && errlen)
		err[0] = '\0';
	if (!job_id || !*job_id || strlen(job_id) >= sizeof(out->submission_id)) {
		if (err && errlen)
			snprintf(err, errlen, "the job id must be 1 to %zu characters",
				 sizeof(out->submission_id) - 1);
		return -EINVAL;
	}
	snprintf(out->submission_id, sizeof(out->submission_id), "%s", job_id);
	ep = trimmed(j->entrypoint, &eplen);
	if (eplen == 0) {
		if (err && errlen)
			snprintf(err, errlen, "spec.entrypoint is empty");
		submit_clear(out);
		return -EINVAL;
	}
	total = eplen;
	if (total > RW_RAYJOB_MAX_SUBMISSION) {
		rv = -EMSGSIZE;
		goto out;
	}
	out->entrypoint = malloc(eplen + 1);
	if (!out->entrypoint) {
		rv = -ENOMEM;
		goto out;
	}
	memcpy(out->entrypoint, ep, eplen);
	out->entrypoint[eplen] = '\0';

	rw_buf_init(&b, RW_RAYJOB_MAX_SUBMISSION);
	rv = rj_runtime_env_json(j, &b, err, errlen);
	if (!rv)
		rv = take(&b, &out->runtime_env_json, &total);
	rw_buf_reset(&b);
	if (!rv) {
		rv = rj_metadata_json(j, &b);
		if (rv == -EINVAL && err && errlen)
			snprintf(err, errlen, "spec.metadata must be an object of strings");
	}
	if (!rv)
		rv = take(&b, &out->metadata_json, &total);
	rw_buf_reset(&b);
	if (!rv)
		rv = rj_resources_json(j, &b, err, errlen);
	if (!rv)
		rv = take(&b, &out->resources_json, &total);
	rw_buf_fini(&b);
	/* Go's omitempty: zero CPUs or GPUs are not sent. */
	if ((v = num_f32(j, "entrypointNumCpus")) > 0)
		out->num_cpus = v;
	if ((v = num_f32(j, "entrypointNumGpus")) > 0)
		out->num_gpus = v;
out:
	if (rv == -EMSGSIZE && err && errlen)
		snprintf(err, errlen, "the submission is larger than %u bytes",
			 RW_RAYJOB_MAX_SUBMISSION);
	if (rv)
		submit_clear(out);
	return rv;
}

/* ---- the head Service ---- */

int
rw_rayjob_head_svc_name(const char *job, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s-head-svc", job);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

bool
rw_rayjob_wants_head_service(const struct rw_rayjob *j, const char *deployment)
{
	return !j->selector_mode && deployment && strcmp(deployment, RW_RJ_RUNNING) == 0;
}

int
rw_rayjob_build_head_service(const struct rw_rayjob *j, const struct rw_raycluster *c,
			     const struct rw_raycluster_opts *o, struct rw_buf *out)
{
	const char *api = rw_doc_gets(j->obj.root, "apiVersion");
	const struct rw_raycluster_owner owner = {
	    api ? api : "ray.io/v1", "RayJob", j->obj.name, j->obj.uid, j->obj.ns,
	};
	char name[320];
	int rv = rw_rayjob_head_svc_name(j->obj.name, name, sizeof(name));
	return rv ? rv : rw_raycluster_build_owned_head_service(c, o, &owner, name, out);
}
