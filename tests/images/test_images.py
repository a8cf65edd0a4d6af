"""The OCI images made by tests/images/build, checked without a container engine.

Builds the release images (or brings an existing release build up to date),
then for each archive: the image configuration (non-root user, entrypoint,
ports, labels), every layer (no setuid/setgid file, no shell, no package
manager, root-owned, exactly the shared libraries the binary loads), that
skopeo reads it, that a second build gives the same bytes, and that
manifests/images/Dockerfile declares the same. Then it runs the images with a
real OCI runtime (runc or crun, as root; the host's network namespace), or
else chroot()s into the unpacked root: the agent answers /readyz (against a
stub raylet, with its own HTTP client and again through the libcurl it loads
at run time), the controller answers --help. It prints the image sizes and
the agent's memory (RSS, and its container cgroup's usage when a runtime ran
it).

Environment: RW_SOURCE_DIR (the tree), RW_IMAGES_BUILD_DIR (the release build
directory; default RW_SOURCE_DIR/build-release, the one tests/run builds),
RW_IMAGES_RUNTIME (runc, crun or chroot; default the first that works).
"""

import gzip
import http.server
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

TOP = os.environ.get("RW_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("RW_IMAGES_BUILD_DIR") or os.path.join(TOP, "build-release")


def slurp(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


SPEC = json.loads(slurp(os.path.join(TOP, "manifests", "images", "images.json")))
IMAGES = {img["binary"]: img for img in SPEC["images"]}
SHELLS = {"sh", "bash", "dash", "ash", "busybox", "zsh", "ksh"}
PACKAGE_MANAGERS = {"apt", "apt-get", "dpkg", "dpkg-query", "rpm", "yum", "dnf", "apk"}
# Regression bounds, well above what the benchmark VM measures (docs/benchmarks.md, images).
MAX_AGENT_ARCHIVE = 20 << 20
MAX_AGENT_RSS_KIB = 8 << 10
MAX_AGENT_RSS_CURL_KIB = 24 << 10


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def project_version():
    with open(os.path.join(TOP, "CMakeLists.txt")) as f:
        return re.search(r"project\(raywarden VERSION ([0-9.]+)", f.read()).group(1)


def run_build(*extra):
    r = subprocess.run([sys.executable, os.path.join(TOP, "tests", "images", "build"),
                        "--build-dir", BUILD_DIR] + list(extra),
                       text=True, capture_output=True, timeout=1200)
    if r.returncode != 0:
        raise AssertionError("tests/images/build failed:\n" + r.stdout + r.stderr)
    return r.stdout


def archive_path(binary):
    return os.path.join(BUILD_DIR, "images", binary + ".tar")


class Layout:
    """An OCI archive read into memory: index, manifest, config, layer tars."""

    def __init__(self, path):
        self.path = path
        self.blobs = {}
        with tarfile.open(path) as t:
            for m in t:
                if m.isfile():
                    self.blobs[m.name] = t.extractfile(m).read()
        self.index = json.loads(self.blobs["index.json"])
        desc = self.index["manifests"][0]
        self.ref = desc.get("annotations", {}).get("org.opencontainers.image.ref.name")
        self.manifest = self.blob(desc["digest"])
        self.config = self.blob(self.manifest["config"]["digest"])
        self.layers = [self.blobs[self.blob_name(layer["digest"])]
                       for layer in self.manifest["layers"]]

    @staticmethod
    def blob_name(digest):
        algo, hexd = digest.split(":")
        return "blobs/%s/%s" % (algo, hexd)

    def blob(self, digest):
        return json.loads(self.blobs[self.blob_name(digest)])

    def members(self):
        for layer in self.layers:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as t:
                for m in t:
                    yield m

    def unpacked_size(self):
        return sum(m.size for m in self.members())


def ldd_closure(binary, dlopen):
    """Basenames of what the binary loads, found independently of the build script."""
    def ldd(path):
        out = subprocess.run(["ldd", path], text=True, capture_output=True, check=True).stdout
        return set(re.findall(r"(/\S+) \(0x", out))
    libs = ldd(binary)
    for soname in dlopen:
        cache = subprocess.run(["ldconfig", "-p"], text=True, capture_output=True).stdout
        dirs = {os.path.dirname(p) for p in libs}
        path = next(p for p in re.findall(r"^\s*%s \([^)]*\) => (\S+)$" % re.escape(soname),
                                          cache, re.M) if os.path.dirname(p) in dirs)
        libs |= {path} | ldd(path)
    return {os.path.basename(p) for p in libs}


def parse_dockerfile(path):
    """Stages of a Dockerfile: {name: [(INSTRUCTION, text)]} (continuations joined)."""
    stages, cur, buf = {}, None, ""
    for line in slurp(path).splitlines():
        line = line.rstrip("\n")
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        line, buf = buf + line, ""
        instr, _, rest = line.strip().partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.I)
            cur = m.group(2) or m.group(1)
            stages[cur] = [("FROM", m.group(1))]
        else:
            stages[cur].append((instr, rest.strip()))
    return stages


def dockerfile_labels(text, args):
    labels = {}
    for k, v in re.findall(r'(\S+?)="((?:[^"\\]|\\.)*)"', text):
        labels[k] = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], v)
    return labels


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StubRaylet(http.server.BaseHTTPRequestHandler):
    """The dashboard agent's health endpoint as the agent's probe reads it
    (200 "success", docs/agent.md "What each answer means")."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        ok = self.path == "/api/local_raylet_healthz"
        body = b"success" if ok else b"not found"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def http_get(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Runner:
    """Runs an image's unpacked root: with an OCI runtime (runc or crun) when it
    works here, else with chroot() and the image's user (no cgroup of its own)."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.runtime = None
        self.counter = 0

    def unpack(self, binary):
        """A runtime bundle (config.json + rootfs) made by umoci from the archive."""
        dest = os.path.join(self.workdir, "bundle-" + binary)
        if os.path.exists(dest):
            return dest
        layout = os.path.join(self.workdir, "layout-" + binary)
        with tarfile.open(archive_path(binary)) as t:
            t.extractall(layout)
        ref = Layout(archive_path(binary)).ref
        subprocess.run(["umoci", "unpack", "--image", "%s:%s" % (layout, ref), dest],
                       check=True, capture_output=True, timeout=120)
        return dest

    def choose_runtime(self):
        """The first runtime that runs the controller's --version here
        (RW_IMAGES_RUNTIME: only runc, only crun, or chroot)."""
        wanted = os.environ.get("RW_IMAGES_RUNTIME", "")
        if wanted == "chroot":
            return None
        for rt in [wanted] if wanted else ["runc", "crun"]:
            if not shutil.which(rt):
                continue
            code, out, err = self.run_oci(rt, "raywarden-controller", ["--version"])
            if code == 0 and "raywarden" in out + err:
                self.runtime = rt
                return rt
            log("images: %s cannot run a container here (exit %d): %s" % (rt, code, err.strip()[-300:]))
        return None

    def bundle_config(self, binary, args, cgroup):
        bundle = self.unpack(binary)
        with open(os.path.join(bundle, "config.json")) as f:
            cfg = json.load(f)
        proc = cfg["process"]
        proc["terminal"] = False
        proc["args"] = proc["args"][:1] + args
        # What the controller's pods ask for: no capabilities, read-only root.
        for k in proc.get("capabilities", {}):
            proc["capabilities"][k] = []
        cfg["root"]["readonly"] = True
        # The host's network namespace, so that the test reaches the endpoints
        # and the agent reaches the stub raylet on the loopback.
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                      if n["type"] != "network"]
        cfg["linux"]["cgroupsPath"] = cgroup
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(cfg, f)
        return bundle, cfg

    def next_id(self, binary):
        self.counter += 1
        return "rw-images-%d-%d-%s" % (os.getpid(), self.counter, binary)

    def run_oci(self, rt, binary, args):
        cid = self.next_id(binary)
        bundle, _ = self.bundle_config(binary, args, "/" + cid)
        try:
            r = subprocess.run([rt, "run", "--bundle", bundle, cid], text=True,
                               capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
            return r.returncode, r.stdout, r.stderr
        finally:
            subprocess.run([rt, "delete", "-f", cid], capture_output=True, timeout=60)

    def chroot_cmd(self, binary, args):
        root = os.path.join(self.unpack(binary), "rootfs")
        uid, gid = SPEC["user"]["uid"], SPEC["user"]["gid"]

        def enter():
            os.chroot(root)
            os.chdir("/")
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        return ["/" + binary] + args, enter

    def run_once(self, binary, args):
        if self.runtime:
            return self.run_oci(self.runtime, binary, args)
        cmd, enter = self.chroot_cmd(binary, args)
        r = subprocess.run(cmd, preexec_fn=enter, text=True, capture_output=True, timeout=60,
                           env={}, stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout, r.stderr

    def start(self, binary, args, logfile):
        """Starts a long-running container; returns (pid, cgroup dir or None, stop)."""
        out = open(logfile, "w")
        if self.runtime:
            cid = self.next_id(binary)
            bundle, _ = self.bundle_config(binary, args, "/" + cid)
            pidfile = os.path.join(self.workdir, cid + ".pid")
            subprocess.run([self.runtime, "run", "-d", "--pid-file", pidfile, "--bundle", bundle,
                            cid], stdout=out, stderr=out, stdin=subprocess.DEVNULL, check=True,
                           timeout=60)
            pid = int(slurp(pidfile).strip())

            def stop():
                subprocess.run([self.runtime, "kill", cid, "KILL"], capture_output=True, timeout=30)
                subprocess.run([self.runtime, "delete", "-f", cid], capture_output=True, timeout=60)
                out.close()
            return pid, container_memory_cgroup(pid), stop
        cmd, enter = self.chroot_cmd(binary, args)
        p = subprocess.Popen(cmd, preexec_fn=enter, stdout=out, stderr=out, env={},
                             stdin=subprocess.DEVNULL)

        def stop_chroot():
            p.kill()
            p.wait(timeout=30)
            out.close()
        return p.pid, None, stop_chroot


def container_memory_cgroup(pid):
    """The directory of the process's memory cgroup (v2 unified, or v1 memory)."""
    with open("/proc/%d/cgroup" % pid) as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, ctrls, path in lines:
        if "memory" in ctrls.split(","):
            d = "/sys/fs/cgroup/memory" + path
            if os.path.exists(os.path.join(d, "memory.usage_in_bytes")):
                return d
    for hid, ctrls, path in lines:
        if hid == "0" and ctrls == "":
            d = "/sys/fs/cgroup" + path
            if os.path.exists(os.path.join(d, "memory.current")):
                return d
    return None


def cgroup_memory(d):
    """(current, peak) bytes of a memory cgroup; peak None where the kernel has none."""
    def read(name):
        try:
            with open(os.path.join(d, name)) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError):
            return None
    if os.path.exists(os.path.join(d, "memory.current")):
        return read("memory.current"), read("memory.peak")
    return read("memory.usage_in_bytes"), read("memory.max_usage_in_bytes")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def load_build_script():
    import importlib.machinery
    import importlib.util
    path = os.path.join(TOP, "tests", "images", "build")
    loader = importlib.machinery.SourceFileLoader("rw_images_build", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class TestBuildScriptParts(unittest.TestCase):
    """The build script's pure parts, on tables (no build, no root)."""

    def test_parse_ldd(self):
        build = load_build_script()
        cases = [
            ("vdso skipped, interpreter and libraries kept",
             "\tlinux-vdso.so.1 (0x00007ffd)\n"
             "\tlibuv.so.1 => /lib/x86_64-linux-gnu/libuv.so.1 (0x00007f6e392b0000)\n"
             "\t/lib64/ld-linux-x86-64.so.2 (0x00007f6e3935b000)\n",
             ["/lib/x86_64-linux-gnu/libuv.so.1", "/lib64/ld-linux-x86-64.so.2"]),
            ("arm64 interpreter",
             "\tlinux-vdso.so.1 (0x0000ffff)\n\tlibc.so.6 => /lib/aarch64-linux-gnu/libc.so.6 "
             "(0x0000ffff9a)\n\t/lib/ld-linux-aarch64.so.1 (0x0000ffff9b)\n",
             ["/lib/aarch64-linux-gnu/libc.so.6", "/lib/ld-linux-aarch64.so.1"]),
            ("static binary", "\tnot a dynamic executable\n", []),
            ("empty", "", []),
        ]
        for name, text, want in cases:
            with self.subTest(name):
                self.assertEqual(build.parse_ldd(text), want)
        with self.assertRaises(SystemExit):
            build.parse_ldd("\tlibcurl.so.4 => not found\n")

    def test_parse_apt_policy(self):
        build = load_build_script()
        text = ("libssl3:\n  Installed: 3.0.19-1~deb12u2\n  Candidate: 3.0.22-1~deb12u2\n"
                "  Version table:\n     3.0.22-1~deb12u2 500\n"
                "libc6:amd64:\n  Installed: 2.36-9+deb12u14\n  Candidate: 2.36-9+deb12u14\n"
                "libfoo:\n  Installed: (none)\n  Candidate: 1.0\n")
        self.assertEqual(build.parse_apt_policy(text), {
            "libssl3": ("3.0.19-1~deb12u2", "3.0.22-1~deb12u2"),
            "libc6": ("2.36-9+deb12u14", "2.36-9+deb12u14"),
            "libfoo": ("(none)", "1.0"),
        })
        self.assertEqual(build.parse_apt_policy(""), {})

    def test_release_cache_problem(self):
        build = load_build_script()
        cases = [
            ({"CMAKE_BUILD_TYPE": "Release", "RW_SANITIZE": "OFF", "RW_FUZZ": "OFF"}, None),
            ({"CMAKE_BUILD_TYPE": "Release"}, None),
            ({"CMAKE_BUILD_TYPE": "Debug"}, "CMAKE_BUILD_TYPE is 'Debug', not Release"),
            ({"CMAKE_BUILD_TYPE": "RelWithDebInfo"},
             "CMAKE_BUILD_TYPE is 'RelWithDebInfo', not Release"),
            ({"CMAKE_BUILD_TYPE": "Release", "RW_SANITIZE": "ON"}, "RW_SANITIZE is on"),
            ({"CMAKE_BUILD_TYPE": "Release", "RW_FUZZ": "TRUE"}, "RW_FUZZ is on"),
        ]
        for cache, want in cases:
            with self.subTest(cache=cache):
                self.assertEqual(build.release_cache_problem(cache), want)


class TestImages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("umoci"):
            raise unittest.SkipTest("umoci is not installed (.ci/install-deps installs it)")
        if os.geteuid() != 0:
            raise unittest.SkipTest("the image build and runs need root (file owners, chroot)")
        t0 = time.monotonic()
        cls.build_output = run_build()
        log("images: built in %.1f s\n%s" % (time.monotonic() - t0, cls.build_output.strip()))
        cls.layouts = {b: Layout(archive_path(b)) for b in IMAGES}
        cls.version = project_version()

    def test_config(self):
        user = "%d:%d" % (SPEC["user"]["uid"], SPEC["user"]["gid"])
        for binary, img in IMAGES.items():
            with self.subTest(image=binary):
                lay = self.layouts[binary]
                cfg = lay.config["config"]
                self.assertEqual(lay.ref, "%s:%s" % (img["name"], self.version))
                self.assertEqual(lay.index["manifests"][0]["annotations"]["io.containerd.image.name"],
                                 "docker.io/%s:%s" % (img["name"], self.version))
                self.assertEqual(cfg["User"], user)
                self.assertNotIn(cfg["User"].split(":")[0], ("", "0", "root"))
                self.assertEqual(cfg["Entrypoint"], ["/" + binary])
                self.assertFalse(cfg.get("Cmd"))
                self.assertEqual(cfg.get("Env"), SPEC["env"])
                self.assertEqual(sorted(cfg.get("ExposedPorts", {})), sorted(img["ports"]))
                labels = cfg["Labels"]
                for key in ("title", "description", "version", "revision", "source", "licenses",
                            "vendor"):
                    self.assertTrue(labels.get("org.opencontainers.image." + key),
                                    "label %s missing" % key)
                self.assertEqual(labels["org.opencontainers.image.version"], self.version)
                self.assertEqual(labels["org.opencontainers.image.title"], binary)
                for k, v in SPEC["labels"].items():
                    self.assertEqual(labels[k], v)
                self.assertEqual(lay.config["architecture"], {"x86_64": "amd64",
                                                              "aarch64": "arm64"}.get(
                                                                  os.uname().machine,
                                                                  lay.config["architecture"]))

    def test_layers(self):
        for binary, img in IMAGES.items():
            with self.subTest(image=binary):
                lay = self.layouts[binary]
                names, libs = set(), set()
                for m in lay.members():
                    name = "/" + m.name.strip("/").lstrip("./")
                    names.add(name)
                    base = os.path.basename(name)
                    self.assertFalse(m.mode & 0o6000, "%s is setuid/setgid" % name)
                    self.assertEqual((m.uid, m.gid), (0, 0), "%s not owned by root" % name)
                    self.assertTrue(m.isfile() or m.isdir(), "%s: not a file or directory" % name)
                    if m.isfile():
                        self.assertNotIn(base, SHELLS, "shell in the image: " + name)
                        self.assertNotIn(base, PACKAGE_MANAGERS, "package manager: " + name)
                    if m.isfile() and (m.mode & 0o111):
                        self.assertTrue(base == binary or base.startswith("ld-linux"),
                                        "unexpected program %s" % name)
                    if re.search(r"\.so(\.|$)", base):
                        libs.add(base)
                self.assertNotIn("/bin/sh", names)
                self.assertFalse([n for n in names if n.startswith(("/bin/", "/sbin/",
                                                                    "/usr/bin/", "/usr/sbin/"))])
                for path in ("/" + binary, "/etc/passwd", "/etc/group",
                             "/etc/ssl/certs/ca-certificates.crt"):
                    self.assertIn(path, names)
                expected = ldd_closure(os.path.join(BUILD_DIR, "bin", binary), img["dlopen"])
                self.assertEqual(libs, expected)
                if img["dlopen"]:
                    self.assertIn("libcurl.so.4", libs)
                size = os.path.getsize(archive_path(binary))
                log("images: %s: archive %.2f MiB, unpacked %.2f MiB, %d libraries" %
                    (lay.ref, size / 2**20, lay.unpacked_size() / 2**20, len(libs)))
                if binary == "raywarden-agent":
                    self.assertLess(size, MAX_AGENT_ARCHIVE)

    def test_passwd(self):
        lay = self.layouts["raywarden-agent"]
        files = {}
        for layer in lay.layers:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as t:
                for m in t:
                    if m.name.lstrip("./") in ("etc/passwd", "etc/group"):
                        files[m.name.lstrip("./")] = t.extractfile(m).read().decode()
        u = SPEC["user"]
        self.assertIn("%s:x:%d:%d:" % (u["name"], u["uid"], u["gid"]), files["etc/passwd"])
        self.assertIn("%s:x:%d:" % (u["name"], u["gid"]), files["etc/group"])
        for line in files["etc/passwd"].splitlines():
            self.assertTrue(line.endswith(":/sbin/nologin"), line)

    def test_skopeo_reads_archives(self):
        if not shutil.which("skopeo"):
            self.skipTest("skopeo is not installed (.ci/install-deps installs it)")
        for binary in IMAGES:
            with self.subTest(image=binary):
                r = subprocess.run(["skopeo", "inspect", "--config",
                                    "oci-archive:" + archive_path(binary)],
                                   text=True, capture_output=True, timeout=120)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(r.stdout)["config"]["Entrypoint"], ["/" + binary])
                # docs/images.md: the archive `docker load` reads (any Docker version).
                ref = "%s:%s" % (IMAGES[binary]["name"], self.version)
                with tempfile.TemporaryDirectory(dir=BUILD_DIR) as tmp:
                    out = os.path.join(tmp, binary + "-docker.tar")
                    r = subprocess.run(["skopeo", "copy", "-q", "oci-archive:" + archive_path(binary),
                                        "docker-archive:%s:%s" % (out, ref)],
                                       text=True, capture_output=True, timeout=120)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    with tarfile.open(out) as t:
                        manifest = json.load(t.extractfile("manifest.json"))
                    self.assertEqual(manifest[0]["RepoTags"], ["docker.io/" + ref])

    def test_private_registry_overlay(self):
        """The overlay of docs/images.md, as printed there, points the Deployment at
        the registry's controller image and the controller at its agent image."""
        if not shutil.which("kubectl"):
            self.skipTest("kubectl is not installed")
        doc = slurp(os.path.join(TOP, "docs", "images.md"))
        m = re.search(r"```yaml\n(# my-overlay/kustomization.yaml\n.*?)```", doc, re.S)
        self.assertTrue(m, "docs/images.md has no my-overlay/kustomization.yaml block")
        with tempfile.TemporaryDirectory() as tmp:
            overlay = os.path.join(tmp, "my-overlay")
            os.makedirs(overlay)
            rel = os.path.relpath(os.path.join(TOP, "manifests"), overlay)
            with open(os.path.join(overlay, "kustomization.yaml"), "w") as f:
                f.write(m.group(1).replace("../manifests", rel))
            r = subprocess.run(["kubectl", "kustomize", overlay], text=True, capture_output=True,
                               timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        deployment = r.stdout[r.stdout.index("kind: Deployment"):]
        self.assertIn("image: registry.example.com/raywarden/raywarden-controller:%s" %
                      self.version, deployment)
        self.assertIn("- --agent-image=registry.example.com/raywarden/raywarden-agent:%s" %
                      self.version, deployment)

    def test_reproducible(self):
        before = {b: slurp(archive_path(b), "rb") for b in IMAGES}
        run_build("--no-build")
        for binary in IMAGES:
            with self.subTest(image=binary):
                self.assertEqual(slurp(archive_path(binary), "rb"), before[binary],
                                 "a second build of the same tree differs")

    def test_dockerfile_matches(self):
        path = os.path.join(TOP, "manifests", "images", "Dockerfile")
        stages = parse_dockerfile(path)
        build = stages["build"]
        runs = " ".join(t for i, t in build if i == "RUN")
        self.assertIn("tests/images/build --build-dir /build --rootfs-only", runs)
        # The build stage installs every library package the project builds with.
        with open(os.path.join(TOP, ".ci", "install-deps")) as f:
            dev = set(re.findall(r"\b(lib[a-z0-9-]+-dev)\b", f.read())) - {"libclang-rt-14-dev"}
        for pkg in sorted(dev):
            self.assertIn(pkg, runs)
        user = "%d:%d" % (SPEC["user"]["uid"], SPEC["user"]["gid"])
        for binary, img in IMAGES.items():
            with self.subTest(image=binary):
                stage = stages[binary.replace("raywarden-", "")]
                instr = {}
                for i, t in stage:
                    instr.setdefault(i, []).append(t)
                self.assertEqual(instr["FROM"], ["scratch"])
                self.assertEqual(instr["COPY"], ["--from=build /build/images/rootfs/%s/ /" % binary])
                self.assertEqual(instr["USER"], [user])
                self.assertEqual(instr["ENV"], SPEC["env"])
                self.assertEqual(json.loads(instr["ENTRYPOINT"][0]), ["/" + binary])
                self.assertEqual(sorted(" ".join(instr["EXPOSE"]).split()), sorted(img["ports"]))
                self.assertNotIn("CMD", instr)
                args = dict(a.split("=", 1) for a in instr["ARG"])
                self.assertEqual(args["VERSION"], self.version)
                labels = dockerfile_labels(" ".join(instr["LABEL"]), args)
                want = dict(self.layouts[binary].config["config"]["Labels"])
                want["org.opencontainers.image.revision"] = args["REVISION"]
                self.assertEqual(labels, want)

    def test_run(self):
        if not sys.platform.startswith("linux"):
            self.skipTest("needs Linux")
        work = tempfile.mkdtemp(prefix="rw-images-", dir=BUILD_DIR)
        self.addCleanup(shutil.rmtree, work, True)
        runner = Runner(work)
        rt = runner.choose_runtime()
        if not rt:
            log("images: running the unpacked roots with chroot (%s)" %
                ("RW_IMAGES_RUNTIME=chroot" if os.environ.get("RW_IMAGES_RUNTIME") == "chroot"
                 else "no OCI runtime works here"))
        how = rt or "chroot"

        code, out, err = runner.run_once("raywarden-controller", ["--help"])
        self.assertEqual(code, 0, err)
        self.assertIn("--agent-image", out + err)

        figures = {"bench": "images", "runner": how}
        for binary in IMAGES:
            short = binary.replace("raywarden-", "")
            figures[short + "_archive_bytes"] = os.path.getsize(archive_path(binary))
            figures[short + "_unpacked_bytes"] = self.layouts[binary].unpacked_size()

        stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StubRaylet)
        threading.Thread(target=stub.serve_forever, daemon=True).start()
        self.addCleanup(stub.server_close)
        self.addCleanup(stub.shutdown)
        for light in ("true", "false"):
            with self.subTest(light_probes=light):
                port = free_port()
                logfile = os.path.join(work, "agent-%s.log" % light)
                pid, cg, stop = runner.start("raywarden-agent", [
                    "--listen-host", "127.0.0.1", "--port", str(port),
                    "--probe-host", "127.0.0.1", "--raylet-port", str(stub.server_port),
                    "--probe-interval-ms", "200", "--probe-timeout-ms", "150",
                    "--light-probes", light, "--pod-name", "images-test"], logfile)
                try:
                    deadline = time.monotonic() + 60
                    status = body = None
                    while time.monotonic() < deadline:
                        try:
                            status, body = http_get("http://127.0.0.1:%d/readyz" % port)
                        except OSError as e:
                            status, body = None, str(e)
                        if status == 200:
                            break
                        time.sleep(0.1)
                    self.assertEqual(status, 200, "agent not ready: %s\n%s" %
                                     (body, slurp(logfile)))
                    agent_log = slurp(logfile)
                    if light == "false":
                        self.assertIn("libcurl loaded", agent_log)
                    else:
                        self.assertNotIn("libcurl loaded", agent_log)
                    rss = rss_kib(pid)
                    key = "agent" if light == "true" else "agent_libcurl"
                    figures[key + "_rss_kib"] = rss
                    mem = ""
                    if cg:
                        cur, peak = cgroup_memory(cg)
                        figures[key + "_cgroup_bytes"] = cur
                        figures[key + "_cgroup_peak_bytes"] = peak
                        mem = ", cgroup memory %.2f MiB (peak %s)" % (
                            cur / 2**20, "%.2f MiB" % (peak / 2**20) if peak else "n/a")
                    log("images: agent (%s, light probes %s, %s): ready, RSS %.2f MiB%s" %
                        (how, light, "libcurl loaded" if light == "false" else "no libcurl",
                         rss / 1024, mem))
                    self.assertLess(rss, MAX_AGENT_RSS_KIB if light == "true"
                                    else MAX_AGENT_RSS_CURL_KIB)
                finally:
                    stop()
        figures.update(date=time.strftime("%Y-%m-%d", time.gmtime()), cpus=os.cpu_count(),
                       load_avg=[round(x, 2) for x in os.getloadavg()])
        log(json.dumps(figures))


if __name__ == "__main__":
    unittest.main()
