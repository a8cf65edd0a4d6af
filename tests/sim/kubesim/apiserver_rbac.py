"""Authentication of ServiceAccount tokens and the RBAC authorizer of the API server simulator.

Identities (https://kubernetes.io/docs/reference/access-authn-authz/authentication/):
  - the simulator's bearer token (DIR/token, the kubeconfig's) is the cluster admin, user
    "kubesim-admin" in groups system:masters and system:authenticated: every request is allowed,
    as the real server's system:masters group is (before RBAC is consulted);
  - a ServiceAccount token (TokenRequest: POST .../serviceaccounts/NAME/token, or the kubelet's
    projected token of a pod's ServiceAccount) is user system:serviceaccount:NS:NAME in groups
    system:serviceaccounts, system:serviceaccounts:NS and system:authenticated. It is valid while
    that ServiceAccount exists with the UID it was issued for (the serviceaccount lookup of the
    real token authenticator). Tokens are HMAC-signed with the admin token, so they survive a
    restart of the simulator on the same state directory.

Authorization follows plugin/pkg/auth/authorizer/rbac/rbac.go and rbac/v1 helpers
(pkg/apis/rbac/v1/evaluation_helpers.go): ClusterRoleBindings grant their ClusterRole everywhere;
RoleBindings grant their Role or ClusterRole in the binding's namespace only; a rule matches on
verbs, apiGroups, resources (with "resource/subresource" and "*/subresource"), resourceNames (an
empty list matches any name; a request without a name never matches a restricted rule) and '*'
wildcards; nonResourceURLs (exact, '*', or a trailing-'*' prefix) come from ClusterRoles only.
The bootstrap roles every authenticated user holds are built in: system:discovery,
system:basic-user (self-subject reviews) and system:public-info-viewer. Creating or replacing a
Role or ClusterRole checks escalation as the RBAC storage does (every rule it grants must be held
by the creator in that namespace, unless it may `escalate`), so the grants the controller holds only
to create the autoscaler's Role are tested too; the `bind` check on RoleBindings is not simulated. Request attributes
follow k8s.io/apiserver/pkg/endpoints/request/requestinfo.go; the denial is the 403 Status of
responsewriters.Forbidden.
"""

import base64
import hashlib
import hmac
import json

from kubesim.apiserver_errors import ApiError, qualified

RBAC = "rbac.authorization.k8s.io"
ADMIN_NAME = "kubesim-admin"


class User:
    def __init__(self, name, groups, uid=""):
        self.name = name
        self.groups = tuple(groups)
        self.uid = uid

    @property
    def admin(self):
        return "system:masters" in self.groups

    def info(self):
        d = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            d["uid"] = self.uid
        return d


ADMIN = User(ADMIN_NAME, ("system:masters", "system:authenticated"))


def service_account_user(ns, name, uid=""):
    return User("system:serviceaccount:%s:%s" % (ns, name),
                ("system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"),
                uid)


# ---- tokens -------------------------------------------------------------------------------------

_PREFIX = "kubesim-sa."


