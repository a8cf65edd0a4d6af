/*
 * test_agent_readiness.c - the readiness/liveness state machine: the rules
 * table, thresholds, drain, proxy modes, and liveness grace across a
 * simulated agent restart.
 */
#include "readiness.h"
#include "rwtest.h"

#define OK RW_PROBE_OK
#define FAIL RW_PROBE_FAIL
#define REF RW_PROBE_REFUSED
#define DRN RW_PROBE_DRAINING
#define STA RW_PROBE_STARTING
#define ABS RW_PROBE_ABSENT
#define TMO RW_PROBE_TIMEOUT
#define UNK RW_PROBE_UNKNOWN

struct rcase {
	const char *name;
	int head, rayservice;
	enum rw_proxy_mode mode;
	enum rw_probe_state raylet, gcs, proxy; /* observations (UNK: none) */
	int want_ready;
	const char *reason_has;
};

static const struct rcase rcases[] = {
    {"head all ok", 1, 0, RW_PROXY_AUTO, OK, OK, UNK, 1, "ok"},
    {"head gcs down", 1, 0, RW_PROXY_AUTO, OK, FAIL, UNK, 0, "gcs"},
    {"head gcs hung", 1, 0, RW_PROXY_AUTO, OK, TMO, UNK, 0, "gcs not answering"},
    {"head raylet down", 1, 0, RW_PROXY_AUTO, REF, OK, UNK, 0, "raylet down"},
    {"head gcs not probed yet", 1, 0, RW_PROXY_AUTO, OK, UNK, UNK, 0, "gcs: not probed yet"},
    {"head proxy absent (not a probe, kuberay#1808)", 1, 1, RW_PROXY_AUTO, OK, OK, ABS, 1, "ok"},
    {"worker raylet ok", 0, 0, RW_PROXY_AUTO, OK, UNK, UNK, 1, "ok"},
    {"worker raylet 503", 0, 0, RW_PROXY_AUTO, FAIL, UNK, UNK, 0, "raylet unhealthy"},
    {"worker proxy absent, not rayservice", 0, 0, RW_PROXY_AUTO, OK, UNK, ABS, 1, "ok"},
    {"rayservice worker all ok", 0, 1, RW_PROXY_AUTO, OK, UNK, OK, 1, "ok"},
    {"rayservice worker no proxy", 0, 1, RW_PROXY_AUTO, OK, UNK, ABS, 0, "proxy absent"},
    {"rayservice worker draining", 0, 1, RW_PROXY_AUTO, OK, UNK, DRN, 0, "proxy draining"},
    {"rayservice worker starting", 0, 1, RW_PROXY_AUTO, OK, UNK, STA, 0, "proxy starting"},
    {"rayservice worker raylet down", 0, 1, RW_PROXY_AUTO, REF, UNK, OK, 0, "raylet"},
    {"ignore: no proxy stays ready (kuberay#4994)", 0, 1, RW_PROXY_IGNORE, OK, UNK, ABS, 1, "ok"},
    {"required on plain worker", 0, 0, RW_PROXY_REQUIRED, OK, UNK, ABS, 0, "proxy"},
    {"required on head", 1, 0, RW_PROXY_REQUIRED, OK, OK, DRN, 0, "proxy draining"},
    {NULL, 0, 0, 0, 0, 0, 0, 0, NULL},
};

static void
mkcfg(struct rw_ready_cfg *c, int head, int rs, enum rw_proxy_mode m)
{
	memset(c, 0, sizeof(*c));
	c->head = head;
	c->rayservice = rs;
	c->proxy_mode = m;
	c->failure_threshold = 1;
	c->success_threshold = 1;
	c->liveness_grace_ms = 600000;
}

static void
test_rules_table(void)
{
	for (const struct rcase *c = rcases; c->name; c++) {
		struct rw_ready_cfg cfg;
		struct rw_readiness r;
		mkcfg(&cfg, c->head, c->rayservice, c->mode);
		rw_readiness_init(&r, &cfg, 1000);
		CHECK_EQ_INT(r.ready, 0);
		if (c->raylet != UNK)
			rw_readiness_observe(&r, RW_COMP_RAYLET, c->raylet, "x", 1100);
		if (c->gcs != UNK)
			rw_readiness_observe(&r, RW_COMP_GCS, c->gcs, "x", 1100);
		if (c->proxy != UNK)
			rw_readiness_observe(&r, RW_COMP_PROXY, c->proxy, "x", 1100);
		if (r.ready != c->want_ready || !strstr(r.reason, c->reason_has)) {
			fprintf(stderr, "  %s: ready=%d reason \"%s\", want %d ~\"%s\"\n", c->name,
				r.ready, r.reason, c->want_ready, c->reason_has);
			rwt_failed = 1;
		}
	}
}

