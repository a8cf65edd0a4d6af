/* names.c - `<owner>-<random suffix>` names (names.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "names.h"

void
rw_name_random_suffix(const unsigned char rnd[RW_NAME_SUFFIX_LEN], char out[RW_NAME_SUFFIX_LEN + 1])
{
	static const char alpha[] = RW_NAME_SUFFIX_ALPHABET;
	for (int i = 0; i < RW_NAME_SUFFIX_LEN; i++)
		out[i] = alpha[rnd[i] % (sizeof(alpha) - 1)];
	out[RW_NAME_SUFFIX_LEN] = '\0';
}

int
rw_name_suffixed(const char *base, const char *suffix, char *out, size_t outlen)
{
	int n;
	if (!base || !suffix || strlen(suffix) != RW_NAME_SUFFIX_LEN ||
	    strspn(suffix, RW_NAME_SUFFIX_ALPHABET) != RW_NAME_SUFFIX_LEN)
		return -EINVAL;
	if (!out || outlen == 0)
		return -ENAMETOOLONG;
	n = snprintf(out, outlen, "%s-%s", base, suffix);
	if (n < 0 || (size_t)n >= outlen) {
		out[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}
