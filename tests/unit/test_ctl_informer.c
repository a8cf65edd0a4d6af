/*
 * test_ctl_informer.c - the controller machinery against the Python API
 * server simulator (tests/sim/kubesim/apiserver.py, spawned over TLS):
 * paginated list with a label selector, watch events, bookmarks, 410 after
 * compaction -> relist with a consistent store, dropped watches resumed,
 * injected 429/500 retried, Lease election between two candidates on one
 * loop (one leads; the leader's renewals blocked -> it stops, then the other
 * takes over after expiry, never both; release hands over at once), and
 * Event aggregation and rate limiting.
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "events.h"
#include "informer.h"
#include "kube.h"
#include "kubeconfig.h"
#include "lease.h"
#include "rw/json.h"
#include "rwtest.h"

extern char **environ;

static uv_loop_t loop;
static struct rw_kubecfg kc;
static struct rw_kube *kube, *admin;
static struct rw_met *met;
static pid_t sim_pid;
static char state_dir[] = "/tmp/rw-ctl-inf-XXXXXX";

/* ---- loop helpers ---- */

static void
tick_cb(uv_timer_t *t)
{
	(void)t;
}

/* Run the loop until *flag is set or ms pass; returns whether it was set. */
static bool
wait_flag(volatile int *flag, uint64_t ms)
{
	uv_timer_t t;
	uint64_t end = uv_now(&loop) + ms;
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, tick_cb, 5, 5);
	while (!*flag && uv_now(&loop) < end)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return *flag != 0;
}

typedef bool (*cond_fn)(void *ud);

static bool
wait_cond(cond_fn fn, void *ud, uint64_t ms)
{
	uv_timer_t t;
	uint64_t end = uv_now(&loop) + ms;
	bool ok;
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, tick_cb, 5, 5);
	while (!(ok = fn(ud)) && uv_now(&loop) < end)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return ok;
}

static void
sleep_loop(uint64_t ms)
{
	int never = 0;
	wait_flag(&never, ms);
}

struct sync_res {
	int done, err, attempts;
	long status;
	char body[65536];
};

static void
sync_cb(const struct rw_kube_resp *r, void *ud)
{
	struct sync_res *s = ud;
	s->err = r->err;
	s->status = r->status;
	s->attempts = r->attempts;
	snprintf(s->body, sizeof(s->body), "%.*s", (int)r->body_len, r->body);
	s->done = 1;
}

static long
req(const char *method, const char *path, const char *query, const char *body, const char *ctype,
    struct sync_res *out)
{
	static struct sync_res tmp;
	struct sync_res *s = out ? out : &tmp;
	struct rw_kube_req r = {.method = method,
				.path = path,
				.query = query,
				.body = body,
				.body_len = body ? strlen(body) : 0,
				.content_type = ctype};
	memset(s, 0, sizeof(*s));
	if (rw_kube_request(admin, &r, sync_cb, s, NULL) != 0)
		return -1;
	if (!wait_flag(&s->done, 20000))
		return -2;
	return s->err ? -3 : s->status;
}

static long
create_pod(const char *ns, const char *name, const char *node_type, const char *cluster)
{
	char body[1024], path[256];
	snprintf(
	    body, sizeof(body),
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"labels\":"
	    "{\"ray.io/node-type\":\"%s\",\"ray.io/cluster\":\"%s\",\"ray.io/group\":\"g\"}},"
	    "\"spec\":{\"containers\":[{\"name\":\"ray-worker\",\"image\":\"rayproject/ray\"}]}}",
	    name, node_type, cluster);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods", ns);
	return req("POST", path, NULL, body, NULL, NULL);
}

static long
delete_pod(const char *ns, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", ns, name);
	return req("DELETE", path, "gracePeriodSeconds=0", NULL, NULL, NULL);
}

static long
sim_post(const char *what, const char *body)
{
	char path[128];
	snprintf(path, sizeof(path), "/_sim/%s", what);
	return req("POST", path, NULL, body ? body : "{}", NULL, NULL);
}

/* ---- simulator ---- */

