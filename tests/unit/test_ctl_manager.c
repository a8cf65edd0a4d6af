/*
 * test_ctl_manager.c - the manager's shared informers (manager.h): one
 * informer (one list+watch) per (type, label selector, scope), however many
 * kinds ask for it, each kind's handler set and index added to it. Nothing
 * is started: the API server named by the kubeconfig is never contacted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "manager.h"
#include "rwtest.h"

static const char *
no_env(const char *name, void *ud)
{
	(void)name;
	(void)ud;
	return NULL;
}

static const char *
idx_a(const void *obj, char *buf, size_t n)
{
	(void)obj;
	(void)buf;
	(void)n;
	return NULL;
}

static void
on_add(struct rw_inf *inf, const void *obj, void *ud)
{
	(void)inf;
	(void)obj;
	(void)ud;
}

static const struct rw_inf_type rc_a = {"/apis/ray.io/v1", "rayclusters", rw_inf_json_decode, free};
/* Another module's definition of the same type (as raycluster.c's and rayservice.c's). */
static const struct rw_inf_type rc_b = {"/apis/ray.io/v1", "rayclusters", rw_inf_json_decode, NULL};
static const struct rw_inf_type svc = {"/api/v1", "services", rw_inf_json_decode, free};

static void
test_shared(void)
{
	char path[] = "/tmp/rw-ctl-mgr-XXXXXX", err[512] = "";
	const char *kc = "apiVersion: v1\nkind: Config\nclusters:\n- {name: c, cluster: {server: "
			 "'https://127.0.0.1:1', insecure-skip-tls-verify: true}}\ncontexts:\n- "
			 "{name: x, context: {cluster: c, user: u}}\ncurrent-context: x\nusers:\n- "
			 "{name: u, user: {token: t}}\n";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, kc, strlen(kc)) == (ssize_t)strlen(kc));
	close(fd);
	char *argv[] = {"c", "--kubeconfig", path, "--leader-elect=false", NULL};
	struct rw_mgr_config cfg;
	struct rw_mgr *m = NULL;
	uv_loop_t loop;
	CHECK_EQ_INT(rw_mgr_config_parse(&cfg, 4, argv, no_env, NULL, err, sizeof(err)), 0);
	CHECK_EQ_INT(uv_loop_init(&loop), 0);
	CHECK_EQ_INT(rw_mgr_new(&loop, &cfg, &m, err, sizeof(err)), 0);
	if (!m) {
		fprintf(stderr, "  %s\n", err);
		unlink(path);
		return;
	}
	struct rw_inf_handlers h = {on_add, NULL, NULL, NULL};
	struct rw_inf *p1 = rw_mgr_informer(m, &rw_inf_pod_type, RW_MGR_RAY_POD_SELECTOR, false,
					    rw_inf_pod_cluster_key, &h);
	struct rw_inf *p2 = rw_mgr_informer(m, &rw_inf_pod_type, RW_MGR_RAY_POD_SELECTOR, false,
					    rw_inf_pod_cluster_key, &h);
	struct rw_inf *p3 = rw_mgr_informer(m, &rw_inf_pod_type, RW_MGR_RAY_POD_SELECTOR, false,
					    rw_inf_pod_cluster_key, NULL);
	CHECK(p1 != NULL && p1 == p2 && p2 == p3);
	/* A NULL and an empty selector are the same list. */
	struct rw_inf *r1 = rw_mgr_informer(m, &rc_a, NULL, false, NULL, &h);
	struct rw_inf *r2 = rw_mgr_informer(m, &rc_b, "", false, idx_a, &h);
	CHECK(r1 != NULL && r1 == r2);
	CHECK_EQ_INT(rw_mgr_informer_count(m), 2);
	/* Another selector or scope is another list+watch. */
	struct rw_inf *s1 = rw_mgr_informer(m, &svc, "a=b", false, NULL, &h);
	struct rw_inf *s2 = rw_mgr_informer(m, &svc, "a=c", false, NULL, &h);
	struct rw_inf *s3 = rw_mgr_informer(m, &svc, "a=b", true, NULL, &h);
	CHECK(s1 && s2 && s3 && s1 != s2 && s1 != s3 && s2 != s3);
	CHECK_EQ_INT(rw_mgr_informer_count(m), 5);
	/* Handler sets and indexes are bounded. */
	for (int i = 0; i < RW_INF_MAX_HANDLERS + 2; i++)
		rw_mgr_informer(m, &svc, "x=y", false, NULL, &h);
	CHECK(rw_mgr_informer(m, &svc, "x=y", false, NULL, &h) == NULL);
	CHECK(rw_mgr_informer(m, &svc, "x=y", false, NULL, NULL) != NULL);
	CHECK_EQ_INT(rw_inf_add_index(r1, idx_a), 0); /* present already: a no-op */
	CHECK_EQ_INT(rw_inf_index_foreach_by(r1, idx_a, "k", NULL, NULL), 0);
	CHECK_EQ_INT(rw_inf_index_foreach(p1, "ns/none", NULL, NULL), 0);
	rw_mgr_shutdown(m, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	rw_mgr_free(m);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	rw_mgr_config_fini(&cfg);
	unlink(path);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"shared", test_shared},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}
