/*
 * redis_cleanup.h - remove a deleted RayCluster's GCS fault-tolerance keys
 * from Redis, asynchronously on the controller's libuv loop (hiredis async
 * API with its libuv adapter).
 *
 * Ray keeps each GCS table of a cluster in a Redis hash named
 * "RAY" + <external storage namespace> + "@" + <table>, plus the string key
 * RAY<ns>@JobCounter. The cleanup does what Ray's own cleanup_redis_storage
 * (the script KubeRay's cleanup Job runs) does: SCAN with MATCH
 * RAY<escaped ns>@* until the cursor is "0", deleting each page (UNLINK,
 * or DEL on a server without UNLINK). Only keys with that prefix are
 * touched.
 *
 * Every step has its own timeout (hiredis 0.14 has none); a failed or
 * timed-out attempt is retried on a new connection after an exponential
 * back-off, until the overall deadline. The completion callback runs
 * exactly once: success, deadline exceeded, or cancelled. The password
 * is never logged nor put into the result's error text, and texts from
 * the server or the network reach it only through rw_redis_cleanup_clean_text: a
 * classified cause and a short printable excerpt.
 */
#ifndef RW_REDIS_CLEANUP_H
#define RW_REDIS_CLEANUP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct rw_redis_cleanup;

struct rw_redis_cleanup_opts {
	/*
	 * RAY_REDIS_ADDRESS as Ray and KubeRay accept it: "host:port",
	 * "redis://[user[:password]@]host[:port]", or a comma-separated list
	 * of those (the first entry is used). "rediss://" (TLS) is refused:
	 * hiredis 0.14 has no TLS.
	 */
	const char *address;
	const char *username;	     /* NULL: from the URL (REDIS_USERNAME wins, as in KubeRay) */
	const char *password;	     /* NULL: from the URL (REDIS_PASSWORD wins) */
	const char *storage_ns;	     /* RAY_external_storage_namespace (required) */
	uint32_t connect_timeout_ms; /* resolve + connect; 0: 5000 */
	uint32_t command_timeout_ms; /* each AUTH/SCAN/UNLINK; 0: 10000 */
	uint32_t deadline_ms;	     /* overall; 0: 300000 */
	uint32_t backoff_min_ms;     /* first retry delay; 0: 250 */
	uint32_t backoff_max_ms;     /* retry delay cap; 0: 10000 */
	uint32_t scan_count;	     /* SCAN COUNT; 0: 1000 */
};

struct rw_redis_cleanup_result {
	int ok;		       /* every matching key is gone */
	int deadline_exceeded; /* gave up at the deadline */
	int cancelled;	       /* rw_redis_cleanup_cancel() was called */
	uint64_t keys_deleted; /* sum of UNLINK/DEL answers */
	unsigned attempts;     /* connections tried */
	uint64_t elapsed_ms;   /* from start to completion */
	char error[256];       /* last error ("" on success); never the password */
};

typedef void (*rw_redis_cleanup_done_cb)(const struct rw_redis_cleanup_result *res, void *ud);

/*
 * Start a cleanup. On success *out is a handle valid until done_cb has
 * been called (the memory is released by the loop afterwards). Returns 0,
 * -EINVAL for a bad address or namespace (an empty one, or one with '@'),
 * -EPROTONOSUPPORT for rediss://, -ENOMEM. done_cb is never called from
 * within rw_redis_cleanup_start.
 */
int rw_redis_cleanup_start(uv_loop_t *loop, const struct rw_redis_cleanup_opts *opts,
			   rw_redis_cleanup_done_cb done_cb, void *ud,
			   struct rw_redis_cleanup **out);

/*
 * Stop a cleanup that has not completed: closes the connection and calls
 * done_cb (cancelled = 1) before returning. The handle is invalid
 * afterwards. Must not be called after done_cb ran.
 */
void rw_redis_cleanup_cancel(struct rw_redis_cleanup *c);

/* A parsed RAY_REDIS_ADDRESS. */
struct rw_redis_cleanup_addr {
	char host[256];
	int port;
	int has_user, has_password;
	char username[256];
	char password[256];
	int tls; /* rediss:// */
};

/*
 * Parse an address as KubeRay's cleanup script does (first comma entry;
 * "redis://" prepended when no scheme; user and password from the URL's
 * userinfo, not percent-decoded, like Python's urlparse). The port
 * defaults to 6379. A host with a space, a control or a non-ASCII byte is
 * refused, so that no log line or Event carries one. Returns 0 or -EINVAL.
 */
int rw_redis_cleanup_parse_address(const char *address, struct rw_redis_cleanup_addr *out);

/*
 * The SCAN pattern for a storage namespace: "RAY" + ns + "@*" with each of
 * [ ] - ? * ^ \ in ns escaped by a backslash, as Ray does. Returns 0,
 * -EINVAL (empty ns or one containing '@') or -ENAMETOOLONG.
 */
int rw_redis_cleanup_pattern(const char *ns, char *out, size_t outlen);

/*
 * Make a text from Redis or the network fit for an Event and a log line:
 * ANSI escape sequences and control bytes are removed, whitespace runs
 * become one space, a run of non-ASCII bytes becomes one '?', every
 * occurrence of each non-empty string in secrets (NULL-terminated; the
 * password) becomes "***" (matched in the raw bytes and again in the
 * cleaned text, so escapes or control bytes inside an echoed password do
 * not hide it), and the result is cut to at most max characters, ending in
 * "..." when cut. out gets at most outlen - 1 characters and is always
 * terminated. A peer that received the password can still encode it in
 * ways no filter recognises: the cut bounds what such a text can carry.
 */
void rw_redis_cleanup_clean_text(const char *raw, size_t len, const char *const *secrets,
				 size_t max, char *out, size_t outlen);

/*
 * The cause of a Redis error reply, from its error code: "authentication
 * failed" (WRONGPASS, NOAUTH, invalid password), "permission denied"
 * (NOPERM), "server not ready" (LOADING, BUSY, MASTERDOWN), "read-only
 * replica" (READONLY), "server out of memory" (OOM), else "server error".
 */
const char *rw_redis_cleanup_classify_reply(const char *reply, size_t len);

#endif
