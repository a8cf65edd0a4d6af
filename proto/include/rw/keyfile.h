/*
 * keyfile.h - what the agent and the controller share about key files and
 * the proof a preStop hook carries to the agent's /drain.
 *
 * Key files are mounted Secrets. The kubelet updates a Secret volume by an
 * atomic swap of the ..data symlink (the visible file is a symlink through
 * it), so a changed key shows as a different inode behind the same path; a
 * plain file rewritten in place shows a new modification time or size.
 * rw_keyfile_changed() compares that signature; the daemons call it from a
 * loop timer and re-read the key when it says so.
 *
 * The drain token of a cluster key K is the 64 lowercase hex digits of
 *
 *   HMAC-SHA256(K, "raywarden/v1/drain")
 *
 * The controller puts it into the preStop httpGet hook's Authorization
 * header ("Bearer <token>"); the agent derives it from its key file. It
 * proves only "knows a token derived from the cluster key": it cannot seal a
 * report (that needs K itself, and a sealed message starts with the wire
 * magic, never with this label), and it does not reveal K.
 */
#ifndef RW_KEYFILE_H
#define RW_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rw/wire.h"

#define RW_DRAIN_TOKEN_LABEL "raywarden/v1/drain"
#define RW_DRAIN_TOKEN_LEN 64

/* What identifies one version of a key file (through its symlinks). */
struct rw_keyfile_sig {
	bool valid; /* the last stat succeeded */
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
};

/*
 * stat(path) (following symlinks) into *now. Returns 1 when it differs from
 * *last (including a file that appeared or vanished), else 0; *last is not
 * changed: the caller stores *now once it has read the new key, so a read
 * that failed is tried again on the next call.
 */
int rw_keyfile_changed(const struct rw_keyfile_sig *last, const char *path,
		       struct rw_keyfile_sig *now);

/*
 * The drain token of key: RW_DRAIN_TOKEN_LEN hex digits and a NUL in out.
 * Returns 0, -EINVAL or -EIO (mbed TLS failed; out is then empty).
 */
int rw_drain_token(const struct rw_wire_key *key, char out[RW_DRAIN_TOKEN_LEN + 1]);

/*
 * Does the credential of an Authorization header value ("Bearer <token>",
 * scheme case-insensitive, spaces around the token ignored) equal token?
 * The comparison takes the same time whatever the first differing byte.
 * NULL or empty values never match.
 */
bool rw_drain_token_match(const char *authorization, const char *token);

/* Are a and b (n bytes each) equal? Constant time in their contents. */
bool rw_ct_equal(const void *a, const void *b, size_t n);

#endif
