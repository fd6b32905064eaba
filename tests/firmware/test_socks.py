"""SOCKS5/SOCKS4a handshakes as transcripts: whole, one byte at a time, with trailing data, arbitrary splits."""

import pytest
from hypothesis import given, settings, strategies as st

from relay.proto import socks
from relay.proto.socks import Login, Request, Send, SocksError


def feed_all(hs, chunks):
    events = []
    for c in chunks:
        events += hs.feed(c)
    return events


def splits(data):
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]


V4_REQ = b"\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x90"
V6_REQ = b"\x05\x01\x00\x04" + b"\x00" * 15 + b"\x01" + b"\x00\x50"
NAME_REQ = b"\x05\x01\x00\x03\x0ctelegram.org\x01\xbb"


@pytest.mark.parametrize(
    "request_bytes,host,port",
    [(V4_REQ, b"\x7f\x00\x00\x01", 8080), (V6_REQ, b"\x00" * 15 + b"\x01", 80), (NAME_REQ, "telegram.org", 443)],
)
@pytest.mark.parametrize("split", ["whole", "bytes"])
def test_socks5_noauth_connect(request_bytes, host, port, split):
    data = b"\x05\x01\x00" + request_bytes
    chunks = [data] if split == "whole" else [data[i : i + 1] for i in range(len(data))]
    hs = socks.Socks5Handshake(password_required=False)
    ev = feed_all(hs, chunks)
    assert isinstance(ev[0], Send) and ev[0].data == b"\x05\x00"
    assert isinstance(ev[1], Request)
    assert (ev[1].cmd, ev[1].host, ev[1].port) == (socks.CMD_CONNECT, host, port)
    assert hs.rest == b""


def test_socks5_trailing_data_is_kept_for_upstream():
    hs = socks.Socks5Handshake(False)
    ev = hs.feed(b"\x05\x01\x00" + V4_REQ + b"GET / HTTP/1.1\r\n")
    assert isinstance(ev[-1], Request)
    assert hs.rest == b"GET / HTTP/1.1\r\n"


def test_socks5_password_flow_and_wrong_password():
    hs = socks.Socks5Handshake(password_required=True)
    ev = hs.feed(b"\x05\x02\x00\x02")
    assert ev[0].data == b"\x05\x02"
    ev = hs.feed(b"\x01\x04user\x06secret")
    assert isinstance(ev[0], Login) and (ev[0].user, ev[0].password) == (b"user", b"secret")
    assert hs.login_reply(False) == b"\x01\x01"
    hs2 = socks.Socks5Handshake(password_required=True)
    hs2.feed(b"\x05\x01\x02")
    hs2.feed(b"\x01\x04user\x06secret")
    assert hs2.login_reply(True) == b"\x01\x00"
    ev = hs2.feed(V4_REQ)
    assert isinstance(ev[0], Request)


def test_socks5_password_required_but_not_offered():
    hs = socks.Socks5Handshake(password_required=True)
    with pytest.raises(SocksError) as e:
        hs.feed(b"\x05\x01\x00")
    assert e.value.reply == b"\x05\xff"
    assert e.value.reason == "auth"


@pytest.mark.parametrize("cmd", [2, 9])
def test_socks5_unsupported_command_gets_07(cmd):
    hs = socks.Socks5Handshake(False)
    hs.feed(b"\x05\x01\x00")
    with pytest.raises(SocksError) as e:
        hs.feed(bytes([5, cmd, 0, 1, 1, 2, 3, 4, 0, 80]))
    assert e.value.reply[:2] == b"\x05\x07"


def test_socks5_bad_address_type_gets_08():
    hs = socks.Socks5Handshake(False)
    hs.feed(b"\x05\x01\x00")
    with pytest.raises(SocksError) as e:
        hs.feed(b"\x05\x01\x00\x05\x00\x00")
    assert e.value.reply[:2] == b"\x05\x08"


