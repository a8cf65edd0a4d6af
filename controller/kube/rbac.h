/*
 * rbac.h - the one table of what raywarden-controller may do in the
 * Kubernetes API, the mapping of a request (method, path, query) to the
 * RBAC attributes the API server authorizes (verb, API group, resource,
 * subresource, namespace, name), and the printer that turns the table into
 * manifests/rbac/cluster_role.yaml and leader_election_role.yaml
 * (`raywarden-controller --print-rbac`).
 *
 * The kube client (kube.c) checks every request against the table before it
 * is sent: a request the table does not grant is refused locally with a 403,
 * exactly what the API server would answer with the generated ClusterRole.
 * Adding an API call is therefore one line here plus regenerating the YAML.
 * Everything here is pure (no I/O).
 */
#ifndef RW_RBAC_H
#define RW_RBAC_H

#include <stdbool.h>
#include <stddef.h>

#include "rw/buf.h"

enum rw_rbac_scope {
	RW_RBAC_CLUSTER, /* the ClusterRole raywarden-controller (watched namespaces) */
	RW_RBAC_LEASE,	 /* the Role raywarden-leader-election (the controller's namespace) */
	RW_RBAC_BATCH, /* the optional ClusterRole raywarden-batch-scheduler (--batch-scheduler) */
	RW_RBAC_WEBHOOK,   /* the optional ClusterRole raywarden-webhook (--webhook-addr) */
	RW_RBAC_WEBHOOK_NS /* the optional Role raywarden-webhook in the controller's namespace */
};

struct rw_rbac_grant {
	enum rw_rbac_scope scope;
	const char *group;    /* API group; "" is the core group */
	const char *resource; /* "pods", or with its subresource "pods/status" */
	const char *verbs;    /* space-separated, printed in this order */
	bool held_only;	      /* never requested: held so the controller may grant it (the
				 autoscaler Role; RBAC's escalation check) or for admission */
	const char *why;      /* the comment printed above the rule */
	const char *names;    /* space-separated resourceNames the rule is limited to, or NULL */
};

extern const struct rw_rbac_grant rw_rbac_grants[];
extern const size_t rw_rbac_ngrants;

/* The RBAC attributes of one request (k8s.io/apiserver RequestInfoFactory). */
struct rw_rbac_attr {
	bool resource_request; /* false: a non-resource URL such as /version */
	char verb[24];	       /* get list watch create update patch delete deletecollection */
	char group[128];
	char resource[128];
	char subresource[64];
	char ns[254];
	char name[254]; /* also from fieldSelector=metadata.name=X on list/watch */
	char path[256]; /* the path, for non-resource requests (truncated) */
};

/*
 * Map a request to its attributes. method: GET HEAD POST PUT PATCH DELETE;
 * query: the encoded query string or NULL. Returns 0, or -EINVAL for a
 * method or path the API server would not serve.
 */
int rw_rbac_attr_of(const char *method, const char *path, const char *query,
		    struct rw_rbac_attr *out);

/* Does the table grant a? The grant row is stored in *row (may be NULL) when it does. */
bool rw_rbac_granted(const struct rw_rbac_attr *a, const struct rw_rbac_grant **row);

/* "pods/status" from resource and subresource, for messages. */
void rw_rbac_resource_name(const struct rw_rbac_attr *a, char *out, size_t outlen);

/*
 * Print the manifest of a scope: RW_RBAC_CLUSTER gives
 * manifests/rbac/cluster_role.yaml, RW_RBAC_LEASE gives
 * manifests/rbac/leader_election_role.yaml (the Role and its RoleBinding in
 * namespace ns), RW_RBAC_BATCH gives manifests/batch-scheduler/rbac.yaml (the
 * ClusterRole and its ClusterRoleBinding), RW_RBAC_WEBHOOK gives
 * manifests/webhook/rbac.yaml (the ClusterRole and the Role of both webhook
 * scopes with their bindings). Returns 0 or -ENOMEM.
 */
int rw_rbac_print(enum rw_rbac_scope scope, const char *ns, struct rw_buf *out);

#endif
