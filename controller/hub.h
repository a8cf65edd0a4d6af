/*
 * hub.h - the controller's agent hub: the REP end of the agents' nng REQ
 * sockets (nng's SP protocol over TCP, implemented on libuv), receiving
 * the agents' reports (docs/protocol.md), keeping the latest report per
 * pod, and answering each with the controller's desired state for that pod.
 *
 * Threading: none of its own. Accepting, reading, writing and every
 * callback below run on the libuv loop thread. Nothing here blocks the loop.
 *
 * Keys: one key per RayCluster (agentkey.h), registered with its scope
 * (namespace, cluster). A message selects its key by the key id in the
 * header; a report whose namespace or cluster differs from the key's scope
 * is refused, so an agent can only speak for its own cluster.
 *
 * Pods are identified by namespace, pod name and pod UID. Per pod the hub
 * keeps the replay guard, the latest report (a head's decoded, any other
 * pod's packed to the length of its strings), the last-seen time,
 * the connection of its last report and the last sealed reply: a resend
 * (same session and seq) is answered with exactly the same bytes and acted
 * on no further.
 *
 * Liveness: a pod is stale when its agent has not reported for
 * stale_after_ms (workers; head_stale_after_ms for a head that runs on the
 * head heartbeat the hub asks of it), or when the connection its reports
 * came on closed disconnect_grace_ms ago and no report came on a new one.
 */
#ifndef RW_HUB_H
#define RW_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "rw/wire.h"

struct rw_hub;

struct rw_hub_opts {
	const char *listen_url; /* "tcp://HOST:PORT", HOST an IP, [IPv6], *, localhost or "" */
	int nctx;		/* unused (was: nng contexts) */
	size_t recv_max; /* largest message; larger closes the connection; 0: RW_WIRE_MAX_MSG */
	uint64_t replay_window_ms; /* clock-skew allowance; 0: 300000 */
	uint64_t stale_after_ms;   /* no report for this long: stale; 0: 15000 */
	uint64_t sweep_ms;	   /* stale check period; 0: smallest threshold/4 (<= 1000) */
	/* Head pods: the hub asks head agents to report every head_heartbeat_ms
	 * (reply heartbeat_ms, unless the reply callback asked for less) and,
	 * once a head has reported after being told, treats it as stale after
	 * head_stale_after_ms without a report. 0: 1000 and 3500. */
	uint32_t head_heartbeat_ms;
	uint64_t head_stale_after_ms;
	/* The connection (nng pipe) a pod's reports arrived on closed and no
	 * report came on a new one: stale after this. 0: 1000. */
	uint64_t disconnect_grace_ms;
	size_t max_pods;	  /* bound on the pod table; 0: 100000 */
	uint64_t log_interval_ms; /* refusal log lines per reason at most this often; 0: 10000 */

	/*
	 * Limits on what a peer that has not proven anything may cost. A peer
	 * that has not sent the 8-byte SP header handshake_timeout_ms after
	 * accept, or has not completed a frame frame_timeout_ms after its first
	 * byte, is closed (0: 3000 and 5000). Bytes of partially received
	 * headers and frames, over all connections, stay within partial_budget
	 * (0: 8 MiB): a connection whose buffer would exceed it makes room by
	 * closing the connections holding the oldest partial frames, and is
	 * closed itself when it holds the oldest. A partial buffer grows with
	 * the bytes received, never to the length a frame declares up front.
	 * At most max_conns_per_peer connections per peer IP address are open
	 * (0: 256, < 0: unlimited); one more is closed at accept.
	 */
	uint64_t handshake_timeout_ms;
	uint64_t frame_timeout_ms;
	size_t partial_budget;
	int max_conns_per_peer;
	/* Pods per key (per cluster); a new pod beyond is refused ("cluster_full"). 0: 10000. */
	size_t max_pods_per_key;
	/* How long a replaced key is still accepted (rw_hub_key_add). 0: 600000. */
	uint64_t key_overlap_ms;
	/*
	 * For this long after the hub starts, a frame naming an unknown key id
	 * is refused and dropped but its connection kept: the reconciler
	 * registers the clusters' keys as it reconciles them after a restart,
	 * and closing would make every agent whose key is not there yet
	 * reconnect and resend ten times a second. 0: 60000.
	 */
	uint64_t startup_grace_ms;
	/*
	 * Bind the listen address but accept nothing until rw_hub_serve(): a
	 * connection meanwhile is refused by the kernel (RST), so an agent
	 * behind a Service redials until it reaches the replica that serves.
	 * The controller's standby replicas run so (see docs/controller.md,
	 * "Two replicas"). The startup grace runs from rw_hub_serve().
	 */
	bool serve_later;
};

