"""The relay as a process under CPython and MicroPython, driven by real clients: curl and python-socks."""

import asyncio
import hashlib
import socket
import struct
import subprocess

import pytest
from python_socks import ProxyError, ProxyType
from python_socks.async_.asyncio import Proxy

from tests.helpers.origin import UDPEcho, read_at_least, read_to_close


def curl(*args, timeout=60):
    r = subprocess.run(["curl", "-sS", "--max-time", "30", *args], capture_output=True, timeout=timeout)
    return r


def dns_config(dns_server, **extra):
    cfg = {"dns": {"servers": [f"127.0.0.1:{dns_server.port}"]}}
    cfg.update(extra)
    return cfg


@pytest.mark.parametrize(
    "mode,host",
    [("--socks5-hostname", "origin.test"), ("--socks5", "127.0.0.1"), ("--socks4a", "origin.test"), ("--socks4", "127.0.0.1")],
)
def test_curl_socks_fetches_file_intact(runtime, start_relay, origin, dns_server, mode, host):
    relay = start_relay(runtime, dns_config(dns_server))
    r = curl(mode, f"127.0.0.1:{relay.socks}", f"http://{host}:{origin.port}/blob")
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == origin.sha256


@pytest.mark.parametrize("connect", [False, True], ids=["forward", "connect"])
def test_curl_http_proxy(runtime, start_relay, origin, dns_server, connect):
    relay = start_relay(runtime, dns_config(dns_server))
    args = ["-x", f"http://127.0.0.1:{relay.http}"] + (["-p"] if connect else [])
    r = curl(*args, f"http://origin.test:{origin.port}/blob")
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == origin.sha256


