/*
 * names.h - generated object names shared by the kinds: KubeRay names the
 * RayCluster of a RayService or a RayJob, and a RayJob's submission id,
 * `<owner>-<5 random characters>` drawn from Kubernetes' rand.String
 * alphabet (no vowels, no 0/1/3, so no words and no look-alikes).
 */
#ifndef RW_NAMES_H
#define RW_NAMES_H

#include <stddef.h>

#define RW_NAME_SUFFIX_ALPHABET "bcdfghjklmnpqrstvwxz2456789" /* k8s rand.String */
#define RW_NAME_SUFFIX_LEN 5

/* Map 5 random bytes onto the alphabet (bias below 1%, as good as rand.String). */
void rw_name_random_suffix(const unsigned char rnd[RW_NAME_SUFFIX_LEN],
			   char out[RW_NAME_SUFFIX_LEN + 1]);

/*
 * `<base>-<suffix>` into out. -EINVAL unless suffix is RW_NAME_SUFFIX_LEN
 * characters of RW_NAME_SUFFIX_ALPHABET (or base is NULL), -ENAMETOOLONG
 * when out is too small.
 */
int rw_name_suffixed(const char *base, const char *suffix, char *out, size_t outlen);

#endif
