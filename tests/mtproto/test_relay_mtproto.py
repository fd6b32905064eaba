"""The MTProto listener end to end, under CPython and the MicroPython unix port.

Real client: Telethon's MTProxy connections (abridged, intermediate, randomized
intermediate) through the relay to a stand-in DC (peers.DCStub) that speaks the DC
side of obfuscated2; Telethon's own plain sender sends req_pq_multi and parses the
ResPQ that comes back. Fake-TLS: a client built to mtprotoproxy's published format
(peers.client_hello). Loopback only.
"""

import asyncio
import collections
import logging
import os
import socket
import struct
import time

import pytest
from telethon.network import MTProtoPlainSender
from telethon.network.connection import (
    ConnectionTcpMTProxyAbridged,
    ConnectionTcpMTProxyIntermediate,
    ConnectionTcpMTProxyRandomizedIntermediate,
)
from telethon.tl.functions import ReqPqMultiRequest
from telethon.tl.types import ResPQ

from tests.helpers.origin import read_to_close
from tests.helpers.relayproc import RUNTIMES, RelayProcess, free_port
from tests.mtproto import peers

PLAIN = peers.plain_key()  # not dd.. or ee..: see plain_key
DD = os.urandom(16)
EE = os.urandom(16)
DOMAIN = "www.example.com"
SECRETS = [PLAIN.hex(), "dd" + DD.hex(), "ee" + EE.hex() + DOMAIN.encode().hex()]
LOGGERS = collections.defaultdict(lambda: logging.getLogger("telethon-test"))


@pytest.fixture(scope="module")
def mask_site():
    m = peers.MaskSite()
    yield m
    m.close()


def mt_config(dc_port, **extra):
    cfg = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": free_port(),
        "secrets": SECRETS,
        "dcs": {str(i): [f"127.0.0.1:{dc_port}"] for i in range(1, 6)},
    }
    cfg.update(extra)
    return {"mtproto": cfg}


@pytest.fixture(scope="module", params=RUNTIMES)
def relay(request, dc, mask_site, tmp_path_factory):
    cfg = mt_config(dc.port, mask=f"127.0.0.1:{mask_site.port}")
    r = RelayProcess(request.param, tmp_path_factory.mktemp("mt"), cfg)
    r.mt = cfg["mtproto"]["port"]
    assert f"mtproto=127.0.0.1:{r.mt}" in r.ready_line
    yield r
    r.stop()


def dc_session_with(dc, nonce_bytes):
    for rec in list(dc.sessions):
        for p in rec["packets"]:
            if nonce_bytes in p:
                return rec, p
    return None, None


async def telethon_exchange(conn_cls, port, secret, dc_id):
    conn = conn_cls("127.0.0.1", 443, dc_id, loggers=LOGGERS, proxy=("127.0.0.1", port, secret))
    await conn.connect(timeout=10)
    try:
        nonce = int.from_bytes(os.urandom(16), "big", signed=True)
        res = await asyncio.wait_for(MTProtoPlainSender(conn, loggers=LOGGERS).send(ReqPqMultiRequest(nonce)), 15)
        # Then bulk both ways: packets the stand-in DC echoes (several TLS-sized pieces).
        blobs = [os.urandom(n) for n in (4, 1024, 70000, 200004)]
        back = []
        for b in blobs:
            await conn.send(b)
            back.append(await asyncio.wait_for(conn.recv(), 15))
        return nonce, res, blobs, back
    finally:
        await conn.disconnect()


CODECS = [
    (ConnectionTcpMTProxyAbridged, 0, b"\xef\xef\xef\xef"),
    (ConnectionTcpMTProxyIntermediate, 0, b"\xee\xee\xee\xee"),
    (ConnectionTcpMTProxyRandomizedIntermediate, 1, b"\xdd\xdd\xdd\xdd"),
]


