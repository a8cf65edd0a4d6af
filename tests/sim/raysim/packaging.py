"""runtime_env packages: upload of local directories, and their unpacking on the head.

Sources: python/ray/_private/runtime_env/packaging.py (get_uri_for_directory,
upload_package_if_needed, download_and_unpack_package), dashboard/modules/
dashboard_sdk.py (_upload_working_dir_if_needed, _upload_py_modules_if_needed),
job_head.py (GET/PUT /api/packages/{protocol}/{package_name}), and
_private/runtime_env/validation.py.

A client (`ray job submit`, JobSubmissionClient) zips a local working_dir (its
contents at the archive's root) or a local py_modules directory (the directory
itself at the root), names it gcs://_ray_pkg_<content hash>.zip, asks the
dashboard whether the package exists, uploads it if not, and submits the URI in
place of the path. The package lives in the GCS internal KV under its URI (empty
KV namespace), so in Redis under GCS fault tolerance. The job supervisor unpacks
it under <session>/runtime_resources/{working_dir,py_modules}_files/<name>/.

Simulator differences: the content hash is a SHA-1 over the sorted relative
paths and file contents (Ray's _hash_directory mixes per-file hashes
differently), the zip bytes are base64 in the KV (the simulated GCS speaks JSON
lines), and a package is limited to MAX_PACKAGE_BYTES (Ray's limit,
GCS_STORAGE_MAX_SIZE, is hundreds of MiB).
"""

import base64
import hashlib
import io
import os
import zipfile

RAY_PKG_PREFIX = "_ray_pkg_"
MAX_PACKAGE_BYTES = 2 * 1024 * 1024
KV_NS = ""
# Ray's default excludes for uploaded directories (packaging.py: .git is always
# skipped; the rest honour runtime_env["excludes"], which is not modelled).
ALWAYS_EXCLUDED = (".git",)


def is_path(s):
    return isinstance(s, str) and "://" not in s


def _files(directory):
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in ALWAYS_EXCLUDED and d != "__pycache__")
        for name in sorted(files):
            full = os.path.join(root, name)
            if os.path.isfile(full):
                yield full, os.path.relpath(full, directory)


def zip_directory(directory, include_parent_dir):
    """(uri, zip bytes) for a local directory."""
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        raise ValueError("%s is not a valid path" % directory)
    h = hashlib.sha1()
    buf = io.BytesIO()
    prefix = os.path.basename(directory.rstrip("/")) if include_parent_dir else ""
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for full, rel in _files(directory):
            arc = os.path.join(prefix, rel) if prefix else rel
            with open(full, "rb") as f:
                data = f.read()
            h.update(arc.encode() + b"\0" + data + b"\0")
            zf.writestr(arc, data)
    data = buf.getvalue()
    if len(data) > MAX_PACKAGE_BYTES:
        raise ValueError("Package size (%d bytes) exceeds the maximum size of %d bytes in the simulator." % (
            len(data), MAX_PACKAGE_BYTES))
    return "gcs://%s%s.zip" % (RAY_PKG_PREFIX, h.hexdigest()), data


def upload_if_needed(runtime_env, request):
    """Replace local working_dir / py_modules paths with uploaded gcs:// URIs.

    request(method, path, body_bytes) -> (status, text); raises on transport errors.
    """
    if not runtime_env:
        return runtime_env
    env = dict(runtime_env)

    def upload(path, include_parent):
        uri, data = zip_directory(path, include_parent)
        name = uri[len("gcs://"):]
        status, _ = request("GET", "/api/packages/gcs/%s" % name, None)
        if status == 404:
            status, text = request("PUT", "/api/packages/gcs/%s" % name, data)
            if status != 200:
                raise RuntimeError("Request failed with status code %d: %s." % (status, text))
        return uri

    wd = env.get("working_dir")
    if is_path(wd):
        env["working_dir"] = upload(wd, False)
    mods = env.get("py_modules")
    if isinstance(mods, list):
        env["py_modules"] = [upload(m, True) if is_path(m) and os.path.isdir(m) else m for m in mods]
    return env


def encode(data):
    return base64.b64encode(data).decode("ascii")


def decode(text):
    return base64.b64decode(text.encode("ascii"))


def unpack(data, dest):
    """Unpack into dest (idempotent: an existing directory is reused, as Ray's
    URI cache does)."""
    if os.path.isdir(dest):
        return dest
    tmp = dest + ".tmp%d" % os.getpid()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(tmp)
    try:
        os.rename(tmp, dest)
    except OSError:
        pass
    return dest
