"""AES-CTR built on cryptolib's ECB mode, for MicroPython ports without CTR (mode 6).

Slow next to a C CTR: each 512-byte slice of keystream costs a few Python
calls. The two inner loops (fill counter blocks, XOR) use the viper emitter
where the port has it and plain Python otherwise.
MicroPython only: imported by runtime/micropython.py.
"""

# The viper emitter makes the two inner loops ~20x faster. Its source is compiled at
# import (exec) rather than written as module code: mpy-cross without -march, and
# ports without the emitter, reject viper functions at compile time.
_VIPER = """
@micropython.viper
def xor_into(dst: ptr8, src: ptr8, n: int):
    i = 0
    while i < n:
        dst[i] = dst[i] ^ src[i]
        i += 1

@micropython.viper
def ctr_fill(buf: ptr8, ctr: ptr8, nblocks: int):
    o = 0
    b = 0
    while b < nblocks:
        j = 0
        while j < 16:
            buf[o + j] = ctr[j]
            j += 1
        o += 16
        j = 15
        while j >= 0:
            v = (ctr[j] + 1) & 0xFF
            ctr[j] = v
            if v != 0:
                break
            j -= 1
        b += 1
"""


def _py_ctr_fill(buf, ctr, nblocks):
    """Write nblocks consecutive counter blocks into buf; ctr ends one past the last."""
    o = 0
    for _ in range(nblocks):
        buf[o : o + 16] = ctr
        o += 16
        j = 15
        while j >= 0:
            v = (ctr[j] + 1) & 0xFF
            ctr[j] = v
            if v:
                break
            j -= 1


def _py_xor_into(dst, src, n):
    for i in range(n):
        dst[i] ^= src[i]


def _load():
    try:
        import micropython

        g = {"micropython": micropython}
        exec(_VIPER, g)
        return g["ctr_fill"], g["xor_into"], True
    except Exception:  # no compiler or no viper emitter on this port
        return _py_ctr_fill, _py_xor_into, False


ctr_fill, xor_into, VIPER = _load()

_KS = 512  # keystream bytes made per ECB call: 32 blocks; bounds the per-cipher buffer


class EcbCtr:
    """.update(data) -> bytearray; the counter (a 128-bit big-endian IV) runs on across calls."""

    __slots__ = ("ecb", "ctr", "ks", "pos")

    def __init__(self, ecb, iv):
        self.ecb = ecb
        self.ctr = bytearray(iv)
        self.ks = bytearray(_KS)  # keystream; bytes before .pos are used up
        self.pos = _KS

    def update(self, data):
        out = bytearray(data)
        n = len(out)
        mv = memoryview(out)
        ks = self.ks
        i = 0
        while i < n:
            pos = self.pos
            if pos == _KS:
                ctr_fill(ks, self.ctr, _KS // 16)
                self.ecb.encrypt(ks, ks)
                pos = 0
            k = _KS - pos
            if k > n - i:
                k = n - i
            if pos:
                xor_into(mv[i : i + k], memoryview(ks)[pos : pos + k], k)
            else:
                xor_into(mv[i : i + k], ks, k)
            i += k
            self.pos = pos + k
        return out