static void
test_probed_components(void)
{
	struct rw_ready_cfg cfg;
	struct rw_readiness r;
	mkcfg(&cfg, 0, 0, RW_PROXY_AUTO);
	rw_readiness_init(&r, &cfg, 0);
	CHECK(rw_readiness_probed(&r, RW_COMP_RAYLET));
	CHECK(!rw_readiness_probed(&r, RW_COMP_GCS));
	CHECK(!rw_readiness_probed(&r, RW_COMP_PROXY));
	CHECK_EQ_INT(r.comp[RW_COMP_GCS].state, RW_PROBE_DISABLED);
	/* Observations of a component not probed are ignored. */
	CHECK_EQ_INT(rw_readiness_observe(&r, RW_COMP_GCS, FAIL, "x", 5), 0);
	mkcfg(&cfg, 1, 0, RW_PROXY_AUTO);
	rw_readiness_init(&r, &cfg, 0);
	CHECK(rw_readiness_probed(&r, RW_COMP_GCS));
	CHECK(rw_readiness_probed(&r, RW_COMP_PROXY));
	CHECK(!r.comp[RW_COMP_PROXY].counts);
}

static void
test_thresholds(void)
{
	struct rw_ready_cfg cfg;
	struct rw_readiness r;
	mkcfg(&cfg, 0, 0, RW_PROXY_AUTO);
	cfg.failure_threshold = 3;
	cfg.success_threshold = 2;
	rw_readiness_init(&r, &cfg, 0);
	unsigned chg = rw_readiness_observe(&r, RW_COMP_RAYLET, OK, "success", 10);
	CHECK_EQ_INT(r.ready, 0);
	CHECK(strstr(r.reason, "recovering: 1/2") != NULL);
	CHECK(chg & RW_CHG_STATE);
	chg = rw_readiness_observe(&r, RW_COMP_RAYLET, OK, "success", 20);
	CHECK_EQ_INT(r.ready, 1);
	CHECK(chg & RW_CHG_READY);
	/* A repeated identical observation changes nothing. */
	CHECK_EQ_INT(rw_readiness_observe(&r, RW_COMP_RAYLET, OK, "success", 30), 0);
	rw_readiness_observe(&r, RW_COMP_RAYLET, REF, "refused", 40);
	CHECK_EQ_INT(r.ready, 1);
	rw_readiness_observe(&r, RW_COMP_RAYLET, REF, "refused", 50);
	CHECK_EQ_INT(r.ready, 1);
	/* An OK in between resets the failure run. */
	rw_readiness_observe(&r, RW_COMP_RAYLET, OK, "success", 60);
	rw_readiness_observe(&r, RW_COMP_RAYLET, REF, "refused", 70);
	rw_readiness_observe(&r, RW_COMP_RAYLET, REF, "refused", 80);
	CHECK_EQ_INT(r.ready, 1);
	chg = rw_readiness_observe(&r, RW_COMP_RAYLET, REF, "refused", 90);
	CHECK_EQ_INT(r.ready, 0);
	CHECK(chg & RW_CHG_READY);
	CHECK_EQ_INT(r.ready_since_ms, 90);
	CHECK(strstr(r.reason, "raylet down: refused") != NULL);
	CHECK_EQ_INT(r.transitions, 2);
	CHECK_EQ_INT(r.comp[RW_COMP_RAYLET].failures, 5);
}

static void
test_drain(void)
{
	struct rw_ready_cfg cfg;
	struct rw_readiness r;
	mkcfg(&cfg, 0, 1, RW_PROXY_AUTO);
	rw_readiness_init(&r, &cfg, 0);
	rw_readiness_observe(&r, RW_COMP_RAYLET, OK, "success", 1);
	rw_readiness_observe(&r, RW_COMP_PROXY, OK, "success", 1);
	CHECK_EQ_INT(r.ready, 1);
	unsigned chg = rw_readiness_set_drain(&r, 1, 2);
	CHECK(chg & RW_CHG_READY);
	CHECK_EQ_INT(r.ready, 0);
	CHECK(strstr(r.reason, "draining") != NULL);
	/* Healthy probes do not lift a drain. */
	rw_readiness_observe(&r, RW_COMP_RAYLET, OK, "success", 3);
	CHECK_EQ_INT(r.ready, 0);
	CHECK_EQ_INT(rw_readiness_set_drain(&r, 1, 4), 0);
	chg = rw_readiness_set_drain(&r, 0, 5);
	CHECK(chg & RW_CHG_READY);
	CHECK_EQ_INT(r.ready, 1);
	/* Liveness is unaffected by a drain. */
	CHECK_EQ_INT(r.live, 1);
	/* A preStop drain (terminating) wins over everything and is never lifted. */
	chg = rw_readiness_set_terminating(&r, 6);
	CHECK(chg & RW_CHG_READY);
	CHECK_EQ_INT(r.ready, 0);
	CHECK(strstr(r.reason, "terminating") != NULL);
	CHECK_EQ_INT(rw_readiness_set_terminating(&r, 7), 0);
	rw_readiness_set_drain(&r, 0, 8);
	rw_readiness_observe(&r, RW_COMP_PROXY, OK, "success", 9);
	CHECK_EQ_INT(r.ready, 0);
	CHECK_EQ_INT(r.live, 1);
}

