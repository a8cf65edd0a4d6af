"""Minimal RESP2 client (enough for the GCS table layout of Ray's RedisStoreClient).

Address forms accepted as by Ray (ray-apis.md section 5): "host:port", a comma
list (the first entry is used, like Ray's primary), "redis://[user:pass@]host:port"
and "rediss://" (TLS is refused here: the simulator is loopback-only).
Credentials come from REDIS_USERNAME / REDIS_PASSWORD unless the URL has them.
"""

import socket
import threading
from urllib.parse import urlparse

from . import common


class RedisError(Exception):
    pass


def parse_address(addr, password=None, username=None):
    first = addr.split(",")[0].strip()
    if "://" not in first:
        first = "redis://" + first
    u = urlparse(first)
    if u.scheme == "rediss":
        raise RedisError("rediss:// (TLS) is not supported by the simulator")
    host = u.hostname or "127.0.0.1"
    port = u.port or 6379
    user = username or u.username
    pw = password if password else u.password
    return host, port, user, pw


class Redis:
    def __init__(self, host, port, username=None, password=None, timeout=5.0):
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.timeout = timeout
        self.sock = None
        self.buf = b""
        self.lock = threading.Lock()

    def _connect(self):
        self.sock = socket.create_connection((common.cluster_resolve(self.host), self.port), timeout=self.timeout)
        self.buf = b""
        if self.password:
            if self.username:
                self._roundtrip(["AUTH", self.username, self.password])
            else:
                self._roundtrip(["AUTH", self.password])

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    @staticmethod
    def _encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode("utf-8")
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RedisError("connection closed by redis")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _readn(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RedisError("connection closed by redis")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._readline()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._readn(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError("bad RESP reply %r" % line[:40])

    def _roundtrip(self, args):
        self.sock.sendall(self._encode(args))
        return self._reply()

    def execute(self, *args):
        with self.lock:
            for attempt in range(2):
                try:
                    if self.sock is None:
                        self._connect()
                    return self._roundtrip(list(args))
                except RedisError as exc:
                    if "connection closed" in str(exc) and attempt == 0:
                        self.close()
                        continue
                    raise
                except OSError as exc:
                    self.close()
                    if attempt == 1:
                        raise RedisError(str(exc))
            raise RedisError("unreachable")

    def hscan_all(self, key, match=None):
        cursor = b"0"
        out = {}
        for _ in range(1000000):
            args = ["HSCAN", key, cursor]
            if match:
                args += ["MATCH", match]
            args += ["COUNT", 1000]
            cursor, items = self.execute(*args)
            for i in range(0, len(items), 2):
                out[items[i]] = items[i + 1]
            if cursor in (b"0", 0):
                break
        return out
