#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_hub_conn (tests/fuzz/corpus/fuzz_hub_conn/).

Each seed is a connection's byte stream as an agent's nng REQ socket sends it: the 8-byte SP
header, then frames (a 64-bit big-endian length, the 4-byte request id with its high bit set, the
message). The messages are the real sealed envelopes of corpus/fuzz_wire/ (sealed with the test
key the target opens them with), some altered the ways a hostile peer would: a flipped MAC byte, an
unknown key id, garbage, a frame cut short, a length over the limit, a header that is not REQ, a
1 MiB frame. A prefix of split points precedes the stream (see fuzz_hub_conn.c).

    python3 tests/fuzz/make_hub_conn_corpus.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
WIRE = os.path.join(HERE, "corpus", "fuzz_wire")
OUT = os.path.join(HERE, "corpus", "fuzz_hub_conn")
HDR = b"\x00SP\x00\x00\x30\x00\x00"
MAX = 1024 * 1024


def frame(msg, rid=1, hops=()):
    bt = b"".join(struct.pack(">I", h & 0x7FFFFFFF) for h in hops) + struct.pack(">I", 0x80000000 | rid)
    return struct.pack(">Q", len(bt) + len(msg)) + bt + msg


def seed(name, stream, cuts=()):
    pre = bytes([len(cuts)]) + b"".join(struct.pack(">H", c & 0xFFFF) for c in cuts)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(pre + stream)


def main():
    os.makedirs(OUT, exist_ok=True)
    worker = open(os.path.join(WIRE, "report_worker"), "rb").read()
    head = open(os.path.join(WIRE, "report_head_full"), "rb").read()
    reply = open(os.path.join(WIRE, "reply_small"), "rb").read()
    bad_mac = bytearray(worker)
    bad_mac[-1] ^= 1
    unknown = bytearray(worker)
    unknown[12:16] = b"\xde\xad\xbe\xef"
    seed("one_report", HDR + frame(worker))
    seed("one_report_split", HDR + frame(worker), cuts=(1, 7, 8, 9, 15, 16, 17, 20, 31, 100, 400))
    seed("two_reports", HDR + frame(worker, 1) + frame(head, 2), cuts=(3, 200, 420, 421))
    seed("report_relayed", HDR + frame(worker, 5, hops=(7, 9)))
    seed("bad_mac_then_report", HDR + frame(bytes(bad_mac)) + frame(worker, 2), cuts=(30,))
    # Key id with the top bit set: dropped (the hub right after its start), the next report accepted.
    seed("unknown_key_dropped", HDR + frame(bytes(unknown)) + frame(worker, 2), cuts=(20, 30, 100, 300))
    closing = bytearray(worker)
    closing[12:16] = b"\x1e\xad\xbe\xef"
    seed("unknown_key", HDR + frame(bytes(closing)) + frame(worker, 2))
    seed("reply_type", HDR + frame(reply))
    seed("garbage", HDR + frame(b"hello, this is not a raywarden message at all"))
    seed("tiny_message", HDR + frame(b"RWP"))
    seed("cut_short", HDR + frame(worker)[:200])
    seed("header_only", HDR)
    seed("header_partial", HDR[:5])
    seed("not_req", b"\x00SP\x00\x00\x31\x00\x00" + frame(worker))
    seed("too_large", HDR + struct.pack(">Q", MAX + 64) + b"\x80\x00\x00\x01RWP\x01")
    seed("no_request_id", HDR + struct.pack(">Q", 40) + b"\x00\x00\x00\x01" * 10)
    seed("empty_frame", HDR + struct.pack(">Q", 0))
    # A frame of the largest size, its envelope naming the test key: buffered to the end.
    big = bytearray(worker[:44]) + bytes(MAX - 44)
    seed("max_frame_partial", HDR + frame(bytes(big))[: 512 * 1024], cuts=(8, 9, 30, 4096))
    seed("many_reports", HDR + b"".join(frame(worker, i + 1) for i in range(40)), cuts=(500, 4000, 9000))


if __name__ == "__main__":
    main()
