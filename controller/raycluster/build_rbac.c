/* build_rbac.c - RayCluster -> the autoscaler's ServiceAccount, Role, RoleBinding. */

#include "build_internal.h"

/* ---- autoscaler RBAC (common/rbac.go) ---- */

static node *
rbac_obj(struct b *b, const struct rw_raycluster *c, const char *api, const char *kind,
	 const char *name)
{
	node *o = nnew(b, RW_DOC_OBJ);
	char nm[80];
	sets(b, o, "apiVersion", api);
	sets(b, o, "kind", kind);
	node *meta = obj(b, o, "metadata");
	rw_raycluster_check_name(name, nm, sizeof(nm));
	sets(b, meta, "name", nm);
	sets(b, meta, "namespace", c->obj.ns);
	node *l = obj(b, meta, "labels");
	sets(b, l, "ray.io/cluster", c->obj.name);
	sets(b, l, "app.kubernetes.io/name", "kuberay");
	sets(b, l, "app.kubernetes.io/created-by", "kuberay-operator");
	owner_ref(b, c, meta);
	return o;
}

static const char *
sa_name(const struct rw_raycluster *c)
{
	const char *t = rw_doc_gets(rw_doc_path(c->head, "template.spec"), "serviceAccountName");
	return t && *t ? t : c->obj.name;
}

int
rw_raycluster_build_service_account(const struct rw_raycluster *c, struct rw_buf *out)
{
	struct b b = {0};
	return finish(&b, rbac_obj(&b, c, "v1", "ServiceAccount", sa_name(c)), out);
}

static node *
rule(struct b *b, const char *group, const char *res, const char *const *verbs)
{
	node *r = nnew(b, RW_DOC_OBJ);
	node *g = arr(b, r, "apiGroups"), *rs = arr(b, r, "resources"), *v = arr(b, r, "verbs");
	push(b, g, nstr(b, group));
	push(b, rs, nstr(b, res));
	for (; *verbs; verbs++)
		push(b, v, nstr(b, *verbs));
	return r;
}

int
rw_raycluster_build_role(const struct rw_raycluster *c, struct rw_buf *out)
{
	static const char *const pods[] = {"get", "list", "watch", "patch", NULL};
	static const char *const resize[] = {"patch", NULL};
	static const char *const rcs[] = {"get", "patch", NULL};
	struct b b = {0};
	node *r = rbac_obj(&b, c, "rbac.authorization.k8s.io/v1", "Role", c->obj.name);
	node *rules = arr(&b, r, "rules");
	push(&b, rules, rule(&b, "", "pods", pods));
	push(&b, rules, rule(&b, "", "pods/resize", resize));
	push(&b, rules, rule(&b, "ray.io", "rayclusters", rcs));
	return finish(&b, r, out);
}

int
rw_raycluster_build_role_binding(const struct rw_raycluster *c, struct rw_buf *out)
{
	struct b b = {0};
	char sa[80], role[80];
	node *rb = rbac_obj(&b, c, "rbac.authorization.k8s.io/v1", "RoleBinding", c->obj.name);
	node *s = nnew(&b, RW_DOC_OBJ);
	rw_raycluster_check_name(sa_name(c), sa, sizeof(sa));
	rw_raycluster_check_name(c->obj.name, role, sizeof(role));
	sets(&b, s, "kind", "ServiceAccount");
	sets(&b, s, "name", sa);
	sets(&b, s, "namespace", c->obj.ns);
	push(&b, arr(&b, rb, "subjects"), s);
	node *ref = obj(&b, rb, "roleRef");
	sets(&b, ref, "apiGroup", "rbac.authorization.k8s.io");
	sets(&b, ref, "kind", "Role");
	sets(&b, ref, "name", role);
	return finish(&b, rb, out);
}
