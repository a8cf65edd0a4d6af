/*
 * fuzz_yaml.c - convert arbitrary bytes as a YAML stream with a small
 * max_json; every document produced must be valid JSON for rw_json_parse and
 * fit the limit, and the single-document entry point must agree.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rw/json.h"
#include "rw/yaml.h"

/* The largest JSON any caller lets the converter write: twice
 * RW_RAYSERVICE_MAX_SERVE_JSON, the serveConfigV2 conversion (controller/rayservice/rs_build.c). */
#define MAX_JSON (2 * 900 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
check_doc(const char *json, size_t len, void *ud)
{
	struct rw_json j;
	char err[128];
	int *n = ud;
	if (len > MAX_JSON || strlen(json) != len)
		abort();
	if (rw_json_parse(&j, json, len, MAX_JSON, err, sizeof(err)) != 0)
		abort();
	rw_json_fini(&j);
	(*n)++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	int n = 0;
	int rv = rw_yaml_docs_to_json((const char *)data, size, MAX_JSON, check_doc, &n, err,
				      sizeof(err));
	if (rv >= 0 && rv != n)
		abort();
	if (rv < 0 && rv != -EINVAL && rv != -EMSGSIZE && rv != -ENOMEM)
		abort();
	if (rv < 0 && rv != -ENOMEM && err[0] == '\0')
		abort(); /* every failure explains itself */

	struct rw_buf out;
	rw_buf_init(&out, MAX_JSON);
	int one = rw_yaml_to_json((const char *)data, size, &out, err, sizeof(err));
	if (one == 0) {
		struct rw_json j;
		if (rv > 1 || rv < 0)
			abort(); /* the stream converter failed or saw several documents */
		if (rw_json_parse(&j, out.data, out.len, MAX_JSON, NULL, 0) != 0)
			abort();
		rw_json_fini(&j);
	} else if (out.len != 0) {
		abort(); /* a failure leaves the buffer as it was */
	}
	rw_buf_fini(&out);
	return 0;
}
