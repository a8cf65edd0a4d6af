/*
 * test_ctl_agentkey.c - per-cluster key derivation (known answers computed
 * independently with Python's hmac) and the key Secret's JSON (base64 is
 * tested in test_base64.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentkey.h"
#include "rw/json.h"
#include "rwtest.h"

#define MASTER "raywarden-master-key-0123456789"

struct kcase {
	const char *ns, *cluster, *hex;
	unsigned id;
};

static void
t_derive_known_answers(void)
{
	static const struct kcase cases[] = {
	    {"default", "raycluster-kuberay",
	     "6e791360003bdbf61f4697aa8c9066e54ae231aa8d746d428836012ce4eaa586", 0x04244e3eU},
	    {"team-a", "gcs-ft", "ec8483c7d1021b92a653c66c465b1c1816351dd5a140753654e83157378cc7c6",
	     0x14b688d7U},
	};
	struct rw_wire_key master, k;
	char text[RW_AGENTKEY_LEN + 1];

	CHECK_EQ_INT(rw_wire_key_set(&master, MASTER, strlen(MASTER)), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct kcase *c = &cases[i];
		CHECK_EQ_INT(rw_agentkey_derive(&master, c->ns, c->cluster, &k, text), 0);
		CHECK_EQ_STR(text, c->hex);
		CHECK_EQ_INT(k.len, RW_AGENTKEY_LEN);
		CHECK(memcmp(k.k, c->hex, RW_AGENTKEY_LEN) == 0);
		CHECK_EQ_INT(k.id, c->id);
	}
	/* Different scopes give different keys; the same scope the same key. */
	struct rw_wire_key a, b, a2;
	CHECK_EQ_INT(rw_agentkey_derive(&master, "ns1", "c", &a, NULL), 0);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "ns2", "c", &b, NULL), 0);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "ns1", "c", &a2, NULL), 0);
	CHECK(memcmp(a.k, b.k, RW_AGENTKEY_LEN) != 0);
	CHECK(memcmp(a.k, a2.k, RW_AGENTKEY_LEN) == 0 && a.id == a2.id);
	/* Bad arguments. */
	CHECK_EQ_INT(rw_agentkey_derive(&master, "", "c", &k, NULL), -EINVAL);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "ns", "", &k, NULL), -EINVAL);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "a/b", "c", &k, NULL), -EINVAL);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "a", "b/c", &k, NULL), -EINVAL);
	CHECK_EQ_INT(rw_agentkey_derive(NULL, "a", "b", &k, NULL), -EINVAL);
	rw_wire_key_wipe(&master);
}

