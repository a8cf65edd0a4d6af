/*
 * fuzz_krmetrics.c - any bytes as a RayCluster, RayJob or RayService object
 * (the KubeRay metric facts) and as /proc/self/stat and /proc/stat text.
 * Nothing may crash or leak; accepted facts are NUL-terminated and bounded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "krmetrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rw_krm_obj o;
	struct rw_proc_stat ps;
	long long bt;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (rw_krm_parse(text, size, &o) == 0 &&
	    (strlen(o.name) >= sizeof(o.name) || strlen(o.ns) >= sizeof(o.ns) ||
	     strlen(o.uid) >= sizeof(o.uid) || !o.owner_kind[0]))
		abort();
	(void)rw_proc_stat_parse(text, size, &ps);
	(void)rw_proc_btime_parse(text, size, &bt);
	free(text);
	return 0;
}