@pytest.mark.parametrize("conn_cls,secret_index,tag", CODECS, ids=lambda c: getattr(c, "__name__", None))
def test_telethon_through_relay(relay, dc, conn_cls, secret_index, tag):
    dc_id = 2 if secret_index == 0 else -4  # a negative id: the media side of DC 4
    before = relay.status_json()["mtproto"]["secrets"][secret_index]["connects"]
    nonce, res, blobs, back = asyncio.run(telethon_exchange(conn_cls, relay.mt, SECRETS[secret_index], dc_id))
    # What reached the DC: Telethon's req_pq_multi, byte for byte, in the client's transport.
    nonce_bytes = nonce.to_bytes(16, "little", signed=True)
    rec, pkt = dc_session_with(dc, nonce_bytes)
    assert rec is not None, dc.sessions
    assert rec["tag"] == tag and rec["dc"] == dc_id
    body = bytes(ReqPqMultiRequest(nonce))
    auth_key_id, _msg_id, length = struct.unpack("<qqi", pkt[:20])
    assert auth_key_id == 0 and length == len(body) and pkt[20:] == body
    # What came back: a ResPQ Telethon parsed, with our nonce; and the echoes intact.
    assert isinstance(res, ResPQ) and res.nonce == nonce and res.pq == bytes.fromhex("17ED48941A08F981")
    assert back == blobs
    assert rec["packets"][1:] == blobs
    st = relay.status_json()["mtproto"]["secrets"][secret_index]
    assert st["connects"] == before + 1
    assert st["bytes_up"] > sum(map(len, blobs)) and st["bytes_down"] > sum(map(len, blobs))


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def fake_tls_session(port, key, dc_id=2, ts=None):
    s = connect(port)
    hello = peers.client_hello(key, DOMAIN, ts=ts)
    s.sendall(hello)
    peers.read_server_hello(s, key, hello[11:43])
    return s


def test_fake_tls_client(relay, dc):
    s = fake_tls_session(relay.mt, EE)
    try:
        tls = peers.TLSStream(s)
        head, enc, dec = peers.obfs2_client_header(EE, peers.TAG_PADDED, 3)
        nonce = os.urandom(16)
        req = struct.pack("<qqi", 0, (int(time.time()) << 32) | 4, 20) + struct.pack("<I", peers.REQ_PQ_MULTI) + nonce
        big = os.urandom(100000)
        # Header and first packet in one record, the next packet across several records.
        tls.send(head + enc.update(peers.frame(peers.TAG_PADDED, req)), first=True)
        tls.send(enc.update(peers.frame(peers.TAG_PADDED, big)))

        def read(n):
            return dec.update(tls.read(n))

        res = peers.read_frame(read, peers.TAG_PADDED)
        assert struct.unpack("<I", res[20:24])[0] == peers.RES_PQ and res[24:40] == nonce
        assert peers.read_frame(read, peers.TAG_PADDED) == big
    finally:
        s.close()
    rec, pkt = dc_session_with(dc, nonce)
    assert rec["tag"] == peers.TAG_PADDED and rec["dc"] == 3 and pkt == req


def probe(port, data, wait=1.5):
    """Send data, collect whatever comes back within `wait` seconds."""
    s = connect(port)
    s.sendall(data)
    s.settimeout(wait)
    try:
        return read_to_close(s)
    finally:
        s.close()


def test_wrong_secret_goes_to_mask_site(relay, mask_site):
    before = len(mask_site.got)
    # fake-TLS with a key the relay does not know
    hello = peers.client_hello(os.urandom(16), DOMAIN)
    assert probe(relay.mt, hello) == peers.MaskSite.REPLY
    # plain obfuscated2 with a wrong key
    head, _, _ = peers.obfs2_client_header(os.urandom(16), peers.TAG_INTERMEDIATE, 2)
    assert probe(relay.mt, head) == peers.MaskSite.REPLY
    assert mask_site.got[before:] == [hello, head]
    refused = relay.status_json()["refused"]
    assert refused.get("mtproto-secret", 0) >= 2


def test_replayed_hello_and_header_refused(relay, mask_site):
    s = fake_tls_session(relay.mt, EE)
    s.close()
    # The same ClientHello again: a replay, shown the mask site, not a ServerHello.
    hello = peers.client_hello(EE, DOMAIN)
    s = connect(relay.mt)
    s.sendall(hello)
    peers.read_server_hello(s, EE, hello[11:43])
    s.close()
    assert probe(relay.mt, hello) == peers.MaskSite.REPLY
    # A replayed obfuscated2 header (dd secret) likewise.
    head, _, _ = peers.obfs2_client_header(DD, peers.TAG_PADDED, 2)
    s = connect(relay.mt)
    s.sendall(head)
    time.sleep(0.3)
    s.close()
    assert probe(relay.mt, head) == peers.MaskSite.REPLY
    assert relay.status_json()["refused"].get("mtproto-replay", 0) >= 2


def test_stale_clock_refused(relay):
    hello = peers.client_hello(EE, DOMAIN, ts=int(time.time()) - 86400)
    assert probe(relay.mt, hello) == peers.MaskSite.REPLY
    assert relay.status_json()["refused"].get("mtproto-clock", 0) >= 1


