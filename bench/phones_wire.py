"""What the phones and the stand-in DC of the load model say to each other (bench/phones.py).

Below the proxy's layer everything is Telegram's published format: an obfuscated2 header
(for a proxy secret, or none when a phone talks to the DC directly), fake-TLS records for
`ee` secrets, the intermediate transport (`ee`/`dd`: padded intermediate) framing each
packet with its little-endian length. Inside a packet the load model writes its own
12-byte head (kind, id, arg) and filler up to the packet's size; the proxy never looks
inside, it only decrypts and re-encrypts.

    H  phone -> DC, the first packet of a connection; arg 1: the phone's main connection
       (the DC pushes updates on it)
    P  phone -> DC, a message; arg: the size of the reply the DC sends back
    R  DC -> phone, the reply to P (same id)
    U  DC -> phone, an update (an incoming message); arg: the size of the acknowledgement
    A  phone -> DC, the acknowledgement of U (same id)
    D  phone -> DC on a fresh media connection: id = bytes/s, arg = bytes. The DC sends
       that many bytes at that pace, unencrypted (random bytes: the proxy decrypts and
       re-encrypts them like any others, and the phone only counts them), then MAGIC
       encrypted at the stream offset it has reached, which proves the proxy's ciphers
       stayed aligned; the phone then closes.

Addresses: phone k sends from its own 127.a.b.c (phone_addr); the DC listens on
DC_ADDRS (one per data centre id 1..5, all on one port), so the proxy's connections to
it spread over five destinations and never run out of ephemeral ports.
"""

import hashlib
import hmac
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from tests.mtproto.peers import client_hello  # noqa: E402  (the 517-byte ClientHello Telegram's apps send)

from obfs2 import HEADER_LEN, TAG_INTERMEDIATE, TAG_PADDED, client_header, ctr, ctr_at, dc_keys  # noqa: E402, F401

HEAD = struct.Struct("<cxxxII")  # kind, id, arg
LEN = struct.Struct("<I")
K_HELLO, K_PING, K_REPLY, K_PUSH, K_ACK, K_DOWNLOAD = b"H", b"P", b"R", b"U", b"A", b"D"
MAGIC = b"relay-phones-end"  # 16 bytes after a download
DC_IDS = (1, 2, 3, 4, 5)
DC_ADDRS = ["127.0.2.%d" % i for i in DC_IDS]
TLS_CCS = b"\x14\x03\x03\x00\x01\x01"
TLS_MAX = 16384


def phone_addr(k):
    """Phone k's own loopback source address (0 <= k < 1,000,000), never 127.0.x.x."""
    return "127.%d.%d.%d" % (10 + k // 62500, (k // 250) % 250 + 1, k % 250 + 1)


def packet(tag, kind, ident, arg, size):
    """One transport packet of `size` bytes (head + filler) in the framing `tag` names."""
    body = HEAD.pack(kind, ident, arg) + bytes(max(0, size - HEAD.size))
    if tag == TAG_PADDED:
        body += os.urandom(size % 4)  # padded intermediate: 0-3 bytes of random padding
    return LEN.pack(len(body)) + body


def hello_reply_len(buf):
    """Bytes of the proxy's fake-TLS reply (ServerHello, ChangeCipherSpec, ApplicationData) at the
    start of buf, or 0 while it is incomplete; ValueError when it is not one."""
    i = 0
    for want in (0x16, 0x14, 0x17):
        if len(buf) < i + 5:
            return 0
        if buf[i] != want or buf[i + 1:i + 3] != b"\x03\x03":
            raise ValueError("not a fake-TLS ServerHello: record %02x" % buf[i])
        i += 5 + ((buf[i + 3] << 8) | buf[i + 4])
    return i if len(buf) >= i else 0


def hello_reply_ok(key, hello, reply):
    """Does the reply's random carry HMAC(key, client random + reply with its random zeroed)?"""
    zeroed = reply[:11] + bytes(32) + reply[43:]
    return hmac.new(key, hello[11:43] + zeroed, hashlib.sha256).digest() == reply[11:43]


def tls_records(data):
    """Client bytes for the proxy in fake-TLS ApplicationData records."""
    if len(data) <= TLS_MAX:
        return b"\x17\x03\x03" + struct.pack(">H", len(data)) + data
    return b"".join(b"\x17\x03\x03" + struct.pack(">H", len(data[i:i + TLS_MAX])) + data[i:i + TLS_MAX]
                    for i in range(0, len(data), TLS_MAX))


class Unrecord:
    """Strips fake-TLS record heads from a byte stream, in any split: feed(view) -> payload views."""

    __slots__ = ("left", "head")

    def __init__(self):
        self.left = 0  # payload bytes left in the current record
        self.head = b""  # a record head split across reads

    def feed(self, mv):
        out = []
        i, n = 0, len(mv)
        while i < n:
            if self.left:
                k = min(self.left, n - i)
                out.append(mv[i:i + k])
                self.left -= k
                i += k
                continue
            need = 5 - len(self.head)
            self.head += bytes(mv[i:i + need])
            i += min(need, n - i)
            if len(self.head) == 5:
                h, self.head = self.head, b""
                if h[0] != 0x17 or h[1:3] != b"\x03\x03":
                    raise ValueError("expected an ApplicationData record, got %s" % h.hex())
                self.left = (h[3] << 8) | h[4]
        return out


def ee_secret_text(key, domain):
    return "ee" + key.hex() + domain.encode().hex()


__all__ = ["client_hello", "client_header", "ctr", "ctr_at", "dc_keys", "HEADER_LEN", "TAG_INTERMEDIATE",
           "TAG_PADDED"]
