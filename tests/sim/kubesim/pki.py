"""Certificates for the test world's control planes and kubelets, made with Debian's openssl CLI
(EC P-256 keys, ten-year validity): one CA per cluster and leaf certificates signed by it."""

import os
import subprocess

EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (args[0], r.stderr.decode(errors="replace")[-400:]))


def make_ca(key, crt, cn):
    openssl("req", "-x509", *EC, "-keyout", key, "-out", crt, "-days", "3650", "-subj", "/CN=" + cn,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
    os.chmod(key, 0o600)


def sign(ca_crt, ca_key, key, crt, subject, ext_text):
    """A new key and a certificate for subject signed by the CA; ext_text holds the extensions
    that differ between uses (subjectAltName, extendedKeyUsage), one per line."""
    csr, ext = crt + ".csr", crt + ".ext"
    openssl("req", *EC, "-keyout", key, "-out", csr, "-subj", subject)
    with open(ext, "w") as f:
        f.write(ext_text + "keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n")
    try:
        openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
                "-days", "3650", "-extfile", ext)
    finally:
        for f in (csr, ext):
            try:
                os.unlink(f)
            except OSError:
                pass
    os.chmod(key, 0o600)


def api_server_sans(ips, extra_dns=()):
    """subjectAltName for an API server reached by ips, localhost and the `kubernetes` Service names."""
    names = ["IP:" + ip for ip in ips] + ["DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
                                          "DNS:kubernetes.default.svc"] + ["DNS:" + d for d in extra_dns]
    return "subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % ",".join(names)