def test_dd_secret_requires_padded_transport(relay):
    head, _, _ = peers.obfs2_client_header(DD, peers.TAG_ABRIDGED, 2)
    assert probe(relay.mt, head) == peers.MaskSite.REPLY


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tunnel_limits_and_garbage_floods(runtime, dc, tmp_path):
    """The core's limits hold here: a client over its tunnel share is closed and counted;
    a flood of garbage and half-sent headers leaves the relay serving."""
    cfg = mt_config(dc.port)
    cfg["limits"] = {"tunnels_per_client": 2, "handshake_timeout": 2}
    r = RelayProcess(runtime, tmp_path, cfg)
    port = cfg["mtproto"]["port"]
    held = []
    try:
        for i in range(3):
            s = connect(port)
            head, enc, dec = peers.obfs2_client_header(PLAIN, peers.TAG_INTERMEDIATE, 2)
            s.sendall(head + enc.update(peers.frame(peers.TAG_INTERMEDIATE, b"ping" * 4)))
            s.settimeout(5)
            got = s.recv(64)
            if i < 2:
                assert dec.update(got)[4:] == b"ping" * 4  # echoed by the DC
            else:
                assert got == b""  # over the share: closed without a word
            held.append(s)
        assert r.status_json()["refused"].get("client-full") == 1
        for s in held:
            s.close()
        wait_idle(r)  # the relay has seen the held tunnels end (else the next one is over the share too)
        junk = [connect(port) for _ in range(20)]
        for i, s in enumerate(junk):
            s.sendall(os.urandom(1 + i * 7))  # short of a header, or a wrong one
        for s in junk:
            s.close()
        nonce, res, blobs, back = asyncio.run(telethon_exchange(ConnectionTcpMTProxyIntermediate, port, SECRETS[0], 2))
        assert res.nonce == nonce and back == blobs
        deadline = time.monotonic() + 5
        while r.status_json()["tunnels_open"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert r.status_json()["tunnels_open"] == 0  # every tunnel given back
        assert r.alive()
    finally:
        r.stop()


def wait_idle(r, timeout=5):
    deadline = time.monotonic() + timeout
    while r.status_json()["tunnels_open"] and time.monotonic() < deadline:
        time.sleep(0.05)
    return r.status_json()


def test_upload_counter_counts_the_first_read_too(relay):
    """Every byte the client sent counts as upload: the 64-byte header and the request that came with it too."""
    before = wait_idle(relay)
    s = connect(relay.mt)
    head, enc, dec = peers.obfs2_client_header(PLAIN, peers.TAG_INTERMEDIATE, 2)
    first = head + enc.update(peers.frame(peers.TAG_INTERMEDIATE, b"first" * 20))
    second = enc.update(peers.frame(peers.TAG_INTERMEDIATE, b"second" * 300))
    s.sendall(first)
    s.settimeout(5)
    got = b""
    while len(got) < 4 + 100:
        got += s.recv(4096)
    s.sendall(second)
    while len(got) < 4 + 100 + 4 + 1800:
        got += s.recv(4096)
    assert dec.update(got)[4:104] == b"first" * 20  # echoed by the DC
    s.close()
    after = wait_idle(relay)
    sent = len(first) + len(second)
    assert after["bytes_up"] - before["bytes_up"] == sent
    mine = after["mtproto"]["secrets"][0]["bytes_up"] - before["mtproto"]["secrets"][0]["bytes_up"]
    assert mine == sent


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_default_tunnels_per_client_fits_a_few_phones_behind_one_address(runtime, dc, tmp_path):
    """Five phones behind one NAT, twenty MTProto connections each (Telegram opens several per DC and more for
    media), with the default limits: every one is served, none refused."""
    cfg = mt_config(dc.port)
    r = RelayProcess(runtime, tmp_path, cfg)
    port = cfg["mtproto"]["port"]
    held = []
    try:
        for _ in range(5 * 20):
            s = connect(port)
            head, enc, dec = peers.obfs2_client_header(PLAIN, peers.TAG_INTERMEDIATE, 2)
            s.sendall(head + enc.update(peers.frame(peers.TAG_INTERMEDIATE, b"ping" * 4)))
            held.append((s, dec))
        for s, dec in held:
            s.settimeout(10)
            assert dec.update(s.recv(64))[4:] == b"ping" * 4
        st = r.status_json()
        assert st["tunnels_open"] == 100 and not st["refused"].get("client-full"), st
    finally:
        for s, _ in held:
            s.close()
        r.stop()
