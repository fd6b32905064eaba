"""crypto.py and mtproto.py on the real MicroPython unix port, checked from CPython.

CPython makes the client bytes (Telethon's MTProxy header, peers.py's fake-TLS
ClientHello), MicroPython runs the proxy side (tests/mtproto/mp_check.py), CPython
decodes what MicroPython would send to the DC and to the client.
"""

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from telethon.network.connection.tcpabridged import AbridgedPacketCodec
from telethon.network.connection.tcpintermediate import RandomizedIntermediatePacketCodec
from telethon.network.connection.tcpmtproxy import MTProxyIO

from tests.mtproto import peers

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "micropython"


def test_crypto_and_handshake_on_micropython(tmp_path):
    plain, dd, ee = os.urandom(16), os.urandom(16), os.urandom(16)
    secrets = [plain.hex(), "dd" + dd.hex(), "ee" + ee.hex() + b"www.example.com".hex()]
    cases, clients = [], []
    for key, codec, step in ((plain, AbridgedPacketCodec, 1000), (dd, RandomizedIntermediatePacketCodec, 1)):
        header, enc, dec = MTProxyIO.init_header(key, -3, codec)
        payload = os.urandom(3000)
        cases.append({"wire": (bytes(header) + enc.encrypt(payload)).hex(), "step": step, "now": None,
                      "down": os.urandom(20000).hex()})
        clients.append((payload, dec.encrypt, False))
    hello = peers.client_hello(ee, "www.example.com")
    head, enc, dec = peers.obfs2_client_header(ee, peers.TAG_PADDED, 5)
    payload = os.urandom(3000)
    wire = hello + b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03" + (64 + 3000).to_bytes(2, "big") + head + enc.update(payload)
    cases.append({"wire": wire.hex(), "step": 7, "now": int(time.time()), "down": os.urandom(20000).hex()})
    clients.append((payload, dec.update, True))
    cases.append({"wire": peers.client_hello(os.urandom(16), "x.example").hex(), "step": 517, "now": None, "down": ""})
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"secrets": secrets, "cases": cases}))
    env = dict(os.environ, MICROPYPATH=f"{ROOT / 'firmware'}:.frozen:{ROOT}")
    r = subprocess.run([str(BIN), "-X", "heapsize=16M", str(ROOT / "tests/mtproto/mp_check.py"), str(path)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])

    assert res["ctr_runtime"] and res["ctr_ecb_python"] and res["ctr_ecb_viper"]
    ref = Cipher(algorithms.AES(bytes(32)), modes.CTR(b"\xff" * 16)).encryptor().update(bytes(1200))
    assert res["wrap"] == ref.hex()
    assert res["hmac"] == [
        hmac.new(b"\x0b" * 20, b"Hi There", hashlib.sha256).hexdigest(),
        hmac.new(b"Jefe", b"what do ya want for nothing?", hashlib.sha256).hexdigest(),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ]
    for case, got, (payload, client_dec, tls) in zip(cases[:-1], res["cases"][:-1], clients, strict=True):
        to_dc = bytes.fromhex(got["to_dc"])
        h = to_dc[:64]
        dc_dec = peers.ctr(h[8:40], h[40:56])
        plain_head = dc_dec.update(h)
        assert plain_head[60:62] == (-3 if not tls else 5).to_bytes(2, "little", signed=True)
        assert dc_dec.update(to_dc[64:]) == payload
        rev = h[8:56][::-1]
        reply = peers.ctr(rev[:32], rev[32:48]).update(bytes.fromhex(case["down"]))  # what the DC meant
        down = bytes.fromhex(got["down"])
        if tls:
            assert len(got["sends"]) == 1
            body, i = b"", 0
            while i < len(down):
                n = int.from_bytes(down[i + 3 : i + 5], "big")
                body += down[i + 5 : i + 5 + n]
                i += 5 + n
            down = body
        assert client_dec(down) == reply
    assert res["cases"][-1] == {"sends": [], "refused": "secret"}
