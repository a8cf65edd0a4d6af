"""Volumes and mounts of the kubelet simulator.

Every volume of a pod is materialised under the pod's directory in the state dir
(https://kubernetes.io/docs/concepts/storage/volumes/): emptyDir (medium Memory on
the /dev/shm tmpfs), configMap, secret (base64-decoded), downwardAPI, projected
(serviceAccountToken, configMap, secret, downwardAPI), hostPath, and a per-claim
directory standing in for a persistentVolumeClaim.

Containers see their volumeMounts at the absolute paths the manifest asks for
through a private mount namespace per container process (`unshare -m` + bind
mounts, root only); without that, paths in command lines and environment values
are rewritten to the host directories instead (see docs/local-cluster.md).
"""

import base64
import fcntl
import json
import os
import shlex
import shutil
import stat
import subprocess
import threading
import time

from .kubelet_env import field_ref_value, resource_field_value

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# Directories that an image provides (its WORKDIR and declared volumes), per image
# kind, as in the upstream Dockerfiles: rayproject/ray works in /home/ray; the
# redis image declares VOLUME /data and WORKDIR /data.
IMAGE_DIRS = {"ray": ["/home/ray"], "redis": ["/data"]}
IMAGE_WORKDIR = {"ray": "/home/ray", "redis": "/data"}


class VolumeError(Exception):
    """A volume cannot be set up (missing non-optional ConfigMap/Secret): the kubelet
    keeps the pod in ContainerCreating and reports FailedMount."""


def _write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _kv_payload(data, items, default_mode):
    """{relative path: (bytes, mode)} of a ConfigMap/Secret payload: all keys, or only
    the listed items at their paths
    (https://kubernetes.io/docs/concepts/configuration/configmap/#using-configmaps-as-files-from-a-pod)."""
    out = {}
    if items:
        for it in items:
            key = it.get("key")
            if key not in data:
                raise VolumeError("key %s not found" % key)
            out[it.get("path", key)] = (data[key], it.get("mode", default_mode))
    else:
        for k, v in data.items():
            out[k] = (v, default_mode)
    return out


def _kv_files(dest, data, items, default_mode):
    """Write a ConfigMap/Secret payload as plain files (projected volumes)."""
    os.makedirs(dest, exist_ok=True)
    for rel, (v, mode) in _kv_payload(data, items, default_mode).items():
        _write(os.path.join(dest, rel), v, mode)


DATA_DIR = "..data"


def _read_payload(dest):
    """The payload currently published in an atomically written directory, or None."""
    cur = os.path.join(dest, DATA_DIR)
    if not os.path.islink(cur):
        return None
    base = os.path.join(dest, os.readlink(cur))
    out = {}
    for root, _dirs, files in os.walk(base):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, base)] = (fh.read(), stat.S_IMODE(os.lstat(p).st_mode))
    return out