static int
start_sim(void)
{
	char script[1024], json[512];
	const char *src = getenv("RW_SOURCE_DIR");
	if (src && *src) {
		snprintf(script, sizeof(script), "%s/tests/sim/kubesim/apiserver.py", src);
	} else {
		/* __FILE__ is tests/unit/test_ctl_informer.c under the source tree. */
		snprintf(script, sizeof(script), "%s", __FILE__);
		char *p = strstr(script, "tests/unit/");
		if (!p)
			return -1;
		strcpy(p, "tests/sim/kubesim/apiserver.py");
	}
	if (!mkdtemp(state_dir))
		return -1;
	char *argv[] = {"python3", script, "--state-dir",	  state_dir, "--tls",
			"--port",  "0",	   "--bookmark-interval", "0.3",     NULL};
	if (posix_spawnp(&sim_pid, "python3", NULL, NULL, argv, environ) != 0)
		return -1;
	snprintf(json, sizeof(json), "%s/apiserver.json", state_dir);
	for (int i = 0; i < 400; i++) {
		struct stat st;
		if (stat(json, &st) == 0 && st.st_size > 0)
			return 0;
		nanosleep(&(struct timespec){0, 50000000}, NULL);
	}
	return -1;
}

static void
stop_sim(void)
{
	char cmd[128];
	if (sim_pid > 0) {
		kill(sim_pid, SIGTERM);
		waitpid(sim_pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", state_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", state_dir);
}

/* ---- informer tests ---- */

struct seen {
	int adds, updates, deletes;
	char last_add[64], last_del[64];
};

static void
on_add(struct rw_inf *inf, const void *obj, void *ud)
{
	struct seen *s = ud;
	(void)inf;
	s->adds++;
	snprintf(s->last_add, sizeof(s->last_add), "%s", ((const struct rw_inf_meta *)obj)->name);
}

static void
on_update(struct rw_inf *inf, const void *o, const void *n, void *ud)
{
	struct seen *s = ud;
	(void)inf;
	(void)o;
	(void)n;
	s->updates++;
}

static void
on_delete(struct rw_inf *inf, const void *obj, void *ud)
{
	struct seen *s = ud;
	(void)inf;
	s->deletes++;
	snprintf(s->last_del, sizeof(s->last_del), "%s", ((const struct rw_inf_meta *)obj)->name);
}

struct infwait {
	struct rw_inf *inf;
	size_t count;
	const char *ns, *present, *absent;
};

static bool
inf_synced(void *ud)
{
	return rw_inf_synced(ud);
}

static bool
inf_state(void *ud)
{
	struct infwait *w = ud;
	if (w->count != (size_t)-1 && rw_inf_count(w->inf) != w->count)
		return false;
	if (w->present && !rw_inf_get(w->inf, w->ns, w->present))
		return false;
	if (w->absent && rw_inf_get(w->inf, w->ns, w->absent))
		return false;
	return true;
}

static double
metric(const char *family, const char *const *labels, const char *const *values)
{
	struct rw_met_family *f = rw_met_counter(met, family, "", labels);
	return rw_met_value(f, values);
}

static int
count_lists(void)
{
	struct sync_res s;
	if (req("GET", "/_sim/stats", NULL, NULL, NULL, &s) != 200)
		return -1;
	struct rw_json j = {0};
	int64_t n = 0;
	if (rw_json_parse(&j, s.body, strlen(s.body), 100000, NULL, 0) == 0)
		rw_json_int(&j, rw_json_path(&j, 0, "by_verb.list.200"), &n);
	rw_json_fini(&j);
	return (int)n;
}

static void
count_cluster(const void *obj, void *ud)
{
	(void)obj;
	(*(int *)ud)++;
}

static void
test_informer(void)
{
	struct seen s = {0};
	struct rw_inf *inf = NULL;
	char name[64];
	const char *const ns_list[] = {"default", NULL};
	struct rw_inf_handlers h = {on_add, on_update, on_delete, &s};
	struct rw_inf_opts o = {.namespaces = ns_list,
				.label_selector = "ray.io/node-type in (head,worker,redis-cleanup)",
				.page_size = 10,
				.index_key = rw_inf_pod_cluster_key};

	/* 25 Ray pods and 3 pods the selector leaves out. */
	for (int i = 0; i < 25; i++) {
		snprintf(name, sizeof(name), "ray-%02d", i);
		CHECK_EQ_INT(
		    create_pod("default", name, i ? "worker" : "head", i % 2 ? "c1" : "c2"), 201);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "other-%d", i);
		CHECK_EQ_INT(create_pod("default", name, "something-else", "c1"), 201);
	}
	int lists0 = count_lists();
	CHECK_EQ_INT(rw_inf_new(kube, &rw_inf_pod_type, &o, &h, &inf), 0);
	CHECK_EQ_INT(rw_inf_start(inf), 0);
	CHECK(wait_cond(inf_synced, inf, 10000));
	CHECK_EQ_INT(rw_inf_count(inf), 25);
	CHECK_EQ_INT(s.adds, 25);
	CHECK(rw_inf_get(inf, "default", "ray-00") != NULL);
	CHECK(rw_inf_get(inf, "default", "other-0") == NULL);
	CHECK_EQ_INT(count_lists() - lists0, 3); /* 10 + 10 + 5 */
	int n1 = 0, n2 = 0;
	CHECK_EQ_INT(rw_inf_index_foreach(inf, "default/c1", count_cluster, &n1), 12);
	CHECK_EQ_INT(rw_inf_index_foreach(inf, "default/c2", count_cluster, &n2), 13);
	CHECK_EQ_INT(n1 + n2, 25);

	/* Watch: add, update, delete. */
	CHECK_EQ_INT(create_pod("default", "ray-new", "worker", "c1"), 201);
	struct infwait w = {inf, 26, "default", "ray-new", NULL};
	CHECK(wait_cond(inf_state, &w, 5000));
	CHECK_EQ_STR(s.last_add, "ray-new");
	int upd0 = s.updates;
	CHECK_EQ_INT(req("PATCH", "/api/v1/namespaces/default/pods/ray-new", NULL,
			 "{\"metadata\":{\"annotations\":{\"x\":\"y\"}}}",
			 "application/merge-patch+json", NULL),
		     200);
	for (int i = 0; i < 200 && s.updates == upd0; i++)
		sleep_loop(20);
	CHECK(s.updates > upd0);
	CHECK_EQ_INT(delete_pod("default", "ray-new"), 200);
	struct infwait wd = {inf, 25, "default", NULL, "ray-new"};
	CHECK(wait_cond(inf_state, &wd, 5000));
	CHECK_EQ_STR(s.last_del, "ray-new");

	/* Bookmarks arrive (interval 0.3 s) and keep the resourceVersion fresh. */
	const char *const lrt[] = {"resource", "type", NULL};
	const char *const bm[] = {"pods", "BOOKMARK"};
	double b0 = metric("raywarden_informer_events_total", lrt, bm);
	sleep_loop(1200);
	CHECK(metric("raywarden_informer_events_total", lrt, bm) > b0);

	/* Dropped watches resume without a relist. */
	unsigned long rl0 = rw_inf_relists(inf);
	CHECK_EQ_INT(sim_post("drop-watches", NULL), 200);
	sleep_loop(100);
	CHECK_EQ_INT(create_pod("default", "after-drop", "worker", "c1"), 201);
	struct infwait wa = {inf, 26, "default", "after-drop", NULL};
	CHECK(wait_cond(inf_state, &wa, 10000));
	CHECK_EQ_INT(rw_inf_relists(inf), rl0);

	/* 410 on the watch request itself -> relist; a 500 on it -> back-off, resume. */
	unsigned long rl1 = rw_inf_relists(inf);
	CHECK_EQ_INT(sim_post("faults", "{\"verb\":\"watch\",\"code\":410,\"count\":1,"
					"\"resource\":\"pods\"}"),
		     200);
	CHECK_EQ_INT(sim_post("drop-watches", NULL), 200);
	for (int i = 0; i < 250 && rw_inf_relists(inf) == rl1; i++)
		sleep_loop(20);
	CHECK_EQ_INT(rw_inf_relists(inf), rl1 + 1);
	CHECK_EQ_INT(sim_post("faults", "{\"verb\":\"watch\",\"code\":500,\"count\":1,"
					"\"resource\":\"pods\"}"),
		     200);
	CHECK_EQ_INT(sim_post("drop-watches", NULL), 200);
	sleep_loop(100);
	CHECK_EQ_INT(create_pod("default", "after-500", "worker", "c1"), 201);
	struct infwait w5 = {inf, 27, "default", "after-500", NULL};
	CHECK(wait_cond(inf_state, &w5, 10000));
	CHECK_EQ_INT(rw_inf_relists(inf), rl1 + 1);
	CHECK_EQ_INT(delete_pod("default", "after-500"), 200);
	struct infwait w6 = {inf, 26, "default", NULL, "after-500"};
	CHECK(wait_cond(inf_state, &w6, 10000));
	rl0 = rw_inf_relists(inf);

	/* 410: changes while stopped, history compacted -> relist, consistent store. */
	rw_inf_stop(inf);
	int adds0 = s.adds, dels0 = s.deletes;
	CHECK_EQ_INT(delete_pod("default", "ray-01"), 200);
	CHECK_EQ_INT(delete_pod("default", "after-drop"), 200);
	CHECK_EQ_INT(create_pod("default", "while-stopped", "head", "c3"), 201);
	CHECK_EQ_INT(sim_post("compact", NULL), 200);
	CHECK_EQ_INT(rw_inf_start(inf), 0);
	struct infwait wr = {inf, 25, "default", "while-stopped", "ray-01"};
	CHECK(wait_cond(inf_state, &wr, 10000));
	CHECK(rw_inf_relists(inf) > rl0);
	CHECK_EQ_INT(s.deletes - dels0, 2);
	CHECK_EQ_INT(s.adds - adds0, 1);
	CHECK(rw_inf_get(inf, "default", "after-drop") == NULL);
	CHECK_EQ_INT(rw_inf_index_foreach(inf, "default/c3", count_cluster, &n1), 1);
	/* And the watch works again after the relist. */
	CHECK_EQ_INT(create_pod("default", "post-relist", "worker", "c1"), 201);
	struct infwait wp = {inf, 26, "default", "post-relist", NULL};
	CHECK(wait_cond(inf_state, &wp, 10000));

	rw_inf_free(inf);
	sleep_loop(20);
}