/*
 * Callbacks, all on the loop thread. Pointers to reports are valid only
 * during the call.
 *
 * on_report: a FRESH report changed something (rw_report_equal() says it
 *   differs from the previous one, or the pod is new, or it was stale).
 *   old is the previous report, or NULL for a pod seen the first time or a
 *   new incarnation (same name, new UID). When a stale pod's agent resends
 *   its last report, on_report runs with old == now: it is back, unchanged.
 * on_stale: the pod has not reported for its staleness period
 *   (stale_after_ms, or head_stale_after_ms for a head on the head
 *   heartbeat), or its connection closed disconnect_grace_ms ago and it has
 *   not reported since; last is its last report. The pod stays in the table (its replay guard must
 * outlive the replay window) and counts as disconnected until it reports again. reply: fill the
 * reply for this pod. out is pre-set to "no change" (drain 0, proxy_expected -1, everything else
 * empty); the hub encodes it and frees it with rw_reply_fini() afterwards, so serve_config and the
 *   submit strings must be malloc'd. Called right after on_report (or for a
 *   resend whose reply is no longer cached). Return 0 to answer, or a
 *   negative errno to send nothing now (the agent resends). Must not block.
 *   When NULL, every report is answered with the "no change" reply.
 */
struct rw_hub_callbacks {
	void (*on_report)(struct rw_hub *hub, const struct rw_report *now,
			  const struct rw_report *old, void *ud);
	void (*on_stale)(struct rw_hub *hub, const struct rw_report *last, void *ud);
	int (*reply)(struct rw_hub *hub, const struct rw_report *r, struct rw_reply *out, void *ud);
	/*
	 * admit: may this report, authenticated with the key of (ns, cluster),
	 * speak for pod r->pod with UID r->uid? Called for every report that is
	 * decoded (not for a byte-identical heartbeat of an admitted session),
	 * before the replay guard or the pod table change. Return 0 to accept;
	 * -EAGAIN when the pod is not known (yet) or its UID differs: refused
	 * as "pending", the connection stays open and the agent's resend is
	 * judged again; any other negative errno when the pod belongs to
	 * another cluster: refused as "forged", logged and the connection
	 * closed. Write the reason into why (at most whylen bytes, no secrets).
	 * NULL accepts every report (unit tests).
	 */
	int (*admit)(struct rw_hub *hub, const char *ns, const char *cluster,
		     const struct rw_report *r, char *why, size_t whylen, void *ud);
};

/* Why a message was refused (counted per reason; no reply is sent). */
enum rw_hub_refusal {
	RW_HUB_REFUSED_SIZE = 0,     /* larger than recv_max */
	RW_HUB_REFUSED_MALFORMED,    /* short, bad magic, length mismatch, wrong type */
	RW_HUB_REFUSED_VERSION,	     /* unsupported protocol version */
	RW_HUB_REFUSED_UNKNOWN_KEY,  /* no key registered under the key id */
	RW_HUB_REFUSED_MAC,	     /* MAC mismatch */
	RW_HUB_REFUSED_CLOCK,	     /* timestamp outside the replay window */
	RW_HUB_REFUSED_REPLAY,	     /* older seq or older session */
	RW_HUB_REFUSED_PAYLOAD,	     /* payload does not decode */
	RW_HUB_REFUSED_SCOPE,	     /* namespace/cluster differ from the key's scope */
	RW_HUB_REFUSED_FULL,	     /* pod table full */
	RW_HUB_REFUSED_CLUSTER_FULL, /* the key's cluster has max_pods_per_key pods */
	RW_HUB_REFUSED_PENDING,	     /* admit: pod not known (yet) or another UID */
	RW_HUB_REFUSED_FORGED,	     /* admit: the pod belongs to another cluster */
	RW_HUB_REFUSED_NREASONS
};

/*
 * Why the hub closed a connection (counted per reason). After a refusal
 * for size, malformed, unknown_key, mac, payload, scope or forged
 * the connection is closed ("refused"): a peer that sends one such message
 * is not an agent worth listening to, and the agent's REQ socket
 * reconnects by itself. Except for unknown_key during startup_grace_ms
 * after the hub starts, or for a key id forgotten within key_overlap_ms:
 * then the frame is dropped and the connection kept.
 */
