/*
 * fuzz_agent_keys.c - the two parsers of the agent key path: the /drain
 * Authorization check (rw_drain_token_match) and the controller's key Secret
 * decoder (rw_raycluster_ctl_ksec_decode). Invariants: a header accepted for a token
 * holds that token as its only credential after a Bearer scheme; the decoder
 * never crashes, and what it keeps is bounded and NUL-terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rcr.h"
#include "rw/json.h"
#include "rw/keyfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char token[] = "2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct rw_json j;
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (rw_drain_token_match(s, token)) {
		const char *p = s + strspn(s, " \t");
		if (strncasecmp(p, "bearer", 6) != 0 || !strstr(p, token))
			abort();
	}
	/* A header never matches itself as the token: the credential is a proper part of it. */
	if (rw_drain_token_match(s, s))
		abort();

	if (rw_json_parse(&j, s, size, 4096, NULL, 0) == 0) {
		struct rw_inf_meta *m = rw_raycluster_ctl_ksec_decode(&j, 0);
		if (m) {
			if (!m->name || !*m->name || !m->ns || !m->uid || !m->rv)
				abort();
			if (strlen(m->name) >= 256 || strlen(m->ns) >= 64)
				abort();
			free(m);
		}
		rw_json_fini(&j);
	}
	free(s);
	return 0;
}
