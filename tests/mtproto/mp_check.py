# Run by the MicroPython unix port (test_on_micropython.py): crypto vectors and the
# MTProto handshake on MicroPython. Reads a JSON transcript made by CPython from argv[1],
# prints one JSON line of results for CPython to check.
import binascii
import json
import os
import sys

from relay.proto import crypto, mtproto as M
from relay.runtime import api as runtime
from relay.runtime import mpctr


def h(s):
    return bytes.fromhex(s)


def hx(b):
    return binascii.hexlify(b).decode()


# NIST SP 800-38A F.5.5 CTR-AES256.Encrypt
KEY = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
IV = h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
PT = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
CT = h("601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c52b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6")


def ctr_ok(make):
    if bytes(make(KEY, IV).update(PT)) != CT:
        return False
    for step in (1, 5, 16, 17, 63):
        c = make(KEY, IV)
        out = b"".join(bytes(c.update(PT[i : i + step])) for i in range(0, len(PT), step))
        if out != CT:
            return False
    # counter carry across 2^64 and wrap at 2^128, over more than one 512-byte keystream slice
    ref = make(h("00" * 32), h("ff" * 16)).update(bytes(1200))
    c = make(h("00" * 32), h("ff" * 16))
    return bytes(c.update(bytes(700))) + bytes(c.update(bytes(500))) == bytes(ref)


def ecb_ctr(viper):
    import cryptolib

    saved = mpctr.ctr_fill, mpctr.xor_into
    if not viper:
        mpctr.ctr_fill, mpctr.xor_into = mpctr._py_ctr_fill, mpctr._py_xor_into

    def make(k, iv):
        return mpctr.EcbCtr(cryptolib.aes(k, 1), iv)

    try:
        return ctr_ok(make)
    finally:
        mpctr.ctr_fill, mpctr.xor_into = saved


res = {
    "ctr_runtime": ctr_ok(runtime.aes_ctr),
    "ctr_ecb_viper": mpctr.VIPER and ecb_ctr(True),
    "ctr_ecb_python": ecb_ctr(False),
    "wrap": hx(runtime.aes_ctr(h("00" * 32), h("ff" * 16)).update(bytes(1200))),
    # RFC 4231 test cases 1, 2 and 6 (a key longer than the block)
    "hmac": [
        hx(crypto.hmac_sha256(b"\x0b" * 20, b"Hi There")),
        hx(crypto.hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        hx(crypto.hmac_sha256(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")),
    ],
}

t = json.loads(open(sys.argv[1]).read())
secrets = [M.parse_secret(s) for s in t["secrets"]]
out = []
for case in t["cases"]:
    p = M.Proxy(secrets, os.urandom, aes_ctr=runtime.aes_ctr)
    wire = h(case["wire"])
    evs = []
    step = case["step"]
    hs = p.handshake(case["now"])
    i = 0
    while i < len(wire):
        evs += hs.feed(wire[i : i + step])
        i += step
        if [e for e in evs if not isinstance(e, M.Send)]:
            break
    r = {"sends": [hx(e.data) for e in evs if isinstance(e, M.Send)]}
    last = evs[-1] if evs else None
    if isinstance(last, M.Accepted):
        r["accepted"] = [last.index, hx(last.tag), last.dc]
        r["to_dc"] = hx(last.to_dc + last.pipe.up(wire[i:]))
        r["down"] = hx(last.pipe.down(h(case["down"])))
    elif isinstance(last, M.Refused):
        r["refused"] = last.reason
    out.append(r)
res["cases"] = out
print(json.dumps(res))
