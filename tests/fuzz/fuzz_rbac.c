/*
 * fuzz_rbac.c - arbitrary method, path and query (NUL-separated in the
 * input) through the request -> RBAC attributes mapping and the grant check.
 * Invariants: every attribute string is NUL-terminated within its field; a
 * resource request has a known verb; a granted request is a resource request
 * with a resource; an invalid input fills nothing the check could grant.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rbac.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const verbs[] = {"get",   "list",   "watch", "create",	   "update",
				    "patch", "delete", "proxy", "deletecollection"};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *method, *path, *query, *end;
	struct rw_rbac_attr a;
	if (size > 65536)
		return 0;
	buf = malloc(size + 3);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = buf[size + 2] = '\0';
	end = buf + size;
	method = buf;
	path = method + strlen(method) + 1;
	query = path <= end ? path + strlen(path) + 1 : end;
	if (path > end)
		path = end;
	if (query > end)
		query = end;
	int rv = rw_rbac_attr_of(*method ? method : "GET", path, *query ? query : NULL, &a);
	if (memchr(a.verb, 0, sizeof(a.verb)) == NULL ||
	    memchr(a.group, 0, sizeof(a.group)) == NULL ||
	    memchr(a.resource, 0, sizeof(a.resource)) == NULL ||
	    memchr(a.subresource, 0, sizeof(a.subresource)) == NULL ||
	    memchr(a.ns, 0, sizeof(a.ns)) == NULL || memchr(a.name, 0, sizeof(a.name)) == NULL ||
	    memchr(a.path, 0, sizeof(a.path)) == NULL)
		abort();
	if (rv == 0 && a.resource_request) {
		int known = 0;
		for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
			known |= strcmp(a.verb, verbs[i]) == 0;
		if (!known)
			abort();
	}
	if (rv == 0 && rw_rbac_granted(&a, NULL) && (!a.resource_request || !a.resource[0]))
		abort();
	free(buf);
	return 0;
}
