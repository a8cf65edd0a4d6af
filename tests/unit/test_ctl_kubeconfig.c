/*
 * test_ctl_kubeconfig.c - kubeconfig parsing (table of documents including
 * *-data fields and bad input), private temporary files, in-cluster
 * configuration and token re-reading.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kubeconfig.h"
#include "rwtest.h"

#define HDR "apiVersion: v1\nkind: Config\n"

/* base64 of "-----BEGIN CERTIFICATE-----\nX\n" */
#define B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClgK"

static const struct {
	const char *name, *yaml, *context;
	int rv;
	const char *server, *ca, *token, *ns;
	int insecure, has_cert;
} cases[] = {
    {"token and relative CA",
     HDR "clusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443/\n"
	 "    certificate-authority: ca.crt\ncontexts:\n- name: x\n  context: {cluster: c, user: "
	 "u, namespace: team}\ncurrent-context: x\nusers:\n- name: u\n  user:\n    token: abc\n",
     NULL, 0, "https://10.0.0.1:6443", "/base/ca.crt", "abc", "team", 0, 0},
    {"CA data and client cert/key data",
     HDR "clusters:\n- name: c\n  cluster:\n    server: https://h:1\n"
	 "    certificate-authority-data: " B64 "\ncontexts:\n- name: x\n  context: {cluster: c, "
	 "user: u}\ncurrent-context: x\nusers:\n- name: u\n  user:\n"
	 "    client-certificate-data: " B64 "\n    client-key-data: " B64 "\n",
     NULL, 0, "https://h:1", "(tmp)", NULL, NULL, 0, 1},
    {"insecure only when said so",
     HDR "clusters:\n- name: c\n  cluster: {server: 'https://h:2', insecure-skip-tls-verify: "
	 "true}\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
     NULL, 0, "https://h:2", NULL, NULL, NULL, 1, 0},
    {"named context wins over current",
     HDR "clusters:\n- {name: a, cluster: {server: 'https://a:1'}}\n- {name: b, cluster: "
	 "{server: 'http://b:2'}}\ncontexts:\n- {name: ca, context: {cluster: a}}\n- {name: cb, "
	 "context: {cluster: b}}\ncurrent-context: ca\n",
     "cb", 0, "http://b:2", NULL, NULL, NULL, 0, 0},
    {"JSON kubeconfig",
     "{\"clusters\":[{\"name\":\"c\",\"cluster\":{\"server\":\"https://j:3\"}}],\"contexts\":[{"
     "\"name\":\"x\",\"context\":{\"cluster\":\"c\",\"user\":\"u\"}}],\"current-context\":\"x\","
     "\"users\":[{\"name\":\"u\",\"user\":{\"token\":\"t\",\"tokenFile\":\"/f\"}}]}",
     NULL, 0, "https://j:3", NULL, "t", NULL, 0, 0},
    {"no current-context", HDR "clusters: []\n", NULL, -EINVAL, NULL, NULL, NULL, NULL, 0, 0},
    {"missing context", HDR "clusters: []\ncontexts: []\ncurrent-context: nope\n", NULL, -EINVAL,
     NULL, NULL, NULL, NULL, 0, 0},
    {"missing cluster",
     HDR "contexts:\n- {name: x, context: {cluster: gone}}\ncurrent-context: x\n", NULL, -EINVAL,
     NULL, NULL, NULL, NULL, 0, 0},
    {"missing user",
     HDR "clusters:\n- {name: c, cluster: {server: 'https://h'}}\ncontexts:\n- {name: x, "
	 "context: {cluster: c, user: ghost}}\ncurrent-context: x\n",
     NULL, -EINVAL, NULL, NULL, NULL, NULL, 0, 0},
    {"server not http(s)",
     HDR "clusters:\n- {name: c, cluster: {server: 'ftp://h'}}\ncontexts:\n- {name: x, "
	 "context: {cluster: c}}\ncurrent-context: x\n",
     NULL, -EINVAL, NULL, NULL, NULL, NULL, 0, 0},
    {"bad base64",
     HDR "clusters:\n- {name: c, cluster: {server: 'https://h', certificate-authority-data: "
	 "'***'}}\ncontexts:\n- {name: x, context: {cluster: c}}\ncurrent-context: x\n",
     NULL, -EINVAL, NULL, NULL, NULL, NULL, 0, 0},
    {"insecure not a boolean",
     HDR "clusters:\n- {name: c, cluster: {server: 'https://h', insecure-skip-tls-verify: "
	 "'sure'}}\ncontexts:\n- {name: x, context: {cluster: c}}\ncurrent-context: x\n",
     NULL, -EINVAL, NULL, NULL, NULL, NULL, 0, 0},
    {"exec plugin refused",
     HDR "clusters:\n- {name: c, cluster: {server: 'https://h'}}\ncontexts:\n- {name: x, "
	 "context: {cluster: c, user: u}}\ncurrent-context: x\nusers:\n- {name: u, user: {exec: "
	 "{command: aws}}}\n",
     NULL, -EINVAL, NULL, NULL, NULL, NULL, 0, 0},
    {"cert without key",
     HDR "clusters:\n- {name: c, cluster: {server: 'https://h'}}\ncontexts:\n- {name: x, "
	 "context: {cluster: c, user: u}}\ncurrent-context: x\nusers:\n- {name: u, user: "
	 "{client-certificate: /c}}\n",
     NULL, -EINVAL, NULL, NULL, NULL, NULL, 0, 0},
    {"not YAML", "a: [b\n", NULL, -EINVAL, NULL, NULL, NULL, NULL, 0, 0},
    {"not a mapping", "- 1\n- 2\n", NULL, -EINVAL, NULL, NULL, NULL, NULL, 0, 0},
};

