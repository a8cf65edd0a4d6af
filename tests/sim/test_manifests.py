"""manifests/: raywarden's CRDs, RBAC, controller Deployment, kustomization and samples, checked with real
kubectl (v1.32) against the local cluster (tests/sim/local-cluster).

- The CRDs are generated (manifests/hack/gen_crds.py --check), structural, no bigger than KubeRay's, and
  every field KubeRay's ray.io/v1 schema declares is accepted with the same defaults (when shared/ holds
  KubeRay's CRDs); pod templates and the other Kubernetes types are typed (from Kubernetes v1.34.4's OpenAPI).
- `kubectl apply --server-side -f manifests/crds/` installs them; client-side apply is refused (the
  last-applied annotation would exceed 262144 bytes), as with KubeRay's CRDs.
- Every sample in shared/corpus/kuberay-samples/ applies unchanged and is stored unchanged (nothing pruned);
  so do manifests/samples/.
- `kubectl get rayclusters|rayjobs|rayservices` print KubeRay's columns, filled from status.
- Schema defaults (workerGroupSpecs replicas & co., submissionMode), strict unknown-field and enum errors,
  also inside pod templates (`imagePullPolicyy`, `cpu: lots`); Warn/Ignore prune; `kubectl explain`
  descends into pod templates.
- `kubectl kustomize manifests/` renders offline; RBAC is least privilege; `kubectl apply --server-side -k`
  works.
- `local-cluster up` installs manifests/crds/ by default.

Run: cd tests/sim && python3 -m unittest -v test_manifests
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("RW_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
MANIFESTS = os.path.join(REPO, "manifests")
CRD_DIR = os.path.join(MANIFESTS, "crds")
SAMPLES = os.path.join(MANIFESTS, "samples")
CMD = os.path.join(HERE, "local-cluster")
KUBECTL = shutil.which("kubectl")
SHARED = os.environ.get("RW_SHARED_DIR", "/work/shared")
CORPUS_SAMPLES = os.path.join(SHARED, "corpus", "kuberay-samples")
CORPUS_CRDS = os.path.join(SHARED, "corpus", "kuberay-crds")
RAY_KINDS = {"RayCluster": "rayclusters", "RayJob": "rayjobs", "RayService": "rayservices"}
CRD_FILES = {"rayclusters": "ray.io_rayclusters.yaml", "rayjobs": "ray.io_rayjobs.yaml",
             "rayservices": "ray.io_rayservices.yaml"}
ANNOTATION_LIMIT = 262144

sys.path.insert(0, os.path.join(MANIFESTS, "hack"))
import gen_crds  # noqa: E402


def json_stream(text):
    """Objects of `kubectl ... -o json` output: one object, a List, or several concatenated objects."""
    dec = json.JSONDecoder()
    out, i, text = [], 0, text.strip()
    for _ in range(100000):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        out.extend(obj.get("items", []) if obj.get("kind") == "List" else [obj])
    return out


def parse_table(text):
    """kubectl's column output -> list of dicts keyed by header, using the header's column offsets."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?:(?<=\s\s)|^)\S", header)]
    names = [header[s:e].strip() for s, e in zip(starts, starts[1:] + [None])]
    rows = []
    for ln in lines[1:]:
        cells = [ln[s:e].strip() if s < len(ln) else "" for s, e in zip(starts, starts[1:] + [None])]
        rows.append(dict(zip(names, cells)))
    return rows


def is_subset(want, got, path="", errors=None):
    """Every leaf of `want` is in `got` with the same value (lists: same length, element-wise)."""
    errors = [] if errors is None else errors
    if isinstance(want, dict):
        if not isinstance(got, dict):
            errors.append("%s: expected an object, got %r" % (path, got))
            return errors
        for k, v in want.items():
            if k not in got:
                errors.append("%s.%s: missing (pruned?)" % (path, k))
            else:
                is_subset(v, got[k], "%s.%s" % (path, k), errors)
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            errors.append("%s: list changed: %r" % (path, got))
            return errors
        for i, (a, b) in enumerate(zip(want, got)):
            is_subset(a, b, "%s[%d]" % (path, i), errors)
    elif want != got or type(want) is not type(got):
        errors.append("%s: %r stored as %r" % (path, want, got))
    return errors


# ---- structural schema rules (apiextensions.k8s.io/v1) ----------------------------------------------

SCHEMA_KEYS = {"type", "description", "properties", "additionalProperties", "items", "required", "enum",
               "default", "format", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
               "pattern", "nullable", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
               "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
               "x-kubernetes-validations", "x-kubernetes-embedded-resource", "anyOf"}
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}


def value_ok(v, node):
    t = node.get("type")
    if node.get("x-kubernetes-int-or-string"):
        return isinstance(v, (int, str)) and not isinstance(v, bool)
    if t is None:
        return True
    if isinstance(v, bool) and t != "boolean":
        return False
    if not isinstance(v, TYPES[t]):
        return False
    if "enum" in node and v not in node["enum"]:
        return False
    if "minimum" in node and v < node["minimum"]:
        return False
    return True


def structural_errors(node, path="", in_metadata=False):
    """Violations of the structural-schema rules a real API server enforces, plus our own rule that an
    object node must declare its fields or preserve them (an object with neither silently loses all data)."""
    errs = []
    unknown = set(node) - SCHEMA_KEYS
    if unknown:
        errs.append("%s: keys not allowed in a structural schema: %s" % (path, sorted(unknown)))
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    t = node.get("type")
    if t is None and not (preserve or node.get("x-kubernetes-int-or-string")):
        errs.append("%s: type missing" % path)
    if t is not None and t not in TYPES:
        errs.append("%s: unknown type %r" % (path, t))
    if "anyOf" in node and not (node.get("x-kubernetes-int-or-string") and
                                sorted(x.get("type") for x in node["anyOf"]) == ["integer", "string"]):
        # Structural schemas allow anyOf only without types, except int-or-string's integer/string pair.
        errs.append("%s: anyOf other than int-or-string's [integer, string]" % path)
    if "properties" in node and "additionalProperties" in node:
        errs.append("%s: properties and additionalProperties are mutually exclusive" % path)
    if node.get("additionalProperties") is False:
        errs.append("%s: additionalProperties: false is forbidden" % path)
    if t == "object" and not preserve and "properties" not in node and "additionalProperties" not in node \
            and path != ".metadata":
        errs.append("%s: object without properties or x-kubernetes-preserve-unknown-fields" % path)
    if t == "array" and "items" not in node:
        errs.append("%s: array without items" % path)
    if "default" in node:
        if in_metadata:
            errs.append("%s: defaults are not allowed in metadata" % path)
        if not value_ok(node["default"], node):
            errs.append("%s: default %r does not validate" % (path, node["default"]))
    for v in node.get("enum", []):
        if not value_ok(v, dict(node, enum=[v])):
            errs.append("%s: enum value %r does not match the type" % (path, v))
    props = node.get("properties", {})
    for r in node.get("required", []):
        if r not in props:
            errs.append("%s: required field %r not declared" % (path, r))
    if node.get("x-kubernetes-list-type") == "map":
        keys = node.get("x-kubernetes-list-map-keys") or []
        item = node.get("items", {})
        if not keys:
            errs.append("%s: list-type map without list-map-keys" % path)
        for k in keys:
            if k not in item.get("properties", {}) or (k not in item.get("required", [])
                                                        and "default" not in item["properties"][k]):
                errs.append("%s: map key %r must be a required (or defaulted) field of the items" % (path, k))
    for rule in node.get("x-kubernetes-validations", []):
        if not isinstance(rule.get("rule"), str) or not isinstance(rule.get("message"), str):
            errs.append("%s: validation rule needs rule and message" % path)
            continue
        for field in re.findall(r"self\.(\w+)", rule["rule"]):
            if field not in props:
                errs.append("%s: rule %r names undeclared field %r" % (path, rule["rule"], field))
    if path == "" and (set(props.get("metadata", {})) - {"type"}):
        errs.append(".metadata: only name/generateName restrictions are allowed; keep it {type: object}")
    for k, child in props.items():
        errs += structural_errors(child, "%s.%s" % (path, k), in_metadata or (path == "" and k == "metadata"))
    if isinstance(node.get("additionalProperties"), dict):
        errs += structural_errors(node["additionalProperties"], path + "{}", in_metadata)
    if isinstance(node.get("items"), dict):
        errs += structural_errors(node["items"], path + "[]", in_metadata)
    return errs


