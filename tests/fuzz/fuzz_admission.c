/*
 * fuzz_admission.c - any bytes as an AdmissionReview body: read it, decide
 * (the reconcilers' validators on the object, and the agent injection with
 * and without the hub), and write the answer. Nothing
 * may crash or leak; a review that reads must get an answer that is valid
 * JSON carrying its uid, and a refusal must say why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rc_build.h"
#include "rw/json.h"
#include "wh_admission.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rw_wh_review r;
	struct rw_wh_verdict v;
	struct rw_buf out;
	struct rw_json j;
	char err[256];
	if (rw_wh_review_parse((const char *)data, size, &r, err, sizeof(err)) != 0) {
		if (!err[0])
			abort();
		return 0;
	}
	if (rw_wh_validate(&r, &v) != 0) {
		rw_wh_review_fini(&r);
		return 0; /* out of memory */
	}
	if (!v.allowed && !v.msg[0])
		abort();
	rw_buf_init(&out, 1 << 20);
	if (rw_wh_review_answer(&out, r.uid, &v) != 0)
		abort();
	if (rw_json_parse(&j, out.data, out.len, 1000, NULL, 0) != 0)
		abort();
	if (!rw_json_streq(&j, rw_json_path(&j, 0, "response.uid"), r.uid))
		abort();
	rw_json_fini(&j);
	rw_buf_fini(&out);
	/* The injection: a patch must be a JSON array of "add" operations. */
	for (int hub = 0; hub < 2; hub++) {
		struct rw_raycluster_opts o;
		rw_raycluster_opts_default(&o);
		o.controller_addr = hub ? "tcp://raywarden-controller.rs.svc:8478" : NULL;
		o.readiness_gate = hub;
		if (rw_wh_inject(&r, &o, &v) != 0)
			break; /* out of memory */
		if (!v.allowed)
			abort();
		if (v.patch) {
			int i, t;
			if (rw_json_parse(&j, v.patch->data, v.patch->len, 100000, NULL, 0) != 0 ||
			    rw_json_type(&j, 0) != RW_JSON_ARRAY)
				abort();
			RW_JSON_ARR_FOREACH (&j, 0, i, t) {
				if (!rw_json_streq(&j, rw_json_get(&j, t, "op"), "add"))
					abort();
			}
			rw_json_fini(&j);
		}
		rw_wh_verdict_fini(&v);
	}
	rw_wh_review_fini(&r);
	return 0;
}
