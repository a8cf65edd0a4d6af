/*
 * agentkey.h - per-RayCluster agent keys derived from the controller's
 * master key, and the Secret that carries one to the cluster's agents.
 *
 * For a RayCluster <cluster> in <namespace> with metadata.uid <uid> the
 * controller computes
 *
 *   mac = HMAC-SHA256(master, "raywarden/v2/" + namespace + "/" + cluster + "/" + uid)
 *
 * The UID binds the key to one incarnation of the cluster: a RayCluster
 * deleted and created again under the same name gets another key, so the
 * agents of the old one (or a copy of its Secret) cannot speak for the new
 * one. (Version 1 derived from namespace and cluster alone.)
 *
 * and uses the 64 lowercase hex digits of mac as the cluster's key (the
 * bytes of the hex text are the key). Text rather than the 32 raw bytes,
 * because rw_wire_key_load() strips one trailing newline from a key file:
 * a raw key ending in 0x0a would load as a different key on the agent.
 *
 * The key is written to the Secret <cluster>-raywarden-key (data.key),
 * owned by the RayCluster, which the agent sidecar mounts. The hub
 * registers the same key with the scope (namespace, cluster), so an agent
 * can only speak for its own cluster. When the master key changes, every
 * cluster key is derived again, the Secrets are rewritten and the hub gets
 * the new key (keeping the old one for an overlap window), so agents move
 * over when the kubelet refreshes their mounted Secret, without restarts.
 */
#ifndef RW_AGENTKEY_H
#define RW_AGENTKEY_H

#include <stddef.h>

#include "rw/buf.h"
#include "rw/wire.h"

/* The label every key Secret carries (the controller's informer selects on it). */
#define RW_AGENTKEY_LABEL "app.kubernetes.io/component"
#define RW_AGENTKEY_LABEL_VALUE "raywarden-agent-key"
#define RW_AGENTKEY_LABEL_SELECTOR RW_AGENTKEY_LABEL "=" RW_AGENTKEY_LABEL_VALUE

/* Length of a derived key: 64 hex digits. */
#define RW_AGENTKEY_LEN 64

/*
 * Load the controller's master key from a file (a mounted Secret). Same
 * rules as rw_wire_key_load(); err never holds key material.
 */
int rw_agentkey_load_master(struct rw_wire_key *master, const char *path, char *err, size_t errlen);

/*
 * Derive the key of one RayCluster incarnation. Returns 0, or -EINVAL for a
 * missing argument, an empty namespace, cluster name or UID, one containing
 * '/', or one too long (names over 63 bytes, UIDs over 128), -EIO if mbed
 * TLS fails. When text is not NULL it receives the key's text
 * (RW_AGENTKEY_LEN digits and a NUL): what goes into the Secret.
 */
int rw_agentkey_derive(const struct rw_wire_key *master, const char *ns, const char *cluster,
		       const char *uid, struct rw_wire_key *out, char text[RW_AGENTKEY_LEN + 1]);

/*
 * Name of the Secret holding a cluster's key: "<cluster>-raywarden-key".
 * Returns 0 or -ENAMETOOLONG when it does not fit into out.
 */
int rw_agentkey_secret_name(const char *cluster, char *out, size_t outlen);

/*
 * Render the Secret (v1, type Opaque) as JSON, appended to out: name
 * <cluster>-raywarden-key in ns, labels ray.io/cluster,
 * app.kubernetes.io/created-by and RW_AGENTKEY_LABEL, data.key = base64 of the key bytes, and a
 * controller ownerReference to the RayCluster (ray.io/v1) with cluster_uid.
 * Returns 0, -EINVAL, -EMSGSIZE or -ENOMEM (out unchanged on failure).
 */
int rw_agentkey_secret_json(const char *ns, const char *cluster, const char *cluster_uid,
			    const struct rw_wire_key *key, struct rw_buf *out);

#endif
