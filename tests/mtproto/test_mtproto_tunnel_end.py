"""MTProto tunnels end whole on every I/O path: counters go back, broken framing is counted.

On CPython's fast path a running MTProto tunnel has no task behind it (the pump's
callbacks end it), so what a task's `finally` used to do (the secret's open count,
the relay's tunnel and session counts, closing the DC's side) now happens in the
pump's done callback; these tests hold it to the same results as the task paths.
Real clients: obfuscated2 and fake-TLS written from the published formats
(tests/mtproto/peers.py), a stand-in DC that echoes. Loopback only.
"""

import os
import socket
import time

import pytest

from tests.helpers.origin import ThreadedTCP
from tests.helpers.relayproc import RUNTIMES, RelayProcess, free_port
from tests.mtproto import peers

PLAIN = peers.plain_key()  # not dd.. or ee..: see plain_key
EE = os.urandom(16)
DOMAIN = "www.example.com"
SECRETS = [PLAIN.hex(), "ee" + EE.hex() + DOMAIN.encode().hex()]


@pytest.fixture(scope="module")
def dc():
    d = peers.DCStub()
    yield d
    d.close()


class HangUp(ThreadedTCP):
    """A DC that reads the proxy's header and one packet (132 bytes), then closes."""

    def __init__(self):
        super().__init__()
        self.got = []
        self.start()

    def serve(self, c):
        c.settimeout(10)
        n = 0
        try:
            while n < 132:
                chunk = c.recv(4096)
                if not chunk:
                    break
                n += len(chunk)
        except OSError:
            pass
        self.got.append(n)
        c.close()


@pytest.fixture(scope="module")
def hangup():
    h = HangUp()
    yield h
    h.close()


@pytest.fixture(scope="module", params=RUNTIMES)
def relay(request, dc, hangup, tmp_path_factory):
    port = free_port()
    dcs = {str(i): [f"127.0.0.1:{dc.port}"] for i in range(1, 6)}
    dcs["3"] = [f"127.0.0.1:{hangup.port}"]
    cfg = {"mtproto": {"enabled": True, "host": "127.0.0.1", "port": port, "secrets": SECRETS, "dcs": dcs}}
    r = RelayProcess(request.param, tmp_path_factory.mktemp("mtend"), cfg)
    r.mt = port
    yield r
    r.stop()


def wait_for(pred, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def plain_tunnel(port, payload):
    """A plain-secret client that got `payload` echoed by the DC through the relay."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head, enc, dec = peers.obfs2_client_header(PLAIN, peers.TAG_INTERMEDIATE, 2)
    s.sendall(head + enc.update(peers.frame(peers.TAG_INTERMEDIATE, payload)))
    got = peers.read_frame(lambda n: dec.update(peers.recv_exact(s, n)), peers.TAG_INTERMEDIATE)
    assert got == payload
    return s


def test_counts_return_to_zero_when_clients_leave(relay):
    before = relay.status_json()
    socks = [plain_tunnel(relay.mt, os.urandom(100 + i)) for i in range(12)]
    st = relay.status_json()
    assert st["mtproto"]["secrets"][0]["open"] == before["mtproto"]["secrets"][0]["open"] + 12
    assert st["tunnels_open"] == before["tunnels_open"] + 12
    for s in socks:
        s.close()
    # MTProto has no half-close: the client's EOF ends the tunnel, and every count goes back
    wait_for(lambda: relay.status_json()["mtproto"]["secrets"][0]["open"] == before["mtproto"]["secrets"][0]["open"],
             "the secret's open count to return")
    st = relay.status_json()
    assert st["tunnels_open"] == before["tunnels_open"]
    assert st["sessions"] == before["sessions"]


def test_dc_closing_ends_the_client_side(relay, hangup):
    """DC 3 is a peer that reads the proxy's header and a packet, then closes: the client sees the close."""
    before = relay.status_json()["mtproto"]["secrets"][0]["open"]
    s = socket.create_connection(("127.0.0.1", relay.mt), timeout=10)
    try:
        head, enc, _dec = peers.obfs2_client_header(PLAIN, peers.TAG_INTERMEDIATE, 3)
        s.sendall(head + enc.update(peers.frame(peers.TAG_INTERMEDIATE, b"x" * 64)))
        s.settimeout(10)
        try:
            assert s.recv(65536) == b""
        except ConnectionResetError:
            pass
    finally:
        s.close()
    assert hangup.got and hangup.got[-1] >= 64 + 4 + 64
    wait_for(lambda: relay.status_json()["mtproto"]["secrets"][0]["open"] == before, "the tunnel to end")


def test_broken_framing_after_the_handshake_is_counted_and_closed(relay):
    before = relay.status_json()["refused"].get("mtproto-protocol", 0)
    s = socket.create_connection(("127.0.0.1", relay.mt), timeout=10)
    try:
        hello = peers.client_hello(EE, DOMAIN)
        s.sendall(hello)
        peers.read_server_hello(s, EE, hello[11:43])
        head, enc, _dec = peers.obfs2_client_header(EE, peers.TAG_PADDED, 2)
        peers.TLSStream(s).send(head + enc.update(peers.frame(peers.TAG_PADDED, b"y" * 32)), first=True)
        time.sleep(0.3)  # the tunnel runs
        s.sendall(b"\x15\x03\x03\x00\x02\x02\x28")  # a TLS alert: nothing an MTProto client sends
        s.settimeout(10)
        with pytest.raises((ConnectionResetError, EOFError)):
            while True:
                if not s.recv(65536):
                    raise EOFError
    finally:
        s.close()
    wait_for(lambda: relay.status_json()["refused"].get("mtproto-protocol", 0) == before + 1,
             "the broken record to be counted")
    wait_for(lambda: relay.status_json()["mtproto"]["secrets"][1]["open"] == 0, "the tunnel to end")
