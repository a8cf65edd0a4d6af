/*
 * test_ctl_agents.c - the pure parts of the manager's agent hub (agents.h):
 * the per-owner-kind hook table (register, replace, remove, bounds), the
 * owner kind read from a RayCluster, and the admission of reports against
 * the pod cache. The hub itself runs in test_ctl_hub.c and the e2e tests.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agents.h"
#include "manager.h"
#include "rwtest.h"

static int
reply_a(const struct rw_report *r, struct rw_reply *out, void *ud)
{
	(void)r;
	(void)out;
	(void)ud;
	return 1;
}

static void
test_kinds_register_replace_remove(void)
{
	struct rw_agents_kinds t;
	struct rw_agents_hooks h = {NULL, NULL, reply_a, NULL, false},
			       h2 = {NULL, NULL, NULL, &t, false};
	memset(&t, 0, sizeof(t));
	CHECK(rw_agents_kinds_get(&t, "RayService") == NULL);
	CHECK_EQ_INT(rw_agents_kinds_set(&t, "RayService", &h), 0);
	CHECK(rw_agents_kinds_get(&t, "RayService")->reply == reply_a);
	CHECK_EQ_INT(rw_agents_kinds_set(&t, "RayService", &h2), 0); /* replace, same slot */
	CHECK(rw_agents_kinds_get(&t, "RayService")->ud == &t);
	CHECK_EQ_INT(rw_agents_kinds_set(&t, RW_AGENTS_EVERY_POD, &h), 0);
	CHECK(rw_agents_kinds_get(&t, "RayJob") == NULL);
	CHECK(rw_agents_kinds_get(&t, "") == NULL);
	CHECK_EQ_INT(rw_agents_kinds_set(&t, "RayService", NULL), 0);
	CHECK_EQ_INT(rw_agents_kinds_set(&t, "RayService", NULL), 0); /* removing twice is fine */
	CHECK(rw_agents_kinds_get(&t, "RayService") == NULL);
	CHECK(rw_agents_kinds_get(&t, RW_AGENTS_EVERY_POD) != NULL);
}

/* every_cluster kinds act on any cluster, after the owner's, never twice. */
static void
test_kinds_extra(void)
{
	struct rw_agents_kinds t;
	struct rw_agents_hooks rc = {NULL, NULL, reply_a, NULL, false},
			       rs = {NULL, NULL, reply_a, NULL, false},
			       rj = {NULL, NULL, reply_a, NULL, true};
	const struct rw_agents_hooks *out[RW_AGENTS_MAX_KINDS];
	memset(&t, 0, sizeof(t));
	CHECK_EQ_INT(rw_agents_kinds_extra(&t, NULL, out), 0);
	CHECK_EQ_INT(rw_agents_kinds_set(&t, RW_AGENTS_EVERY_POD, &rc), 0);
	CHECK_EQ_INT(rw_agents_kinds_set(&t, "RayService", &rs), 0);
	CHECK_EQ_INT(rw_agents_kinds_set(&t, "RayJob", &rj), 0);
	/* A RayService's cluster, or one nobody owns: the RayJob hooks come after. */
	CHECK_EQ_INT(rw_agents_kinds_extra(&t, rw_agents_kinds_get(&t, "RayService"), out), 1);
	CHECK(out[0] == rw_agents_kinds_get(&t, "RayJob"));
	CHECK_EQ_INT(rw_agents_kinds_extra(&t, NULL, out), 1);
	/* A RayJob's own cluster: its hooks already ran as the owner's. */
	CHECK_EQ_INT(rw_agents_kinds_extra(&t, rw_agents_kinds_get(&t, "RayJob"), out), 0);
	/* The every-pod kind is never an extra, even when flagged. */
	rc.every_cluster = true;
	CHECK_EQ_INT(rw_agents_kinds_set(&t, RW_AGENTS_EVERY_POD, &rc), 0);
	CHECK_EQ_INT(rw_agents_kinds_extra(&t, NULL, out), 1);
}