/* ---- retries ---- */

static void
test_retries(void)
{
	struct sync_res s;
	uint64_t t0;
	/* Two 500s on GET: retried, the third attempt answers. */
	CHECK_EQ_INT(sim_post("faults", "{\"verb\":\"get\",\"code\":500,\"count\":2,"
					"\"resource\":\"pods\"}"),
		     200);
	CHECK_EQ_INT(req("GET", "/api/v1/namespaces/default/pods/ray-00", NULL, NULL, NULL, &s),
		     200);
	CHECK_EQ_INT(s.attempts, 3);
	/* 429 with Retry-After 1 on create: honoured, then created. */
	CHECK_EQ_INT(sim_post("faults", "{\"verb\":\"create\",\"code\":429,\"count\":1,"
					"\"retryAfter\":1,\"resource\":\"pods\"}"),
		     200);
	t0 = uv_now(&loop);
	CHECK_EQ_INT(create_pod("default", "throttled", "worker", "c1"), 201);
	CHECK(uv_now(&loop) - t0 >= 1000);
	/* A 500 on create is not retried (not idempotent): the caller sees it. */
	CHECK_EQ_INT(sim_post("faults", "{\"verb\":\"create\",\"code\":500,\"count\":1,"
					"\"resource\":\"pods\"}"),
		     200);
	CHECK_EQ_INT(create_pod("default", "fails-once", "worker", "c1"), 500);
	CHECK_EQ_INT(req("DELETE", "/_sim/faults", NULL, NULL, NULL, NULL), 200);
	/* Every answer's status is passed on: 404 is not an error of the transport. */
	CHECK_EQ_INT(req("GET", "/api/v1/namespaces/default/pods/nope", NULL, NULL, NULL, &s), 404);
	CHECK_EQ_INT(s.attempts, 1);
}