static void
test_liveness_grace_and_restart(void)
{
	struct rw_ready_cfg cfg;
	struct rw_readiness r;
	mkcfg(&cfg, 0, 0, RW_PROXY_AUTO);
	cfg.liveness_grace_ms = 600000;
	rw_readiness_init(&r, &cfg, 1000);
	CHECK_EQ_INT(r.live, 1);
	rw_readiness_observe(&r, RW_COMP_RAYLET, OK, "success", 1000);
	rw_readiness_observe(&r, RW_COMP_RAYLET, REF, "refused", 2000);
	CHECK_EQ_INT(r.live, 1);
	CHECK_EQ_INT(rw_readiness_tick(&r, 2000 + 600000) & RW_CHG_LIVE, 0);
	CHECK_EQ_INT(r.live, 1);
	rw_readiness_observe(&r, RW_COMP_RAYLET, REF, "refused", 2000 + 300000);
	unsigned chg = rw_readiness_tick(&r, 2000 + 600001);
	CHECK(chg & RW_CHG_LIVE);
	CHECK_EQ_INT(r.live, 0);
	CHECK(strstr(r.live_reason, "raylet failing") != NULL);
	/* One good probe makes it live again. */
	chg = rw_readiness_observe(&r, RW_COMP_RAYLET, OK, "success", 700000);
	CHECK(chg & RW_CHG_LIVE);
	CHECK_EQ_INT(r.live, 1);

	/* Simulated restart: the old process saw the raylet failing for 590 s. A new
	 * agent process starts from scratch and must wait a whole grace period of
	 * its own observations before failing /livez, so a restart never kills Ray. */
	struct rw_readiness r2;
	uint64_t t0 = 5000000;
	rw_readiness_init(&r2, &cfg, t0);
	CHECK_EQ_INT(r2.live, 1);
	for (uint64_t t = t0; t < t0 + 600000; t += 250)
		rw_readiness_observe(&r2, RW_COMP_RAYLET, REF, "refused", t);
	rw_readiness_tick(&r2, t0 + 600000);
	CHECK_EQ_INT(r2.live, 1);
	rw_readiness_tick(&r2, t0 + 600001);
	CHECK_EQ_INT(r2.live, 0);

	/* No observation at all (probes never answered): live. */
	struct rw_readiness r3;
	rw_readiness_init(&r3, &cfg, 0);
	rw_readiness_tick(&r3, 10ULL * 3600 * 1000);
	CHECK_EQ_INT(r3.live, 1);
}

static void
test_reason_changes_flagged(void)
{
	struct rw_ready_cfg cfg;
	struct rw_readiness r;
	mkcfg(&cfg, 0, 1, RW_PROXY_AUTO);
	rw_readiness_init(&r, &cfg, 0);
	rw_readiness_observe(&r, RW_COMP_RAYLET, OK, "success", 1);
	rw_readiness_observe(&r, RW_COMP_PROXY, STA, "Route table is not populated yet.", 2);
	unsigned chg =
	    rw_readiness_observe(&r, RW_COMP_PROXY, STA, "No replicas are available yet.", 3);
	CHECK(chg & RW_CHG_STATE);
	CHECK(chg & RW_CHG_READY);
	CHECK(strstr(r.reason, "No replicas") != NULL);
	CHECK_EQ_INT(r.comp[RW_COMP_PROXY].since_ms, 2);
}

static const struct rwt_case cases[] = {
    {"rules table", test_rules_table},
    {"probed components", test_probed_components},
    {"thresholds", test_thresholds},
    {"drain", test_drain},
    {"liveness grace and restart", test_liveness_grace_and_restart},
    {"reason changes flagged", test_reason_changes_flagged},
    {NULL, NULL},
};

int
main(void)
{
	return rwt_run(cases);
}
