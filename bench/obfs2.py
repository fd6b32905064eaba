"""The client and DC sides of obfuscated2 that the bench's MTProto loads speak (published format).

A client's 64-byte header: to a proxy, client->proxy key = SHA256(h[8:40] + secret), iv =
h[40:56], proxy->client the same over h[8:56] reversed; straight to a DC, the same without the
secret. h[56:60] is the transport tag, h[60:62] the DC id (int16 LE); bytes 56..64 go encrypted.
"""

import hashlib
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TAG_ABRIDGED = b"\xef\xef\xef\xef"
TAG_INTERMEDIATE = b"\xee\xee\xee\xee"
TAG_PADDED = b"\xdd\xdd\xdd\xdd"
TAGS = (TAG_ABRIDGED, TAG_INTERMEDIATE, TAG_PADDED)
HEADER_LEN = 64
_RESERVED = (b"HEAD", b"POST", b"GET ", b"OPTI", TAG_INTERMEDIATE, TAG_PADDED, b"\x16\x03\x01\x02")


def ctr(key, iv):
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()


def ctr_at(key, iv, offset):
    """AES-256-CTR positioned at byte `offset` of the stream keyed (key, iv)."""
    block = (int.from_bytes(iv, "big") + offset // 16) % (1 << 128)
    c = ctr(key, block.to_bytes(16, "big"))
    c.update(bytes(offset % 16))
    return c


def client_header(tag, dc, secret=None):
    """A client's header -> (64 bytes, (enc key, iv), (dec key, iv)); secret None: straight to a DC."""
    while True:
        h = bytearray(os.urandom(HEADER_LEN))
        if h[0] != 0xEF and bytes(h[:4]) not in _RESERVED and bytes(h[4:8]) != bytes(4):
            break
    h[56:60] = tag
    h[60:62] = struct.pack("<h", dc)
    pre = bytes(h[8:56])
    rev = pre[::-1]
    if secret is None:
        enc, dec = (pre[:32], pre[32:48]), (rev[:32], rev[32:48])
    else:
        enc = (hashlib.sha256(pre[:32] + secret).digest(), pre[32:48])
        dec = (hashlib.sha256(rev[:32] + secret).digest(), rev[32:48])
    sealed = ctr(*enc).update(bytes(h))
    return bytes(h[:56]) + sealed[56:], enc, dec


def dc_keys(h):
    """The DC's side of a 64-byte header -> ((dec key, iv), (enc key, iv))."""
    rev = h[8:56][::-1]
    return (h[8:40], h[40:56]), (rev[:32], rev[32:48])