def atomic_write(dest, payload):
    """Publish payload ({relative path: (bytes, mode)}) in dest the way the kubelet's
    AtomicWriter does (pkg/volume/util/atomic_writer.go): the files go into a new
    hidden timestamped directory, a symlink ..data_tmp to it is renamed over ..data
    (one atomic step for every file), each top-level name is a symlink through ..data
    (key -> ..data/key), and the previous directory is removed. Readers see the old
    or the new payload, never a mix. Returns True when something changed."""
    os.makedirs(dest, exist_ok=True)
    payload = {k: (v.encode() if isinstance(v, str) else v, m) for k, (v, m) in payload.items()}
    if _read_payload(dest) == payload:
        return False
    old = os.readlink(os.path.join(dest, DATA_DIR)) if os.path.islink(os.path.join(dest, DATA_DIR)) else None
    ts = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + "%09d" % (time.time_ns() % 1000000000)
    tsdir = os.path.join(dest, ts)
    os.makedirs(tsdir)
    # The directory holding the payload is world-readable, as the kubelet's (0755).
    os.chmod(tsdir, 0o755)
    for rel, (data, mode) in payload.items():
        _write(os.path.join(tsdir, rel), data, mode)
    tmp = os.path.join(dest, DATA_DIR + "_tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(ts, tmp)
    os.rename(tmp, os.path.join(dest, DATA_DIR))
    top = {rel.split("/", 1)[0] for rel in payload}
    for name in top:
        link = os.path.join(dest, name)
        if not os.path.islink(link):
            if os.path.lexists(link):
                remove_tree(link) if os.path.isdir(link) else os.unlink(link)
            os.symlink(os.path.join(DATA_DIR, name), link)
    for name in os.listdir(dest):
        p = os.path.join(dest, name)
        if not name.startswith("..") and name not in top and os.path.islink(p):
            os.unlink(p)
    if old and old != ts:
        remove_tree(os.path.join(dest, old))
    return True


def _payload(obj, kind):
    data = {}
    if kind == "secret":
        for k, v in (obj.get("data") or {}).items():
            data[k] = base64.b64decode(v)
        for k, v in (obj.get("stringData") or {}).items():
            data[k] = v.encode()
    else:
        for k, v in (obj.get("data") or {}).items():
            data[k] = v.encode()
        for k, v in (obj.get("binaryData") or {}).items():
            data[k] = base64.b64decode(v)
    return data


def _downward_files(dest, items, pod, pod_ip, host_ip, default_mode, node_allocatable=None):
    os.makedirs(dest, exist_ok=True)
    spec = pod.get("spec") or {}
    for it in items or []:
        if "fieldRef" in it:
            val = field_ref_value(pod, it["fieldRef"].get("fieldPath", ""), pod_ip, host_ip)
        elif "resourceFieldRef" in it:
            r = it["resourceFieldRef"]
            target = {}
            for c in spec.get("containers") or []:
                if c.get("name") == r.get("containerName"):
                    target = c
            val = resource_field_value(target, r.get("resource", ""), r.get("divisor"), node_allocatable)
        else:
            continue
        _write(os.path.join(dest, it["path"]), val, it.get("mode", default_mode))


def materialise(pod, pod_dir, lookup, pod_ip, host_ip, sa_token="", ca_pem="", shm_root="/dev/shm/kubesim"):
    """Create every volume of pod; returns {volume name: host path}.

    lookup(kind, name) -> object or None, kind in {"configmaps", "secrets"}."""
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    ns = md.get("namespace", "default")
    uid = md.get("uid", md.get("name", "pod"))
    out = {}
    for vol in spec.get("volumes") or []:
        name = vol.get("name")
        dest = os.path.join(pod_dir, "volumes", name)
        if "emptyDir" in vol:
            ed = vol.get("emptyDir") or {}
            if ed.get("medium") == "Memory" and os.path.isdir(os.path.dirname(shm_root)):
                # medium: Memory is a tmpfs (https://kubernetes.io/docs/concepts/storage/volumes/#emptydir).
                dest = os.path.join(shm_root, uid, name)
            os.makedirs(dest, exist_ok=True)
            os.chmod(dest, 0o777)
        elif "configMap" in vol or "secret" in vol:
            kind = "configMap" if "configMap" in vol else "secret"
            src = vol[kind] or {}
            oname = src.get("name") if kind == "configMap" else src.get("secretName")
            obj = lookup("configmaps" if kind == "configMap" else "secrets", oname)
            mode = src.get("defaultMode", 0o644)
            if obj is None:
                if not src.get("optional"):
                    raise VolumeError('%s "%s" not found' % (kind, oname))
                os.makedirs(dest, exist_ok=True)
            else:
                atomic_write(dest, _kv_payload(_payload(obj, "secret" if kind == "secret" else "cm"),
                                               src.get("items"), mode))
        elif "downwardAPI" in vol:
            src = vol["downwardAPI"] or {}
            _downward_files(dest, src.get("items"), pod, pod_ip, host_ip, src.get("defaultMode", 0o644))
        elif "projected" in vol:
            src = vol["projected"] or {}
            mode = src.get("defaultMode", 0o644)
            os.makedirs(dest, exist_ok=True)
            for s in src.get("sources") or []:
                if "serviceAccountToken" in s:
                    # The simulator has one bearer token; it stands in for a bound token
                    # from the TokenRequest API.
                    _write(os.path.join(dest, s["serviceAccountToken"].get("path", "token")), sa_token, mode)
                elif "configMap" in s or "secret" in s:
                    kind = "configMap" if "configMap" in s else "secret"
                    ref = s[kind] or {}
                    obj = lookup("configmaps" if kind == "configMap" else "secrets", ref.get("name"))
                    if obj is None:
                        if ref.get("optional"):
                            continue
                        raise VolumeError('%s "%s" not found' % (kind, ref.get("name")))
                    data = _payload(obj, "secret" if kind == "secret" else "cm")
                    if kind == "configMap" and ref.get("name") == "kube-root-ca.crt" and not data and ca_pem:
                        data = {"ca.crt": ca_pem.encode()}
                    _kv_files(dest, data, ref.get("items"), mode)
                elif "downwardAPI" in s:
                    _downward_files(dest, (s["downwardAPI"] or {}).get("items"), pod, pod_ip, host_ip, mode)
        elif "hostPath" in vol:
            hp = vol["hostPath"] or {}
            dest = hp.get("path", "/")
            if hp.get("type") in ("DirectoryOrCreate",) and not os.path.exists(dest):
                os.makedirs(dest, exist_ok=True)
        elif "persistentVolumeClaim" in vol:
            claim = (vol["persistentVolumeClaim"] or {}).get("claimName", name)
            dest = os.path.join(os.path.dirname(os.path.dirname(pod_dir)), "pvc", ns, claim)
            os.makedirs(dest, exist_ok=True)
        else:
            os.makedirs(dest, exist_ok=True)
        out[name] = dest
    return out


def resync(pod, volume_paths, lookup):
    """Bring the pod's secret and configMap volumes up to date with their objects, as
    the kubelet does on each pod sync (the real one every --sync-frequency, 1 min by
    default, with a watch-fed cache: an update shows within about a minute; subPath
    mounts never see it). An object that is gone keeps its last content. lookup(kind,
    name) -> object or None. Returns the names of the volumes rewritten."""
    changed = []
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        kind = "configMap" if "configMap" in vol else "secret" if "secret" in vol else None
        dest = volume_paths.get(vol.get("name"))
        if kind is None or not dest:
            continue
        src = vol[kind] or {}
        oname = src.get("name") if kind == "configMap" else src.get("secretName")
        obj = lookup("configmaps" if kind == "configMap" else "secrets", oname)
        if obj is None:
            continue
        try:
            payload = _kv_payload(_payload(obj, "secret" if kind == "secret" else "cm"), src.get("items"),
                                  src.get("defaultMode", 0o644))
            if atomic_write(dest, payload):
                changed.append(vol.get("name"))
        except (VolumeError, OSError, ValueError):
            continue
    return changed


# Volume types whose ownership the kubelet sets to the pod's fsGroup, and whether it mounts them
# read-only (pkg/volume/volume_linux.go SetVolumeOwnership: group fsGroup, mode |= 0440 on a
# read-only volume, 0660 otherwise, directories also setgid and g+x).
FS_GROUP_VOLUMES = {"secret": True, "configMap": True, "downwardAPI": True, "projected": True, "emptyDir": False}


def apply_fs_group(pod, volume_paths):
    """Give the pod's volumes to its securityContext.fsGroup, as the kubelet does before the
    containers start (a no-op without fsGroup)."""
    group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    if group is None:
        return
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        kind = next((k for k in FS_GROUP_VOLUMES if k in vol), None)
        path = volume_paths.get(vol.get("name"))
        if kind is None or not path or not os.path.isdir(path):
            continue
        mask = 0o440 if FS_GROUP_VOLUMES[kind] else 0o660
        for root, dirs, files in os.walk(path):
            for name in [None] + dirs + files:
                p = root if name is None else os.path.join(root, name)
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    continue  # the atomic writer's ..data links; their targets are walked
                os.lchown(p, -1, int(group))
                m = stat.S_IMODE(st.st_mode) | mask
                if stat.S_ISDIR(st.st_mode):
                    m |= stat.S_ISGID | 0o110
                os.chmod(p, m)


def service_account_dir(pod_dir, token, ca_pem, namespace):
    """The files of the kube-api-access projected volume that the ServiceAccount
    admission plugin adds (https://kubernetes.io/docs/concepts/security/service-accounts/#get-a-token)."""
    d = os.path.join(pod_dir, "volumes", "kube-api-access-sim")
    _write(os.path.join(d, "token"), token or "")
    _write(os.path.join(d, "ca.crt"), ca_pem or "")
    _write(os.path.join(d, "namespace"), namespace)
    return d


def needs_sa_mount(pod, container):
    """Never: the ServiceAccount admission plugin of the API server adds the kube-api-access
    projected volume and its mounts (plugin/pkg/admission/serviceaccount/admission.go); the
    kubelet mounts only what the pod spec says, so a pod made without admission, or whose
    ServiceAccount has automountServiceAccountToken false, gets no token."""
    return False


def container_mounts(pod, container, volume_paths, sa_dir=None, image_root=None, kind="idle"):
    """Bind mounts of one container: [(host source, container path, read only)],
    parents before children."""
    mounts = []
    if image_root:
        for d in IMAGE_DIRS.get(kind, []):
            src = os.path.join(image_root, d.lstrip("/"))
            os.makedirs(src, exist_ok=True)
            mounts.append((src, d, False))
    for m in container.get("volumeMounts") or []:
        src = volume_paths.get(m.get("name"))
        if src is None:
            continue
        sub = m.get("subPath") or ""
        if sub:
            src = os.path.join(src, sub)
            if not os.path.exists(src):
                # A missing subPath is created as a directory (pkg/volume/util/subpath).
                os.makedirs(src, exist_ok=True)
        mounts.append((src, m.get("mountPath"), bool(m.get("readOnly"))))
    if sa_dir and needs_sa_mount(pod, container):
        mounts.append((sa_dir, SA_DIR, True))
    mounts.sort(key=lambda t: t[1].rstrip("/").count("/"))
    return mounts


# Every kubelet simulator on this host holds a shared flock on this file while it lives. A
# host-side mount target is shared by every local cluster whose pods mount there (one cluster's
# kubelet creates /var/run/secrets/kubernetes.io/serviceaccount, another's finds it and binds
# onto it too), and since Linux 3.18 removing a directory that is a mount point in another mount
# namespace detaches that mount there (rmdir(2), "EBUSY" no longer applies across namespaces):
# a running container of another cluster would lose its service-account token. So a kubelet
# removes the targets it made only when it holds the lock alone; until then they are listed in
# HOST_PENDING, and whichever kubelet is next alone on the host removes them.
HOST_LOCK = "/run/kubesim-mountpoints.lock"
HOST_PENDING = "/run/kubesim-mountpoints-pending.json"


def _pending_update(path, add=(), drop=()):
    """Read-modify-write the host's list of mount targets left for the last kubelet; returns
    the list as it was before (an exclusive flock on the file serialises the kubelets)."""
    try:
        with open(path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            try:
                old = json.loads(f.read() or "[]")
            except ValueError:
                old = []
            new = sorted((set(old) | set(add)) - set(drop))
            f.seek(0)
            f.truncate()
            json.dump(new, f)
            return old
    except OSError:
        return []


def pending_mount_targets(path=HOST_PENDING):
    """The mount targets a kubelet left on the host for the last kubelet to remove."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []


class MountPoints:
    """Host-side mount targets the simulator had to create (a bind mount needs an
    existing target).  They are reference counted, recorded in a file so that
    `local-cluster down` can remove them, and removed once no pod of any local cluster on
    this host can be using them (HOST_LOCK)."""

    def __init__(self, record_file, host_lock=HOST_LOCK, host_pending=HOST_PENDING):
        self.record_file = record_file
        self.host_pending = host_pending
        self.lock = threading.Lock()
        self.created = {}  # path -> refcount
        self.using = {}  # every target ensured and not yet released (made here or found) -> count
        self.host_lock = None
        try:
            self.host_lock = open(host_lock, "a")
            fcntl.flock(self.host_lock, fcntl.LOCK_SH)
        except OSError:
            self.host_lock = None  # not root: no mount namespaces, so no shared targets
        self.load()

    def _alone_on_host(self):
        """True when no other kubelet simulator holds HOST_LOCK (the shared lock is turned
        into an exclusive one, then back)."""
        if self.host_lock is None:
            return True
        try:
            fcntl.flock(self.host_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fcntl.flock(self.host_lock, fcntl.LOCK_SH)
            return False
        fcntl.flock(self.host_lock, fcntl.LOCK_SH)
        return True

    def load(self):
        try:
            with open(self.record_file) as f:
                for p in json.load(f):
                    self.created.setdefault(p, 0)
        except (OSError, ValueError):
            pass

    def _save(self):
        tmp = self.record_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(sorted(self.created), f)
        os.replace(tmp, self.record_file)

    def ensure(self, target, is_dir):
        """Create target (and missing parents) on the host; returns the list of
        paths created so that release() can undo exactly those."""
        with self.lock:
            made = []
            path = os.path.normpath(target)
            parts = []
            p = path
            while p and p != "/" and not os.path.lexists(p):
                parts.append(p)
                p = os.path.dirname(p)
            for q in reversed(parts):
                # Another local cluster's kubelet (another process: self.lock does not cover it)
                # may create the same host path between the check above and here; then it is
                # that kubelet's to remove, not ours.
                try:
                    if q == path and not is_dir:
                        with open(q, "x"):
                            pass
                    else:
                        os.mkdir(q)
                except FileExistsError:
                    continue
                made.append(q)
            for q in made:
                self.created[q] = self.created.get(q, 0)
            for q in [q for q in self.created if path == q or path.startswith(q + "/")]:
                self.created[q] += 1
            self.using[path] = self.using.get(path, 0) + 1
            self._save()
            return made

    def release(self, target):
        with self.lock:
            path = os.path.normpath(target)
            for q in [q for q in self.created if path == q or path.startswith(q + "/")]:
                self.created[q] -= 1
            if self.using.get(path, 0) > 1:
                self.using[path] -= 1
            else:
                self.using.pop(path, None)
            self._gc()
            self._save()

    def _gc(self):
        unused = [q for q, n in self.created.items() if n <= 0]
        if not unused and not pending_mount_targets(self.host_pending):
            return
        if not self._alone_on_host():
            if unused:
                _pending_update(self.host_pending, add=unused)
            for q in unused:
                del self.created[q]
            return
        # Targets another kubelet left that a pod of ours found and still mounts stay listed.
        left = [q for q in pending_mount_targets(self.host_pending)
                if not any(u == q or u.startswith(q + "/") for u in self.using)]
        _pending_update(self.host_pending, drop=unused)
        for q in sorted(set(unused) | set(left), key=len, reverse=True):
            try:
                if os.path.isdir(q) and not os.path.islink(q):
                    os.rmdir(q)
                elif os.path.isfile(q) and os.path.getsize(q) == 0:
                    os.unlink(q)
            except OSError:
                pass  # not empty (someone else wrote there): not ours to remove any more
            self.created.pop(q, None)
        _pending_update(self.host_pending, drop=left)

    def close(self):
        """Stop counting as a kubelet on this host (process exit does the same)."""
        if self.host_lock is not None:
            self.host_lock.close()
            self.host_lock = None

    def cleanup_all(self):
        with self.lock:
            for q in self.created:
                self.created[q] = 0
            self._gc()
            self._save()


def mount_namespace_available():
    """True when this process may create a private mount namespace with bind mounts."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    try:
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "--", "/bin/sh", "-c",
                            "mount --bind /tmp /tmp"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def wrap_argv(argv, mounts, workdir=None, use_ns=True, run_as=None, read_only_root=False, hostname=None):
    """Wrap argv so that it runs with mounts bound at their container paths.

    With use_ns the process gets its own mount namespace (unshare -m, private
    propagation) in which each source is bind-mounted over its target; the pid
    stays the same because unshare and sh both exec. run_as (uid, gid): the
    process drops to that user and group (setpriv: no supplementary groups,
    every capability dropped, no_new_privs) as its last step; read_only_root:
    the root filesystem is remounted read-only in that namespace (the other
    mounts, /dev/shm, /proc and the volumes, keep their own modes); hostname: the process
    also gets its own UTS namespace with that host name (a pod's hostname is its name)."""
    if not use_ns or (not mounts and not workdir and not run_as and not read_only_root and not hostname):
        return list(argv)
    lines = ["set -e"]
    if hostname:
        lines.append("hostname %s" % shlex.quote(hostname))
    for src, dst, ro in mounts:
        if ro == "overlay":
            # Read-only overlay of src over dst (the kubelet's private /etc/hosts: a
            # bind mount on /etc/hosts itself would be detached as soon as anything
            # renames over /etc/hosts on the host). Without overlayfs: no overlay.
            lines.append("mount -t overlay overlay -o lowerdir=%s:%s %s 2>/dev/null || true"
                         % (shlex.quote(src), shlex.quote(dst), shlex.quote(dst)))
            continue
        # A target under an earlier mount (a ConfigMap at /home/ray/samples over the
        # per-container /home/ray) may not exist yet in this namespace: create it there.
        q = shlex.quote(dst)
        if is_dir_source(src):
            lines.append("[ -e %s ] || mkdir -p %s" % (q, q))
        else:
            lines.append("[ -e %s ] || { mkdir -p %s && : > %s; }" % (q, shlex.quote(os.path.dirname(dst) or "/"), q))
        lines.append("mount --bind %s %s" % (shlex.quote(src), q))
        if ro:
            lines.append("mount -o remount,bind,ro %s 2>/dev/null || true" % shlex.quote(dst))
    if workdir:
        lines.append("cd %s 2>/dev/null || true" % shlex.quote(workdir))
    if read_only_root:
        lines.append("mount -o remount,bind,ro /")
    if run_as:
        # The pod's fsGroup is the process's one supplementary group, as the runtime sets it.
        groups = ("--groups=%d" % int(run_as[2])) if len(run_as) > 2 and run_as[2] is not None else "--clear-groups"
        lines.append('exec setpriv --reuid=%d --regid=%d %s --inh-caps=-all --bounding-set=-all '
                     '--no-new-privs -- "$@"' % (int(run_as[0]), int(run_as[1]), groups))
    else:
        lines.append('exec "$@"')
    return ["unshare", "-m"] + (["-u"] if hostname else []) + ["--propagation", "private", "--", "/bin/sh", "-c",
                                                               "\n".join(lines),
            "kubesim-mount"] + list(argv)


def rewrite_paths(value, mounts):
    """Path-rewriting fallback: replace container mount paths inside a string by the
    host directories that back them (longest path first)."""
    for src, dst, _ro in sorted(mounts, key=lambda t: len(t[1]), reverse=True):
        if dst and dst in value:
            value = value.replace(dst, src)
    return value


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


def is_dir_source(src):
    try:
        return stat.S_ISDIR(os.stat(src).st_mode)
    except OSError:
        return True
