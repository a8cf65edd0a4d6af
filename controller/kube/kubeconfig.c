/*
 * kubeconfig.c - kubeconfig and in-cluster configuration (see kubeconfig.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kubeconfig.h"
#include "rw/base64.h"
#include "rw/json.h"
#include "rw/yaml.h"

#define MAX_TOKENS 65536

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Read a whole file (at most RW_KUBECFG_MAX_FILE bytes), NUL-terminated. */
static int
read_file(const char *path, char **out, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;
	int rv = 0;
	*out = NULL;
	if (!f)
		return -errno;
	buf = malloc(RW_KUBECFG_MAX_FILE + 1);
	if (!buf) {
		rv = -ENOMEM;
		goto out;
	}
	len = fread(buf, 1, RW_KUBECFG_MAX_FILE + 1, f);
	if (ferror(f))
		rv = -EIO;
	else if (len > RW_KUBECFG_MAX_FILE)
		rv = -EFBIG;
out:
	fclose(f);
	if (rv) {
		free(buf);
		return rv;
	}
	buf[len] = '\0';
	*out = buf;
	if (lenp)
		*lenp = len;
	return 0;
}

/* A path relative to base_dir (absolute paths and NULL base stay as given). */
static char *
resolve(const char *base_dir, const char *p)
{
	if (!base_dir || !*base_dir || p[0] == '/')
		return strdup(p);
	size_t n = strlen(base_dir) + strlen(p) + 2;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s/%s", base_dir, p);
	return s;
}

/* Find the element of array `arr` whose "name" equals name; returns its `field` object. */
static int
named(const struct rw_json *j, int arr, const char *name, const char *field)
{
	int i, c;
	if (rw_json_type(j, arr) != RW_JSON_ARRAY)
		return -1;
	RW_JSON_ARR_FOREACH (j, arr, i, c) {
		if (rw_json_streq(j, rw_json_get(j, c, "name"), name)) {
			int f = rw_json_get(j, c, field);
			return rw_json_type(j, f) == RW_JSON_OBJECT ? f : -1;
		}
	}
	return -1;
}

/* A string field of object o, unescaped (NULL when absent or not a string). */
static int
str_field(const struct rw_json *j, int o, const char *key, char **out, const char *what, char *err,
	  size_t errlen)
{
	int t = rw_json_get(j, o, key);
	*out = NULL;
	if (t < 0 || rw_json_type(j, t) == RW_JSON_NULL)
		return 0;
	if (rw_json_type(j, t) != RW_JSON_STRING) {
		seterr(err, errlen, "kubeconfig: %s %s is not a string", what, key);
		return -EINVAL;
	}
	*out = rw_json_strdup(j, t);
	if (!*out) {
		seterr(err, errlen, "kubeconfig: %s %s has a bad escape", what, key);
		return -EINVAL;
	}
	return 0;
}