/* ---- QPS limit ---- */

static int qps_done;

static void
qps_cb(const struct rw_kube_resp *r, void *ud)
{
	(void)r;
	(void)ud;
	qps_done++;
}

static void
test_qps(void)
{
	struct rw_kube *k2;
	struct rw_kube_opts ko = {.qps = 20, .burst = 5, .unrestricted = 1};
	CHECK_EQ_INT(rw_kube_new(&loop, &kc, &ko, &k2), 0);
	struct rw_kube_req r = {.path = "/api/v1/namespaces/default/pods/ray-00"};
	uint64_t t0 = uv_now(&loop);
	qps_done = 0;
	for (int i = 0; i < 25; i++)
		CHECK_EQ_INT(rw_kube_request(k2, &r, qps_cb, NULL, NULL), 0);
	CHECK(rw_kube_queued(k2) >= 19); /* the bucket let 5 through, the rest wait */
	volatile int *d = &qps_done;
	for (int i = 0; i < 2000 && *d < 25; i++)
		sleep_loop(5);
	CHECK_EQ_INT(qps_done, 25);
	/* 20 requests beyond the burst at 20/s take about a second. */
	CHECK(uv_now(&loop) - t0 >= 950);
	rw_kube_free(k2, NULL, NULL);
	sleep_loop(20);
}

