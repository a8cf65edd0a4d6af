/*
 * fuzz_rc_build.c - any bytes as a RayCluster: parse, validate, build every
 * object in both agent and KubeRay modes, plan every group, compute the
 * status and the hash. Nothing may crash or leak, and every object that is
 * built must be valid JSON. The input's first byte also feeds the quantity
 * parser/formatter (canonical text must parse back to the same value).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batchsched.h"
#include "rc_build.h"
#include "quantity.h"
#include "rc_status.h"
#include "rc_validate.h"
#include "rw/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_json(const struct rw_buf *b)
{
	struct rw_json j;
	if (b->len == 0)
		return;
	if (rw_json_parse(&j, b->data, b->len, 1 << 22, NULL, 0) != 0)
		abort();
	rw_json_fini(&j);
}

static void
quantity(const uint8_t *data, size_t size)
{
	char s[64], out[96];
	struct rw_qty q, q2;
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	memcpy(s, data, n);
	s[n] = '\0';
	if (rw_qty_parse(s, &q) != 0)
		return;
	(void)rw_qty_value(&q);
	(void)rw_qty_float(&q);
	if (rw_qty_format(&q, out, sizeof(out)) <= 0)
		abort();
	if (rw_qty_parse(out, &q2) != 0 || q2.units != q.units || q2.nano != q.nano)
		abort();
	q2 = q;
	(void)rw_qty_add(&q2, &q);
	(void)rw_qty_mul(&q2, 3);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rw_raycluster *c = NULL;
	struct rw_buf b;
	struct rw_raycluster_verrs v;
	char hash[33];

	quantity(data, size);
	if (rw_raycluster_parse((const char *)data, size, &c, NULL, 0) != 0)
		return 0;
	rw_buf_init(&b, 1 << 24);
	(void)rw_raycluster_validate(c, &v);
	(void)rw_raycluster_spec_hash(c->obj.spec, hash);
	for (int mode = 0; mode < 2; mode++) {
		struct rw_raycluster_opts o;
		rw_raycluster_opts_default(&o);
		if (mode) {
			o.agent = false;
			o.probes = RW_RAYCLUSTER_PROBE_KUBERAY;
			o.deterministic_head_name = true;
			o.batch_scheduler = RW_BS_YUNIKORN;
		} else {
			o.controller_addr = "tcp://c:8478";
			o.batch_scheduler = RW_BS_VOLCANO;
		}
		if (rw_raycluster_build_head_pod(c, &o, &b) == 0)
			check_json(&b);
		rw_buf_reset(&b);
		for (int g = 0; g < c->ngroups && g < 8; g++) {
			struct rw_raycluster_slot slot = {g, "r", 1};
			struct rw_raycluster_group_plan plan;
			struct rw_raycluster_pod pods[2] = {
			    {"p1", rw_raycluster_group_name(c, g), RW_RAYCLUSTER_NT_WORKER,
			     "Running", true, true, NULL, NULL, "1.2.3.4", false, false, "Always"},
			    {"p2", rw_raycluster_group_name(c, g), RW_RAYCLUSTER_NT_WORKER,
			     "Failed", false, false, NULL, NULL, NULL, false, true, "Never"},
			};
			if (rw_raycluster_build_worker_pod(c, &o, g, &slot, &b) == 0)
				check_json(&b);
			rw_buf_reset(&b);
			if (rw_raycluster_plan_group(c, &o, g, pods, 2, &plan) == 0)
				rw_raycluster_group_plan_fini(&plan);
		}
		if (rw_raycluster_build_head_service(c, &o, &b) == 0)
			check_json(&b);
		rw_buf_reset(&b);
		if (rw_raycluster_build_serve_service(c, &o, &b) == 0)
			check_json(&b);
		rw_buf_reset(&b);
		if (rw_raycluster_build_ingress(c, &b) == 0)
			check_json(&b);
		rw_buf_reset(&b);
		if (rw_raycluster_build_route(c, &b) == 0)
			check_json(&b);
		rw_buf_reset(&b);
	}
	{
		/* The batch schedulers' PodGroups of any cluster (gang label or not). */
		struct rw_bs_parent p = {.name = c->obj.name,
					 .ns = c->obj.ns,
					 .uid = c->obj.uid,
					 .labels = c->obj.labels,
					 .annotations = c->obj.annotations,
					 .cluster_spec = c->obj.spec};
		char path[512], err[512];
		if (rw_bs_podgroup(RW_BS_VOLCANO, &p, &b, path, sizeof(path), err, sizeof(err)) ==
			0 &&
		    b.len)
			check_json(&b);
		rw_buf_reset(&b);
		if (rw_bs_podgroup(RW_BS_SCHEDULER_PLUGINS, &p, &b, path, sizeof(path), err,
				   sizeof(err)) == 0 &&
		    b.len)
			check_json(&b);
		rw_buf_reset(&b);
	}
	if (rw_raycluster_build_headless_service(c, &b) == 0)
		check_json(&b);
	rw_buf_reset(&b);
	if (rw_raycluster_build_service_account(c, &b) == 0 && rw_raycluster_build_role(c, &b) == 0)
		(void)rw_raycluster_build_role_binding(c, &b);
	rw_buf_reset(&b);
	{
		struct rw_raycluster_pod pods[1] = {{"h", "headgroup", RW_RAYCLUSTER_NT_HEAD,
						     "Running", true, true, "", "", "10.0.0.1",
						     false, false, "Always"}};
		struct rw_raycluster_svc_port port = {"dashboard", 0, 8265, NULL};
		struct rw_raycluster_svc svc = {"svc", "None", &port, 1};
		struct rw_raycluster_status_in in = {
		    pods, 1, &svc, false, NULL, NULL, "2026-01-01T00:00:00Z"};
		const char *name;
		(void)rw_raycluster_plan_head(c, pods, 1, true, &name);
		if (rw_raycluster_status(c, &in, &b, NULL, 0) == 0) {
			check_json(&b);
			(void)rw_raycluster_status_equal(b.data, b.len, b.data, b.len);
		}
	}
	rw_buf_fini(&b);
	rw_raycluster_free(c);
	return 0;
}
