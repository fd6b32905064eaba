"""Destinations that are neither an address nor a name get their protocol's refusal at once, on each
I/O path, with no traceback: a label over 63 bytes (CPython's idna codec raised UnicodeError),
`-1::1` (the address parser raised ValueError; the fast path then hung for the handshake timeout),
empty labels. And `localhost` resolves from /etc/hosts on every runtime (MicroPython's own resolver
used to ignore the file).
"""

import socket
import struct

import pytest

LONG = "a" * 64 + ".example"
BAD_NAMES = [LONG, "-1::1", "a..example", ".example", "1.2.3.4.5", "example.123", ".".join(["a" * 63] * 4)]


def socks5_name(port, name, dport=80):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)  # "at once": well inside the handshake timeout
    try:
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        raw = name.encode()
        s.sendall(b"\x05\x01\x00\x03" + bytes([len(raw)]) + raw + struct.pack(">H", dport))
        r = s.recv(64)
        return r[:2]
    finally:
        s.close()


def socks4a_name(port, name, dport=80):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        s.sendall(b"\x04\x01" + struct.pack(">H", dport) + b"\x00\x00\x00\x01\x00" + name.encode() + b"\x00")
        return s.recv(8)[:2]
    finally:
        s.close()


def http_get(port, name, dport=80):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        s.sendall(b"GET http://%s:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % (name.encode(), dport))
        return s.recv(64).split(b"\r\n")[0]
    finally:
        s.close()


@pytest.mark.parametrize("dns", ["system", "servers"])
def test_bad_names_are_refused_at_once(runtime, start_relay, dns_server, dns):
    cfg = {"limits": {"handshake_timeout": 10}}
    if dns == "servers":
        cfg["dns"] = {"servers": [f"127.0.0.1:{dns_server.port}"]}
    relay = start_relay(runtime, cfg)
    got = {n: socks5_name(relay.socks, n) for n in BAD_NAMES}
    assert got == dict.fromkeys(BAD_NAMES, b"\x05\x04"), got  # host unreachable
    assert socks4a_name(relay.socks, LONG) == b"\x00\x5b"
    assert http_get(relay.http, LONG).startswith(b"HTTP/1.1 502"), http_get(relay.http, LONG)
    assert relay.alive()
    out, err = relay.stop()
    assert "Traceback" not in err and "failed" not in err, err


def test_localhost_from_etc_hosts(runtime, start_relay, origin, dns_server):
    with open("/etc/hosts") as f:
        if not any(line.split()[1:2] == ["localhost"] and line.startswith("127.") for line in f if line.strip()):
            pytest.skip("/etc/hosts has no 127.x localhost line")
    # dns.servers names a resolver that knows nothing of localhost: the hosts file must answer first.
    relay = start_relay(runtime, {"dns": {"servers": [f"127.0.0.1:{dns_server.port}"]}})
    assert socks5_name(relay.socks, "localhost", origin.port) == b"\x05\x00"
    assert ("localhost", "A") not in dns_server.queries
