/*
 * fuzz_rs.c - any bytes as a RayService: parse, validate, convert
 * serveConfigV2, build the RayCluster and both services, decide the upgrade
 * and compute the status (against the cluster built from the same
 * RayService and a head report made from the input). The bytes are also fed
 * as serveConfigV2 YAML by themselves. Nothing may crash or leak; every
 * object built must be valid JSON; the serve config must be a JSON object
 * whose hash is the SHA-256 of its text; a cluster built from a RayService
 * must match it (hash equal, nothing to update).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile.h"
#include "rs_build.h"
#include "rs_serve.h"
#include "rs_status.h"
#include "rw/json.h"
#include "rw/wire.h"

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
serve_config(const struct rw_rayservice *rs)
{
	struct rw_rayservice_serve_cfg c;
	char err[256], hex[65];
	struct rw_json j;
	if (rw_rayservice_serve_config(rs, &c, err, sizeof(err)) != 0)
		return;
	if (c.json) {
		if (rw_json_parse(&j, c.json, c.len, 1 << 22, NULL, 0) != 0)
			abort();
		if (rw_json_type(&j, 0) != RW_JSON_OBJECT)
			abort();
		rw_json_fini(&j);
		rw_sha256_hex(c.json, c.len, hex);
		if (strcmp(hex, c.hash) != 0)
			abort();
	}
	rw_rayservice_serve_cfg_fini(&c);
}

/* The input bytes as serveConfigV2 of a minimal RayService. */
static void
yaml_only(const uint8_t *data, size_t size)
{
	struct rw_buf b;
	struct rw_rayservice *rs = NULL;
	/* A watch event carries at most 16 MiB; quoting grows a byte to at most 6. */
	if (size > 16u << 20 || memchr(data, 0, size))
		return;
	rw_buf_init(&b, 6 * size + 64);
	if (rw_buf_puts(&b, "{\"metadata\":{\"name\":\"rs\"},\"spec\":{\"serveConfigV2\":") == 0 &&
	    rw_json_quote(&b, (const char *)data, size) == 0 && rw_buf_puts(&b, "}}") == 0 &&
	    rw_rayservice_parse(b.data, b.len, &rs, NULL, 0) == 0) {
		struct rw_rayservice_verr e;
		serve_config(rs);
		(void)rw_rayservice_validate(rs, &e);
	}
	rw_rayservice_free(rs);
	rw_buf_fini(&b);
}