static void
test_kinds_bounds(void)
{
	struct rw_agents_kinds t;
	struct rw_agents_hooks h = {NULL, NULL, reply_a, NULL, false};
	char kind[16];
	memset(&t, 0, sizeof(t));
	CHECK_EQ_INT(rw_agents_kinds_set(&t, NULL, &h), -EINVAL);
	CHECK_EQ_INT(rw_agents_kinds_set(&t, "", &h), -EINVAL);
	CHECK_EQ_INT(rw_agents_kinds_set(&t, "AKindNameFarTooLongForTheTableSlot", &h), -EINVAL);
	for (int i = 0; i < RW_AGENTS_MAX_KINDS; i++) {
		snprintf(kind, sizeof(kind), "Kind%d", i);
		CHECK_EQ_INT(rw_agents_kinds_set(&t, kind, &h), 0);
	}
	CHECK_EQ_INT(rw_agents_kinds_set(&t, "OneMore", &h), -ENOSPC);
	/* Removing frees a slot for another kind. */
	CHECK_EQ_INT(rw_agents_kinds_set(&t, "Kind0", NULL), 0);
	CHECK_EQ_INT(rw_agents_kinds_set(&t, "OneMore", &h), 0);
	CHECK(rw_agents_kinds_get(&t, "OneMore") != NULL);
}

/* Reports are dispatched by the kind of the cluster's controller owner. */
static void
test_owner_kind(void)
{
	static const struct {
		const char *json, *kind;
	} cases[] = {
	    {"{\"metadata\":{\"name\":\"c\"}}", ""},
	    {"{\"metadata\":{\"ownerReferences\":[{\"kind\":\"RayService\",\"controller\":true}]}}",
	     "RayService"},
	    /* Not the controller: not the owner that gets the reports. */
	    {"{\"metadata\":{\"ownerReferences\":[{\"kind\":\"RayService\"}]}}", ""},
	    {"{\"metadata\":{\"ownerReferences\":[{\"kind\":\"Other\"},"
	     "{\"kind\":\"RayJob\",\"controller\":true}]}}",
	     "RayJob"},
	    {"not json", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char kind[64] = "x";
		rw_agents_owner_kind(cases[i].json, strlen(cases[i].json), kind, sizeof(kind));
		CHECK_EQ_STR(kind, cases[i].kind);
	}
}

/* Which reports the hub admits: a pod the cache knows, of the key's cluster, with that UID. */
static void
test_admit_decide(void)
{
	struct rw_inf_pod c2 = {.meta = {.ns = "ns", .name = "c2-head", .uid = "u2"},
				.cluster = "c2"};
	static const struct {
		int have, synced;
		const char *cluster, *uid;
		int rv;
		const char *why;
	} cases[] = {
	    {0, 0, "c2", "u2", -EAGAIN, "not synced"}, /* after a restart: resent later */
	    {0, 1, "c2", "u2", -EAGAIN, "no such pod"},
	    {1, 1, "c2", "u2", 0, ""},
	    {1, 1, "c1", "u2", -EPERM, "belongs to cluster \"c2\""}, /* c1's key, c2's pod */
	    {1, 1, "c2", "u9", -EAGAIN, "another incarnation"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char why[256] = "";
		int rv = rw_agents_admit_decide(cases[i].have ? &c2 : NULL, cases[i].synced,
						cases[i].cluster, cases[i].uid, why, sizeof(why));
		CHECK_EQ_INT(rv, cases[i].rv);
		CHECK(strstr(why, cases[i].why) != NULL);
	}
}

/* The manager runs a hub only when agents can report to it. */
static void
test_wanted(void)
{
	static const struct {
		bool no_inject;
		const char *key, *listen;
		bool want;
	} cases[] = {
	    {false, "/k", "tcp://0.0.0.0:8478", true},
	    {true, "/k", "tcp://0.0.0.0:8478", false},	/* --no-agent-injection */
	    {false, NULL, "tcp://0.0.0.0:8478", false}, /* no master key */
	    {false, "", "tcp://0.0.0.0:8478", false},
	    {false, "/k", "0", false}, /* --agent-listen 0 */
	    {false, "/k", NULL, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_mgr_config c;
		memset(&c, 0, sizeof(c));
		c.no_agent_injection = cases[i].no_inject;
		c.agent_key_file = (char *)cases[i].key;
		c.agent_listen = (char *)cases[i].listen;
		CHECK(rw_agents_wanted(&c) == cases[i].want);
	}
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"kinds_register_replace_remove", test_kinds_register_replace_remove},
	    {"kinds_extra", test_kinds_extra},
	    {"kinds_bounds", test_kinds_bounds},
	    {"owner_kind", test_owner_kind},
	    {"admit_decide", test_admit_decide},
	    {"wanted", test_wanted},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}