def test_http_forward_keep_alive_chunked_post_and_headers(runtime, start_relay, origin, tmp_path):
    relay = start_relay(runtime)
    base = f"http://127.0.0.1:{origin.port}"
    body = tmp_path / "body"
    body.write_bytes(b"x" * 100000)
    r = curl("-x", f"http://127.0.0.1:{relay.http}", "-w", "%{num_connects}\\n",
             f"{base}/small", f"{base}/chunked", "-o", str(tmp_path / "a"), "-o", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["1", "0"]  # the second request reused the client connection
    assert (tmp_path / "a").read_bytes() == b"hello relay\n"
    assert hashlib.sha256((tmp_path / "b").read_bytes()).hexdigest() == origin.sha256
    r = curl("-x", f"http://127.0.0.1:{relay.http}", "--data-binary", f"@{body}", f"{base}/post")
    assert r.stdout.decode() == hashlib.sha256(b"x" * 100000).hexdigest()
    r = curl("-x", f"http://127.0.0.1:{relay.http}", "-H", "Proxy-Connection: keep-alive", f"{base}/headers")
    seen = r.stdout.decode()
    assert "proxy-connection" not in seen and f"host: 127.0.0.1:{origin.port}" in seen


def test_one_port_serves_both_protocols(runtime, start_relay, origin):
    relay = start_relay(runtime)
    for args in (["--socks5", f"127.0.0.1:{relay.http}"], ["-x", f"http://127.0.0.1:{relay.socks}"]):
        r = curl(*args, f"http://127.0.0.1:{origin.port}/small")
        assert r.stdout == b"hello relay\n", r.stderr


async def _python_socks_get(proxy_port, host, port, path=b"/small", username=None, password=None):
    proxy = Proxy(ProxyType.SOCKS5, "127.0.0.1", proxy_port, username=username, password=password, rdns=True)
    sock = await proxy.connect(dest_host=host, dest_port=port, timeout=10)
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await reader.read()
    writer.close()
    return data


@pytest.mark.parametrize("target", ["ipv4", "ipv6", "name", "dual-stack fallback"])
def test_python_socks_targets(runtime, start_relay, origin, origin6, dns_server, target):
    relay = start_relay(runtime, dns_config(dns_server, dns={"servers": [f"127.0.0.1:{dns_server.port}"], "prefer": "ipv6"}))
    host, port = {
        "ipv4": ("127.0.0.1", origin.port),
        "ipv6": ("::1", origin6.port),
        "name": ("origin.test", origin.port),
        # dual.test has AAAA ::1 (nothing listens there on this port) and A 127.0.0.1: the relay must fall back.
        "dual-stack fallback": ("dual.test", origin.port),
    }[target]
    data = asyncio.run(_python_socks_get(relay.socks, host, port))
    assert data.startswith(b"HTTP/1.") and data.endswith(b"hello relay\n")


def test_rfc1929_right_and_wrong_password(runtime, start_relay, origin):
    relay = start_relay(runtime, {"socks": {"auth": "password", "users": [{"user": "local", "pass": "s3cret"}]}})
    data = asyncio.run(_python_socks_get(relay.socks, "127.0.0.1", origin.port, username="local", password="s3cret"))
    assert data.endswith(b"hello relay\n")
    # Wrong password: status byte 0x01, then the close.
    s = socket.create_connection(("127.0.0.1", relay.socks), timeout=5)
    s.sendall(b"\x05\x01\x02")
    assert s.recv(2) == b"\x05\x02"
    s.sendall(b"\x01\x05local\x05wrong")
    assert s.recv(2) == b"\x01\x01"
    assert s.recv(10) == b""
    s.close()
    # One good login does not open the door for the next connection from this address.
    with pytest.raises(ProxyError):
        asyncio.run(_python_socks_get(relay.socks, "127.0.0.1", origin.port))
    r = curl("-x", f"http://127.0.0.1:{relay.http}", f"http://127.0.0.1:{origin.port}/small", "-w", "%{http_code}")
    assert r.stdout.endswith(b"407")
    r = curl("-x", f"http://local:s3cret@127.0.0.1:{relay.http}", f"http://127.0.0.1:{origin.port}/small")
    assert r.stdout == b"hello relay\n"


def socks5_request(port, req, greeting=b"\x05\x01\x00"):
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(greeting)
    assert s.recv(2) == b"\x05\x00"
    s.sendall(req)
    return s, socks5_reply(s)


def socks5_reply(s):
    """The relay's reply to a SOCKS5 request: 10 bytes or more (an IPv4 bound address; reads take up to 64)."""
    return read_at_least(s, 10, 64)


def connect_req(ip_text, port):
    if ":" in ip_text:
        return b"\x05\x01\x00\x04" + socket.inet_pton(socket.AF_INET6, ip_text) + struct.pack(">H", port)
    return b"\x05\x01\x00\x01" + socket.inet_aton(ip_text) + struct.pack(">H", port)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_refusal_codes(runtime, start_relay, origin, dns_server):
    relay = start_relay(runtime, dns_config(dns_server, guard={"allow": ["127.0.0.0/8"]}))
    cases = [
        (connect_req("10.1.2.3", 80), 0x02),  # local network: guard
        (connect_req("::1", 80), 0x02),  # loopback v6 is not in this relay's exceptions
        (b"\x05\x01\x00\x03\x0cprivate.test\x00\x50", 0x02),  # name checked after resolution
        (b"\x05\x01\x00\x03\x0cnowhere.test\x00\x50", 0x04),  # NXDOMAIN: host unreachable
        (connect_req("127.0.0.1", closed_port()), 0x05),
        (b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", 0x07),  # BIND
        (b"\x05\x01\x00\x07\x7f\x00\x00\x01\x00\x50", 0x08),
    ]
    for req, code in cases:
        s, reply = socks5_request(relay.socks, req)
        assert reply[:2] == bytes([5, code]), (req, reply)
        assert s.recv(10) == b""  # then the close
        s.close()
    st = relay.status_json()
    assert st["refused"]["guard"] >= 3 and st["refused"]["refused"] >= 1 and st["refused"]["dns"] >= 1
    # HTTP side, same decisions.
    for url, code in (("http://10.1.2.3/", "403"), (f"http://127.0.0.1:{closed_port()}/", "502"),
                      ("http://nowhere.test/", "502")):
        r = curl("-x", f"http://127.0.0.1:{relay.http}", url, "-o", "/dev/null", "-w", "%{http_code}")
        assert r.stdout.decode() == code, url


def test_success_reply_has_bound_address(start_relay, origin):
    relay = start_relay("cpython")
    s, reply = socks5_request(relay.socks, connect_req("127.0.0.1", origin.port))
    assert reply[:4] == b"\x05\x00\x00\x01" and reply[4:8] == b"\x7f\x00\x00\x01" and reply[8:10] != b"\x00\x00"
    s.close()


class _Unanswered:
    """A listener whose accept queue is full: further SYNs go unanswered, so connects time out."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(c)

    def close(self):
        for c in self.fillers:
            c.close()
        self.sock.close()


def test_connect_timeout_gives_06_and_504(runtime, start_relay):
    relay = start_relay(runtime, {"limits": {"connect_timeout": 1}})
    blackhole = _Unanswered()
    try:
        s, reply = socks5_request(relay.socks, connect_req("127.0.0.1", blackhole.port))
        assert reply[:2] == b"\x05\x06"
        s.close()
        r = curl("-x", f"http://127.0.0.1:{relay.http}", f"http://127.0.0.1:{blackhole.port}/", "-o", "/dev/null",
                 "-w", "%{http_code}")
        assert r.stdout == b"504"
    finally:
        blackhole.close()


def test_full_relay_refuses_at_once(runtime, start_relay, echo):
    relay = start_relay(runtime, {"limits": {"tunnels": 2, "tunnels_per_client": 2}})
    held = []
    for _ in range(2):
        s, reply = socks5_request(relay.socks, connect_req("127.0.0.1", echo.port))
        assert reply[1] == 0
        held.append(s)
    s, reply = socks5_request(relay.socks, connect_req("127.0.0.1", echo.port))
    assert reply[:2] == b"\x05\x01"
    s.close()
    r = curl("-x", f"http://127.0.0.1:{relay.http}", f"http://127.0.0.1:{echo.port}/", "-o", "/dev/null",
             "-w", "%{http_code}")
    assert r.stdout == b"503"
    for h in held:
        h.close()


def test_udp_associate_round_trip(runtime, start_relay):
    relay = start_relay(runtime)
    target = UDPEcho()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.settimeout(5)
    try:
        req = b"\x05\x03\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", u.getsockname()[1])
        ctl, reply = socks5_request(relay.socks, req)
        assert reply[:2] == b"\x05\x00", reply
        relay_udp = (socket.inet_ntoa(reply[4:8]), struct.unpack(">H", reply[8:10])[0])
        for i in range(3):
            payload = b"voice-%d" % i
            u.sendto(b"\x00\x00\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", target.port) + payload, relay_udp)
            data, src = u.recvfrom(2048)
            assert src == relay_udp
            assert data == b"\x00\x00\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", target.port) + b"echo:" + payload
        # A fragment (FRAG != 0) is dropped, not relayed.
        u.sendto(b"\x00\x00\x01\x01\x7f\x00\x00\x01" + struct.pack(">H", target.port) + b"frag", relay_udp)
        with pytest.raises(socket.timeout):
            u.settimeout(0.5)
            u.recvfrom(2048)
        ctl.close()
    finally:
        u.close()
        target.close()


def test_no_addresses_in_output_at_default_level(runtime, start_relay, origin, dns_server):
    relay = start_relay(runtime, dns_config(dns_server))
    curl("--socks5-hostname", f"127.0.0.1:{relay.socks}", f"http://origin.test:{origin.port}/small")
    curl("--socks5-hostname", f"127.0.0.1:{relay.socks}", "http://private.test/")
    out, err = relay.stop()
    assert "origin.test" not in out + err and "private.test" not in out + err
    assert str(origin.port) not in out + err


def test_client_half_close_before_the_reply_still_gets_its_answer(runtime, start_relay, origin):
    """`printf 'GET ...' | nc -N` through SOCKS: request, payload and a half-close all before the relay's
    reply. The relay connects all the same, sends the payload, passes the half-close on and returns the
    answer. MicroPython has no half-close: there the first EOF ends the tunnel, by design."""
    if runtime == "micropython":
        pytest.skip("MicroPython sockets have no shutdown(): either EOF ends the tunnel")
    relay = start_relay(runtime)
    for _ in range(10):
        c = socket.create_connection(("127.0.0.1", relay.socks))
        c.sendall(b"\x05\x01\x00")
        assert c.recv(2) == b"\x05\x00"
        c.sendall(connect_req("127.0.0.1", origin.port) + b"GET /small HTTP/1.0\r\nHost: x\r\n\r\n")
        c.shutdown(socket.SHUT_WR)
        c.settimeout(10)
        data = read_to_close(c)
        c.close()
        assert data[:2] == b"\x05\x00" and data.endswith(b"hello relay\n"), data[:80]
