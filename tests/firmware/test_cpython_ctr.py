"""CPython's AES-256-CTR (runtime/cpython.py) gives its OpenSSL context back while idle and
picks the stream up where it was: checked against cryptography's own CTR on the same key. This is the
Python path's cipher (_CTR); where the native pump is built, aes_ctr() gives its CTR, which holds no
context to park (tests/mtproto/test_native_pump.py)."""

import asyncio
import os
import random

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from relay.runtime import cpython as rt


def reference(key, iv, data):
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor().update(data)


def through(c, data, parks, seed):
    """Feed data in random pieces through update / update_into, parking the context at random."""
    rnd = random.Random(seed)
    out = bytearray()
    i = 0
    while i < len(data):
        n = rnd.randint(1, 3000)
        piece = memoryview(data)[i:i + n]
        if rnd.random() < parks:
            c.ctx = None  # what the park timer does to an idle cipher
        if rnd.random() < 0.5:
            out += c.update(piece)
        else:
            buf = bytearray(len(piece) + 16)
            m = c.update_into(piece, buf)
            out += buf[:m]
        i += n
    return bytes(out)


def test_stream_continues_across_parks_at_any_offset():
    data = os.urandom(200000)
    for seed in range(4):
        key, iv = os.urandom(32), os.urandom(16)
        assert through(rt._CTR(key, iv), data, 0.3, seed) == reference(key, iv, data)


def test_counter_wraps_as_openssl_does():
    key, iv = os.urandom(32), b"\xff" * 15 + b"\xfe"  # the 128-bit counter wraps two blocks in
    data = os.urandom(1000)
    assert through(rt._CTR(key, iv), data, 0.5, 7) == reference(key, iv, data)


def test_idle_ciphers_are_parked_by_the_loop_and_busy_ones_kept(monkeypatch):
    monkeypatch.setattr(rt, "_PARK_S", 0.1)

    async def main():
        busy, idle = rt._CTR(os.urandom(32), os.urandom(16)), rt._CTR(os.urandom(32), os.urandom(16))
        busy.update(b"a")
        idle.update(b"b")
        assert busy.ctx is not None and idle.ctx is not None
        end = asyncio.get_running_loop().time() + 3 * rt._PARK_S
        while asyncio.get_running_loop().time() < end:
            busy.update(b"c")
            await asyncio.sleep(rt._PARK_S / 4)
        assert busy.ctx is not None  # used all along: kept
        assert idle.ctx is None  # unused for a park period: its context is gone
        assert idle.pos == 1 and idle not in rt._hot  # it keeps its place in the stream, nothing else

    asyncio.run(main())
    asyncio.run(main())  # a second loop gets its own park runs


def test_without_a_loop_nothing_parks():
    c = rt._CTR(os.urandom(32), os.urandom(16))
    c.update(b"x" * 100)
    assert c.ctx is not None and c.pos == 100