def _b64(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def issue_token(key, ns, name, uid):
    """A bearer token for ServiceAccount ns/name (uid), signed with key (the admin token)."""
    payload = _b64(json.dumps({"ns": ns, "name": name, "uid": uid}, sort_keys=True).encode())
    mac = hmac.new(key.encode(), payload.encode(), hashlib.sha256).digest()
    return _PREFIX + payload + "." + _b64(mac)


def verify_token(key, token):
    """(ns, name, uid) of a well-signed ServiceAccount token, else None."""
    if not token.startswith(_PREFIX):
        return None
    parts = token[len(_PREFIX):].split(".")
    if len(parts) != 2:
        return None
    want = _b64(hmac.new(key.encode(), parts[0].encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(want, parts[1]):
        return None
    try:
        d = json.loads(_unb64(parts[0]))
        return d["ns"], d["name"], d["uid"]
    except (ValueError, KeyError, TypeError):
        return None


# ---- request attributes -------------------------------------------------------------------------

class Attrs:
    def __init__(self, verb, path="", resource_request=False, group="", version="", resource="",
                 subresource="", namespace="", name=""):
        self.verb = verb
        self.path = path
        self.resource_request = resource_request
        self.group = group
        self.version = version
        self.resource = resource
        self.subresource = subresource
        self.namespace = namespace
        self.name = name

    def __repr__(self):
        return "Attrs(%r)" % self.__dict__


_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
          "DELETE": "delete"}
_TRUE = ("1", "t", "T", "TRUE", "true", "True")


def request_attrs(method, path, query):
    """RequestInfoFactory.NewRequestInfo: query is a dict of decoded parameters."""
    parts = path.strip("/").split("/")
    nonres = Attrs(method.lower(), path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return nonres
    group = ""
    rest = parts[1:]
    if parts[0] == "apis":
        if len(rest) < 3:
            return nonres
        group, rest = rest[0], rest[1:]
    a = Attrs("", path=path, resource_request=True, group=group, version=rest[0])
    rest = rest[1:]
    special = False
    if rest[0] in ("proxy", "watch"):
        if len(rest) < 2:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        a.verb, rest, special = rest[0], rest[1:], True
    else:
        a.verb = _VERBS.get(method.upper(), "")
    if rest[0] == "namespaces" and len(rest) > 1:
        a.namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    if len(rest) >= 3 and not (special and a.verb == "proxy"):
        a.subresource = rest[2]
    if len(rest) >= 2:
        a.name = rest[1]
    a.resource = rest[0]
    if not a.name and a.verb == "get":
        a.verb = "watch" if query.get("watch") in _TRUE else "list"
    if not a.name and a.verb in ("list", "watch"):
        sel = query.get("fieldSelector") or ""
        for op in ("metadata.name==", "metadata.name="):
            if "," not in sel and sel.startswith(op) and sel[len(op):] and "/" not in sel[len(op):]:
                a.name = sel[len(op):]
                break
    if not a.name and a.verb == "delete":
        a.verb = "deletecollection"
    return a


# ---- the authorizer -----------------------------------------------------------------------------

# Bootstrap policy every authenticated user holds (plugin/pkg/auth/authorizer/rbac/bootstrappolicy).
_DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                   "/openapi/*", "/readyz", "/version", "/version/"]
BUILTIN_RULES = [
    {"nonResourceURLs": _DISCOVERY_URLS, "verbs": ["get"]},
    {"apiGroups": ["authorization.k8s.io"],
     "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
    {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"],
     "verbs": ["create"]},
]


def _has(lst, v):
    return "*" in lst or v in lst


def rule_allows(rule, a):
    """rbac/v1 RuleAllows: one PolicyRule against the attributes."""
    if not _has(rule.get("verbs") or [], a.verb):
        return False
    if not a.resource_request:
        for u in rule.get("nonResourceURLs") or []:
            if u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1])):
                return True
        return False
    if not _has(rule.get("apiGroups") or [], a.group):
        return False
    combined = a.resource + ("/" + a.subresource if a.subresource else "")
    ok = False
    for r in rule.get("resources") or []:
        if r == "*" or r == combined or (a.subresource and r == "*/" + a.subresource):
            ok = True
            break
    if not ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or (bool(a.name) and a.name in names)


def _applies(subject, user, binding_ns):
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user.name
    if kind == "Group":
        return subject.get("name") in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user.name == "system:serviceaccount:%s:%s" % (ns, subject.get("name"))
    return False


class Authorizer:
    """Reads the RBAC objects of a kubesim Store at each decision (no cache: bindings are few,
    and a change takes effect at the next request, as the real informer-fed authorizer's does
    within moments)."""

    def __init__(self, store):
        self.store = store

    def _objs(self, plural):
        with self.store.lock:
            return list(self.store.data.get((RBAC, plural), {}).values())

    def _role_rules(self, kind, name, ns):
        with self.store.lock:
            if kind == "ClusterRole":
                obj = self.store.data.get((RBAC, "clusterroles"), {}).get(("", name))
            elif kind == "Role":
                obj = self.store.data.get((RBAC, "roles"), {}).get((ns, name))
            else:
                obj = None
            return list((obj or {}).get("rules") or [])

    def rules(self, user, namespace):
        """Every rule that applies to user for a request in namespace ("" = cluster scope)."""
        out = list(BUILTIN_RULES) if "system:authenticated" in user.groups else []
        for b in self._objs("clusterrolebindings"):
            if any(_applies(s, user, "") for s in b.get("subjects") or []):
                ref = b.get("roleRef") or {}
                if ref.get("kind") == "ClusterRole":
                    out += self._role_rules("ClusterRole", ref.get("name"), "")
        if namespace:
            for b in self._objs("rolebindings"):
                bns = (b.get("metadata") or {}).get("namespace")
                if bns != namespace:
                    continue
                if any(_applies(s, user, bns) for s in b.get("subjects") or []):
                    ref = b.get("roleRef") or {}
                    rules = self._role_rules(ref.get("kind"), ref.get("name"), bns)
                    # A RoleBinding never grants non-resource URLs.
                    out += [r for r in rules if not r.get("nonResourceURLs")]
        return out

    def allowed(self, user, a):
        if user.admin:
            return True
        ns = a.namespace if a.resource_request else ""
        return any(rule_allows(r, a) for r in self.rules(user, ns))