enum rw_hub_close {
	RW_HUB_CLOSE_HANDSHAKE_TIMEOUT = 0, /* no SP header within handshake_timeout_ms */
	RW_HUB_CLOSE_FRAME_TIMEOUT,	    /* a frame not complete within frame_timeout_ms */
	RW_HUB_CLOSE_BUDGET,		    /* partial frames over partial_budget */
	RW_HUB_CLOSE_PEER_CAP,		    /* max_conns_per_peer reached */
	RW_HUB_CLOSE_PROTOCOL,		    /* bad SP header, backtrace or frame size */
	RW_HUB_CLOSE_REFUSED,		    /* a refused message (see above) */
	RW_HUB_CLOSE_NREASONS
};

/* Short name of a close reason ("frame_timeout"...), for logs and metric labels. */
const char *rw_hub_close_name(enum rw_hub_close r);

/* Short name of a refusal reason ("mac", "replay"...), for logs and metric labels. */
const char *rw_hub_refusal_name(enum rw_hub_refusal r);

struct rw_hub_stats {
	uint64_t reports;	 /* FRESH reports accepted */
	uint64_t unchanged_fast; /* of which byte-identical to the pod's last: not decoded again */
	uint64_t changes;	 /* of which on_report was called */
	uint64_t resends;	 /* RESENDs answered */
	uint64_t replies;	 /* replies sent */
	uint64_t no_reply;	 /* reports accepted but not answered (provider error) */
	uint64_t refused[RW_HUB_REFUSED_NREASONS];
	uint64_t refused_total;
	size_t pods;		 /* pods in the table */
	size_t agents_connected; /* pods that are not stale */
	uint64_t disconnects;	 /* pods that went stale because their connection closed */
	size_t keys;		 /* registered keys */
	uint64_t closed[RW_HUB_CLOSE_NREASONS]; /* connections closed by the hub, by reason */
	size_t conns;				/* open connections */
	size_t partial_bytes;			/* bytes held for partial headers and frames */
	size_t pod_bytes;			/* heap and table bytes of the pod records */
};

/* Per-cluster aggregate over the pods that report with the cluster's key. */
struct rw_hub_cluster_stats {
	size_t pods;	  /* known pods, stale ones included */
	size_t ready;	  /* connected and reporting ready */
	size_t not_ready; /* connected and reporting not ready */
	size_t stale;	  /* not reporting */
	/* Latest report of the most recently seen head pod, or NULL (valid
	 * until control returns to the loop). */
	const struct rw_report *head;
	int head_stale;		    /* that head pod is stale */
	uint64_t head_last_seen_ms; /* loop time (uv_now) of its last message */
};

/*
 * Create the hub: listen on opts->listen_url and start accepting agents.
 * Returns 0 or a negative errno (-EINVAL, -ENOMEM, -EADDRINUSE...), with a
 * message in err.
 */
int rw_hub_new(uv_loop_t *loop, const struct rw_hub_opts *opts, const struct rw_hub_callbacks *cb,
	       void *ud, struct rw_hub **out, char *err, size_t errlen);

/*
 * Stop the hub: close the listener and every connection, free every pod
 * and key, and close the loop handles (the memory is freed when libuv has
 * closed them, so let the loop run afterwards). NULL-safe.
 * No callback runs after this returns.
 */
void rw_hub_free(struct rw_hub *hub);

/*
 * Register the key of (ns, cluster). When the scope has a different key
 * already, that key is not dropped at once: it stays accepted alongside the
 * new one for key_overlap_ms (agents that still hold it keep reporting until
 * their mounted key file is updated), replies to its messages are sealed
 * with it, and afterwards it is forgotten. A third key within the window
 * replaces the oldest (only the previous key overlaps). Adding the key the
 * scope has already changes nothing; adding the previous key back makes it
 * the current one again (the other one overlaps). The pods of the scope are
 * kept throughout. Several scopes may share a key id (keys are tried in
 * turn). Returns 0, -EINVAL, -ENOMEM.
 */
int rw_hub_key_add(struct rw_hub *hub, const char *ns, const char *cluster,
		   const struct rw_wire_key *key);

/*
 * Forget the key of (ns, cluster) and the pods that reported with it. Its
 * key ids are remembered for key_overlap_ms: a frame naming one is refused
 * and dropped without closing the connection (the cluster's agents report
 * until their pods are gone). Returns 0 or -ENOENT.
 */
int rw_hub_key_remove(struct rw_hub *hub, const char *ns, const char *cluster);

/* Counters and gauges, for metrics. */
void rw_hub_stats(const struct rw_hub *hub, struct rw_hub_stats *out);

/* Aggregate over one cluster's pods. Returns 0, or -ENOENT for an unknown cluster. */
int rw_hub_cluster_stats(struct rw_hub *hub, const char *ns, const char *cluster,
			 struct rw_hub_cluster_stats *out);