# Fields of KubeRay's CRDs (generated from a newer k8s.io/api) that Kubernetes v1.34.4, whose OpenAPI
# raywarden's CRDs are generated from, does not have.
NEWER_THAN_PINNED = ("template.spec.schedulingGroup", "submitterPodTemplate.spec.schedulingGroup",
                     ".podCertificate.userAnnotations")


def compat_errors(theirs, ours, path=""):
    """Whatever KubeRay's schema accepts, ours accepts: each declared field exists (unless ours keeps the
    whole subtree), defaults are equal, our enums are no narrower and we require nothing more."""
    errs = []
    if ours.get("x-kubernetes-preserve-unknown-fields"):
        return errs
    if theirs.get("x-kubernetes-int-or-string") != ours.get("x-kubernetes-int-or-string"):
        errs.append("%s: int-or-string differs" % path)
    elif "type" in theirs and theirs.get("type") != ours.get("type"):
        errs.append("%s: type %r, KubeRay %r" % (path, ours.get("type"), theirs.get("type")))
    if theirs.get("default") != ours.get("default"):
        errs.append("%s: default %r, KubeRay %r" % (path, ours.get("default"), theirs.get("default")))
    if "enum" in ours and not set(theirs.get("enum", [None])) <= set(ours["enum"]):
        errs.append("%s: enum %r narrower than KubeRay's %r" % (path, ours["enum"], theirs.get("enum")))
    extra_required = set(ours.get("required", [])) - set(theirs.get("required", []))
    if extra_required:
        errs.append("%s: requires %s, KubeRay does not" % (path, sorted(extra_required)))
    for k, child in theirs.get("properties", {}).items():
        mine = ours.get("properties", {}).get(k)
        if ("%s.%s" % (path, k)).endswith(NEWER_THAN_PINNED):
            continue
        if mine is None:
            errs.append("%s.%s: declared by KubeRay, missing here" % (path, k))
        else:
            errs += compat_errors(child, mine, "%s.%s" % (path, k))
    if isinstance(theirs.get("additionalProperties"), dict):
        if not isinstance(ours.get("additionalProperties"), dict):
            errs.append("%s: KubeRay has a map here" % path)
        else:
            errs += compat_errors(theirs["additionalProperties"], ours["additionalProperties"], path + "{}")
    if isinstance(theirs.get("items"), dict):
        if not isinstance(ours.get("items"), dict):
            errs.append("%s: KubeRay has a list here" % path)
        else:
            errs += compat_errors(theirs["items"], ours["items"], path + "[]")
    return errs


def strip_descriptions(n):
    if isinstance(n, dict):
        return {k: strip_descriptions(v) for k, v in n.items() if k != "description"}
    if isinstance(n, list):
        return [strip_descriptions(x) for x in n]
    return n


