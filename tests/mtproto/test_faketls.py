"""faketls.py: the mask site's profile learned from a real TLS server, the ServerHello built from it,
records sized per record. The server is Python's ssl (OpenSSL) with a throwaway certificate."""

import os
import socket
import struct

import pytest

from relay.proto import faketls as T
from tests.helpers.tlsmask import TLSSite
from tests.mtproto import peers

DOMAIN = "mask.example.org"


@pytest.fixture(scope="module")
def site():
    s = TLSSite(DOMAIN)
    yield s
    s.close()


def learn(port, domain):
    from relayctl.cmd_public import learn_profile  # the relay's own probe and reader, over a plain socket

    return learn_profile("127.0.0.1", port, domain, 5)


def test_profile_learned_from_a_real_tls_server(site):
    p = learn(site.port, DOMAIN)
    assert p.learned and p.cipher in (0x1301, 0x1302, 0x1303)  # TLS 1.3: the server's choice
    # The encrypted flight carries the certificate chain (two EC certificates here, ~1 KB) and the rest.
    assert p.flight == sum(p.records) and 700 < p.flight < 4000, p.as_dict()
    assert len(T.probe_hello(DOMAIN, os.urandom)) == 517  # as long as Telegram's own ClientHello


def test_server_hello_follows_the_profile_and_passes_the_client_check(site):
    p = learn(site.port, DOMAIN)
    key = os.urandom(16)
    sizes = set()
    for _ in range(20):
        hello = peers.client_hello(key, DOMAIN)
        reply = T.server_hello(key, hello[11:43], hello[44:76], p, os.urandom)
        a, b = socket.socketpair()
        a.sendall(reply)
        recs = peers.read_server_hello(b, key, hello[11:43])  # the HMAC a tdlib client checks
        a.close()
        b.close()
        assert struct.unpack(">H", recs[0][4 + 2 + 32 + 33 : 4 + 2 + 32 + 35])[0] == p.cipher
        n = len(recs[2])
        assert abs(n - p.flight) <= p.flight * T.JITTER // 1000
        sizes.add(n)
    assert len(sizes) > 5  # not one fixed size


def test_profile_errors_name_the_cause():
    r = T.ProfileReader()
    with pytest.raises(T.ProfileError, match="alert 112"):
        r.feed(T.alert_unrecognized_name())
    with pytest.raises(T.ProfileError, match="not TLS"):
        T.ProfileReader().feed(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    with pytest.raises(T.ProfileError, match="no certificate"):
        T.ProfileReader().profile()


def test_stand_in_profile_is_random_per_relay():
    sizes = {T.MaskProfile.stand_in(os.urandom).flight for _ in range(20)}
    assert len(sizes) > 10 and all(1024 <= n < 4096 for n in sizes)


def test_bulk_records_vary_in_size_and_carry_everything():
    sizer = T.RecordSizer(os.urandom(4))
    data = os.urandom(300000)
    out = T.frame(data, sizer)
    got, lens, i = b"", [], 0
    while i < len(out):
        assert out[i : i + 3] == b"\x17\x03\x03"
        n = struct.unpack(">H", out[i + 3 : i + 5])[0]
        lens.append(n)
        got += out[i + 5 : i + 5 + n]
        i += 5 + n
    assert got == data
    assert max(lens) <= 16384 and len(set(lens[:-1])) > len(lens) // 2  # full records, but not one length
    assert T.frame(b"x" * 100, sizer) == b"\x17\x03\x03\x00\x64" + b"x" * 100  # a message: one record of its size


def test_hello_prefix_decides_byte_by_byte():
    hello = peers.client_hello(os.urandom(16), DOMAIN)
    assert all(T.hello_prefix_ok(hello[:n]) for n in range(1, 7))
    assert not T.hello_prefix_ok(b"G") and not T.hello_prefix_ok(b"\x16\x02")