def test_socks5_udp_associate_is_a_request():
    hs = socks.Socks5Handshake(False)
    ev = hs.feed(b"\x05\x01\x00\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
    assert ev[1].cmd == socks.CMD_UDP


def test_socks5_reply_layout():
    assert socks.socks5_reply(0, b"\x7f\x00\x00\x01", 1080) == b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"
    r6 = socks.socks5_reply(5, b"\x00" * 16, 1)
    assert r6[:4] == b"\x05\x05\x00\x04" and len(r6) == 22


@pytest.mark.parametrize("split", ["whole", "bytes"])
def test_socks4a_name(split):
    data = b"\x04\x01\x01\xbb\x00\x00\x00\x01user\x00telegram.org\x00extra"
    hs = socks.Socks4Handshake()
    chunks = [data] if split == "whole" else [data[i : i + 1] for i in range(len(data))]
    ev = feed_all(hs, chunks)
    assert len(ev) == 1 and ev[0].host == "telegram.org" and ev[0].port == 443
    assert hs.rest == b"extra"


def test_socks4_ip_and_bind_refused():
    ev = socks.Socks4Handshake().feed(b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00")
    assert ev[0].host == b"\x7f\x00\x00\x01"
    with pytest.raises(SocksError) as e:
        socks.Socks4Handshake().feed(b"\x04\x02\x00\x50\x7f\x00\x00\x01\x00")
    assert e.value.reply == b"\x00\x5b\x00\x00\x00\x00\x00\x00"


def test_socks4_endless_user_id_is_cut_off():
    hs = socks.Socks4Handshake()
    with pytest.raises(SocksError):
        hs.feed(b"\x04\x01\x00\x50\x7f\x00\x00\x01" + b"a" * 600)


def test_udp_header_roundtrip():
    d = socks.udp_pack(b"\x7f\x00\x00\x01", 53, b"payload")
    host, port, off = socks.udp_unpack(d)
    assert (host, port, d[off:]) == (b"\x7f\x00\x00\x01", 53, b"payload")
    assert socks.udp_unpack(b"\x00\x00\x01" + d[3:]) is None  # fragments are dropped
    name = b"\x00\x00\x00\x03\x07example\x00\x35data"
    assert socks.udp_unpack(name)[:2] == ("example", 53)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_socks5_any_split_gives_the_same_events(data):
    msg = b"\x05\x02\x00\x01" + NAME_REQ + b"tail"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(msg)), max_size=8)))
    chunks, last = [], 0
    for c in cuts + [len(msg)]:
        chunks.append(msg[last:c])
        last = c
    hs = socks.Socks5Handshake(False)
    ev = feed_all(hs, chunks)
    assert [type(e) for e in ev] == [Send, Request]
    assert ev[1].host == "telegram.org" and hs.rest == b"tail"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_never_crashes(blob):
    for hs in (socks.Socks5Handshake(False), socks.Socks5Handshake(True), socks.Socks4Handshake()):
        try:
            for i in range(0, len(blob), 7):
                hs.feed(blob[i : i + 7])
        except SocksError:
            pass
    socks.udp_unpack(blob)


def test_socks5_client_login_and_connect_any_split():
    cl = socks.Socks5Client("telegram.org", 443, b"u", b"p")
    assert cl.greeting() == b"\x05\x02\x00\x02"
    server = b"\x05\x02" + b"\x01\x00" + b"\x05\x00\x00\x01\x01\x02\x03\x04\x01\xbbEARLY"
    sent = []
    for i in range(len(server)):
        sent += [e.data for e in cl.feed(server[i : i + 1])]
    assert sent == [b"\x01\x01u\x01p", b"\x05\x01\x00\x03\x0ctelegram.org\x01\xbb"]
    assert cl.done and cl.rest == b"EARLY"


def test_socks5_client_refusal_reason():
    cl = socks.Socks5Client(b"\x7f\x00\x00\x01", 80)
    cl.feed(b"\x05\x00")
    with pytest.raises(SocksError) as e:
        cl.feed(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")
    assert e.value.reason == "refused"
