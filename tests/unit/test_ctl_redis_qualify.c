/*
 * test_ctl_redis_qualify.c - the GCS FT cleanup's Redis address
 * qualification (rw_raycluster_ctl_redis_qualify in controller/raycluster/rcr_delete.c): names
 * the Ray pods resolve in the RayCluster's namespace get that namespace and
 * the cluster domain; IPs, FQDNs and other names are kept.
 */
#include <errno.h>
#include <string.h>

#include "rcr.h"
#include "rwtest.h"

struct qcase {
	const char *addr, *ns, *domain;
	const char *want; /* NULL: an error is expected */
};

static const struct qcase qcases[] = {
    /* Bare host: <host>.<ns>.svc.<domain>. */
    {"redis:6379", "default", NULL, "redis.default.svc.cluster.local:6379"},
    {"redis", "team-a", NULL, "redis.team-a.svc.cluster.local"},
    {"redis:6379", "team-a", "example.org", "redis.team-a.svc.example.org:6379"},
    {"redis:6379", "team-a", "example.org.", "redis.team-a.svc.example.org:6379"},
    {"redis:6379", "team-a", "", "redis.team-a.svc.cluster.local:6379"},
    {"svc:6379", "ns", NULL, "svc.ns.svc.cluster.local:6379"},
    /* <svc>.<ns>: .svc.<domain>. */
    {"redis.other:6379", "default", NULL, "redis.other.svc.cluster.local:6379"},
    {"redis.other", "default", NULL, "redis.other.svc.cluster.local"},
    /* URLs: scheme, userinfo (last '@'), port, path and other entries kept. */
    {"redis://redis:6379", "ns", NULL, "redis://redis.ns.svc.cluster.local:6379"},
    {"redis://:p@ss@redis:6379/0", "ns", NULL, "redis://:p@ss@redis.ns.svc.cluster.local:6379/0"},
    {"redis://user:pw@redis.db", "ns", NULL, "redis://user:pw@redis.db.svc.cluster.local"},
    {"redis://redis/0", "ns", NULL, "redis://redis.ns.svc.cluster.local/0"},
    {"redis-a:6379,redis-b:6379", "ns", NULL, "redis-a.ns.svc.cluster.local:6379,redis-b:6379"},
    {"rediss://redis:6380", "ns", NULL, "rediss://redis.ns.svc.cluster.local:6380"},
    /* Kept: IPs, localhost, FQDNs, .svc names, names of 3+ labels. */
    {"10.96.0.12:6379", "ns", NULL, "10.96.0.12:6379"},
    {"redis://[fd00::12]:6379", "ns", NULL, "redis://[fd00::12]:6379"},
    {"[::1]:6379", "ns", NULL, "[::1]:6379"},
    {"localhost:6379", "ns", NULL, "localhost:6379"},
    {"redis.ns.svc:6379", "default", NULL, "redis.ns.svc:6379"},
    {"redis.ns.svc.cluster.local:6379", "default", NULL, "redis.ns.svc.cluster.local:6379"},
    {"redis.ns.svc.corp.example:6379", "default", NULL, "redis.ns.svc.corp.example:6379"},
    {"redis.:6379", "default", NULL, "redis.:6379"},
    {"redis.example.com:6379", "default", NULL, "redis.example.com:6379"},
    {"my.redis.example.com", "default", NULL, "my.redis.example.com"},
    {"redis://u:p@db.internal.corp:6379", "ns", NULL, "redis://u:p@db.internal.corp:6379"},
    /* Nothing to qualify (the cleanup's own parser rejects these later). */
    {":6379", "ns", NULL, ":6379"},
    {"", "ns", NULL, ""},
    /* Errors. */
    {"redis", "", NULL, NULL},
    {NULL, "ns", NULL, NULL},
};

static void
test_table(void)
{
	for (size_t i = 0; i < sizeof(qcases) / sizeof(qcases[0]); i++) {
		const struct qcase *c = &qcases[i];
		char out[256];
		int rv =
		    rw_raycluster_ctl_redis_qualify(c->addr, c->ns, c->domain, out, sizeof(out));
		if (!c->want) {
			CHECK_EQ_INT(rv, -EINVAL);
			continue;
		}
		if (rv != 0 || strcmp(out, c->want) != 0)
			fprintf(stderr, "  case %zu: \"%s\" in %s\n", i, c->addr, c->ns);
		CHECK_EQ_INT(rv, 0);
		CHECK_EQ_STR(out, c->want);
	}
}

static void
test_small_buffer(void)
{
	char out[24];
	/* "redis.default.svc.cluster.local:6379" needs 37 bytes. */
	CHECK_EQ_INT(
	    rw_raycluster_ctl_redis_qualify("redis:6379", "default", NULL, out, sizeof(out)),
	    -ENAMETOOLONG);
	CHECK_EQ_STR(out, ""); /* wiped: an address may carry a password */
	CHECK_EQ_INT(rw_raycluster_ctl_redis_qualify("10.0.0.1:6379", "default", NULL, out, 14), 0);
	CHECK_EQ_STR(out, "10.0.0.1:6379");
	CHECK_EQ_INT(rw_raycluster_ctl_redis_qualify("10.0.0.1:6379", "default", NULL, out, 13),
		     -ENAMETOOLONG);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"qualification table", test_table},
	    {"output bounds", test_small_buffer},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}