/* ---- leader election ---- */

struct cand {
	struct rw_lease *l;
	int starts, stops;
	uint64_t start_ms, stop_ms;
};

static void
c_start(void *ud)
{
	struct cand *c = ud;
	c->starts++;
	c->start_ms = uv_now(&loop);
}

static void
c_stop(void *ud)
{
	struct cand *c = ud;
	c->stops++;
	c->stop_ms = uv_now(&loop);
}

static struct cand ca, cb;
static int both;

static void
watchdog_cb(uv_timer_t *t)
{
	(void)t;
	if (rw_lease_is_leader(ca.l) && rw_lease_is_leader(cb.l))
		both++;
}

static bool
one_leads(void *ud)
{
	(void)ud;
	return rw_lease_is_leader(ca.l) || rw_lease_is_leader(cb.l);
}

static bool
b_leads(void *ud)
{
	(void)ud;
	return rw_lease_is_leader(cb.l);
}

static bool
a_leads(void *ud)
{
	(void)ud;
	return rw_lease_is_leader(ca.l);
}

static int released;

static void
on_released(void *ud)
{
	(void)ud;
	released = 1;
}

static void
test_lease(void)
{
	uv_timer_t wd;
	struct rw_lease_opts o = {.ns = "default",
				  .name = "raywarden-controller-leader",
				  .lease_ms = 2000,
				  .renew_deadline_ms = 1000,
				  .retry_ms = 200,
				  .on_start = c_start,
				  .on_stop = c_stop};
	memset(&ca, 0, sizeof(ca));
	memset(&cb, 0, sizeof(cb));
	uv_timer_init(&loop, &wd);
	uv_timer_start(&wd, watchdog_cb, 5, 5);
	o.identity = "cand-a";
	o.ud = &ca;
	CHECK_EQ_INT(rw_lease_new(kube, &o, &ca.l), 0);
	o.identity = "cand-b";
	o.ud = &cb;
	CHECK_EQ_INT(rw_lease_new(kube, &o, &cb.l), 0);
	CHECK_EQ_INT(rw_lease_start(ca.l), 0);
	CHECK(wait_cond(a_leads, NULL, 5000));
	CHECK_EQ_INT(rw_lease_start(cb.l), 0);
	sleep_loop(2500); /* b keeps seeing a renew: stays a standby */
	CHECK(rw_lease_is_leader(ca.l));
	CHECK(!rw_lease_is_leader(cb.l));
	CHECK_EQ_STR(rw_lease_holder(cb.l), "cand-a");

	/* Kill a's renewals: a stops by its deadline, b takes over after expiry. */
	uint64_t t_block = uv_now(&loop);
	rw_lease_block(ca.l, true);
	CHECK(wait_cond(b_leads, NULL, 8000));
	CHECK_EQ_INT(ca.stops, 1);
	CHECK(ca.stop_ms - t_block <= 1300); /* renew deadline 1 s + timer slack */
	CHECK(cb.start_ms >= ca.stop_ms);
	CHECK(cb.start_ms - t_block >= 1700); /* not before the lease expired */
	CHECK_EQ_INT(both, 0);
	rw_lease_block(ca.l, false);
	sleep_loop(1000);
	CHECK(!rw_lease_is_leader(ca.l)); /* a is a standby now */
	CHECK(rw_lease_is_leader(cb.l));

	/* A clean release hands over without waiting for expiry. */
	released = 0;
	uint64_t t_rel = uv_now(&loop);
	rw_lease_release(cb.l, on_released, NULL);
	CHECK(wait_flag(&released, 3000));
	CHECK(wait_cond(a_leads, NULL, 3000));
	CHECK(uv_now(&loop) - t_rel < 1000);
	CHECK_EQ_INT(cb.stops, 0); /* a release is not a loss */
	CHECK_EQ_INT(both, 0);
	CHECK(one_leads(NULL));
	uv_close((uv_handle_t *)&wd, NULL);
	rw_lease_free(ca.l);
	rw_lease_free(cb.l);
	sleep_loop(20);
}

/* ---- events ---- */

