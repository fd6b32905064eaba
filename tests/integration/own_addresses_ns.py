"""Run inside the network namespace test_own_addresses.py made: a relay, a service on `::` and
every kind of client that might reach the service through the relay by the device's own address.

usage: python own_addresses_ns.py RUNTIME TMPDIR  -> one line of JSON on stdout:
  {"answers": {what: reply}, "tcp_hits": n, "udp_hits": n}
"""

import json
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers.origin import DNSServer  # noqa: E402
from tests.helpers.relayproc import RelayProcess  # noqa: E402

UPLINK4, UPLINK6 = "198.51.100.7", "2001:db8:7::7"  # on the namespace's "uplink" interface
LATER4, LATER6 = "198.51.100.8", "2001:db8:7::8"  # added while the relay runs


class Service:
    """A TCP and a UDP listener on `::` (both families), counting what reaches them."""

    def __init__(self):
        self.tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("::", 0))
        self.tcp.listen(64)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.udp.bind(("::", self.port))
        self.tcp_hits = self.udp_hits = 0
        threading.Thread(target=self._tcp, daemon=True).start()
        threading.Thread(target=self._udp, daemon=True).start()

    def _tcp(self):
        while True:
            c, _ = self.tcp.accept()
            self.tcp_hits += 1
            c.sendall(b"HTTP/1.0 200 OK\r\n\r\nthe device's own service\n")
            c.close()

    def _udp(self):
        while True:
            self.udp.recvfrom(2048)
            self.udp_hits += 1


def socks5(port, addr, dport):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        s.sendall(b"\x05\x01\x00" + addr + struct.pack(">H", dport))
        r = s.recv(64)
        return r[1] if len(r) > 1 else None
    finally:
        s.close()


def v4(text):
    return b"\x01" + socket.inet_aton(text)


def v6(text):
    return b"\x04" + socket.inet_pton(socket.AF_INET6, text)


def name(text):
    return b"\x03" + bytes([len(text)]) + text.encode()


def socks4(port, ip, dport):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"\x04\x01" + struct.pack(">H", dport) + socket.inet_aton(ip) + b"\x00")
        r = s.recv(8)
        return r[1] if len(r) > 1 else None
    finally:
        s.close()


def http(port, head):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(head)
        return s.recv(100).split(b"\r\n")[0].decode()
    finally:
        s.close()


def udp(port, service_port):
    """A datagram through a UDP association to the device's own address; -> the association's reply code."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    ctl = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        ctl.sendall(b"\x05\x01\x00")
        ctl.recv(2)
        ctl.sendall(b"\x05\x03\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", u.getsockname()[1]))
        r = ctl.recv(10)
        relay_udp = (socket.inet_ntoa(r[4:8]), struct.unpack(">H", r[8:10])[0])
        for dest in (v4(UPLINK4), v6("::ffff:" + UPLINK4), v6(UPLINK6), name("uplink.test")):
            u.sendto(b"\x00\x00\x00" + dest + struct.pack(">H", service_port) + b"hello", relay_udp)
        time.sleep(0.5)
        return r[1]
    finally:
        ctl.close()
        u.close()


def answers(relay, service, dport):
    out = {}
    for what, addr in (("socks5 ipv4", v4(UPLINK4)), ("socks5 name of the address", name(UPLINK4)),
                       ("socks5 mapped", v6("::ffff:" + UPLINK4)), ("socks5 compatible", v6("::" + UPLINK4)),
                       ("socks5 nat64", v6("64:ff9b::" + UPLINK4)), ("socks5 6to4", v6("2002:c633:6407::1")),
                       ("socks5 ipv6", v6(UPLINK6)), ("socks5 name (dns)", name("uplink.test")),
                       ("socks5 name (dns, ipv6)", name("uplink6.test")), ("socks5 name (hosts)", name("fixed.test"))):
        out[what] = socks5(relay.socks, addr, dport)
    out["socks4"] = socks4(relay.socks, UPLINK4, dport)
    out["http get"] = http(relay.http, b"GET http://%s:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % (UPLINK4.encode(), dport))
    out["http connect"] = http(relay.http, b"CONNECT [%s]:%d HTTP/1.1\r\nHost: x\r\n\r\n" % (UPLINK6.encode(), dport))
    out["udp association"] = udp(relay.socks, dport)
    return out


def later(relay, dport):
    """Addresses added while the relay runs: -> {what: reply}, polled until refused (at most 3 s)."""
    subprocess.run(["ip", "addr", "add", LATER4 + "/32", "dev", "up0"], check=True)
    subprocess.run(["ip", "-6", "addr", "add", LATER6 + "/128", "dev", "up0", "nodad"], check=True)
    out = {}
    for what, addr in (("later ipv4", v4(LATER4)), ("later ipv6", v6(LATER6))):
        deadline = time.monotonic() + 3
        while True:
            out[what] = socks5(relay.socks, addr, dport)
            if out[what] == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    return out


def main():
    runtime, tmp = sys.argv[1], Path(sys.argv[2])
    service = Service()
    dns = DNSServer({"uplink.test": [UPLINK4], "uplink6.test": [UPLINK6]})
    relay = RelayProcess(runtime, tmp, {"guard": {"allow": []}, "dns": {
        "servers": [f"127.0.0.1:{dns.port}"], "hosts": {"fixed.test": [UPLINK4]}}})
    try:
        out = answers(relay, service, service.port)
        out.update(later(relay, service.port))
    finally:
        relay.stop()
    print(json.dumps({"answers": out, "tcp_hits": service.tcp_hits, "udp_hits": service.udp_hits}))


if __name__ == "__main__":
    main()
