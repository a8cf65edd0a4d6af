/*
 * agentkey.c - per-cluster agent key derivation and the key Secret
 * (see agentkey.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/md.h>

#include "agentkey.h"
#include "rw/base64.h"
#include "rw/json.h"

#define DERIVE_PREFIX "raywarden/v2/"
#define SECRET_SUFFIX "-raywarden-key"

/* Wipe memory in a way the compiler may not elide. */
static void
wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

int
rw_agentkey_load_master(struct rw_wire_key *master, const char *path, char *err, size_t errlen)
{
	return rw_wire_key_load(master, path, err, errlen);
}

int
rw_agentkey_derive(const struct rw_wire_key *master, const char *ns, const char *cluster,
		   const char *uid, struct rw_wire_key *out, char text[RW_AGENTKEY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	/* Namespace and cluster names are DNS labels (<= 63 bytes each); UIDs are
	 * 36-byte UUIDs, allowed up to 128. */
	char msg[sizeof(DERIVE_PREFIX) + 63 + 1 + 63 + 1 + 128];
	unsigned char mac[32];
	char digits[RW_AGENTKEY_LEN + 1];
	int rv = 0;

	if (!master || !ns || !cluster || !uid || !out || !*ns || !*cluster || !*uid ||
	    master->len == 0)
		return -EINVAL;
	/* A '/' would make ("a/b", "c") and ("a", "b/c") derive the same key. */
	if (strchr(ns, '/') || strchr(cluster, '/') || strchr(uid, '/'))
		return -EINVAL;
	if (strlen(ns) > 63 || strlen(cluster) > 63 || strlen(uid) > 128)
		return -EINVAL;
	int n = snprintf(msg, sizeof(msg), DERIVE_PREFIX "%s/%s/%s", ns, cluster, uid);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -EINVAL;
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
	if (!md || mbedtls_md_hmac(md, master->k, master->len, (const unsigned char *)msg,
				   (size_t)n, mac) != 0) {
		rv = -EIO;
		goto out;
	}
	for (size_t i = 0; i < sizeof(mac); i++) {
		digits[2 * i] = hex[mac[i] >> 4];
		digits[2 * i + 1] = hex[mac[i] & 15];
	}
	digits[RW_AGENTKEY_LEN] = '\0';
	rv = rw_wire_key_set(out, digits, RW_AGENTKEY_LEN);
	if (rv == 0 && text)
		memcpy(text, digits, RW_AGENTKEY_LEN + 1);
out:
	wipe(mac, sizeof(mac));
	wipe(digits, sizeof(digits));
	return rv;
}

int
rw_agentkey_secret_name(const char *cluster, char *out, size_t outlen)
{
	if (!cluster || !out || outlen == 0)
		return -EINVAL;
	int n = snprintf(out, outlen, "%s" SECRET_SUFFIX, cluster);
	if (n < 0 || (size_t)n >= outlen) {
		out[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

int
rw_agentkey_secret_json(const char *ns, const char *cluster, const char *cluster_uid,
			const struct rw_wire_key *key, struct rw_buf *out)
{
	char name[64 + sizeof(SECRET_SUFFIX)];
	char b64[(RW_WIRE_KEY_MAX + 2) / 3 * 4 + 1];
	size_t old_len;
	struct rw_jw w;
	int rv;

	if (!ns || !cluster || !cluster_uid || !key || !out || !*ns || !*cluster || !*cluster_uid ||
	    key->len == 0 || key->len > RW_WIRE_KEY_MAX)
		return -EINVAL;
	if ((rv = rw_agentkey_secret_name(cluster, name, sizeof(name))) != 0)
		return -EINVAL;
	if ((rv = rw_base64_encode(key->k, key->len, b64, sizeof(b64))) < 0)
		goto out;
	old_len = out->len;
	rw_jw_init(&w, out);
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "apiVersion", "v1");
	rw_jw_kstr(&w, "kind", "Secret");
	rw_jw_key(&w, "metadata");
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "name", name);
	rw_jw_kstr(&w, "namespace", ns);
	rw_jw_key(&w, "labels");
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, RW_AGENTKEY_LABEL, RW_AGENTKEY_LABEL_VALUE);
	rw_jw_kstr(&w, "app.kubernetes.io/created-by", "kuberay-operator");
	rw_jw_kstr(&w, "ray.io/cluster", cluster);
	rw_jw_obj_end(&w);
	rw_jw_key(&w, "ownerReferences");
	rw_jw_arr_begin(&w);
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "apiVersion", "ray.io/v1");
	rw_jw_kstr(&w, "kind", "RayCluster");
	rw_jw_kstr(&w, "name", cluster);
	rw_jw_kstr(&w, "uid", cluster_uid);
	rw_jw_kbool(&w, "controller", true);
	rw_jw_kbool(&w, "blockOwnerDeletion", true);
	rw_jw_obj_end(&w);
	rw_jw_arr_end(&w);
	rw_jw_obj_end(&w);
	rw_jw_kstr(&w, "type", "Opaque");
	rw_jw_key(&w, "data");
	rw_jw_obj_begin(&w);
	rw_jw_kstr(&w, "key", b64);
	rw_jw_obj_end(&w);
	rw_jw_obj_end(&w);
	rv = rw_jw_finish(&w);
	if (rv != 0) {
		out->len = old_len;
		if (out->data)
			out->data[old_len] = '\0';
	}
out:
	wipe(b64, sizeof(b64));
	return rv < 0 ? rv : 0;
}
