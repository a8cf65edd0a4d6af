/*
 * kubeconfig.h - where the controller finds the API server and how it
 * authenticates: a kubeconfig file (current or named context: server,
 * certificate-authority(-data), token(File), client-certificate/key(-data),
 * insecure-skip-tls-verify) or the in-cluster service account (token, ca.crt
 * and namespace files; KUBERNETES_SERVICE_HOST/PORT).
 *
 * The *-data fields are base64 PEM; curl wants file paths, so they are
 * written to private (0600) temporary files that rw_kubecfg_fini() removes.
 * A token read from a file (in-cluster, or tokenFile) is re-read when it is
 * older than RW_KUBECFG_TOKEN_TTL_MS or when the caller forces it (after a
 * 401), because the kubelet rotates projected tokens.
 */
#ifndef RW_KUBECONFIG_H
#define RW_KUBECONFIG_H

#include <stddef.h>
#include <stdint.h>

#define RW_KUBECFG_TOKEN_TTL_MS 60000
#define RW_KUBECFG_DEFAULT_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define RW_KUBECFG_MAX_FILE (1024 * 1024)

struct rw_kubecfg {
	char *server;	   /* "https://host:port" without a trailing slash */
	char *ca_file;	   /* CA bundle path, or NULL for the system store */
	char *client_cert; /* PEM paths, or NULL */
	char *client_key;
	char *token;	  /* bearer token, or NULL */
	char *token_file; /* where the token is re-read from, or NULL */
	char *ns;	  /* the context's / service account's namespace, or NULL */
	char *context;	  /* the context used (kubeconfig), or NULL */
	int insecure;	  /* only when the kubeconfig says insecure-skip-tls-verify: true */
	int in_cluster;
	uint64_t token_read_ms; /* caller's clock when the token file was read */
	char *tmp_files[3];	/* temporary files written from *-data fields */
};

/*
 * Parse kubeconfig text (YAML or JSON). context NULL uses current-context.
 * Relative paths resolve against base_dir (NULL: as given). *-data fields are
 * decoded and written into tmp_dir; with tmp_dir NULL they are only checked
 * (the paths stay NULL). Returns 0 or -EINVAL/-ENOMEM/-EIO with a message in
 * err that never contains credentials. On failure c holds nothing.
 */
int rw_kubecfg_parse(struct rw_kubecfg *c, const char *text, size_t len, const char *context,
		     const char *base_dir, const char *tmp_dir, char *err, size_t errlen);

/* Read and parse a kubeconfig file (temporary files go to $TMPDIR or /tmp). */
int rw_kubecfg_load(struct rw_kubecfg *c, const char *path, const char *context, char *err,
		    size_t errlen);

/*
 * In-cluster configuration from sa_dir (token, ca.crt, namespace) and the
 * given service host and port (KUBERNETES_SERVICE_HOST/PORT). The token is
 * read once here (now_ms stamps it) and must exist.
 */
int rw_kubecfg_in_cluster(struct rw_kubecfg *c, const char *sa_dir, const char *host,
			  const char *port, uint64_t now_ms, char *err, size_t errlen);

/*
 * Pick the configuration like controller-runtime: the --kubeconfig flag when
 * set, else $KUBECONFIG (first entry), else in-cluster when
 * KUBERNETES_SERVICE_HOST is set (service-account directory from
 * $RAYWARDEN_SERVICEACCOUNT_DIR, default RW_KUBECFG_DEFAULT_SA_DIR), else
 * $HOME/.kube/config.
 */
int rw_kubecfg_auto(struct rw_kubecfg *c, const char *kubeconfig, uint64_t now_ms, char *err,
		    size_t errlen);

/*
 * The bearer token to send now (NULL when none). Re-reads token_file when
 * force is set or the copy is RW_KUBECFG_TOKEN_TTL_MS old; when the file
 * cannot be read the previous token stays in use. Returns 0 or -ENOENT when
 * a token file is configured but no token could ever be read.
 */
int rw_kubecfg_token(struct rw_kubecfg *c, uint64_t now_ms, int force, const char **out);

/* Free everything and remove the temporary files. Safe on a zeroed struct. */
void rw_kubecfg_fini(struct rw_kubecfg *c);

#endif