static int
find_event_count(const char *reason)
{
	struct sync_res s;
	struct rw_json j = {0};
	int i, c, found = -1;
	if (req("GET", "/apis/events.k8s.io/v1/namespaces/default/events", NULL, NULL, NULL, &s) !=
	    200)
		return -2;
	if (rw_json_parse(&j, s.body, strlen(s.body), 1000000, NULL, 0) != 0)
		return -3;
	RW_JSON_ARR_FOREACH (&j, rw_json_get(&j, 0, "items"), i, c) {
		if (!rw_json_streq(&j, rw_json_get(&j, c, "reason"), reason))
			continue;
		int64_t n = 1;
		rw_json_int(&j, rw_json_path(&j, c, "series.count"), &n);
		found = found < 0 ? (int)n : -100; /* more than one Event is a failure */
		CHECK(rw_json_streq(&j, rw_json_get(&j, c, "reportingController"),
				    "raywarden.io/raywarden-controller"));
		CHECK(rw_json_streq(&j, rw_json_path(&j, c, "regarding.name"), "rc1"));
		CHECK(rw_json_streq(&j, rw_json_get(&j, c, "action"), "Create"));
	}
	rw_json_fini(&j);
	return found;
}

struct evwait {
	const char *reason;
	int want;
};

static bool
ev_count_is(void *ud)
{
	struct evwait *w = ud;
	return find_event_count(w->reason) == w->want;
}

static bool
ev_patched(void *ud)
{
	return rw_ev_patched(ud) >= 1;
}