def _atoms(rule):
    """A PolicyRule broken into single-verb, single-group, single-resource pieces
    (rbac/validation BreakdownRule)."""
    out = []
    names = rule.get("resourceNames") or []
    for g in rule.get("apiGroups") or []:
        for r in rule.get("resources") or []:
            for v in rule.get("verbs") or []:
                out.append({"apiGroups": [g], "resources": [r], "verbs": [v],
                            "resourceNames": list(names)})
    for u in rule.get("nonResourceURLs") or []:
        for v in rule.get("verbs") or []:
            out.append({"nonResourceURLs": [u], "verbs": [v]})
    return out


def _covers_atom(owner, atom):
    """rbac/validation ruleCovers: does owner rule cover the one-piece rule atom?"""
    if not _has(owner.get("verbs") or [], atom["verbs"][0]):
        return False
    if atom.get("nonResourceURLs"):
        u = atom["nonResourceURLs"][0]
        return any(o == "*" or o == u or (o.endswith("*") and u.startswith(o[:-1]))
                   for o in owner.get("nonResourceURLs") or [])
    if not _has(owner.get("apiGroups") or [], atom["apiGroups"][0]):
        return False
    r = atom["resources"][0]
    res = owner.get("resources") or []
    if not ("*" in res or r in res or ("/" in r and "*/" + r.split("/", 1)[1] in res)):
        return False
    names = owner.get("resourceNames") or []
    return not names or (atom["resourceNames"] and set(atom["resourceNames"]) <= set(names))


def missing_rights(owner_rules, rules):
    """The pieces of rules no owner rule covers (rbac/validation Covers)."""
    return [a for r in rules for a in _atoms(r) if not any(_covers_atom(o, a) for o in owner_rules)]


def escalation_error(user, kind_plural, name, missing):
    """The RBAC storage's answer to a Role or ClusterRole granting what its creator lacks
    (pkg/registry/rbac/role/policybased: ConfirmNoEscalation)."""
    def one(a):
        if a.get("nonResourceURLs"):
            return "{NonResourceURLs:[%s], Verbs:[%s]}" % (json.dumps(a["nonResourceURLs"][0]),
                                                            json.dumps(a["verbs"][0]))
        s = "{APIGroups:[%s], Resources:[%s]" % (json.dumps(a["apiGroups"][0]),
                                                json.dumps(a["resources"][0]))
        if a["resourceNames"]:
            s += ", ResourceNames:[%s]" % ", ".join(json.dumps(n) for n in a["resourceNames"])
        return s + ", Verbs:[%s]}" % json.dumps(a["verbs"][0])
    groups = "[" + " ".join(json.dumps(g) for g in user.groups) + "]"
    msg = ("user %s (groups=%s) is attempting to grant RBAC permissions not currently held:\n%s"
           % (json.dumps(user.name), groups, "\n".join(one(a) for a in missing)))
    return ApiError(403, "Forbidden", '%s "%s" is forbidden: %s' % (
        qualified(kind_plural, RBAC), name, msg),
        {"name": name, "group": RBAC, "kind": kind_plural})


def forbidden_error(user, a):
    """responsewriters.Forbidden + forbiddenMessage + errors.NewForbidden."""
    if not a.resource_request:
        msg = 'User "%s" cannot %s path "%s"' % (user.name, a.verb, a.path)
        return ApiError(403, "Forbidden", "forbidden: " + msg, {})
    res = a.resource + ("/" + a.subresource if a.subresource else "")
    if a.namespace:
        msg = 'User "%s" cannot %s resource "%s" in API group "%s" in the namespace "%s"' % (
            user.name, a.verb, res, a.group, a.namespace)
    else:
        msg = 'User "%s" cannot %s resource "%s" in API group "%s" at the cluster scope' % (
            user.name, a.verb, res, a.group)
    gr = qualified(a.resource, a.group)
    details = {}
    if a.name:
        details["name"] = a.name
    if a.group:
        details["group"] = a.group
    details["kind"] = a.resource
    if a.name:
        text = '%s "%s" is forbidden: %s' % (gr, a.name, msg)
    else:
        text = "%s is forbidden: %s" % (gr, msg)
    return ApiError(403, "Forbidden", text, details)