/* Decode a *-data field and (with tmp_dir) write it to a private file. */
static int
data_field(struct rw_kubecfg *c, const struct rw_json *j, int o, const char *key,
	   const char *tmp_dir, char **path, char *err, size_t errlen)
{
	char *b64 = NULL, *tmpl = NULL;
	unsigned char *bin = NULL;
	int rv = str_field(j, o, key, &b64, "field", err, errlen), fd = -1;
	long n;
	if (rv || !b64)
		goto out;
	size_t cap = strlen(b64) / 4 * 3 + 3;
	bin = malloc(cap);
	if (!bin) {
		rv = -ENOMEM;
		goto out;
	}
	n = rw_base64_decode(b64, strlen(b64), bin, cap);
	if (n <= 0) {
		seterr(err, errlen, "kubeconfig: %s is not valid base64", key);
		rv = -EINVAL;
		goto out;
	}
	if (!tmp_dir)
		goto out;
	size_t tl = strlen(tmp_dir) + 32;
	tmpl = malloc(tl);
	if (!tmpl) {
		rv = -ENOMEM;
		goto out;
	}
	snprintf(tmpl, tl, "%s/rw-kubecfg-XXXXXX", tmp_dir);
	fd = mkstemp(tmpl); /* mode 0600 */
	if (fd < 0) {
		rv = -errno;
		seterr(err, errlen, "kubeconfig: cannot create a temporary file in %s: %s", tmp_dir,
		       strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < 3; i++) {
		if (!c->tmp_files[i]) {
			c->tmp_files[i] = tmpl;
			break;
		}
	}
	if (write(fd, bin, (size_t)n) != n) {
		rv = -EIO;
		seterr(err, errlen, "kubeconfig: cannot write %s", tmpl);
		tmpl = NULL;
		goto out;
	}
	*path = strdup(tmpl);
	tmpl = NULL;
	if (!*path)
		rv = -ENOMEM;
out:
	if (fd >= 0)
		close(fd);
	free(tmpl);
	free(b64);
	free(bin);
	return rv;
}

/* File path field (relative to base_dir) or its -data twin; the file wins when both exist. */
static int
path_or_data(struct rw_kubecfg *c, const struct rw_json *j, int o, const char *key,
	     const char *base_dir, const char *tmp_dir, char **out, char *err, size_t errlen)
{
	char *p = NULL, dkey[64];
	int rv = str_field(j, o, key, &p, "field", err, errlen);
	if (rv)
		return rv;
	if (p && *p) {
		*out = resolve(base_dir, p);
		free(p);
		return *out ? 0 : -ENOMEM;
	}
	free(p);
	snprintf(dkey, sizeof(dkey), "%s-data", key);
	return data_field(c, j, o, dkey, tmp_dir, out, err, errlen);
}

int
rw_kubecfg_parse(struct rw_kubecfg *c, const char *text, size_t len, const char *context,
		 const char *base_dir, const char *tmp_dir, char *err, size_t errlen)
{
	struct rw_buf js;
	struct rw_json j = {0};
	char yerr[256], *ctxname = NULL, *clname = NULL, *uname = NULL;
	int rv, root, cl, us = -1, cx;

	memset(c, 0, sizeof(*c));
	rw_buf_init(&js, 4 * RW_KUBECFG_MAX_FILE);
	rv = rw_yaml_to_json(text, len, &js, yerr, sizeof(yerr));
	if (rv) {
		seterr(err, errlen, "kubeconfig: not YAML: %s", yerr);
		rv = -EINVAL;
		goto out;
	}
	rv =
	    rw_json_parse(&j, js.data ? js.data : "null", js.len ? js.len : 4, MAX_TOKENS, NULL, 0);
	if (rv) {
		seterr(err, errlen, "kubeconfig: too large");
		rv = -EINVAL;
		goto out;
	}
	root = 0;
	rv = -EINVAL;
	if (rw_json_type(&j, root) != RW_JSON_OBJECT) {
		seterr(err, errlen, "kubeconfig: not a mapping");
		goto out;
	}
	if (context && *context) {
		ctxname = strdup(context);
	} else {
		if (str_field(&j, root, "current-context", &ctxname, "top-level", err, errlen))
			goto out;
		if (!ctxname || !*ctxname) {
			seterr(err, errlen, "kubeconfig: no current-context");
			goto out;
		}
	}
	if (!ctxname) {
		rv = -ENOMEM;
		goto out;
	}
	cx = named(&j, rw_json_get(&j, root, "contexts"), ctxname, "context");
	if (cx < 0) {
		seterr(err, errlen, "kubeconfig: context \"%.64s\" not found", ctxname);
		goto out;
	}
	if (str_field(&j, cx, "cluster", &clname, "context", err, errlen) ||
	    str_field(&j, cx, "user", &uname, "context", err, errlen) ||
	    str_field(&j, cx, "namespace", &c->ns, "context", err, errlen))
		goto out;
	if (!clname) {
		seterr(err, errlen, "kubeconfig: context \"%.64s\" names no cluster", ctxname);
		goto out;
	}
	cl = named(&j, rw_json_get(&j, root, "clusters"), clname, "cluster");
	if (cl < 0) {
		seterr(err, errlen, "kubeconfig: cluster \"%.64s\" not found", clname);
		goto out;
	}
	if (uname) {
		us = named(&j, rw_json_get(&j, root, "users"), uname, "user");
		if (us < 0) {
			seterr(err, errlen, "kubeconfig: user \"%.64s\" not found", uname);
			goto out;
		}
	}
	if (str_field(&j, cl, "server", &c->server, "cluster", err, errlen))
		goto out;
	if (!c->server ||
	    (strncmp(c->server, "https://", 8) != 0 && strncmp(c->server, "http://", 7) != 0)) {
		seterr(err, errlen, "kubeconfig: cluster \"%.64s\" has no http(s) server", clname);
		goto out;
	}
	size_t sl = strlen(c->server);
	while (sl > 8 && c->server[sl - 1] == '/')
		c->server[--sl] = '\0';
	int ins = rw_json_get(&j, cl, "insecure-skip-tls-verify");
	if (ins >= 0) {
		bool b = false;
		if (rw_json_type(&j, ins) != RW_JSON_NULL && rw_json_bool(&j, ins, &b) != 0) {
			seterr(err, errlen,
			       "kubeconfig: insecure-skip-tls-verify is not a boolean");
			goto out;
		}
		c->insecure = b;
	}
	rv = path_or_data(c, &j, cl, "certificate-authority", base_dir, tmp_dir, &c->ca_file, err,
			  errlen);
	if (rv)
		goto out;
	if (us >= 0) {
		char *tf = NULL;
		rv = -EINVAL;
		if (rw_json_get(&j, us, "exec") >= 0 || rw_json_get(&j, us, "auth-provider") >= 0) {
			seterr(err, errlen,
			       "kubeconfig: user \"%.64s\": exec and auth-provider credentials "
			       "are not supported; use a token or client certificate",
			       uname);
			goto out;
		}
		if (str_field(&j, us, "token", &c->token, "user", err, errlen) ||
		    str_field(&j, us, "tokenFile", &tf, "user", err, errlen))
			goto out;
		if (tf && c->token) {
			free(tf); /* a token takes precedence over tokenFile, as in client-go */
			tf = NULL;
		}
		if (tf) {
			c->token_file = resolve(base_dir, tf);
			free(tf);
			if (!c->token_file) {
				rv = -ENOMEM;
				goto out;
			}
		}
		rv = path_or_data(c, &j, us, "client-certificate", base_dir, tmp_dir,
				  &c->client_cert, err, errlen);
		if (rv == 0)
			rv = path_or_data(c, &j, us, "client-key", base_dir, tmp_dir,
					  &c->client_key, err, errlen);
		if (rv)
			goto out;
		if (!c->client_cert != !c->client_key && tmp_dir) {
			seterr(err, errlen,
			       "kubeconfig: user \"%.64s\" has a client certificate without a key "
			       "or a key without a certificate",
			       uname);
			rv = -EINVAL;
			goto out;
		}
	}
	c->context = ctxname;
	ctxname = NULL;
	rv = 0;
out:
	if (rv)
		rw_kubecfg_fini(c);
	free(ctxname);
	free(clname);
	free(uname);
	rw_json_fini(&j);
	rw_buf_fini(&js);
	return rv;
}

int
rw_kubecfg_load(struct rw_kubecfg *c, const char *path, const char *context, char *err,
		size_t errlen)
{
	char *text = NULL, *dir = NULL;
	size_t len = 0;
	int rv = read_file(path, &text, &len);
	memset(c, 0, sizeof(*c));
	if (rv) {
		seterr(err, errlen, "kubeconfig %s: %s", path, strerror(-rv));
		return rv;
	}
	dir = strdup(path);
	if (!dir) {
		free(text);
		return -ENOMEM;
	}
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	const char *tmp = getenv("TMPDIR");
	rv = rw_kubecfg_parse(c, text, len, context, slash ? (*dir ? dir : "/") : NULL,
			      tmp && *tmp ? tmp : "/tmp", err, errlen);
	free(dir);
	free(text);
	return rv;
}

/* Read a token file: trimmed, non-empty. */
static int
read_token(const char *path, char **out)
{
	char *t = NULL;
	size_t len = 0;
	int rv = read_file(path, &t, &len);
	*out = NULL;
	if (rv)
		return rv;
	while (len && (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' '))
		t[--len] = '\0';
	if (!len || strpbrk(t, "\r\n")) {
		free(t);
		return -EINVAL;
	}
	*out = t;
	return 0;
}

int
rw_kubecfg_in_cluster(struct rw_kubecfg *c, const char *sa_dir, const char *host, const char *port,
		      uint64_t now_ms, char *err, size_t errlen)
{
	char path[4096];
	int rv = -EINVAL;
	memset(c, 0, sizeof(*c));
	if (!host || !*host || !port || !*port) {
		seterr(
		    err, errlen,
		    "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
		return -EINVAL;
	}
	size_t n = strlen(host) + strlen(port) + 16;
	c->server = malloc(n);
	if (!c->server)
		goto nomem;
	if (strchr(host, ':'))
		snprintf(c->server, n, "https://[%s]:%s", host, port);
	else
		snprintf(c->server, n, "https://%s:%s", host, port);
	c->in_cluster = 1;
	snprintf(path, sizeof(path), "%s/token", sa_dir);
	c->token_file = strdup(path);
	snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
	c->ca_file = strdup(path);
	if (!c->token_file || !c->ca_file)
		goto nomem;
	rv = read_token(c->token_file, &c->token);
	if (rv) {
		seterr(err, errlen, "in-cluster: cannot read the token %s: %s", c->token_file,
		       strerror(-rv));
		goto fail;
	}
	c->token_read_ms = now_ms;
	if (access(c->ca_file, R_OK) != 0) {
		rv = -errno;
		seterr(err, errlen, "in-cluster: cannot read %s: %s", c->ca_file, strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/namespace", sa_dir);
	if (read_token(path, &c->ns) != 0)
		c->ns = NULL;
	return 0;
nomem:
	rv = -ENOMEM;
fail:
	rw_kubecfg_fini(c);
	return rv;
}

int
rw_kubecfg_auto(struct rw_kubecfg *c, const char *kubeconfig, uint64_t now_ms, char *err,
		size_t errlen)
{
	const char *env = getenv("KUBECONFIG");
	char path[4096];
	if (kubeconfig && *kubeconfig)
		return rw_kubecfg_load(c, kubeconfig, NULL, err, errlen);
	if (env && *env) {
		size_t n = strcspn(env, ":");
		snprintf(path, sizeof(path), "%.*s", (int)n, env);
		return rw_kubecfg_load(c, path, NULL, err, errlen);
	}
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	if (host && *host) {
		const char *sa = getenv("RAYWARDEN_SERVICEACCOUNT_DIR");
		return rw_kubecfg_in_cluster(c, sa && *sa ? sa : RW_KUBECFG_DEFAULT_SA_DIR, host,
					     getenv("KUBERNETES_SERVICE_PORT"), now_ms, err,
					     errlen);
	}
	const char *home = getenv("HOME");
	if (!home || !*home) {
		memset(c, 0, sizeof(*c));
		seterr(err, errlen,
		       "no kubeconfig: set --kubeconfig or KUBECONFIG, or run in a pod");
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/.kube/config", home);
	return rw_kubecfg_load(c, path, NULL, err, errlen);
}

int
rw_kubecfg_token(struct rw_kubecfg *c, uint64_t now_ms, int force, const char **out)
{
	*out = c->token;
	if (!c->token_file)
		return 0;
	if (c->token && !force && now_ms - c->token_read_ms < RW_KUBECFG_TOKEN_TTL_MS)
		return 0;
	char *t = NULL;
	if (read_token(c->token_file, &t) == 0) {
		free(c->token);
		c->token = t;
	}
	/* Even a failed read waits a full period before the next attempt. */
	c->token_read_ms = now_ms;
	*out = c->token;
	return c->token ? 0 : -ENOENT;
}

void
rw_kubecfg_fini(struct rw_kubecfg *c)
{
	if (!c)
		return;
	for (int i = 0; i < 3; i++) {
		if (c->tmp_files[i]) {
			unlink(c->tmp_files[i]);
			free(c->tmp_files[i]);
		}
	}
	free(c->server);
	free(c->ca_file);
	free(c->client_cert);
	free(c->client_key);
	free(c->token);
	free(c->token_file);
	free(c->ns);
	free(c->context);
	memset(c, 0, sizeof(*c));
}
