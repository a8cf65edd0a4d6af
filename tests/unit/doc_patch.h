/*
 * doc_patch.h - the unit tests' document patcher: set a JSON value at a path
 * of member names / array indexes separated by '|' (names may contain dots:
 * "spec|clusterSelector|ray.io/cluster"); the value "-" deletes the member.
 * Missing objects on the way are created.
 */
#ifndef DOC_PATCH_H
#define DOC_PATCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc.h"

/* Set the JSON `value` at `path`; "-" deletes. 0 or -1. */
static inline int
doc_patch(struct rw_doc_node *root, const char *path, const char *value)
{
	char buf[512], *save = NULL, *seg, *next;
	struct rw_doc_node *cur = root, *v = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	seg = strtok_r(buf, "|", &save);
	while (seg) {
		next = strtok_r(NULL, "|", &save);
		if (!next) {
			if (strcmp(value, "-") == 0) {
				if (cur->type == RW_DOC_OBJ)
					rw_doc_del(cur, seg);
				return 0;
			}
			if (rw_doc_parse(value, strlen(value), &v, NULL, 0) != 0)
				return -1;
			if (cur->type == RW_DOC_ARR) {
				int i = atoi(seg);
				if (i < 0 || i >= cur->n) {
					rw_doc_free(v);
					return -1;
				}
				rw_doc_free(cur->kids[i]);
				cur->kids[i] = v;
				return 0;
			}
			return rw_doc_set(cur, seg, v);
		}
		if (cur->type == RW_DOC_ARR)
			cur = rw_doc_at(cur, atoi(seg));
		else if (rw_doc_get(cur, seg))
			cur = rw_doc_get(cur, seg);
		else
			cur = rw_doc_obj(cur, seg);
		if (!cur)
			return -1;
		seg = next;
	}
	return -1;
}

#endif
