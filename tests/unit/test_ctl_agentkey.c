/*
 * test_ctl_agentkey.c - per-cluster key derivation bound to the cluster UID
 * and the /drain token (known answers computed independently with Python's
 * hmac), the token check, key file change detection (rw/keyfile.h) and the
 * key Secret's JSON (base64 is tested in test_base64.c).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentkey.h"
#include "rw/json.h"
#include "rw/keyfile.h"
#include "rwtest.h"

#define MASTER "raywarden-master-key-0123456789"
#define UID1 "0f5a2c1e-9d51-4a7b-8c3e-1b2d3e4f5a6b"
#define UID2 "7c9e6679-7425-40de-944b-e07fc1f90ae7"

struct kcase {
	const char *ns, *cluster, *uid, *hex;
	unsigned id;
	const char *drain;
};

static void
t_derive_known_answers(void)
{
	static const struct kcase cases[] = {
	    {"default", "raycluster-kuberay", UID1,
	     "dd762d7b10c02ee57c9b9184947de959435103d881af75bdadfb8a2d66cd8992", 0x4c4f4ea4U,
	     "2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4"},
	    {"team-a", "gcs-ft", UID2,
	     "7c1ccdc423fb40a2adc9eb21aee2618b745f6beae0d4bb3a0286dd7513b3cad3", 0x969b0cc7U,
	     "d3e413bbf246065624f91416f560ec915c00e9c22534981ed86e601aa04958fc"},
	};
	struct rw_wire_key master, k;
	char text[RW_AGENTKEY_LEN + 1], tok[RW_DRAIN_TOKEN_LEN + 1];

	CHECK_EQ_INT(rw_wire_key_set(&master, MASTER, strlen(MASTER)), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct kcase *c = &cases[i];
		CHECK_EQ_INT(rw_agentkey_derive(&master, c->ns, c->cluster, c->uid, &k, text), 0);
		CHECK_EQ_STR(text, c->hex);
		CHECK_EQ_INT(k.len, RW_AGENTKEY_LEN);
		CHECK(memcmp(k.k, c->hex, RW_AGENTKEY_LEN) == 0);
		CHECK_EQ_INT(k.id, c->id);
		CHECK_EQ_INT(rw_drain_token(&k, tok), 0);
		CHECK_EQ_STR(tok, c->drain);
	}
	/* Different scopes and incarnations give different keys; the same one the same key. */
	struct rw_wire_key a, b, a2, a3;
	CHECK_EQ_INT(rw_agentkey_derive(&master, "ns1", "c", UID1, &a, NULL), 0);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "ns2", "c", UID1, &b, NULL), 0);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "ns1", "c", UID1, &a2, NULL), 0);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "ns1", "c", UID2, &a3, NULL), 0);
	CHECK(memcmp(a.k, b.k, RW_AGENTKEY_LEN) != 0);
	CHECK(memcmp(a.k, a2.k, RW_AGENTKEY_LEN) == 0 && a.id == a2.id);
	CHECK(memcmp(a.k, a3.k, RW_AGENTKEY_LEN) != 0 && a.id != a3.id);
	/* Bad arguments. */
	CHECK_EQ_INT(rw_agentkey_derive(&master, "", "c", UID1, &k, NULL), -EINVAL);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "ns", "", UID1, &k, NULL), -EINVAL);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "ns", "c", "", &k, NULL), -EINVAL);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "ns", "c", NULL, &k, NULL), -EINVAL);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "a/b", "c", UID1, &k, NULL), -EINVAL);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "a", "b/c", UID1, &k, NULL), -EINVAL);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "a", "b", "u/v", &k, NULL), -EINVAL);
	CHECK_EQ_INT(rw_agentkey_derive(NULL, "a", "b", UID1, &k, NULL), -EINVAL);
	char longname[80];
	memset(longname, 'x', 64);
	longname[64] = '\0';
	CHECK_EQ_INT(rw_agentkey_derive(&master, longname, "c", UID1, &k, NULL), -EINVAL);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "ns", longname, UID1, &k, NULL), -EINVAL);
	rw_wire_key_wipe(&master);
}

