/*
 * keys.c - the agent's cluster key: loaded at start from RAYWARDEN_KEY_FILE,
 * re-read when the file changes, and the /drain tokens derived from it. An
 * agent without a key file (attached as an ephemeral container, which cannot
 * mount a volume the pod lacks) takes the key from RAYWARDEN_KEY once: an env
 * value never changes in a running container.
 *
 * The key file is a mounted Secret. When the controller rotates its master
 * key it rewrites the Secret and the kubelet swaps the volume's ..data
 * symlink (within its sync period); the agent sees the file's signature
 * change on its next check, loads the new key and seals reports with it from
 * the next one on. Replies sealed with the previous key still open (the hub
 * answers a report with the key it was sealed with). A file that cannot be
 * read or holds no valid key keeps the key in use.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "rw/log.h"

#define CHECK_MS 1000

const char *
rw_drain_refusal_name(enum rw_drain_refusal r)
{
	static const char *n[RW_DRAIN_NREF] = {"no_key", "unauthenticated", "forbidden"};
	return (unsigned)r < RW_DRAIN_NREF ? n[r] : "?";
}

/* Overwrite key text left in memory (volatile: not optimised away). */
static void
wipe_text(char *s, size_t n)
{
	volatile char *v = s;
	while (n--)
		*v++ = 0;
}

static int
add_token(struct rw_agent_keys *k, const struct rw_wire_key *key, int slot)
{
	return rw_drain_token(key, k->drain[slot]);
}

/* Whichever source the first key came from, its drain token goes in slot 0. */
static int
key_loaded(struct rw_agent_keys *k, const struct rw_wire_key *key, char *err, size_t errlen)
{
	int rv = add_token(k, key, 0);
	if (rv != 0) {
		snprintf(err, errlen, "cannot derive the drain token: %s", strerror(-rv));
		return rv;
	}
	k->have = 1;
	return 0;
}

int
rw_keys_init(struct rw_agent *a, char *err, size_t errlen)
{
	struct rw_agent_keys *k = &a->keys;
	struct rw_keyfile_sig none;
	int rv;
	k->next_slot = 1;
	if (!a->cfg.key_file[0] && a->cfg.key[0]) {
		rv = rw_wire_key_set(&a->rep.key, a->cfg.key, strlen(a->cfg.key));
		wipe_text(a->cfg.key, sizeof(a->cfg.key));
		if (rv != 0) {
			snprintf(err, errlen, "RAYWARDEN_KEY: need %d to %d bytes", RW_WIRE_KEY_MIN,
				 RW_WIRE_KEY_MAX);
			return rv;
		}
		return key_loaded(k, &a->rep.key, err, errlen);
	}
	wipe_text(a->cfg.key, sizeof(a->cfg.key)); /* the file wins */
	if (!a->cfg.key_file[0])
		return 0;
	memset(&none, 0, sizeof(none));
	/* Signature first: a change between the stat and the read is seen next time. */
	rw_keyfile_changed(&none, a->cfg.key_file, &k->sig);
	if ((rv = rw_wire_key_load(&a->rep.key, a->cfg.key_file, err, errlen)) != 0)
		return rv;
	return key_loaded(k, &a->rep.key, err, errlen);
}

void
rw_keys_tick(struct rw_agent *a)
{
	struct rw_agent_keys *k = &a->keys;
	struct rw_keyfile_sig now;
	struct rw_wire_key key;
	char err[256];
	uint64_t t = uv_now(a->loop);

	if (!k->have || !a->cfg.key_file[0] || t < k->next_check_ms)
		return;
	k->next_check_ms = t + CHECK_MS;
	if (!rw_keyfile_changed(&k->sig, a->cfg.key_file, &now))
		return;
	k->sig = now;
	if (rw_wire_key_load(&key, a->cfg.key_file, err, sizeof(err)) != 0) {
		k->reload_failed++;
		rw_warn("key", "the key file changed but cannot be loaded (%s); keeping key %08x",
			err, a->rep.key.id);
		return;
	}
	if (key.id == a->rep.key.id && key.len == a->rep.key.len &&
	    rw_ct_equal(key.k, a->rep.key.k, key.len)) {
		rw_wire_key_wipe(&key);
		return;
	}
	a->rep.prev_key = a->rep.key;
	a->rep.have_prev = 1;
	a->rep.key = key;
	rw_wire_key_wipe(&key);
	if (add_token(k, &a->rep.key, k->next_slot) != 0)
		k->drain[k->next_slot][0] = '\0';
	k->next_slot = k->next_slot + 1 < RW_DRAIN_TOKENS ? k->next_slot + 1 : 1;
	k->reloads++;
	rw_info("key",
		"cluster key changed: key id %08x -> %08x; reports are sealed with the new "
		"key from now on",
		a->rep.prev_key.id, a->rep.key.id);
	/* Re-seal at once: the hub learns the new key without waiting for a heartbeat. */
	rw_agent_kick(a);
}

int
rw_keys_drain_ok(const struct rw_agent *a, const char *authorization)
{
	int ok = 0;
	if (!a->keys.have)
		return 0;
	/* Every slot is compared, so the time taken does not say which one matched. */
	for (int i = 0; i < RW_DRAIN_TOKENS; i++)
		if (a->keys.drain[i][0])
			ok |= rw_drain_token_match(authorization, a->keys.drain[i]);
	return ok;
}

void
rw_keys_fini(struct rw_agent *a)
{
	memset(a->keys.drain, 0, sizeof(a->keys.drain));
	rw_wire_key_wipe(&a->rep.prev_key);
}
