"""Minimal RFC 6455 WebSocket, for the job log tail (GET /api/jobs/<id>/logs/tail).

Ray's dashboard answers that route with an aiohttp WebSocketResponse and sends
each new chunk of the driver log as one text frame, then closes (job_head.py
tail_job_logs, job_manager.py tail_job_logs). Ray's JobSubmissionClient
(sdk.py tail_job_logs) and KubeRay's light-weight submitter read it. Only what
those need: text, close, ping/pong frames, no extensions, no fragmentation on
send.
"""

import base64
import hashlib
import os
import socket
import struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeError(Exception):
    def __init__(self, status, body):
        super().__init__("%d, message='Invalid response status'" % status)
        self.status = status
        self.body = body


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def encode_frame(opcode, payload, mask):
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


def read_frame(rfile):
    """(opcode, payload) or (None, b"") at EOF."""
    h = rfile.read(2)
    if len(h) < 2:
        return None, b""
    opcode = h[0] & 0x0F
    masked = h[1] & 0x80
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", rfile.read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", rfile.read(8))[0]
    key = rfile.read(4) if masked else None
    payload = rfile.read(n)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return opcode, payload


class Client:
    """Connect, then iterate over text messages until the server closes."""

    def __init__(self, host, port, path, timeout=None, headers=None):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.settimeout(timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, host, port, key))
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        self.sock.sendall((req + "\r\n").encode())
        self.rfile = self.sock.makefile("rb")
        status_line = self.rfile.readline().decode("latin-1")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        hdrs = {}
        while True:
            line = self.rfile.readline().decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if status != 101:
            body = self.rfile.read(int(hdrs.get("content-length") or 0)).decode("utf-8", "replace")
            self.close()
            raise HandshakeError(status, body)
        if hdrs.get("sec-websocket-accept") != accept_key(key):
            self.close()
            raise HandshakeError(status, "bad Sec-WebSocket-Accept")

    def messages(self):
        while True:
            opcode, payload = read_frame(self.rfile)
            if opcode is None:
                return
            if opcode == 0x1:
                yield payload.decode("utf-8", "replace")
            elif opcode == 0x8:
                try:
                    self.sock.sendall(encode_frame(0x8, payload[:2], True))
                except OSError:
                    pass
                return
            elif opcode == 0x9:
                self.sock.sendall(encode_frame(0xA, payload, True))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