/* The Authorization header check of /drain. */
static void
t_drain_token_match(void)
{
	static const char tok[] =
	    "2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4";
	static const struct {
		const char *hdr;
		bool ok;
	} cases[] = {
	    {"Bearer 2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4", true},
	    {"bearer 2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4", true},
	    {"  Bearer   2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4  ", true},
	    {"Bearer\t2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4", true},
	    /* last digit, first digit, case of a digit, length */
	    {"Bearer 2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d5", false},
	    {"Bearer 3338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4", false},
	    {"Bearer 2338DF0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4", false},
	    {"Bearer 2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d", false},
	    {"Bearer 2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d44", false},
	    {"Bearer 2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4 x", false},
	    {"Basic 2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4", false},
	    {"Bearer2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4", false},
	    {"2338df0cc31ad49cba216f28685c68fd06c4ee2a1d75091e071d8e7568cbc0d4", false},
	    {"Bearer ", false},
	    {"Bearer", false},
	    {"", false},
	    {NULL, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (rw_drain_token_match(cases[i].hdr, tok) != cases[i].ok) {
			fprintf(stderr, "  case %zu: \"%s\"\n", i,
				cases[i].hdr ? cases[i].hdr : "(null)");
			CHECK(0);
		}
	}
	CHECK(!rw_drain_token_match("Bearer x", ""));
	CHECK(!rw_drain_token_match("Bearer x", NULL));
	CHECK(rw_ct_equal("abc", "abc", 3));
	CHECK(!rw_ct_equal("abc", "abd", 3));
	CHECK(rw_ct_equal("", "", 0));
	/* The token is a function of the key alone, different for another key. */
	struct rw_wire_key k1, k2;
	char t1[RW_DRAIN_TOKEN_LEN + 1], t2[RW_DRAIN_TOKEN_LEN + 1];
	CHECK_EQ_INT(rw_wire_key_set(&k1, "0123456789abcdef0123", 20), 0);
	CHECK_EQ_INT(rw_wire_key_set(&k2, "0123456789abcdef0124", 20), 0);
	CHECK_EQ_INT(rw_drain_token(&k1, t1), 0);
	CHECK_EQ_INT(rw_drain_token(&k2, t2), 0);
	CHECK_EQ_INT(strlen(t1), RW_DRAIN_TOKEN_LEN);
	CHECK(strcmp(t1, t2) != 0);
	CHECK_EQ_INT(rw_drain_token(NULL, t1), -EINVAL);
	CHECK_EQ_STR(t1, "");
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* A key file replaced as the kubelet does (..data symlink swap) or rewritten in place. */
static void
t_keyfile_changed(void)
{
	char dir[] = "/tmp/rw-keyfile-XXXXXX";
	char p[64], q[160], v1[64], v2[64], data[64], tmp[64];
	struct rw_keyfile_sig last, now;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(v1, sizeof(v1), "%s/..v1", dir);
	snprintf(v2, sizeof(v2), "%s/..v2", dir);
	snprintf(data, sizeof(data), "%s/..data", dir);
	snprintf(tmp, sizeof(tmp), "%s/..data_tmp", dir);
	snprintf(p, sizeof(p), "%s/key", dir);
	CHECK(mkdir(v1, 0755) == 0 && mkdir(v2, 0755) == 0);
	snprintf(q, sizeof(q), "%s/key", v1);
	write_file(q, "key-one-0123456789");
	snprintf(q, sizeof(q), "%s/key", v2);
	write_file(q, "key-two-0123456789");
	CHECK(symlink("..v1", data) == 0);
	CHECK(symlink("..data/key", p) == 0);

	memset(&last, 0, sizeof(last));
	CHECK_EQ_INT(rw_keyfile_changed(&last, p, &now), 1); /* first sight */
	last = now;
	CHECK_EQ_INT(rw_keyfile_changed(&last, p, &now), 0);
	/* The atomic swap: a new ..data symlink renamed over the old one. */
	CHECK(symlink("..v2", tmp) == 0);
	CHECK(rename(tmp, data) == 0);
	CHECK_EQ_INT(rw_keyfile_changed(&last, p, &now), 1);
	last = now;
	CHECK_EQ_INT(rw_keyfile_changed(&last, p, &now), 0);
	/* Gone, then back. */
	CHECK(unlink(data) == 0);
	CHECK_EQ_INT(rw_keyfile_changed(&last, p, &now), 1);
	CHECK(!now.valid);
	last = now;
	CHECK_EQ_INT(rw_keyfile_changed(&last, p, &now), 0);
	CHECK(symlink("..v1", data) == 0);
	CHECK_EQ_INT(rw_keyfile_changed(&last, p, &now), 1);
	last = now;
	/* A plain file rewritten in place with another length. */
	snprintf(q, sizeof(q), "%s/key", v1);
	write_file(q, "key-one-0123456789-longer");
	CHECK_EQ_INT(rw_keyfile_changed(&last, p, &now), 1);

	unlink(p);
	unlink(data);
	unlink(q);
	snprintf(q, sizeof(q), "%s/key", v2);
	unlink(q);
	rmdir(v1);
	rmdir(v2);
	rmdir(dir);
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
	CHECK_EQ_INT(rw_agentkey_derive(&master, "default", "raycluster-kuberay", UID1, &k, text),
		     0);
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
	const char *uid = UID1;

	CHECK_EQ_INT(rw_wire_key_set(&master, MASTER, strlen(MASTER)), 0);
	CHECK_EQ_INT(rw_agentkey_derive(&master, "default", "raycluster-kuberay", uid, &k, NULL),
		     0);
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
	     "ZGQ3NjJkN2IxMGMwMmVlNTdjOWI5MTg0OTQ3ZGU5NTk0MzUxMDNkODgxYWY3NWJkYWRmYjhhMmQ2"
	     "NmNkODk5Mg=="},
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
	    {"derive: known answers, bound to the UID", t_derive_known_answers},
	    {"drain token: Authorization check", t_drain_token_match},
	    {"key file change detection", t_keyfile_changed},
	    {"master key file and agent round trip", t_load_and_round_trip},
	    {"secret json", t_secret_json},
	    {NULL, NULL},
	};
	return rwt_run(cases);
}
