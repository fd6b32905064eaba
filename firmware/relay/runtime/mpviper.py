"""Viper inner loops for runtime/mpctr.py. A port without the viper emitter
fails to compile this module; mpctr.py then uses plain Python loops."""

import micropython


@micropython.viper
def xor_into(dst: ptr8, src: ptr8, n: int):  # noqa: F821 - viper types
    i = 0
    while i < n:
        dst[i] = dst[i] ^ src[i]
        i += 1


@micropython.viper
def ctr_fill(buf: ptr8, ctr: ptr8, nblocks: int):  # noqa: F821
    """Write nblocks consecutive counter blocks into buf; ctr ends one past the last."""
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
