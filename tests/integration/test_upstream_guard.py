"""The guard holds when an upstream proxy carries the traffic, on each I/O path.

With upstream.proxies set, names used to go to the upstream unresolved: through a proxy on this
device's loopback (microsocks, a plain SOCKS5 server that resolves names itself), `localhost`,
`127.1`, `2130706433`, `0x7f000001`, `0`, a name whose DNS answer is 127.0.0.1 and an HTTP
`CONNECT localhost:P` all reached a listener on the relay's own loopback without any --allow.
The guard now decides before anything leaves, and a proxy on a guarded address gets addresses the
relay resolved and checked (unless declared socks5h://, which still never gets what the guard knows). The same requests pass once guard.allow opens loopback, so it is the
guard that refuses them.
"""

import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from tests.helpers.origin import DNSServer
from tests.helpers.relayproc import free_port


class Victim:
    """A listener on the relay's loopback that counts who reached it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))  # 0.0.0.0: "0" and 127.x reach it, as any local service
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            c.sendall(b"secret admin page\n")
            c.close()

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def microsocks():
    if not shutil.which("microsocks"):
        pytest.skip("microsocks not installed (make setup installs it)")
    port = free_port()
    p = subprocess.Popen(["microsocks", "-i", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    p.terminate()
    p.wait(5)


@pytest.fixture(scope="module")
def victim():
    v = Victim()
    yield v
    v.close()


@pytest.fixture(scope="module")
def loop_dns():
    d = DNSServer({"loop.test": ["127.0.0.1"], "loop6.test": ["::1"]})
    yield d
    d.close()


def socks5(port, atyp_addr, dport):
    """-> the reply code of a SOCKS5 CONNECT (None when the relay closed without one)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        s.sendall(b"\x05\x01\x00")
        if s.recv(2) != b"\x05\x00":
            return None
        s.sendall(b"\x05\x01\x00" + atyp_addr + struct.pack(">H", dport))
        r = s.recv(64)
        return r[1] if len(r) >= 2 else None
    finally:
        s.close()


def name(text):
    return b"\x03" + bytes([len(text)]) + text.encode()


def http(port, request):
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        s.sendall(request)
        return s.recv(200).split(b"\r\n", 1)[0]
    finally:
        s.close()


LOCAL_NAMES = ["localhost", "LocalHost.", "a.localhost", "127.1", "2130706433", "0x7f000001", "0177.0.0.1",
               "0x7f.1", "0", "127.0.0.1", "::1", "::ffff:127.0.0.1", "fixed.test", "loop.test", "loop6.test"]
ADDRESSES = [b"\x01\x7f\x00\x00\x01", b"\x04" + b"\x00" * 15 + b"\x01", b"\x04" + b"\x00" * 10 + b"\xff\xff\x7f\x00\x00\x01",
             b"\x01\x00\x00\x00\x00"]


def requests(relay, port):
    """Every way tried to reach port on the relay's loopback -> [(what, answer)]."""
    out = [(n, socks5(relay.socks, name(n), port)) for n in LOCAL_NAMES]
    out += [(a.hex(), socks5(relay.socks, a, port)) for a in ADDRESSES]
    out.append(("CONNECT localhost", http(relay.http, b"CONNECT localhost:%d HTTP/1.1\r\nHost: x\r\n\r\n" % port)))
    out.append(("GET 127.1", http(relay.http, b"GET http://127.1:%d/ HTTP/1.1\r\nHost: 127.1\r\n\r\n" % port)))
    return out


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_no_way_to_the_loopback_through_a_loopback_upstream(runtime, start_relay, microsocks, victim, loop_dns, kind):
    if kind == "socks5":
        upstream = f"socks5://127.0.0.1:{microsocks}"
    else:  # a plain HTTP proxy on loopback: another relay whose guard lets loopback through
        up = start_relay("cpython", {"guard": {"allow": ["0.0.0.0/0", "::/0"]}})
        upstream = f"http://127.0.0.1:{up.http}"
    cfg = {"guard": {"allow": []}, "upstream": {"proxies": [upstream]},
           "dns": {"servers": [f"127.0.0.1:{loop_dns.port}"], "hosts": {"fixed.test": ["127.0.0.1"]}}}
    relay = start_relay(runtime, cfg)
    before = victim.hits
    got = requests(relay, victim.port)
    reached = [what for what, answer in got if answer in (0, b"HTTP/1.1 200 Connection established", b"HTTP/1.1 200 OK")]
    assert reached == [] and victim.hits == before, got
    refused = [what for what, answer in got if answer not in (2, 4, b"HTTP/1.1 403 Forbidden")]
    assert refused == [], got
    # The same relay with names sent to the proxy (socks5h: an engine on loopback whose exit is abroad):
    # what the guard knows is still refused before it leaves.
    relay.stop()
    if kind == "socks5":
        cfg["upstream"]["proxies"] = [upstream.replace("socks5://", "socks5h://")]
    relay = start_relay(runtime, cfg)
    got = requests(relay, victim.port)
    assert victim.hits == before, got  # loop.test and loop6.test went as names: microsocks cannot resolve them
    # Opened by guard.allow, the same requests go through: it is the guard that said no above.
    relay.stop()
    cfg["guard"]["allow"] = ["127.0.0.0/8", "::1/128", "0.0.0.0/32"]
    cfg["upstream"]["proxies"] = [upstream]
    relay = start_relay(runtime, cfg)
    assert socks5(relay.socks, name("127.1"), victim.port) == 0
    assert socks5(relay.socks, name("localhost"), victim.port) == 0
    assert victim.hits > before