static char tmpdir[] = "/tmp/rw-kc-test-XXXXXX";

static int
count_tmp(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "ls %s | grep -c rw-kubecfg", tmpdir);
	FILE *p = popen(cmd, "r");
	int n = -1;
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

static void
test_table(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_kubecfg c;
		char err[256] = "";
		int rv = rw_kubecfg_parse(&c, cases[i].yaml, strlen(cases[i].yaml),
					  cases[i].context, "/base", tmpdir, err, sizeof(err));
		if (rv != cases[i].rv)
			fprintf(stderr, "  case \"%s\": rv %d (%s)\n", cases[i].name, rv, err);
		CHECK_EQ_INT(rv, cases[i].rv);
		if (rv != 0) {
			CHECK(err[0] != '\0');
			CHECK(strstr(err, B64) == NULL); /* credentials never in messages */
			CHECK(c.server == NULL);
			continue;
		}
		CHECK_EQ_STR(c.server, cases[i].server);
		if (cases[i].ca && !strcmp(cases[i].ca, "(tmp)")) {
			CHECK(c.ca_file && strncmp(c.ca_file, tmpdir, strlen(tmpdir)) == 0);
			struct stat st;
			CHECK(c.ca_file && stat(c.ca_file, &st) == 0 &&
			      (st.st_mode & 0777) == 0600);
			FILE *f = c.ca_file ? fopen(c.ca_file, "r") : NULL;
			char buf[64] = "";
			if (f) {
				size_t n = fread(buf, 1, sizeof(buf) - 1, f);
				buf[n] = '\0';
				fclose(f);
			}
			CHECK_EQ_STR(buf, "-----BEGIN CERTIFICATE-----\nX\n");
		} else if (cases[i].ca) {
			CHECK_EQ_STR(c.ca_file, cases[i].ca);
		} else {
			CHECK(c.ca_file == NULL);
		}
		if (cases[i].token)
			CHECK_EQ_STR(c.token, cases[i].token);
		else
			CHECK(c.token == NULL);
		if (cases[i].ns)
			CHECK_EQ_STR(c.ns, cases[i].ns);
		CHECK_EQ_INT(c.insecure, cases[i].insecure);
		CHECK_EQ_INT(c.client_cert != NULL && c.client_key != NULL, cases[i].has_cert);
		if (!strcmp(cases[i].name, "JSON kubeconfig"))
			CHECK(c.token_file == NULL); /* token wins over tokenFile */
		rw_kubecfg_fini(&c);
	}
	CHECK_EQ_INT(count_tmp(), 0); /* fini removed the temporary files */
}