static void
test_events(void)
{
	struct rw_ev *ev;
	struct rw_ev_opts o = {.instance = "test", .burst = 8};
	struct rw_ev_ref ref = {"ray.io/v1", "RayCluster", "default", "rc1", "uid-1"};
	CHECK_EQ_INT(rw_ev_new(kube, &o, &ev), 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(rw_ev_emit(ev, &ref, 0, "CreatedWorkerPod", "Create",
					"Created worker Pod default/rc1-w-%d", 1),
			     0);
	struct evwait w = {"CreatedWorkerPod", 5};
	CHECK(wait_cond(ev_count_is, &w, 5000));
	/* The server may answer the GET before the loop has taken the patch's answer. */
	CHECK(wait_cond(ev_patched, ev, 5000));
	CHECK_EQ_INT(rw_ev_created(ev), 1);
	/* A different note is a different Event. */
	CHECK_EQ_INT(rw_ev_emit(ev, &ref, 1, "InvalidSpec", "Create", "bad spec"), 0);
	struct evwait w2 = {"InvalidSpec", 1};
	CHECK(wait_cond(ev_count_is, &w2, 5000));
	/* Burst 8 per object and type: 5 Normal used, 3 more pass, the rest are dropped. */
	int dropped = 0;
	for (int i = 0; i < 5; i++)
		if (rw_ev_emit(ev, &ref, 0, "Flood", "Create", "n%d", i) == -EAGAIN)
			dropped++;
	CHECK_EQ_INT(dropped, 2);
	CHECK_EQ_INT(rw_ev_dropped(ev), 2);
	/* Another object has its own bucket. */
	struct rw_ev_ref ref2 = {"ray.io/v1", "RayCluster", "default", "rc2", NULL};
	CHECK_EQ_INT(rw_ev_emit(ev, &ref2, 0, "Other", "Create", "fine"), 0);
	sleep_loop(300);
	rw_ev_free(ev);
}

static bool
ev_dropped_one(void *ud)
{
	return rw_ev_dropped(ud) == 1;
}

/* An Event create refused because its namespace is being deleted (403 NamespaceTerminating)
 * is dropped: it would go with the namespace anyway. */
static void
test_events_namespace_terminating(void)
{
	struct sync_res s;
	struct rw_ev *ev;
	struct rw_ev_opts o = {.instance = "test"};
	struct rw_ev_ref ref = {"ray.io/v1", "RayCluster", "doomed", "rc", "uid-d"};
	CHECK_EQ_INT(req("POST", "/api/v1/namespaces", NULL,
			 "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":"
			 "\"doomed\"}}",
			 "application/json", &s),
		     201);
	/* Nothing runs the namespace controller here: the namespace stays terminating. */
	CHECK_EQ_INT(req("DELETE", "/api/v1/namespaces/doomed", NULL, NULL, NULL, &s), 200);
	CHECK_EQ_INT(rw_ev_new(kube, &o, &ev), 0);
	CHECK_EQ_INT(rw_ev_emit(ev, &ref, 1, "FailedToCreateHeadPod", "Reconcile", "refused"), 0);
	CHECK(wait_cond(ev_dropped_one, ev, 5000));
	CHECK_EQ_INT(rw_ev_created(ev), 0);
	rw_ev_free(ev);
}

struct aggwait {
	int events;    /* Events of the reason */
	int combined;  /* of which aggregates */
	int agg_count; /* the aggregate's series.count */
};

static bool
agg_seen(void *ud)
{
	struct aggwait *w = ud;
	struct sync_res s;
	struct rw_json j = {0};
	int i, c;
	w->events = w->combined = w->agg_count = 0;
	if (req("GET", "/apis/events.k8s.io/v1/namespaces/default/events", NULL, NULL, NULL, &s) !=
	    200)
		return false;
	if (rw_json_parse(&j, s.body, strlen(s.body), 1000000, NULL, 0) != 0)
		return false;
	RW_JSON_ARR_FOREACH (&j, rw_json_get(&j, 0, "items"), i, c) {
		char note[1100];
		if (!rw_json_streq(&j, rw_json_get(&j, c, "reason"), "FailedToCreateHeadPod"))
			continue;
		w->events++;
		if (rw_json_str(&j, rw_json_get(&j, c, "note"), note, sizeof(note)) >= 0 &&
		    strncmp(note, "(combined from similar events): ", 32) == 0) {
			int64_t n = 1;
			rw_json_int(&j, rw_json_path(&j, c, "series.count"), &n);
			w->combined++;
			w->agg_count = (int)n;
		}
	}
	rw_json_fini(&j);
	/* Each distinct note is its own write, so creates may land in any order. */
	return w->events == 10 && w->combined == 1 && w->agg_count == 3;
}

/*
 * Notes that differ (a generated pod name in each) aggregate as client-go's
 * EventAggregator does: 9 Events, then one "(combined from similar events)"
 * Event whose series count the API server accepts patches of (repeats that
 * arrive while its create is on the wire are folded into one patch).
 */
static void
test_events_aggregate(void)
{
	struct rw_ev *ev;
	struct rw_ev_opts o = {.instance = "test"};
	struct rw_ev_ref ref = {"ray.io/v1", "RayCluster", "default", "rc3", "uid-3"};
	struct aggwait w;
	CHECK_EQ_INT(rw_ev_new(kube, &o, &ev), 0);
	for (int i = 0; i < 12; i++) {
		CHECK_EQ_INT(rw_ev_emit(ev, &ref, 1, "FailedToCreateHeadPod", "Reconcile",
					"Failed to create head Pod default/rc3-head-%05d", i),
			     0);
	}
	CHECK(wait_cond(agg_seen, &w, 5000));
	CHECK_EQ_INT(w.events, 10);
	CHECK_EQ_INT(w.combined, 1);
	CHECK_EQ_INT(w.agg_count, 3);
	CHECK(wait_cond(ev_patched, ev, 5000));
	CHECK_EQ_INT(rw_ev_created(ev), 10);
	rw_ev_free(ev);
}

/* metav1.Status bodies of error answers (k8s.io/apimachinery/pkg/api/errors). */
static void
test_status_parse(void)
{
	char long_msg[1200];
	struct rw_kube_status st;
	static const struct {
		const char *body;
		int rv;
		const char *reason, *message;
		bool ns_terminating;
	} cases[] = {
	    /* k8s.io/apiserver namespace lifecycle admission, as the API server sends it */
	    {"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
	     "\"pods \\\"p\\\" is forbidden: unable to create new content in namespace doomed "
	     "because it is being terminated\",\"reason\":\"Forbidden\",\"details\":{\"name\":"
	     "\"p\",\"kind\":\"pods\",\"causes\":[{\"reason\":\"NamespaceTerminating\","
	     "\"message\":\"namespace doomed is being terminated\",\"field\":"
	     "\"metadata.namespace\"}]},\"code\":403}",
	     0, "Forbidden",
	     "pods \"p\" is forbidden: unable to create new content in namespace doomed because it "
	     "is being terminated",
	     true},
	    /* RBAC: the same code and reason, no such cause */
	    {"{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"pods is forbidden: User "
	     "\\\"x\\\" cannot create resource\",\"reason\":\"Forbidden\",\"details\":{"
	     "\"kind\":\"pods\"},\"code\":403}",
	     0, "Forbidden", "pods is forbidden: User \"x\" cannot create resource", false},
	    {"{\"reason\":\"Invalid\",\"details\":{\"causes\":[{\"reason\":\"FieldValueInvalid\"},"
	     "{\"reason\":\"NamespaceTerminating\"}]}}",
	     0, "Invalid", "", true},
	    {"{\"details\":{\"causes\":{\"reason\":\"NamespaceTerminating\"}}}", 0, "", "",
	     false}, /* causes not a list */
	    {"{\"reason\":7,\"message\":[]}", 0, "", "", false},
	    {"<html>502 Bad Gateway</html>", -EINVAL, "", "", false},
	    {"[\"reason\"]", -EINVAL, "", "", false},
	    {"", -EINVAL, "", "", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_EQ_INT(rw_kube_status_parse(cases[i].body, strlen(cases[i].body), &st),
			     cases[i].rv);
		CHECK_EQ_STR(st.reason, cases[i].reason);
		CHECK_EQ_STR(st.message, cases[i].message);
		CHECK_EQ_INT(st.ns_terminating, cases[i].ns_terminating);
	}
	/* A long message is cut to fit, on a UTF-8 boundary; the rest of the body still counts. */
	size_t n = (size_t)snprintf(long_msg, sizeof(long_msg), "{\"message\":\"");
	for (int i = 0; i < 340; i++)
		n += (size_t)snprintf(long_msg + n, sizeof(long_msg) - n, "\u00e9"); /* 2 bytes */
	snprintf(long_msg + n, sizeof(long_msg) - n, "\",\"reason\":\"Invalid\"}");
	CHECK_EQ_INT(rw_kube_status_parse(long_msg, strlen(long_msg), &st), 0);
	CHECK_EQ_INT((int)strlen(st.message), 510);
	CHECK_EQ_STR(st.reason, "Invalid");
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"informer: pages, selector, watch, bookmarks, drops, 410", test_informer},
	    {"client: 500/429 retried, status passed on", test_retries},
	    {"client: QPS and burst", test_qps},
	    {"lease: one leader, takeover after expiry, release", test_lease},
	    {"events: aggregation and rate limit", test_events},
	    {"events: similar notes combined, count patched", test_events_aggregate},
	    {"client: Status bodies of error answers", test_status_parse},
	    {"events: namespace being deleted", test_events_namespace_terminating},
	    {NULL, NULL},
	};
	char err[256], path[512];
	int rv = 1;
	signal(SIGPIPE, SIG_IGN);
	if (start_sim() != 0) {
		fprintf(stderr, "cannot start the API server simulator\n");
		stop_sim();
		return 1;
	}
	uv_loop_init(&loop);
	snprintf(path, sizeof(path), "%s/kubeconfig", state_dir);
	if (rw_kubecfg_load(&kc, path, NULL, err, sizeof(err)) != 0 || rw_met_new(0, &met) != 0) {
		fprintf(stderr, "kubeconfig: %s\n", err);
		goto out;
	}
	struct rw_kube_opts ko = {.qps = 0, .met = met};
	/* The fixtures create and delete what the tests watch, as the admin would; the
	 * informers, leases and events under test use the checked client. */
	struct rw_kube_opts ao = {.qps = 0, .unrestricted = 1};
	if (rw_kube_new(&loop, &kc, &ko, &kube) != 0 || rw_kube_new(&loop, &kc, &ao, &admin) != 0)
		goto out;
	/* What the serviceaccount controller makes in every namespace: without it the
	 * ServiceAccount admission plugin refuses every pod of the namespace (403). */
	long sa = req("POST", "/api/v1/namespaces/default/serviceaccounts", NULL,
		      "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\","
		      "\"metadata\":{\"name\":\"default\"}}",
		      NULL, NULL);
	if (sa != 201 && sa != 409) {
		fprintf(stderr, "creating ServiceAccount default/default: HTTP %ld\n", sa);
		goto out;
	}
	rv = rwt_run(cases);
	rw_kube_free(kube, NULL, NULL);
	rw_kube_free(admin, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0) {
		fprintf(stderr, "handles left open\n");
		rv = 1;
	}
out:
	rw_met_free(met);
	rw_kubecfg_fini(&kc);
	stop_sim();
	return rv;
}
