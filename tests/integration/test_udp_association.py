"""One bad datagram ends nothing: a UDP association keeps relaying after every kind of bad datagram,
carries IPv6 destinations on an IPv4 association, and relays big datagrams whole or not at all.

Bad datagrams: a malformed header, port 0, a name with a label over 63 bytes, a destination the
network refuses at once (the broadcast address, which the guard is told to allow here so that the
kernel's EACCES is what stops it: nothing leaves the machine), a datagram over limits.udp_datagram.
After each, good datagrams still come back; the status page counts the dropped ones.
"""

import socket
import struct

import pytest

from tests.helpers.origin import UDPEcho
from tests.integration.test_proxy import socks5_request

LIMIT = 20000  # limits.udp_datagram in this test: above the 2048 MicroPython used to cut at


@pytest.fixture(scope="module")
def echoes():
    e4, e6 = UDPEcho(), UDPEcho("::1")
    yield e4, e6
    e4.close()
    e6.close()


def header(addr, port):
    return b"\x00\x00\x00" + addr + struct.pack(">H", port)


def v4(text):
    return b"\x01" + socket.inet_aton(text)


V6_LOOPBACK = b"\x04" + b"\x00" * 15 + b"\x01"


def test_bad_datagrams_are_dropped_and_counted_and_the_association_goes_on(runtime, start_relay, echoes):
    e4, e6 = echoes
    relay = start_relay(runtime, {"guard": {"allow": ["127.0.0.0/8", "::1/128", "255.255.255.255/32"]},
                                  "limits": {"udp_datagram": LIMIT}})
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.settimeout(5)
    ctl, reply = socks5_request(relay.socks, b"\x05\x03\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", u.getsockname()[1]))
    try:
        assert reply[:2] == b"\x05\x00", reply
        relay_udp = (socket.inet_ntoa(reply[4:8]), struct.unpack(">H", reply[8:10])[0])

        def round_trip(addr, port, payload):
            u.sendto(header(addr, port) + payload, relay_udp)
            data, _ = u.recvfrom(65535)
            return data

        def good(n=5):
            got = 0
            for i in range(n):
                if round_trip(v4("127.0.0.1"), e4.port, b"voice-%d" % i).endswith(b"echo:voice-%d" % i):
                    got += 1
            return got

        assert good() == 5
        bad = [
            b"\x00\x00\x00\x09" + b"\x00" * 8,  # an address type that does not exist
            header(v4("127.0.0.1"), 0) + b"port zero",
            header(b"\x03\x41" + b"a" * 64 + b".", e4.port) + b"label over 63",
            header(v4("255.255.255.255"), e4.port) + b"broadcast",
            header(v4("127.0.0.1"), e4.port) + b"x" * (LIMIT + 1000),
        ]
        for d in bad:
            u.sendto(d, relay_udp)
            assert good() == 5, d[:40]
        # An IPv6 destination on this IPv4 association is carried, not dropped.
        assert round_trip(V6_LOOPBACK, e6.port, b"over ipv6") == header(V6_LOOPBACK, e6.port) + b"echo:over ipv6"
        # Big datagrams come back whole (the echo adds five bytes), up to the limit.
        big = bytes(range(256)) * ((LIMIT - 300) // 256)
        assert round_trip(v4("127.0.0.1"), e4.port, big) == header(v4("127.0.0.1"), e4.port) + b"echo:" + big
        assert good() == 5
        st = relay.status_json()
        assert st["udp_dropped"] >= len(bad), st
    finally:
        ctl.close()
        u.close()
