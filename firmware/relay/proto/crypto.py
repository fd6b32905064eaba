"""The few primitives the MTProto proxy and the fleet need: SHA-256, HMAC-SHA256, a constant-time compare.

HMAC is written out here (RFC 2104) because MicroPython has no hmac module;
the same code runs on both runtimes. Pure functions: no I/O, no state.
AES-256-CTR is the runtime's (runtime.aes_ctr: `cryptography` on CPython,
`cryptolib` on MicroPython), handed to mtproto.Proxy by the I/O side, so
that importing a protocol module loads no runtime.
"""

import hashlib

_BLOCK = 64  # SHA-256 block size (RFC 2104's B)
_IPAD = bytes(0x36 for _ in range(_BLOCK))
_OPAD = bytes(0x5C for _ in range(_BLOCK))


def sha256(data):
    return hashlib.sha256(data).digest()


def _xor(a, b):
    return bytes(a[i] ^ b[i] for i in range(len(a)))


def hmac_sha256(key, msg):
    """HMAC-SHA256(key, msg) per RFC 2104; msg may be a list of byte strings."""
    if len(key) > _BLOCK:
        key = sha256(key)
    key = bytes(key) + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(_xor(key, _IPAD))
    if type(msg) is list:
        for part in msg:
            inner.update(part)
    else:
        inner.update(msg)
    return sha256(_xor(key, _OPAD) + inner.digest())


def equal(got, want):
    """got == want (bytes-like), in a time that depends on want's length only: no early exit, so
    timing tells a guesser neither where a guess differs nor how long the secret is. The one compare
    for passwords, tokens and signatures."""
    diff = len(got) ^ len(want)
    for i in range(len(want)):
        diff |= want[i] ^ (got[i] if i < len(got) else 0)
    return diff == 0