static void
status(const struct rw_rayservice *rs, const struct rw_raycluster *c, const uint8_t *data,
       size_t size)
{
	struct rw_serve_app apps[2];
	struct rw_serve_dep deps[1];
	struct rw_serve_node nodes[2];
	struct rw_report h;
	struct rw_rayservice_opts o;
	struct rw_rayservice_status_in in;
	struct rw_rayservice_health hl;
	struct rw_rayservice_health_in hin;
	struct rw_buf b;
	unsigned char k = size ? data[0] : 0;
	char sfx[6];

	memset(apps, 0, sizeof(apps));
	memset(deps, 0, sizeof(deps));
	memset(nodes, 0, sizeof(nodes));
	memset(&h, 0, sizeof(h));
	strcpy(apps[0].name, (k & 1) ? "" : "a");
	strcpy(apps[0].status, (k & 2) ? "RUNNING" : "DEPLOY_FAILED");
	apps[0].ndeps = 1;
	apps[0].deps = deps;
	strcpy(deps[0].name, "d");
	strcpy(deps[0].status, "UNHEALTHY");
	strcpy(apps[1].name, "b");
	strcpy(apps[1].status, "RUNNING");
	strcpy(nodes[0].node_id, "n0");
	strcpy(nodes[0].node_ip, "10.0.0.1");
	strcpy(nodes[0].proxy_status, "HEALTHY");
	strcpy(nodes[1].node_id, "n1");
	strcpy(nodes[1].node_ip, "10.0.0.2");
	nodes[1].replicas = k & 4;
	h.has_serve = 1;
	h.napps = k % 3;
	h.apps = apps;
	h.nnodes = 2;
	h.nodes = nodes;
	h.proxy.state = (k & 8) ? RW_PROBE_OK : RW_PROBE_REFUSED;
	h.serve_api.state = (k & 16) ? RW_PROBE_OK : RW_PROBE_TIMEOUT;
	strcpy(h.proxy_location, (k & 32) ? "EveryNode" : "HeadOnly");
	strcpy(h.pod_ip, "10.0.0.1");

	rw_rayservice_opts_default(&o);
	o.zero_downtime = (k & 64) != 0;
	rw_rayservice_random_suffix(size >= 5 ? data : (const unsigned char *)"abcde", sfx);
	memset(&in, 0, sizeof(in));
	in.active = (k & 128) ? c : NULL;
	in.pending = (k & 128) ? NULL : c;
	in.active_head = &h;
	in.pending_head = (k & 2) ? &h : NULL;
	in.svc_cluster = (k & 4) ? rw_rayservice_pending_name(rs) : rw_rayservice_active_name(rs);
	in.num_endpoints = k & 3;
	in.new_suffix = sfx;
	in.force_new_cluster = (k & 8) != 0;
	in.opts = &o;
	in.now = "2026-01-01T00:00:00Z";
	in.now_ms = 1767225600000LL;
	rw_buf_init(&b, 1 << 24);
	if (rw_rayservice_status(rs, &in, &b) == 0) {
		check_json(&b);
		if (!rw_rayservice_status_equal(b.data, b.len, b.data, b.len))
			abort();
	}
	rw_buf_reset(&b);
	if (rw_rayservice_status_invalid(rs, "m", in.now, &b) == 0)
		check_json(&b);
	rw_buf_reset(&b);
	(void)rw_rayservice_write_app_statuses(&h, &b);
	check_json(&b);
	rw_buf_fini(&b);

	memset(&hin, 0, sizeof(hin));
	hin.head = &h;
	hin.head_stale = (k & 1) != 0;
	hin.svc_since_ms = 1;
	hin.dep_since_ms = 1;
	hin.opts = &o;
	hin.now_ms = in.now_ms;
	rw_rayservice_health(rs, &hin, &hl);
	{
		int64_t at;
		(void)rw_rayservice_cleanup_cluster(rs, c ? c->obj.name : "x", 0, in.now_ms,
						    (k & 1) != 0, &at);
	}
	{
		struct rw_rayservice_pod_in pin = {0};
		struct rw_rayservice_pod_out pout;
		struct rw_rayservice_ready_in rin = {
		    &h, k & 3, rw_rayservice_expected_endpoints(&h, "10.0.0.1", k & 1)};
		pin.is_head = (k & 1) != 0;
		pin.self = &h;
		pin.head = &h;
		pin.exclude_head = rw_rayservice_exclude_head(rs);
		rw_rayservice_pod_decide(&pin, &pout);
		(void)rw_rayservice_cluster_can_serve(&rin);
		(void)rw_rayservice_service_target(rs, k & 1, k & 2);
		(void)rw_rayservice_need_submit("h", &h, NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rw_rayservice *rs = NULL;
	struct rw_rayservice_verr e;
	struct rw_rayservice_opts o;
	struct rw_raycluster_opts ro;
	struct rw_raycluster *c = NULL;
	struct rw_buf b;
	char name[128], err[256];

	yaml_only(data, size);
	if (rw_rayservice_parse((const char *)data, size, &rs, NULL, 0) != 0)
		return 0;
	(void)rw_rayservice_validate(rs, &e);
	serve_config(rs);
	rw_rayservice_opts_default(&o);
	rw_raycluster_opts_default(&ro);
	rw_buf_init(&b, 1 << 24);
	snprintf(name, sizeof(name), "%.47s-bbbbb", rs->obj.name);
	if (rw_rayservice_build_cluster(rs, name, &o, &b) == 0) {
		check_json(&b);
		if (rw_raycluster_parse(b.data, b.len, &c, NULL, 0) != 0)
			abort();
		if (rw_rayservice_match_cluster(rs, c) != RW_RAYSERVICE_MATCH_EQUAL)
			abort();
		if (!rw_rayservice_cond_true(rs, "UpgradeInProgress") &&
		    rw_rayservice_cluster_action(rs, c, c, &o) != RW_RAYSERVICE_CLUSTER_NONE)
			abort();
		(void)rw_rayservice_prepare_new_cluster(rs, c, NULL, false, &o);
		rw_buf_reset(&b);
		if (rw_rayservice_update_cluster(rs, c, &o, &b) == 0)
			check_json(&b);
		rw_buf_reset(&b);
		if (rw_rayservice_build_head_service(rs, c, &ro, &b) == 0)
			check_json(&b);
		rw_buf_reset(&b);
		if (rw_rayservice_build_serve_service(rs, c, &b, err, sizeof(err)) == 0) {
			struct rw_buf u;
			enum rw_rec_svc_action act;
			check_json(&b);
			rw_buf_init(&u, 1 << 24);
			if (rw_rec_service_switch(b.data, b.len, b.data, b.len, &act, &u) != 0 ||
			    act != RW_REC_SVC_KEEP)
				abort();
			rw_buf_fini(&u);
		}
	}
	status(rs, c, data, size);
	rw_raycluster_free(c);
	rw_buf_fini(&b);
	rw_rayservice_free(rs);
	return 0;
}