static void
write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(s, f);
		fclose(f);
	}
}

static void
test_in_cluster(void)
{
	struct rw_kubecfg c;
	char err[256], path[256];
	const char *tok;
	snprintf(path, sizeof(path), "%s/token", tmpdir);
	write_file(path, "tok-1\n");
	snprintf(path, sizeof(path), "%s/ca.crt", tmpdir);
	write_file(path, "CA\n");
	snprintf(path, sizeof(path), "%s/namespace", tmpdir);
	write_file(path, "ray-system");
	CHECK_EQ_INT(rw_kubecfg_in_cluster(&c, tmpdir, "10.96.0.1", "443", 1000, err, sizeof(err)),
		     0);
	CHECK_EQ_STR(c.server, "https://10.96.0.1:443");
	CHECK_EQ_STR(c.ns, "ray-system");
	CHECK(c.in_cluster);
	CHECK_EQ_INT(rw_kubecfg_token(&c, 1000, 0, &tok), 0);
	CHECK_EQ_STR(tok, "tok-1");
	/* The kubelet rotates the token: seen after the TTL, or at once when forced. */
	snprintf(path, sizeof(path), "%s/token", tmpdir);
	write_file(path, "tok-2\n");
	rw_kubecfg_token(&c, 1000 + RW_KUBECFG_TOKEN_TTL_MS - 1, 0, &tok);
	CHECK_EQ_STR(tok, "tok-1");
	rw_kubecfg_token(&c, 1000 + RW_KUBECFG_TOKEN_TTL_MS, 0, &tok);
	CHECK_EQ_STR(tok, "tok-2");
	write_file(path, "tok-3\n");
	rw_kubecfg_token(&c, 1000 + RW_KUBECFG_TOKEN_TTL_MS + 1, 1, &tok);
	CHECK_EQ_STR(tok, "tok-3");
	/* A missing file keeps the old token. */
	unlink(path);
	CHECK_EQ_INT(rw_kubecfg_token(&c, 10000000, 1, &tok), 0);
	CHECK_EQ_STR(tok, "tok-3");
	rw_kubecfg_fini(&c);
	/* IPv6 host and missing pieces. */
	write_file(path, "t\n");
	CHECK_EQ_INT(rw_kubecfg_in_cluster(&c, tmpdir, "fd00::1", "6443", 0, err, sizeof(err)), 0);
	CHECK_EQ_STR(c.server, "https://[fd00::1]:6443");
	rw_kubecfg_fini(&c);
	CHECK_EQ_INT(rw_kubecfg_in_cluster(&c, tmpdir, NULL, "443", 0, err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(rw_kubecfg_in_cluster(&c, "/nonexistent", "h", "1", 0, err, sizeof(err)),
		     -ENOENT);
}

static void
test_load_file(void)
{
	struct rw_kubecfg c;
	char err[256], path[256];
	snprintf(path, sizeof(path), "%s/kc", tmpdir);
	write_file(path, HDR "clusters:\n- {name: c, cluster: {server: 'https://h:9', "
			     "certificate-authority: rel/ca}}\ncontexts:\n- {name: x, context: "
			     "{cluster: c}}\ncurrent-context: x\n");
	CHECK_EQ_INT(rw_kubecfg_load(&c, path, NULL, err, sizeof(err)), 0);
	char want[300];
	snprintf(want, sizeof(want), "%s/rel/ca", tmpdir);
	CHECK_EQ_STR(c.ca_file, want);
	rw_kubecfg_fini(&c);
	CHECK_EQ_INT(rw_kubecfg_load(&c, "/nonexistent/kc", NULL, err, sizeof(err)), -ENOENT);
}

int
main(void)
{
	static const struct rwt_case cs[] = {
	    {"kubeconfig table", test_table},
	    {"in-cluster and token rotation", test_in_cluster},
	    {"load a file, relative paths", test_load_file},
	    {NULL, NULL},
	};
	if (!mkdtemp(tmpdir))
		return 1;
	int rv = rwt_run(cs);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		rv = 1;
	return rv;
}