/*
 * Call fn for every pod of a cluster with its latest report (valid during
 * the call), whether it is stale and its last-seen loop time. fn must not
 * add or remove keys. Returns
 * the number of pods visited or -ENOENT.
 */
int rw_hub_cluster_foreach(struct rw_hub *hub, const char *ns, const char *cluster,
			   void (*fn)(const struct rw_report *r, int stale, uint64_t last_seen_ms,
				      void *arg),
			   void *arg);

/*
 * Latest report of one pod (namespace and name; the most recently seen UID
 * when the name was reused), or NULL. *stale is set when stale is not NULL.
 * A head pod's report is valid until control returns to the loop; another
 * pod's (a view of its packed record) until then or until rw_hub_pod has
 * been called four more times, whichever comes first.
 */
const struct rw_report *rw_hub_pod(struct rw_hub *hub, const char *ns, const char *pod, int *stale);

/* The URL the hub listens on with the port resolved (tcp://host:port), for tests. */
/* Start accepting connections (a hub made with serve_later). 0, or a negative errno. */
int rw_hub_serve(struct rw_hub *hub);

/* Whether the hub accepts connections. */
bool rw_hub_serving(const struct rw_hub *hub);

int rw_hub_listen_url(const struct rw_hub *hub, char *out, size_t outlen);

/*
 * The hub's view of nng's SP-over-TCP framing (pure, fuzzed by
 * tests/fuzz/fuzz_hub_sp.c). rw_hub_sp_header_ok: the 8-byte connection
 * header of a REQ peer. rw_hub_sp_frame: one frame at d[0..n) (a 64-bit
 * big-endian length, then a backtrace of 4-byte words ending with the
 * request id, high bit set, then the message): 1 with the backtrace length
 * *hl and the frame length *len (bytes after the 8-byte length), 0 when more
 * bytes are needed, -EMSGSIZE when longer than max plus the backtrace,
 * -EPROTO when the backtrace has no end within 8 hops.
 */
int rw_hub_sp_header_ok(const unsigned char *d);
int rw_hub_sp_frame(const unsigned char *d, size_t n, size_t max, size_t *hl, size_t *len);

/*
 * One connection's receive state machine (pure: bytes in, callbacks out;
 * fuzzed split at any byte by tests/fuzz/fuzz_hub_conn.c). Feed it the
 * bytes as they arrive: it checks the SP header, then cuts frames, calling
 * peek once per frame with the first min(16, length) bytes of its message
 * (enough for the envelope's magic, version and key id: a frame can be
 * refused before its body is buffered) and frame once it is complete. Only
 * a partial header or frame is copied, into a buffer that grows with the
 * bytes received (at most twice what it holds, never beyond the frame);
 * every growth is asked of reserve first (release gives it back).
 * rw_hub_sp_feed returns 0 (all consumed), -EPROTO (bad header or
 * backtrace), -EMSGSIZE (frame over max), -ENOBUFS (reserve said no),
 * -ENOMEM, or the first negative return of peek or frame (which return 0 to
 * go on); the connection is then finished. peek may also return
 * RW_HUB_SP_SKIP: the frame is dropped, its bytes discarded as they arrive
 * without being buffered, and frame is not called for it.
 */
#define RW_HUB_SP_SKIP 1
struct rw_hub_sp_ops {
	int (*reserve)(void *ud, size_t bytes);
	void (*release)(void *ud, size_t bytes);
	int (*peek)(void *ud, const unsigned char *msg, size_t n);
	int (*frame)(void *ud, const unsigned char *bt, size_t hl, const unsigned char *msg,
		     size_t n);
};

struct rw_hub_sp_conn {
	size_t max; /* largest message (recv_max) */
	int got_hdr;
	int peeked;	   /* peek ran for the frame being received */
	unsigned char *in; /* partial header or frame */
	size_t inlen, incap;
	size_t want; /* bytes of the header or frame being buffered (when reserve runs) */
	size_t skip; /* bytes of a dropped frame still to discard */
};

void rw_hub_sp_conn_init(struct rw_hub_sp_conn *s, size_t max);
int rw_hub_sp_feed(struct rw_hub_sp_conn *s, const unsigned char *d, size_t n,
		   const struct rw_hub_sp_ops *ops, void *ud);
/* Free the partial buffer (released through ops when not NULL). */
void rw_hub_sp_conn_fini(struct rw_hub_sp_conn *s, const struct rw_hub_sp_ops *ops, void *ud);

/* Bytes one pod record costs now (struct, strings, cached reply; table links), for tests. */
size_t rw_hub_pod_bytes(struct rw_hub *hub, const char *ns, const char *pod);

#endif