def schema_diff(theirs, ours, path, out):
    """Differences between two schemas, one line each (properties as .name, other keys as /key)."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for k in sorted(set(theirs) | set(ours)):
            if k not in ours:
                out.append("%s: only KubeRay has %s" % (path, k))
            elif k not in theirs:
                out.append("%s: only raywarden has %s" % (path, k))
            elif k == "properties":
                for pk in sorted(set(theirs[k]) | set(ours[k])):
                    if pk not in ours[k]:
                        out.append("%s.%s: only KubeRay" % (path, pk))
                    elif pk not in theirs[k]:
                        out.append("%s.%s: only raywarden" % (path, pk))
                    else:
                        schema_diff(theirs[k][pk], ours[k][pk], path + "." + pk, out)
            else:
                schema_diff(theirs[k], ours[k], path + "/" + k, out)
    elif theirs != ours:
        out.append("%s: KubeRay %s, raywarden %s" % (path, json.dumps(theirs)[:80], json.dumps(ours)[:80]))


def schema_at(schema, json_path):
    node = schema
    for part in json_path.strip(".").split("."):
        node = (node.get("properties") or {}).get(part)
        if node is None:
            return None
    return node


class TestCRDFiles(unittest.TestCase):
    """Offline checks of the generated files (no cluster)."""

    def test_generated_files_up_to_date(self):
        r = subprocess.run([sys.executable, os.path.join(MANIFESTS, "hack", "gen_crds.py"), "--check"],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode())

    def test_sizes(self):
        """Typed pod templates make the CRDs big: no bigger than KubeRay's, well under the API server's
        3 MiB request and etcd's 1.5 MiB value limits, and too big for the last-applied annotation of
        client-side apply (so docs/install.md says --server-side)."""
        built = dict(gen_crds.all_crds())
        for name in CRD_FILES.values():
            size = os.path.getsize(os.path.join(CRD_DIR, name))
            compact = len(json.dumps(built[name], separators=(",", ":")))
            self.assertGreater(compact, ANNOTATION_LIMIT, name)
            self.assertLess(compact, 1024 * 1024, name)
            theirs = os.path.join(CORPUS_CRDS, name)
            if os.path.exists(theirs):
                self.assertLessEqual(size, os.path.getsize(theirs), name)
        vendored = os.path.join(MANIFESTS, "hack", "k8s-openapi-v1.34.4.json")
        self.assertLess(os.path.getsize(vendored), 400 * 1024)

    def test_structural(self):
        for name, doc in gen_crds.all_crds():
            versions = doc["spec"]["versions"]
            self.assertEqual([(v["name"], v["served"], v["storage"]) for v in versions], [("v1", True, True)])
            schema = versions[0]["schema"]["openAPIV3Schema"]
            self.assertEqual(structural_errors(schema), [], name)
            self.assertEqual(versions[0]["subresources"], {"status": {}}, "status only; KubeRay has no scale")
            for pc in versions[0]["additionalPrinterColumns"]:
                self.assertIn(pc["type"], ("integer", "number", "string", "boolean", "date"))
                if pc["jsonPath"] != ".metadata.creationTimestamp":
                    self.assertIsNotNone(schema_at(schema, pc["jsonPath"]), "%s: %s" % (name, pc["jsonPath"]))

    def test_structural_checker_catches_mistakes(self):
        bad = {"type": "object", "properties": {
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "template": {"type": "object"},
                "untyped": {"description": "no type"},
                "list": {"type": "array"},
                "n": {"type": "integer", "default": "1"},
                "m": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
                "lm": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
                       "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
            }, "required": ["missing"]}}}
        errs = "\n".join(structural_errors(bad))
        for frag in (".spec.template: object without", ".spec.untyped: type missing", ".spec.list: array",
                     ".spec.n: default", ".spec.m: properties and additionalProperties",
                     "required field 'missing'", "map key 'k'"):
            self.assertIn(frag, errs)

    def test_typed_fields_and_defaults(self):
        crds = dict(gen_crds.all_crds())
        rc = crds["ray.io_rayclusters.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        spec = rc["properties"]["spec"]
        wg = spec["properties"]["workerGroupSpecs"]["items"]["properties"]
        self.assertEqual({k: wg[k].get("default") for k in ("replicas", "minReplicas", "maxReplicas",
                                                              "numOfHosts")},
                         {"replicas": 0, "minReplicas": 0, "maxReplicas": 2147483647, "numOfHosts": 1})
        self.assertEqual(wg["scaleStrategy"]["properties"]["workersToDelete"]["items"], {"type": "string"})
        self.assertEqual(spec["properties"]["headGroupSpec"]["properties"]["rayStartParams"]
                         ["additionalProperties"], {"type": "string"})
        for t in (spec["properties"]["headGroupSpec"]["properties"]["template"], wg["template"]):
            self.assertNotIn("x-kubernetes-preserve-unknown-fields", t)
            self.assertEqual(sorted(t["properties"]["metadata"]["properties"]),
                             ["annotations", "finalizers", "labels", "name", "namespace"])
            cs = t["properties"]["spec"]["properties"]["containers"]
            self.assertEqual((cs["x-kubernetes-list-type"], cs["x-kubernetes-list-map-keys"]), ("map", ["name"]))
            c = cs["items"]["properties"]
            self.assertEqual(c["imagePullPolicy"]["type"], "string")
            cpu = c["resources"]["properties"]["limits"]["additionalProperties"]
            self.assertEqual((cpu["x-kubernetes-int-or-string"], cpu["anyOf"]),
                             (True, [{"type": "integer"}, {"type": "string"}]))
            self.assertTrue(cpu["pattern"].startswith("^(\\+|-)?"))
            self.assertEqual(c["ports"]["items"]["properties"]["protocol"]["default"], "TCP")
        rs = crds["ray.io_rayservices.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        self.assertEqual(rs["properties"]["spec"]["properties"]["serveConfigV2"]["type"], "string")
        # One RayCluster spec schema everywhere.
        rj = crds["ray.io_rayjobs.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        strip = lambda s: {k: v for k, v in s.items() if k != "description"}  # noqa: E731
        self.assertEqual(strip(rj["properties"]["spec"]["properties"]["rayClusterSpec"]), strip(spec))
        self.assertEqual(strip(rs["properties"]["spec"]["properties"]["rayClusterConfig"]), strip(spec))


CONTROLLER = os.path.join(os.environ.get("RW_BUILD_DIR") or os.path.join(REPO, "build"), "bin",
                          "raywarden-controller")


class TestRbacGenerated(unittest.TestCase):
    """manifests/rbac is generated from the grant table in controller/kube/rbac.c, which the
    controller's kube client enforces: a call site without its grant is refused there, so the
    ClusterRole always holds what the code uses and nothing it does not list."""

    def printed(self, which):
        if not os.access(CONTROLLER, os.X_OK):
            self.skipTest("%s not built" % CONTROLLER)
        r = subprocess.run([CONTROLLER, "--print-rbac=" + which], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        return r.stdout.decode()

    def test_committed_files_are_generated(self):
        for which, name in (("cluster-role", "rbac/cluster_role.yaml"),
                            ("leader-election", "rbac/leader_election_role.yaml"),
                            ("batch-scheduler", "batch-scheduler/rbac.yaml"),
                            ("webhook", "webhook/rbac.yaml")):
            with open(os.path.join(MANIFESTS, name)) as f:
                committed = f.read()
            self.assertEqual(committed, self.printed(which),
                             "manifests/%s differs from the grant table: regenerate it with "
                             "raywarden-controller --print-rbac=%s > manifests/%s"
                             % (name, which, name))
        r = subprocess.run([CONTROLLER, "--print-rbac=nope"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 2)


@unittest.skipUnless(KUBECTL, "kubectl missing")
class TestManifestsOnCluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.state = tempfile.mkdtemp(prefix="kubesim-mf-")
        cls.empty = tempfile.mkdtemp(prefix="kubesim-mf-nocrd-")
        cls.cache = tempfile.mkdtemp(prefix="kubesim-mf-cache-")
        args = [CMD, "up", "--state", cls.state, "--quiet"]
        if b"--no-controller" in subprocess.run([CMD, "up", "--help"], capture_output=True, timeout=30).stdout:
            args.append("--no-controller")  # status is written by the test, not by a controller
        # No CRDs at start: this class installs them itself with server-side apply.
        r = subprocess.run(args, capture_output=True, timeout=120, env=dict(os.environ, RW_SIM_CRD_DIR=cls.empty))
        if r.returncode != 0:
            cls.tearDownClass()
            raise RuntimeError("local-cluster up failed: %s" % r.stderr.decode())
        cls.kubeconfig = os.path.join(cls.state, "kubeconfig")
        r = cls.kc("apply", "--server-side", "-f", CRD_DIR)
        cls.crd_apply = r
        if r.returncode == 0:
            cls.kc("wait", "--for", "condition=established", "--timeout=30s",
                   *["crd/%s.ray.io" % p for p in CRD_FILES])

    @classmethod
    def tearDownClass(cls):
        subprocess.run([CMD, "down", "--state", cls.state], capture_output=True, timeout=60)
        for d in (cls.state, cls.empty, cls.cache):
            shutil.rmtree(d, ignore_errors=True)

    @classmethod
    def kc(cls, *args, stdin=None, timeout=60):
        return subprocess.run([KUBECTL, "--kubeconfig", cls.kubeconfig, "--cache-dir", cls.cache] + list(args),
                              input=stdin, capture_output=True, timeout=timeout)

    def ok(self, *args, stdin=None):
        r = self.kc(*args, stdin=stdin)
        self.assertEqual(r.returncode, 0, "kubectl %s: %s" % (" ".join(args), r.stderr.decode()))
        return r.stdout.decode()

    def objects(self, path=None, text=None):
        """Parse YAML through kubectl (client-side dry run) into JSON objects."""
        if text is not None:
            out = self.ok("create", "--dry-run=client", "-o", "json", "--validate=false", "-f", "-",
                          stdin=text.encode())
        else:
            out = self.ok("create", "--dry-run=client", "-o", "json", "--validate=false", "-f", path)
        return json_stream(out)

    def get(self, resource, name, ns="default"):
        return json.loads(self.ok("get", resource, name, "-n", ns, "-o", "json"))

    def apply_and_compare(self, path):
        """kubectl apply -f path (unchanged) must succeed, warn about nothing, and store every field."""
        r = self.kc("apply", "-f", path)
        self.assertEqual(r.returncode, 0, "%s: %s" % (path, r.stderr.decode()))
        self.assertNotIn(b"unknown field", r.stderr, path)
        n = 0
        for obj in self.objects(path):
            if obj.get("kind") not in RAY_KINDS:
                continue
            stored = self.get(RAY_KINDS[obj["kind"]], obj["metadata"]["name"],
                              obj["metadata"].get("namespace", "default"))
            errs = is_subset(obj["spec"], stored["spec"], "%s %s: spec" % (path, obj["metadata"]["name"]))
            self.assertEqual(errs, [])
            n += 1
        return n

    # -- CRDs ---------------------------------------------------------------------------------------------

    def test_crds_server_side_apply(self):
        self.assertEqual(self.crd_apply.returncode, 0, self.crd_apply.stderr.decode())
        out = self.crd_apply.stdout.decode()
        for p in CRD_FILES:
            self.assertIn("customresourcedefinition.apiextensions.k8s.io/%s.ray.io serverside-applied" % p, out)
        # Re-apply works and the stored schema is exactly what the generator built (YAML round trip).
        again = self.ok("apply", "--server-side", "-f", CRD_DIR)
        self.assertEqual(again.count("serverside-applied"), 3, again)
        # Client-side apply cannot work: the last-applied annotation would hold the whole CRD.
        r = self.kc("apply", "-f", os.path.join(CRD_DIR, CRD_FILES["rayclusters"]))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"metadata.annotations: Too long", r.stderr)
        built = {d["metadata"]["name"]: d for _, d in gen_crds.all_crds()}
        for p in CRD_FILES:
            crd = self.get("crd", "%s.ray.io" % p, ns="")
            self.assertNotIn("kubectl.kubernetes.io/last-applied-configuration",
                             crd["metadata"].get("annotations") or {})
            v = crd["spec"]["versions"]
            self.assertEqual([x["name"] for x in v], ["v1"])
            want = built["%s.ray.io" % p]["spec"]["versions"][0]
            self.assertEqual(v[0]["schema"], want["schema"])
            self.assertEqual(v[0]["additionalPrinterColumns"], want["additionalPrinterColumns"])
            self.assertEqual(crd["spec"]["names"]["categories"], ["all"])

    def test_v1alpha1_not_served(self):
        r = self.kc("apply", "-f", "-", stdin=b"apiVersion: ray.io/v1alpha1\nkind: RayCluster\n"
                    b"metadata: {name: old}\nspec: {headGroupSpec: {template: {}}}\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"v1alpha1", r.stderr)

    @unittest.skipUnless(os.path.isdir(CORPUS_CRDS), "shared/corpus/kuberay-crds absent")
    def test_accepts_everything_kuberay_declares(self):
        built = {d["metadata"]["name"]: d for _, d in gen_crds.all_crds()}
        for p, f in CRD_FILES.items():
            (theirs,) = self.objects(os.path.join(CORPUS_CRDS, f))
            tv = [v for v in theirs["spec"]["versions"] if v["name"] == "v1"][0]
            ov = built["%s.ray.io" % p]["spec"]["versions"][0]
            self.assertEqual(compat_errors(tv["schema"]["openAPIV3Schema"], ov["schema"]["openAPIV3Schema"]),
                             [], f)
            self.assertEqual(theirs["spec"]["names"].get("shortNames"), None)
            self.assertEqual(theirs["spec"]["names"]["categories"], ["all"])
            self.assertEqual(tv["additionalPrinterColumns"], ov["additionalPrinterColumns"], f)
            self.assertEqual(set(tv.get("subresources", {})), set(ov["subresources"]), f)

    @unittest.skipUnless(os.path.isdir(CORPUS_CRDS), "shared/corpus/kuberay-crds absent")
    def test_kubernetes_types_as_kuberay(self):
        """The Kubernetes types generated from the v1.34.4 OpenAPI (manifests/hack/k8s_openapi.py) equal
        KubeRay's controller-gen output field for field, descriptions aside, except for the fields newer
        than Kubernetes v1.34.4 (KubeRay's CRDs were generated from a newer k8s.io/api)."""
        # "(t)emplate": headGroupSpec.template, workerGroupSpecs[].template and submitterPodTemplate.
        known = ("emplate.spec.schedulingGroup: only KubeRay",
                 "emplate.spec.volumes/items.projected.sources/items.podCertificate.userAnnotations: only KubeRay")
        built = {d["metadata"]["name"]: d for _, d in gen_crds.all_crds()}
        paths = {"rayclusters": [("headGroupSpec", "template"), ("headGroupSpec", "headService"),
                                 ("autoscalerOptions",), ("networkPolicy",), ("historyServerOptions",),
                                 ("headGroupSpec", "ingressOptions"), ("gcsFaultToleranceOptions",)],
                 "rayjobs": [("submitterPodTemplate",)], "rayservices": [("serveService",)]}
        for p, wanted in paths.items():
            (doc,) = self.objects(os.path.join(CORPUS_CRDS, CRD_FILES[p]))
            theirs = [v for v in doc["spec"]["versions"] if v["name"] == "v1"][0]["schema"]["openAPIV3Schema"]
            ours = built["%s.ray.io" % p]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            for path in wanted:
                t, o = theirs["properties"]["spec"], ours["properties"]["spec"]
                for part in path:
                    t, o = t["properties"][part], o["properties"][part]
                out = []
                schema_diff(strip_descriptions(t), strip_descriptions(o), path[-1], out)
                with self.subTest(p + "." + ".".join(path)):
                    self.assertEqual([x for x in out if not x.endswith(known)], [])

    # -- samples ------------------------------------------------------------------------------------------

    def test_kuberay_samples_apply_unchanged(self):
        if not os.path.isdir(CORPUS_SAMPLES):
            self.skipTest("shared/corpus/kuberay-samples absent: KubeRay sample part skipped")
        files = sorted(f for f in os.listdir(CORPUS_SAMPLES) if f.endswith((".yaml", ".yml")))
        self.assertTrue(files)
        n = sum(self.apply_and_compare(os.path.join(CORPUS_SAMPLES, f)) for f in files)
        self.assertGreaterEqual(n, len(files))

    def test_own_samples(self):
        files = sorted(os.listdir(SAMPLES))
        kinds = set()
        for f in files:
            self.assertEqual(self.apply_and_compare(os.path.join(SAMPLES, f)), 1, f)
            kinds |= {o["kind"] for o in self.objects(os.path.join(SAMPLES, f))}
        self.assertEqual(kinds, set(RAY_KINDS))

    # -- defaults and validation -----------------------------------------------------------------------

    HEAD = "    template: {spec: {containers: [{name: ray-head, image: rayproject/ray:2.52.0}]}}\n"
    GROUP = ("  - groupName: g\n"
             "    template: {spec: {containers: [{name: w, image: rayproject/ray:2.52.0, ports: [{containerPort: 8080}]}]}}\n")

    def test_schema_defaults(self):
        self.ok("apply", "-f", "-", stdin=("apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: dflt}\n"
                                          "spec:\n  headGroupSpec:\n" + self.HEAD + "  workerGroupSpecs:\n"
                                          + self.GROUP).encode())
        g = self.get("rayclusters", "dflt")["spec"]["workerGroupSpecs"][0]
        self.assertEqual((g["replicas"], g["minReplicas"], g["maxReplicas"], g["numOfHosts"]),
                         (0, 0, 2147483647, 1))
        # A +default marker of the Kubernetes types (ContainerPort.protocol), applied inside the template.
        self.assertEqual(g["template"]["spec"]["containers"][0]["ports"], [{"containerPort": 8080, "protocol": "TCP"}])
        self.ok("apply", "-f", "-", stdin=("apiVersion: ray.io/v1\nkind: RayJob\nmetadata: {name: dflt}\n"
                                          "spec:\n  entrypoint: echo hi\n  rayClusterSpec:\n    headGroupSpec:\n"
                                          + "  " + self.HEAD + "    workerGroupSpecs:\n"
                                          + "".join("  " + ln + "\n" for ln in self.GROUP.splitlines())
                                          ).encode())
        j = self.get("rayjobs", "dflt")["spec"]
        self.assertEqual((j["submissionMode"], j["backoffLimit"], j["ttlSecondsAfterFinished"]),
                         ("K8sJobMode", 0, 0))
        self.assertEqual(j["rayClusterSpec"]["workerGroupSpecs"][0]["maxReplicas"], 2147483647)

    def test_strict_validation(self):
        base = "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: %s}\nspec:\n  headGroupSpec:\n" + self.HEAD
        cases = [
            ("typo", base + "  workerGroupSpec: []\n", b'unknown field "spec.workerGroupSpec"'),
            ("badenum", base + "  upgradeStrategy: {type: Sometimes}\n", b"spec.upgradeStrategy.type"),
            ("badtype", base + "  workerGroupSpecs:\n" + self.GROUP + "    replicas: two\n",
             b"spec.workerGroupSpecs[0].replicas"),
            ("badparam", base.replace("  headGroupSpec:\n", "  headGroupSpec:\n    rayStartParams: {port: 6379}\n"),
             b"rayStartParams.port"),
            ("nohead", "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: nohead}\nspec: {}\n",
             b"spec.headGroupSpec"),
        ]
        for name, text, frag in cases:
            with self.subTest(name):
                r = self.kc("apply", "-f", "-", stdin=(text % name if "%s" in text else text).encode())
                self.assertNotEqual(r.returncode, 0, name)
                self.assertIn(frag, r.stderr, name)
                self.assertEqual(self.kc("get", "raycluster", name).returncode, 1)

    POD = ("apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: %s}\nspec:\n  headGroupSpec:\n"
           "    template:\n      spec:\n        containers:\n        - name: ray-head\n"
           "          image: rayproject/ray:2.52.0\n%s")

    def test_pod_template_strict(self):
        """Inside pod templates too, as with KubeRay's CRDs: kubectl sends fieldValidation=Strict, so a
        misspelt field is refused with the API server's strict decoding error (nothing stored)."""
        r = self.kc("apply", "-f", "-", stdin=(self.POD % ("pptypo", "          imagePullPolicyy: Always\n")).encode())
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b'Error from server (BadRequest): error when creating "STDIN": RayCluster in version "v1" '
                      b'cannot be handled as a RayCluster: strict decoding error: unknown field '
                      b'"spec.headGroupSpec.template.spec.containers[0].imagePullPolicyy"', r.stderr)
        self.assertEqual(self.kc("get", "raycluster", "pptypo").returncode, 1)
        # The same for a RayJob's submitter pod template and a RayService's serve Service.
        r = self.kc("apply", "-f", "-", stdin=b"apiVersion: ray.io/v1\nkind: RayJob\nmetadata: {name: pptypo}\n"
                    b"spec:\n  entrypoint: echo\n  submitterPodTemplate:\n    spec:\n      restartPolicy: Never\n"
                    b"      containers: [{name: s, image: i, imagePullPolicyy: Always}]\n")
        self.assertIn(b'unknown field "spec.submitterPodTemplate.spec.containers[0].imagePullPolicyy"', r.stderr)
        r = self.kc("apply", "-f", "-", stdin=(("apiVersion: ray.io/v1\nkind: RayService\nmetadata: {name: pptypo}\n"
                                               "spec:\n  serveService: {spec: {portz: []}}\n  rayClusterConfig:\n"
                                               "    headGroupSpec:\n  " + self.HEAD).encode()))
        self.assertIn(b'unknown field "spec.serveService.spec.portz"', r.stderr)

    def test_pod_template_warn_and_ignore_prune(self):
        """fieldValidation=Warn (kubectl --validate=warn) stores the object without the unknown field and
        says so in a Warning; Ignore (--validate=false) prunes it silently."""
        r = self.kc("apply", "--validate=warn", "-f", "-",
                    stdin=(self.POD % ("ppwarn", "          imagePullPolicyy: Always\n")).encode())
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIn(b'Warning: unknown field "spec.headGroupSpec.template.spec.containers[0].imagePullPolicyy"',
                      r.stderr)
        c = self.get("rayclusters", "ppwarn")["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        self.assertEqual(c, {"name": "ray-head", "image": "rayproject/ray:2.52.0"})
        r = self.kc("apply", "--validate=false", "-f", "-",
                    stdin=(self.POD % ("ppignore", "          imagePullPolicyy: Always\n")).encode())
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertNotIn(b"unknown field", r.stderr)
        c = self.get("rayclusters", "ppignore")["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        self.assertNotIn("imagePullPolicyy", c)

    def test_pod_template_values(self):
        """Types, the quantity pattern, int-or-string, required fields and list-map keys inside a pod
        template: 422 Invalid naming the field path."""
        path = "spec.headGroupSpec.template.spec.containers[0]"
        cases = [
            ("badcpu", "          resources: {limits: {cpu: lots}}\n",
             '%s.resources.limits.cpu: Invalid value: "lots": %s.resources.limits.cpu in body should match '
             "'^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+"
             "(\\.[0-9]*)?)|(\\.[0-9]+))))?$'" % (path, path)),
            ("badport", "          ports: [{containerPort: http}]\n",
             '%s.ports[0].containerPort: Invalid value: "string": %s.ports[0].containerPort in body must be of '
             'type integer: "string"' % (path, path)),
            ("badprobe", "          readinessProbe: {httpGet: {port: [1]}}\n",
             "%s.readinessProbe.httpGet.port: Invalid value: \"array\"" % path),
            ("noportnum", "          ports: [{name: x}]\n", "%s.ports[0].containerPort: Required value" % path),
            ("dupname", "        - {name: ray-head, image: x}\n",
             'spec.headGroupSpec.template.spec.containers[1]: Duplicate value: map[string]interface {}'
             '{"name":"ray-head"}'),
        ]
        for name, extra, msg in cases:
            with self.subTest(name):
                r = self.kc("apply", "-f", "-", stdin=(self.POD % (name, extra)).encode())
                self.assertNotEqual(r.returncode, 0, name)
                err = r.stderr.decode()
                self.assertIn('The RayCluster "%s" is invalid' % name, err)
                self.assertIn(msg, err)
                self.assertEqual(self.kc("get", "raycluster", name).returncode, 1)
        # Accepted: quantities as integers and strings, a named probe port (int-or-string).
        self.ok("apply", "-f", "-", stdin=(self.POD % ("goodvals", "          resources: {limits: {cpu: 2, memory: 4Gi}, "
                                                       "requests: {cpu: 500m}}\n          readinessProbe: "
                                                       "{httpGet: {port: dashboard, path: /}}\n")).encode())

    def test_explain_descends_into_pod_templates(self):
        out = self.ok("explain", "raycluster.spec.headGroupSpec.template.spec.containers.imagePullPolicy")
        self.assertIn("FIELD: imagePullPolicy <string>", out)
        self.assertIn("Image pull policy.", out)
        out = self.ok("explain", "raycluster.spec.workerGroupSpecs.template.spec.containers")
        self.assertIn("FIELD: containers <[]Object>", out)
        for field in ("imagePullPolicy\t<string>", "resources\t<Object>", "ports\t<[]Object>"):
            self.assertIn(field, out)
        out = self.ok("explain", "rayjob.spec.submitterPodTemplate.spec.tolerations.operator")
        self.assertIn("FIELD: operator <string>", out)
        out = self.ok("explain", "rayservice.spec.serveService.spec.ports.targetPort")
        self.assertIn("FIELD: targetPort <Object>", out)  # int-or-string: kubectl explain's type guess

    # -- printer columns ---------------------------------------------------------------------------------

    def set_status(self, resource, name, status):
        self.ok("patch", resource, name, "--subresource=status", "--type=merge", "-p",
                json.dumps({"status": status}))

    def row(self, resource, name, *extra):
        rows = parse_table(self.ok("get", resource, *extra))
        mine = [r for r in rows if r.get("NAME") == name]
        self.assertEqual(len(mine), 1, rows)
        return mine[0]

    def test_printer_columns(self):
        self.ok("apply", "-f", "-", stdin=("apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: cols}\n"
                                          "spec:\n  headGroupSpec:\n" + self.HEAD).encode())
        self.ok("apply", "-f", "-", stdin=("apiVersion: ray.io/v1\nkind: RayJob\nmetadata: {name: cols}\n"
                                          "spec:\n  entrypoint: echo hi\n").encode())
        self.ok("apply", "-f", "-", stdin=("apiVersion: ray.io/v1\nkind: RayService\nmetadata: {name: cols}\n"
                                          "spec:\n  rayClusterConfig:\n    headGroupSpec:\n  " + self.HEAD
                                          ).encode())
        self.set_status("raycluster", "cols", {
            "state": "ready", "desiredWorkerReplicas": 3, "availableWorkerReplicas": 2, "desiredCPU": "4",
            "desiredMemory": "8Gi", "desiredGPU": "0", "desiredTPU": "0",
            "head": {"podIP": "127.10.1.7", "serviceIP": "10.96.0.20"}})
        r = self.row("rayclusters", "cols")
        self.assertEqual(list(r), ["NAME", "DESIRED WORKERS", "AVAILABLE WORKERS", "CPUS", "MEMORY", "GPUS",
                                   "STATUS", "AGE"])
        self.assertEqual([r[k] for k in list(r)[1:7]], ["3", "2", "4", "8Gi", "0", "ready"])
        self.assertRegex(r["AGE"], r"^\d+s$")
        w = self.row("rayclusters", "cols", "-o", "wide")
        self.assertEqual((w["TPUS"], w["HEAD POD IP"], w["HEAD SERVICE IP"]), ("0", "127.10.1.7", "10.96.0.20"))
        # The status subresource: a write to the main resource does not change status.
        self.ok("patch", "raycluster", "cols", "--type=merge", "-p", '{"status": {"state": "suspended"}}')
        self.assertEqual(self.get("rayclusters", "cols")["status"]["state"], "ready")

        self.set_status("rayjob", "cols", {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running",
                                           "rayClusterName": "cols-x7k2p", "startTime": "2026-01-02T03:04:05Z"})
        r = self.row("rayjobs", "cols")
        self.assertEqual(list(r), ["NAME", "JOB STATUS", "DEPLOYMENT STATUS", "RAY CLUSTER NAME", "START TIME",
                                   "END TIME", "AGE"])
        self.assertEqual([r[k] for k in list(r)[1:6]],
                         ["RUNNING", "Running", "cols-x7k2p", "2026-01-02T03:04:05Z", ""])

        self.set_status("rayservice", "cols", {"serviceStatus": "Running", "numServeEndpoints": 2})
        r = self.row("rayservices", "cols")
        self.assertEqual(r, {"NAME": "cols", "SERVICE STATUS": "Running", "NUM SERVE ENDPOINTS": "2"})

        # categories: all
        out = self.ok("get", "all", "-o", "name")
        for kind in ("raycluster", "rayjob", "rayservice"):
            self.assertIn("%s.ray.io/cols" % kind, out)

    # -- kustomization, RBAC, controller --------------------------------------------------------------------

    def rendered(self):
        r = subprocess.run([KUBECTL, "kustomize", MANIFESTS], capture_output=True, timeout=60,
                           env=dict(os.environ, HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        return self.objects(text=r.stdout.decode())

    def test_kustomize_renders_offline(self):
        objs = self.rendered()
        got = sorted((o["kind"], o["metadata"]["name"], o["metadata"].get("namespace", "")) for o in objs)
        ns = "raywarden-system"
        self.assertEqual(got, sorted([
            ("ClusterRole", "raywarden-controller", ""), ("ClusterRoleBinding", "raywarden-controller", ""),
            ("CustomResourceDefinition", "rayclusters.ray.io", ""),
            ("CustomResourceDefinition", "rayjobs.ray.io", ""),
            ("CustomResourceDefinition", "rayservices.ray.io", ""),
            ("Deployment", "raywarden-controller", ns), ("Namespace", ns, ""),
            ("PodDisruptionBudget", "raywarden-controller", ns),
            ("Role", "raywarden-leader-election", ns), ("RoleBinding", "raywarden-leader-election", ns),
            ("Service", "raywarden-controller", ns), ("ServiceAccount", "raywarden-controller", ns)]))
        by = {(o["kind"], o["metadata"]["name"]): o for o in objs}
        dep = by[("Deployment", "raywarden-controller")]
        pod = dep["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        # Two replicas, one leader; a rolling update never goes below two Ready replicas.
        self.assertEqual(dep["spec"]["replicas"], 2)
        self.assertEqual(dep["spec"]["strategy"], {"type": "RollingUpdate",
                                                   "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
        pdb = by[("PodDisruptionBudget", "raywarden-controller")]["spec"]
        self.assertEqual((pdb["minAvailable"], pdb["selector"]), (1, dep["spec"]["selector"]))
        (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(term["podAffinityTerm"]["labelSelector"], dep["spec"]["selector"])
        self.assertEqual(term["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname")
        self.assertEqual(pod["serviceAccountName"], "raywarden-controller")
        self.assertEqual(c["command"], ["/raywarden-controller"])
        self.assertIn("--metrics-addr=:8080", c["args"])
        self.assertIn("--health-probe-bind-address=:8082", c["args"])
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(ports, {"metrics": 8080, "health": 8082, "agent": 8478})
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            g = c[probe]["httpGet"]
            self.assertEqual((g["path"], ports.get(g["port"], g["port"])), (path, 8082))
        res = c["resources"]
        self.assertEqual((res["requests"]["cpu"], res["requests"]["memory"]), ("100m", "64Mi"))
        self.assertEqual((res["limits"]["cpu"], res["limits"]["memory"]), ("500m", "128Mi"))
        sc = c["securityContext"]
        self.assertEqual((sc["readOnlyRootFilesystem"], sc["allowPrivilegeEscalation"], sc["capabilities"]),
                         (True, False, {"drop": ["ALL"]}))
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        env = {e["name"]: e.get("value") for e in c["env"]}
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        vols = {v["name"]: v for v in pod["volumes"]}
        self.assertEqual(vols["agent-master-key"]["secret"]["secretName"], "raywarden-agent-master-key")
        self.assertTrue(env["RAYWARDEN_AGENT_KEY_FILE"].startswith(mounts["agent-master-key"] + "/"))
        svc = by[("Service", "raywarden-controller")]["spec"]
        self.assertEqual({p["name"]: (p["port"], p["targetPort"]) for p in svc["ports"]},
                         {"agent": (8478, "agent"), "metrics": (8080, "metrics")})
        self.assertEqual(svc["selector"], dep["spec"]["selector"]["matchLabels"])
        for kind in ("ClusterRoleBinding", "RoleBinding"):
            b = [o for o in objs if o["kind"] == kind][0]
            self.assertEqual(b["subjects"], [{"kind": "ServiceAccount", "name": "raywarden-controller",
                                              "namespace": "raywarden-system"}])

    def test_batch_scheduler_component(self):
        """manifests/batch-scheduler adds the optional PodGroup grants, bound to the controller's
        ServiceAccount, and nothing else."""
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "kustomization.yaml"), "w") as f:
                rel = os.path.relpath(MANIFESTS, d)  # kustomize takes no absolute roots
                f.write("resources: [%s]\ncomponents: [%s]\n" % (rel, os.path.join(rel, "batch-scheduler")))
            r = subprocess.run([KUBECTL, "kustomize", d], capture_output=True, timeout=60,
                               env=dict(os.environ, HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        objs = self.objects(text=r.stdout.decode())
        added = {(o["kind"], o["metadata"]["name"]): o for o in objs}
        base = {(o["kind"], o["metadata"]["name"]) for o in self.rendered()}
        self.assertEqual(set(added) - base, {("ClusterRole", "raywarden-batch-scheduler"),
                                             ("ClusterRoleBinding", "raywarden-batch-scheduler")})
        role = added[("ClusterRole", "raywarden-batch-scheduler")]
        self.assertEqual([(r["apiGroups"], r["resources"], r["verbs"]) for r in role["rules"]],
                         [(["scheduling.volcano.sh"], ["podgroups"], ["create", "delete", "get", "patch"]),
                          (["scheduling.x-k8s.io"], ["podgroups"], ["create", "get"])])
        self.assertEqual(added[("ClusterRoleBinding", "raywarden-batch-scheduler")]["subjects"],
                         [{"kind": "ServiceAccount", "name": "raywarden-controller", "namespace": "raywarden-system"}])

    def test_webhook_component(self):
        """manifests/webhook adds the webhook Service, the ValidatingWebhookConfiguration (every
        webhook failurePolicy Ignore, short timeout, no side effects, ray.io only, served through
        the Service on the controller's --webhook-addr port), its RBAC by name, and nothing else."""
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "kustomization.yaml"), "w") as f:
                rel = os.path.relpath(MANIFESTS, d)
                f.write("resources: [%s]\ncomponents: [%s]\n" % (rel, os.path.join(rel, "webhook")))
            r = subprocess.run([KUBECTL, "kustomize", d], capture_output=True, timeout=60,
                               env=dict(os.environ, HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        # The simulator serves no admissionregistration.k8s.io: the webhook configuration is read
        # as text, everything else through kubectl.
        docs = r.stdout.decode().split("\n---\n")
        vwc = [d for d in docs if "kind: ValidatingWebhookConfiguration" in d]
        self.assertEqual(len(vwc), 1)
        vwc = vwc[0]
        objs = self.objects(text="\n---\n".join(d for d in docs if "kind: ValidatingWebhookConfiguration" not in d))
        added = {(o["kind"], o["metadata"]["name"]): o for o in objs}
        base = {(o["kind"], o["metadata"]["name"]) for o in self.rendered()}
        self.assertEqual(set(added) - base, {
            ("ClusterRole", "raywarden-webhook"), ("ClusterRoleBinding", "raywarden-webhook"),
            ("Role", "raywarden-webhook"), ("RoleBinding", "raywarden-webhook"),
            ("Service", "raywarden-webhook")})
        svc = added[("Service", "raywarden-webhook")]
        dep = added[("Deployment", "raywarden-controller")]["spec"]["template"]["spec"]["containers"][0]
        self.assertIn("--webhook-addr=:9443", dep["args"])
        self.assertIn({"name": "webhook", "containerPort": 9443, "protocol": "TCP"}, dep["ports"])
        self.assertEqual(svc["spec"]["ports"][0]["targetPort"], "webhook")
        self.assertIn("name: raywarden\n", vwc)
        for res in ("rayclusters", "rayjobs", "rayservices"):
            self.assertIn("name: %s.validate.raywarden.io" % res, vwc)
        for line in ("failurePolicy: Ignore", "sideEffects: None", "matchPolicy: Equivalent", "timeoutSeconds: 5",
                     "- ray.io\n", "name: raywarden-webhook\n", "namespace: raywarden-system\n",
                     "path: /validate-ray-io-v1", "port: 443"):
            self.assertEqual(vwc.count(line), 3, line)
        for kind in ("ClusterRoleBinding", "RoleBinding"):
            self.assertEqual(added[(kind, "raywarden-webhook")]["subjects"], [{"kind": "ServiceAccount", "name": "raywarden-controller",
                                                                            "namespace": "raywarden-system"}])

    def test_inject_agent_component(self):
        """manifests/webhook + manifests/inject-agent (raywarden beside KubeRay): the
        MutatingWebhookConfiguration with the two injection webhooks (pod CREATE only, selected by
        the pod label or the namespace label, failurePolicy Ignore, short timeout, no side effects, served through the
        webhook Service), --inject-only on the Deployment, and KubeRay's CRDs left alone."""
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "kustomization.yaml"), "w") as f:
                rel = os.path.relpath(MANIFESTS, d)
                f.write("resources: [%s]\ncomponents: [%s, %s]\n" % (rel, os.path.join(rel, "webhook"),
                                                                     os.path.join(rel, "inject-agent")))
            r = subprocess.run([KUBECTL, "kustomize", d], capture_output=True, timeout=60,
                               env=dict(os.environ, HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        docs = r.stdout.decode().split("\n---\n")
        mwc = [d for d in docs if "kind: MutatingWebhookConfiguration" in d]
        self.assertEqual(len(mwc), 1)
        mwc = mwc[0]
        self.assertIn("name: raywarden\n", mwc)
        self.assertEqual(mwc.count("admissionReviewVersions:"), 2)
        for line in ("name: pods.inject-agent.raywarden.io", "name: namespaces.inject-agent.raywarden.io"):
            self.assertEqual(mwc.count(line), 1, line)
        for line in ("failurePolicy: Ignore", "sideEffects: None", "timeoutSeconds: 5", "reinvocationPolicy: Never",
                     "path: /mutate-pods-agent", "port: 443", "name: raywarden-webhook\n",
                     "namespace: raywarden-system\n", "- CREATE\n", "- pods\n", "key: raywarden.io/inject-agent"):
            self.assertEqual(mwc.count(line), 2, line)
        self.assertIn("raywarden.io/inject-agent: \"true\"", mwc)  # the namespace selector
        self.assertNotIn("UPDATE", mwc)
        self.assertFalse([d for d in docs if "kind: CustomResourceDefinition" in d])
        objs = self.objects(text="\n---\n".join(d for d in docs if "WebhookConfiguration" not in d))
        dep = [o for o in objs if o["kind"] == "Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
        self.assertIn("--inject-only", dep["args"])
        self.assertIn("--webhook-addr=:9443", dep["args"])

    def test_rbac_least_privilege(self):
        """The grants themselves come from the controller's table (TestRbacGenerated); this checks
        the rendered install keeps them least-privilege."""
        objs = self.rendered()
        role = [o for o in objs if o["kind"] == "ClusterRole"][0]
        grants = set()
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                self.assertNotIn("*", rule[field])
            self.assertFalse({"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"]), rule)
            for g in rule["apiGroups"]:
                for r in rule["resources"]:
                    for v in rule["verbs"]:
                        grants.add((g, r, v))
        # What the per-cluster autoscaler Role grants must be held (RBAC escalation check on Role create).
        autoscaler = {("", "pods", v) for v in ("get", "list", "watch", "patch")} | {
            ("", "pods/resize", "patch"), ("ray.io", "rayclusters", "get"), ("ray.io", "rayclusters", "patch")}
        self.assertEqual(autoscaler - grants, set())
        # The RayService switch is a patch: no Service update. Secrets are never listed or deleted,
        # Roles and RoleBindings are only created. The RayJob submitter Job is created, deleted and
        # watched, never read, patched or updated; ConfigMaps (the driver log) only written; the
        # RayJob itself never read by name nor updated (its status has its own subresource).
        self.assertFalse({("", "services", "update"), ("", "secrets", "delete"),
                          ("rbac.authorization.k8s.io", "roles", "list"),
                          ("rbac.authorization.k8s.io", "rolebindings", "watch")} & grants)
        self.assertEqual({g for g in grants if g[0] == "batch"},
                         {("batch", "jobs", v) for v in ("create", "delete", "list", "watch")})
        self.assertEqual({g for g in grants if g[1] == "configmaps"},
                         {("", "configmaps", "create"), ("", "configmaps", "update")})
        self.assertFalse({("ray.io", "rayjobs", "get"), ("ray.io", "rayjobs", "update")} & grants)
        self.assertFalse({g for g in grants if g[0] == "coordination.k8s.io"})
        lease = [o for o in objs if o["kind"] == "Role"][0]
        self.assertEqual(lease["metadata"]["namespace"], "raywarden-system")
        self.assertEqual([(r["apiGroups"], r["resources"], r["verbs"]) for r in lease["rules"]],
                         [(["coordination.k8s.io"], ["leases"], ["create", "get", "update"])])
        with open(os.path.join(MANIFESTS, "rbac", "cluster_role.yaml")) as f:
            text = f.read()
        # Every rule carries a comment saying what uses it.
        self.assertEqual(len(re.findall(r"^# .*\n- apiGroups:", text, re.M)), len(role["rules"]))

    def test_simulated_identity_reads_the_manifests(self):
        """kubesim/controller_identity.py (which binds the controller on simulated clusters) reads
        manifests/rbac exactly as kustomize renders them."""
        sys.path.insert(0, HERE)
        from kubesim import controller_identity
        ours = {(o["kind"], o["metadata"]["name"]): o for o in controller_identity.manifest_objects(REPO)}
        rendered = {(o["kind"], o["metadata"]["name"]): o for o in self.rendered()}
        self.assertEqual(len(ours), 6)
        for key, o in ours.items():
            r = rendered[key]
            for field in ("rules", "subjects", "roleRef"):
                self.assertEqual(o.get(field), r.get(field), (key, field))
            self.assertEqual(o["metadata"].get("namespace"), r["metadata"].get("namespace"), key)

    def test_install_with_kustomize(self):
        r = self.kc("apply", "--server-side", "-k", MANIFESTS)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        key = subprocess.run(["sh", "-c", "head -c 32 /dev/urandom | base64"], capture_output=True,
                             timeout=10).stdout.decode().strip()
        self.ok("-n", "raywarden-system", "create", "secret", "generic", "raywarden-agent-master-key",
                "--from-literal=key=" + key)
        sec = self.get("secret", "raywarden-agent-master-key", ns="raywarden-system")
        self.assertEqual(base64.b64decode(sec["data"]["key"]).decode(), key)
        self.assertEqual(len(base64.b64decode(key)), 32)
        # The Deployment's pods are created (the simulated ReplicaSet controller) with the key mounted.
        sys.path.insert(0, HERE)
        from kubesim.testutil import wait_for

        def two_pods():
            items = json.loads(self.ok("-n", "raywarden-system", "get", "pods", "-l",
                                       "app.kubernetes.io/component=controller", "-o", "json"))["items"]
            return items if len(items) == 2 else None
        pods = wait_for(two_pods, 30, 0.2, what="the controller's two pods")
        self.assertEqual({p["spec"]["serviceAccountName"] for p in pods}, {"raywarden-controller"})
        # Idempotent re-apply.
        again = self.ok("apply", "--server-side", "-k", MANIFESTS)
        self.assertNotIn("created", again)
        # The kubelet runs the controller image as the local build: stop it, so that it does not
        # reconcile the other tests' objects on this cluster.
        self.ok("-n", "raywarden-system", "delete", "deployment", "raywarden-controller")
        wait_for(lambda: not json.loads(self.ok("-n", "raywarden-system", "get", "pods", "-l",
                                                "app.kubernetes.io/component=controller", "-o",
                                                "json"))["items"], 60, 0.2, what="the controller's pods gone")


@unittest.skipUnless(KUBECTL, "kubectl missing")
class TestLocalClusterInstallsOurCRDs(unittest.TestCase):
    def test_up_installs_manifests_crds(self):
        state = tempfile.mkdtemp(prefix="kubesim-mf-up-")
        env = {k: v for k, v in os.environ.items() if k != "RW_SIM_CRD_DIR"}
        try:
            args = [CMD, "up", "--state", state]
            if b"--no-controller" in subprocess.run([CMD, "up", "--help"], capture_output=True,
                                                    timeout=30).stdout:
                args.append("--no-controller")
            r = subprocess.run(args, capture_output=True, timeout=120, env=env)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertIn("installed 3 CRD file(s) from %s" % CRD_DIR, r.stdout.decode())
            out = subprocess.run([KUBECTL, "--kubeconfig", os.path.join(state, "kubeconfig"), "--cache-dir",
                                  os.path.join(state, "kubectl-cache"), "get", "crd", "-l",
                                  "app.kubernetes.io/name=raywarden", "-o", "name"], capture_output=True,
                                 timeout=60).stdout.decode().split()
            self.assertEqual(sorted(out), ["customresourcedefinition.apiextensions.k8s.io/%s.ray.io" % p
                                           for p in sorted(CRD_FILES)])
        finally:
            subprocess.run([CMD, "down", "--state", state], capture_output=True, timeout=60)
            shutil.rmtree(state, ignore_errors=True)


    @unittest.skipUnless(os.path.isdir(CORPUS_CRDS) and os.path.isdir(CORPUS_SAMPLES), "shared/corpus absent")
    def test_replace_kuberay_crds_keeps_objects(self):
        """docs/install.md, "Replacing KubeRay": KubeRay's CRDs installed (server-side, as they must be),
        a RayCluster exists; `kubectl apply --server-side --force-conflicts -f manifests/crds/` swaps the CRDs
        in place, the RayCluster survives unchanged, and later server-side applies work without forcing."""
        state = tempfile.mkdtemp(prefix="kubesim-mf-kr-")
        kc = lambda *a: subprocess.run([KUBECTL, "--kubeconfig", os.path.join(state, "kubeconfig"),  # noqa: E731
                                        "--cache-dir", os.path.join(state, "kubectl-cache")] + list(a),
                                       capture_output=True, timeout=120)
        try:
            args = [CMD, "up", "--state", state, "--quiet"]
            if b"--no-controller" in subprocess.run([CMD, "up", "--help"], capture_output=True,
                                                    timeout=30).stdout:
                args.append("--no-controller")
            r = subprocess.run(args, capture_output=True, timeout=120, env=dict(os.environ, RW_SIM_CRD_DIR=CORPUS_CRDS))
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            r = kc("apply", "-f", os.path.join(CORPUS_SAMPLES, "ray-cluster.sample.yaml"))
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            before = json.loads(kc("get", "raycluster", "raycluster-kuberay", "-o", "json").stdout)
            r = kc("apply", "--server-side", "--force-conflicts", "-f", CRD_DIR)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            out = kc("get", "crd", "-l", "app.kubernetes.io/name=raywarden", "-o", "name").stdout.decode().split()
            self.assertEqual(len(out), 3, out)
            after = json.loads(kc("get", "raycluster", "raycluster-kuberay", "-o", "json").stdout)
            self.assertEqual(after["metadata"]["uid"], before["metadata"]["uid"])
            self.assertEqual(after["spec"], before["spec"])
            r = kc("apply", "--server-side", "-f", CRD_DIR)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertEqual(r.stdout.decode().count("serverside-applied"), 3, r.stdout.decode())
        finally:
            subprocess.run([CMD, "down", "--state", state], capture_output=True, timeout=60)
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