/* The master key comes from a file; the agent loads the Secret's text back as the same key. */
static void
t_load_and_round_trip(void)
{
	char dir[] = "/tmp/rw-agentkey-XXXXXX";
	char path[64], path2[64], err[256];
	struct rw_wire_key master, k, loaded;
	char text[RW_AGENTKEY_LEN + 1];

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/master", dir);
	snprintf(path2, sizeof(path2), "%s/key", dir);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs(MASTER "\n", f);
	fclose(f);
	CHECK_EQ_INT(rw_agentkey_load_master(&master, path, err, sizeof(err)), 0);
	CHECK_EQ_INT(master.len, strlen(MASTER));
	CHECK_EQ_INT(rw_agentkey_derive(&master, "default", "raycluster-kuberay", &k, text), 0);
	/* What the kubelet writes from data.key: the text, no newline. */
	f = fopen(path2, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	CHECK_EQ_INT(rw_wire_key_load(&loaded, path2, err, sizeof(err)), 0);
	CHECK_EQ_INT(loaded.id, k.id);
	CHECK_EQ_INT(loaded.len, k.len);
	CHECK(memcmp(loaded.k, k.k, k.len) == 0);
	/* A missing file names the file, not key bytes. */
	CHECK(rw_agentkey_load_master(&master, "/nonexistent/raywarden/key", err, sizeof(err)) < 0);
	CHECK(strstr(err, "/nonexistent/raywarden/key") != NULL);
	unlink(path);
	unlink(path2);
	rmdir(dir);
}

static void
t_secret_json(void)
{
	struct rw_wire_key master, k;
	struct rw_buf b;
	struct rw_json j;
	char err[128], s[256];
	const char *uid = "0f5a2c1e-9d51-4a7b-8c3e-1b2d3e4f5a6b";

	CHECK_EQ_INT(rw_wire_key_set(&master, MASTER, strlen(MASTER)), 0);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "default", "raycluster-kuberay", &k, NULL), 0);
	CHECK_EQ_INT(rw_agentkey_secret_name("raycluster-kuberay", s, sizeof(s)), 0);
	CHECK_EQ_STR(s, "raycluster-kuberay-raywarden-key");
	CHECK_EQ_INT(rw_agentkey_secret_name("raycluster-kuberay", s, 10), -ENAMETOOLONG);

	rw_buf_init(&b, 1 << 16);
	rw_buf_puts(&b, "prefix:");
	CHECK_EQ_INT(rw_agentkey_secret_json("default", "raycluster-kuberay", uid, &k, &b), 0);
	CHECK(strncmp(b.data, "prefix:", 7) == 0);
	CHECK_EQ_INT(rw_json_parse(&j, b.data + 7, b.len - 7, 256, err, sizeof(err)), 0);
	struct {
		const char *path, *want;
	} fields[] = {
	    {"apiVersion", "v1"},
	    {"kind", "Secret"},
	    {"type", "Opaque"},
	    {"metadata.name", "raycluster-kuberay-raywarden-key"},
	    {"metadata.namespace", "default"},
	    {"data.key",
	     "NmU3OTEzNjAwMDNiZGJmNjFmNDY5N2FhOGM5MDY2ZTU0YWUyMzFhYThkNzQ2ZDQyODgzNjAxMmNl"
	     "NGVhYTU4Ng=="},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		int t = rw_json_path(&j, 0, fields[i].path);
		CHECK(t >= 0);
		CHECK(rw_json_str(&j, t, s, sizeof(s)) >= 0);
		CHECK_EQ_STR(s, fields[i].want);
	}
	int labels = rw_json_path(&j, 0, "metadata.labels");
	CHECK(rw_json_streq(&j, rw_json_get(&j, labels, "ray.io/cluster"), "raycluster-kuberay"));
	int refs = rw_json_path(&j, 0, "metadata.ownerReferences");
	CHECK_EQ_INT(rw_json_size(&j, refs), 1);
	int ref = rw_json_at(&j, refs, 0);
	CHECK(rw_json_streq(&j, rw_json_get(&j, ref, "apiVersion"), "ray.io/v1"));
	CHECK(rw_json_streq(&j, rw_json_get(&j, ref, "kind"), "RayCluster"));
	CHECK(rw_json_streq(&j, rw_json_get(&j, ref, "name"), "raycluster-kuberay"));
	CHECK(rw_json_streq(&j, rw_json_get(&j, ref, "uid"), uid));
	CHECK_EQ_INT(rw_json_type(&j, rw_json_get(&j, ref, "controller")), RW_JSON_TRUE);
	CHECK_EQ_INT(rw_json_type(&j, rw_json_get(&j, ref, "blockOwnerDeletion")), RW_JSON_TRUE);
	rw_json_fini(&j);

	/* Failures leave the buffer as it was. */
	size_t before = b.len;
	CHECK_EQ_INT(rw_agentkey_secret_json("default", "c", "", &k, &b), -EINVAL);
	CHECK_EQ_INT(b.len, before);
	struct rw_buf small;
	rw_buf_init(&small, 100);
	rw_buf_puts(&small, "x");
	CHECK_EQ_INT(rw_agentkey_secret_json("default", "c", uid, &k, &small), -EMSGSIZE);
	CHECK_EQ_INT(small.len, 1);
	CHECK_EQ_STR(rw_buf_cstr(&small), "x");
	rw_buf_fini(&small);
	rw_buf_fini(&b);
}

int
main(void)
{
	static const struct rwt_case cases[] = {
	    {"derive: known answers", t_derive_known_answers},
	    {"master key file and agent round trip", t_load_and_round_trip},
	    {"secret json", t_secret_json},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}
