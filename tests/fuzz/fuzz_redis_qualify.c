/*
 * fuzz_redis_qualify.c - arbitrary bytes as a Redis address through the GCS
 * FT cleanup's host qualification (rw_raycluster_ctl_redis_qualify), with a namespace
 * and domain picked by the first byte. Invariants: the answer is 0,
 * -EINVAL or -ENAMETOOLONG; on 0 the output is NUL-terminated, at least as
 * long as the input, ends with the input's tail after the host, and
 * qualifying it again changes nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rcr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const nss[] = {"default", "team-a", "x"};
	static const char *const doms[] = {NULL, "cluster.local", "corp.example.", "a"};
	size_t outlen;
	int rv;
	if (size < 1)
		return 0;
	const char *ns = nss[data[0] % 3];
	const char *dom = doms[(data[0] >> 2) % 4];
	/* 1..561 exercises the bounds; 15 sizes it as the cleanup job does. */
	if (data[0] >> 4 == 15)
		outlen = size - 1 + strlen(ns) + (dom ? strlen(dom) : 0) + 16 + 16;
	else
		outlen = 1 + (size_t)(data[0] >> 4) * 40;
	char *addr = malloc(size), *out = malloc(outlen), *again = malloc(outlen);
	if (!addr || !out || !again)
		abort();
	memcpy(addr, data + 1, size - 1);
	addr[size - 1] = '\0';
	memset(out, 0x7f, outlen);
	rv = rw_raycluster_ctl_redis_qualify(addr, ns, dom, out, outlen);
	if (rv != 0 && rv != -EINVAL && rv != -ENAMETOOLONG)
		abort();
	if (rv == 0) {
		size_t la = strlen(addr), lo = strnlen(out, outlen);
		if (lo >= outlen || lo < la)
			abort();
		if (lo > la) {
			/* Something was inserted after the host: the output carries a "svc" label.
			 */
			if (!strstr(out, ".svc."))
				abort();
		} else if (strcmp(out, addr) != 0) {
			abort();
		}
		if (rw_raycluster_ctl_redis_qualify(out, ns, dom, again, outlen) != 0 ||
		    strcmp(again, out))
			abort();
	}
	free(addr);
	free(out);
	free(again);
	return 0;
}
