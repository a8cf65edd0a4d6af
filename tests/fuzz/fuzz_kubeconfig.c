/*
 * fuzz_kubeconfig.c - parse arbitrary bytes as a kubeconfig (without writing
 * temporary files). Invariants: success yields an http(s) server without a
 * trailing slash and an owned context; failure leaves nothing allocated and
 * a message; base64 decoding never writes past its output.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kubeconfig.h"
#include "rw/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rw_kubecfg c;
	char err[256];
	unsigned char out[64];
	if (size > RW_KUBECFG_MAX_FILE)
		return 0;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	int rv = rw_kubecfg_parse(&c, text, size, NULL, "/base", NULL, err, sizeof(err));
	if (rv == 0) {
		size_t n = strlen(c.server);
		if ((strncmp(c.server, "https://", 8) && strncmp(c.server, "http://", 7)) ||
		    (n > 8 && c.server[n - 1] == '/') || !c.context)
			abort();
		if (c.tmp_files[0])
			abort(); /* no files without a tmp_dir (a user's path may hold any name) */
		rw_kubecfg_fini(&c);
	} else if (c.server || c.token || !err[0]) {
		abort();
	}
	long d = rw_base64_decode(text, size, out, sizeof(out));
	if (d > (long)sizeof(out))
		abort();
	free(text);
	return 0;
}
