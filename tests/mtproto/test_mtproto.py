"""mtproto.py as transcripts: client bytes in (whole, byte by byte, with trailing data), events out.

Client headers come from Telethon's own MTProxyIO.init_header and from peers.py's
fake-TLS client (mtprotoproxy's format); the DC side is decoded with peers.ctr.
"""

import os
import struct
import time

import pytest
from telethon.network.connection.tcpabridged import AbridgedPacketCodec
from telethon.network.connection.tcpintermediate import IntermediatePacketCodec, RandomizedIntermediatePacketCodec
from telethon.network.connection.tcpmtproxy import MTProxyIO

from relay import config
from relay.runtime import api as runtime
from relay.proto import mtproto as M
from tests.mtproto import peers

PLAIN = peers.plain_key()  # not dd.. or ee..: see plain_key
DD = os.urandom(16)
EE = os.urandom(16)
EE2 = os.urandom(16)
DOMAIN = "www.example.com"


def make_proxy(**kw):
    secrets = [M.Secret("plain", PLAIN), M.Secret("dd", DD), M.Secret("ee", EE, DOMAIN.encode()),
               M.Secret("ee", EE2, b"other.example")]
    return M.Proxy(secrets, os.urandom, aes_ctr=runtime.aes_ctr, **kw)


def feed_split(hs, data, split):
    """-> (events, bytes left over after Accepted/Refused)."""
    if split == "whole":
        return hs.feed(data), b""
    evs = []
    for i in range(len(data)):
        evs += hs.feed(data[i : i + 1])
        if any(not isinstance(e, M.Send) for e in evs):
            return evs, data[i + 1 :]
    return evs, b""


def open_dc_side(to_dc):
    """Decode what the proxy sent the DC: -> (tag, dc id, decryptor, encryptor for replies)."""
    h = to_dc[:64]
    dec = peers.ctr(h[8:40], h[40:56])
    plain = dec.update(h)
    rev = h[8:56][::-1]
    return plain[56:60], struct.unpack("<h", plain[60:62])[0], dec, peers.ctr(rev[:32], rev[32:48])


SPLITS = ["whole", "bytewise"]
CODECS = [(AbridgedPacketCodec, PLAIN, 0), (IntermediatePacketCodec, PLAIN, 0), (RandomizedIntermediatePacketCodec, DD, 1)]


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("codec,key,index", CODECS, ids=lambda c: getattr(c, "__name__", None))
@pytest.mark.parametrize("dc", [2, -5])
def test_obfuscated2_telethon_header(split, codec, key, index, dc):
    header, enc, dec = MTProxyIO.init_header(key, dc, codec)
    first = os.urandom(41)
    trailing = os.urandom(300)
    wire = bytes(header) + enc.encrypt(first) + enc.encrypt(trailing)
    evs, left = feed_split(make_proxy().handshake(None), wire, split)
    assert len(evs) == 1 and isinstance(evs[0], M.Accepted)
    a = evs[0]
    assert (a.index, a.tag, a.dc) == (index, codec.obfuscate_tag, dc)
    tag, dc_seen, dc_dec, dc_enc = open_dc_side(a.to_dc)
    assert (tag, dc_seen) == (codec.obfuscate_tag, dc)
    assert dc_dec.update(a.to_dc[64:] + a.pipe.up(left)) == first + trailing
    reply = os.urandom(77)
    assert dec.encrypt(a.pipe.down(dc_enc.update(reply))) == reply
    # The DC-side header is fresh: not the client's, and not a reserved start.
    assert a.to_dc[8:56] != bytes(header[8:56]) and a.to_dc[0] != 0xEF


def test_header_toward_dc_is_random_each_time():
    header, _, _ = MTProxyIO.init_header(PLAIN, 2, IntermediatePacketCodec)
    a = make_proxy().handshake(None).feed(bytes(header))[0]
    b = make_proxy().handshake(None).feed(bytes(header))[0]
    assert a.to_dc[:64] != b.to_dc[:64]


@pytest.mark.parametrize("split", SPLITS)
def test_wrong_secret_refused_with_every_byte_read(split):
    header, enc, _ = MTProxyIO.init_header(os.urandom(16), 2, IntermediatePacketCodec)
    wire = bytes(header) + enc.encrypt(b"x" * 10)
    evs, _ = feed_split(make_proxy().handshake(None), wire, split)
    assert len(evs) == 1 and isinstance(evs[0], M.Refused) and evs[0].reason == "secret"
    assert evs[0].head == (wire if split == "whole" else wire[:64])


def test_dd_secret_refuses_unpadded_transports():
    for codec in (AbridgedPacketCodec, IntermediatePacketCodec):
        header, _, _ = MTProxyIO.init_header(DD, 2, codec)
        ev = make_proxy().handshake(None).feed(bytes(header))[0]
        assert isinstance(ev, M.Refused) and ev.reason == "secret"


def test_replayed_header_refused():
    p = make_proxy()
    header, _, _ = MTProxyIO.init_header(PLAIN, 2, AbridgedPacketCodec)
    assert isinstance(p.handshake(None).feed(bytes(header))[0], M.Accepted)
    ev = p.handshake(None).feed(bytes(header))[0]
    assert isinstance(ev, M.Refused) and ev.reason == "replay" and ev.head == bytes(header)


# -- deciding on the fewest bytes ----------------------------------------------------

EE_ONLY = [M.Secret("ee", EE, DOMAIN.encode())]
DD_ONLY = [M.Secret("dd", DD)]


def decide(secrets, data):
    """Feed byte by byte -> (bytes fed when a Refused came, its reason, its head), or None while undecided."""
    hs = M.Proxy(secrets, os.urandom, aes_ctr=runtime.aes_ctr).handshake(None)
    for i in range(len(data)):
        for ev in hs.feed(data[i : i + 1]):
            if isinstance(ev, M.Refused):
                return i + 1, ev.reason, ev.head
    return None


@pytest.mark.parametrize(
    "secrets,data,at",
    [
        (EE_ONLY, b"GET / HTTP/1.1\r\n\r\n", 1),  # anything but 0x16 on an ee port: at once
        (EE_ONLY, b"\x15\x03\x03\x00\x02\x02\x28", 1),  # a 7-byte TLS alert
        (EE_ONLY, b"\x16\x03\x03\x02\x00", 3),  # a hello, but not in Telegram's record version
        (EE_ONLY, b"\x16\x03\x01\x00\x10", 5),  # the record header says: too short for a hello
        (EE_ONLY, b"\x16\x03\x01\x40\x00", 5),  # or too long
        (EE_ONLY, b"\x16\x03\x01\x02\x00\x02", 6),  # a handshake record, but not a ClientHello
        (DD_ONLY, b"GET / HTTP/1.1\r\n\r\n", 4),  # an HTTP verb: no client's header starts so
        (DD_ONLY, b"\xef" + bytes(63), 1),  # the abridged tag where a header starts
        (DD_ONLY, b"\x16\x03\x01\x02\x00\x01", 4),  # Telegram's own ClientHello start, on a dd port
        (DD_ONLY, b"\x01\x02\x03\x04\x00\x00\x00\x00", 8),  # zeros where a header has random bytes
        (DD_ONLY, b"\x01" + os.urandom(63), 64),  # a header for another secret: all 64 bytes are needed
    ],
)
def test_decided_on_the_fewest_bytes(secrets, data, at):
    got = decide(secrets, data)
    assert got is not None and got[0] == at and got[2] == data[:at], got


@pytest.mark.parametrize("secrets,data", [(EE_ONLY, b"\x16"), (EE_ONLY, b"\x16\x03\x01\x02\x00\x01"),
                                          (DD_ONLY, b"G"), (DD_ONLY, b"GE"), (DD_ONLY, b"\x01" * 63)])
def test_undecided_until_it_stops_then_handed_over_whole(secrets, data):
    hs = M.Proxy(secrets, os.urandom, aes_ctr=runtime.aes_ctr).handshake(None)
    assert hs.feed(data) == []
    evs = hs.expire()  # the handshake timeout, or the client's end of data (eof)
    assert len(evs) == 1 and evs[0].reason == "incomplete" and evs[0].head == data
    assert M.Proxy(secrets, os.urandom, aes_ctr=runtime.aes_ctr).handshake(None).eof()[0].head == b""  # connected, said nothing


def test_after_the_server_hello_there_is_nothing_to_hand_over():
    hs = make_proxy().handshake(None)
    assert isinstance(hs.feed(peers.client_hello(EE, DOMAIN))[0], M.Send)
    assert hs.expire() == []  # the relay answered already: only a close is left


def test_retired_secret_accepted_until_its_time():
    old = M.Secret("dd", DD, until=1800000000)
    header, _, _ = MTProxyIO.init_header(DD, 2, RandomizedIntermediatePacketCodec)
    assert isinstance(M.Proxy([old], os.urandom, aes_ctr=runtime.aes_ctr).handshake(1800000000).feed(bytes(header))[0], M.Accepted)
    header, _, _ = MTProxyIO.init_header(DD, 2, RandomizedIntermediatePacketCodec)
    ev = M.Proxy([old], os.urandom, aes_ctr=runtime.aes_ctr).handshake(1800000001).feed(bytes(header))[0]
    assert isinstance(ev, M.Refused) and ev.reason == "secret"


# -- fake-TLS ----------------------------------------------------------------------


def server_hello_ok(reply, key, client_random):
    """Check the reply's record layout and HMAC the way a tdlib-style client does."""
    recs, i = [], 0
    while i < len(reply):
        t, n = reply[i], struct.unpack(">H", reply[i + 3 : i + 5])[0]
        assert reply[i + 1 : i + 3] == b"\x03\x03"
        recs.append((t, reply[i + 5 : i + 5 + n]))
        i += 5 + n
    assert [t for t, _ in recs] == [0x16, 0x14, 0x17] and i == len(reply)
    assert recs[0][1][0] == 2 and recs[1][1] == b"\x01" and 64 <= len(recs[2][1]) <= 16640
    zeroed = reply[:11] + bytes(32) + reply[43:]
    import hashlib
    import hmac

    assert reply[11:43] == hmac.new(key, client_random + zeroed, hashlib.sha256).digest()
    return True


def tls_records(data, first=False):
    out = b"\x14\x03\x03\x00\x01\x01" if first else b""
    for i in range(0, len(data), 1000):  # small records, to cross the header
        out += b"\x17\x03\x03" + struct.pack(">H", len(data[i : i + 1000])) + data[i : i + 1000]
    return out


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("key,index", [(EE, 2), (EE2, 3)])
def test_fake_tls_handshake(split, key, index):
    hello = peers.client_hello(key, DOMAIN)
    head, enc, dec = peers.obfs2_client_header(key, peers.TAG_PADDED, 4)
    payload = os.urandom(2500)
    wire = hello + tls_records(head + enc.update(payload), first=True)
    evs, left = feed_split(make_proxy().handshake(int(time.time())), wire, split)
    assert isinstance(evs[0], M.Send) and server_hello_ok(evs[0].data, key, hello[11:43])
    a = evs[1]
    assert isinstance(a, M.Accepted) and (a.index, a.tag, a.dc) == (index, peers.TAG_PADDED, 4)
    tag, dc_id, dc_dec, dc_enc = open_dc_side(a.to_dc)
    assert dc_dec.update(a.to_dc[64:] + a.pipe.up(left)) == payload
    # DC -> client: ApplicationData records of at most 16384 bytes.
    reply = os.urandom(40000)
    out = a.pipe.down(dc_enc.update(reply))
    got, i = b"", 0
    while i < len(out):
        assert out[i : i + 3] == b"\x17\x03\x03"
        n = struct.unpack(">H", out[i + 3 : i + 5])[0]
        assert n <= 16384
        got += out[i + 5 : i + 5 + n]
        i += 5 + n
    assert dec.update(got) == reply


def test_fake_tls_pipe_takes_records_in_any_split():
    hello = peers.client_hello(EE, DOMAIN)
    head, enc, _ = peers.obfs2_client_header(EE, peers.TAG_PADDED, 2)
    evs = make_proxy().handshake(None).feed(hello + tls_records(head, first=True))
    a = evs[1]
    _, _, dc_dec, _ = open_dc_side(a.to_dc)
    data = os.urandom(5000)
    wire = tls_records(enc.update(data[:3000])) + b"\x14\x03\x03\x00\x01\x01" + tls_records(enc.update(data[3000:]))
    got = b"".join(a.pipe.up(wire[i : i + 1]) for i in range(len(wire)))
    assert dc_dec.update(got) == data
    with pytest.raises(M.MTProtoError):
        a.pipe.up(b"\x15\x03\x03\x00\x02\x02\x28")  # an alert: not ours to carry


def test_fake_tls_wrong_key_and_replay():
    p = make_proxy()
    bad = peers.client_hello(os.urandom(16), DOMAIN)
    ev = p.handshake(None).feed(bad)[0]
    assert isinstance(ev, M.Refused) and ev.reason == "secret" and ev.head == bad
    hello = peers.client_hello(EE, DOMAIN)
    assert isinstance(p.handshake(None).feed(hello)[0], M.Send)
    ev = p.handshake(None).feed(hello)[0]
    assert isinstance(ev, M.Refused) and ev.reason == "replay" and ev.head == hello


@pytest.mark.parametrize(
    "now,skew,mode,ok",
    [
        (1800000000, 0, "accept", True),
        (1800000000, 1100, "accept", True),
        (1800000000, -1100, "accept", True),
        (1800000000, 1300, "accept", False),
        (1800000000, -86400, "refuse", False),
        (None, -86400 * 365, "accept", True),  # clock unknown: accepted, the replay cache still guards
        (None, 0, "refuse", False),
    ],
)
def test_fake_tls_time_window(now, skew, mode, ok):
    ts = (now or 1800000000) + skew
    ev = make_proxy(time_window=1200, clock_unknown=mode).handshake(now).feed(peers.client_hello(EE, DOMAIN, ts=ts))[0]
    assert isinstance(ev, M.Send) if ok else (isinstance(ev, M.Refused) and ev.reason == "clock")


def test_fake_tls_uptime_timestamp_accepted():
    # Some clients put the time since boot in the stamp; mtprotoproxy lets them in too.
    ev = make_proxy().handshake(1800000000).feed(peers.client_hello(EE, DOMAIN, ts=3600))[0]
    assert isinstance(ev, M.Send)


def test_tls_hello_without_ee_secret_is_no_client():
    p = M.Proxy([M.Secret("plain", PLAIN)], os.urandom, aes_ctr=runtime.aes_ctr)
    ev = p.handshake(None).feed(peers.client_hello(EE, DOMAIN))[0]
    assert isinstance(ev, M.Refused) and ev.reason == "protocol"  # 16 03 01 02: no obfuscated2 client starts so


# -- secrets and config -------------------------------------------------------------


def test_parse_secret_forms():
    s = M.parse_secret(PLAIN.hex())
    assert (s.kind, s.key, s.link_text()) == ("plain", PLAIN, PLAIN.hex())
    s = M.parse_secret("DD" + DD.hex().upper())
    assert (s.kind, s.key, s.link_text()) == ("dd", DD, "dd" + DD.hex())
    s = M.parse_secret("ee" + EE.hex() + DOMAIN.encode().hex())
    assert (s.kind, s.key, s.domain) == ("ee", EE, DOMAIN.encode())
    assert M.parse_secret("ee" + EE.hex(), "a.example").domain == b"a.example"
    for bad in ("abc", "zz" * 16, "dd" + DD.hex() + "00", "ee" + EE.hex(), 5):
        with pytest.raises(ValueError):
            M.parse_secret(bad)


def test_config_keys():
    cfg = config.load('{"mtproto": {"enabled": true, "secrets": ["%s"], "dcs": {"2": "127.0.0.1:9"}}}' % PLAIN.hex())
    assert cfg.mtproto.dcs == {2: [(bytes([127, 0, 0, 1]), 9)]} and cfg.mtproto.port == 8443
    default = config.load("")
    assert default.mtproto.dcs[5][0] == (bytes([91, 108, 56, 130]), 443) and len(default.mtproto.dcs[1][1][0]) == 16
    for text, msg in [
        ('{"mtproto": {"enabled": true}}', "no secret"),
        ('{"mtproto": {"secrets": ["12"]}}', "hex digits"),
        ('{"mtproto": {"enabled": true, "secrets": ["ee%s"]}}' % EE.hex(), "no domain"),
        ('{"mtproto": {"dcs": {"2": "telegram:443"}}}', "expected IP"),
        ('{"mtproto": {"clock_unknown": "maybe"}}', "accept, refuse"),
    ]:
        with pytest.raises(config.ConfigError) as e:
            config.load(text)
        assert msg in str(e.value), str(e.value)


def test_shared_buffer_converters_match_up_and_down():
    """Pipe.converters() (the fast pump's, writing into shared buffers) turns every chunk into the same
    bytes as up()/down(), across chunk sizes that grow and shrink the buffers, with the ciphers running on."""
    sizes = [1, 15, 16, 17, 4096, 262144, 3, 100000, 0, 7]

    def accepted():
        header, enc, dec = MTProxyIO.init_header(PLAIN, 2, IntermediatePacketCodec)
        evs, _ = feed_split(make_proxy().handshake(None), bytes(header), "whole")
        return evs[0], enc, dec

    a, enc, dec = accepted()
    tag, dc_seen, dc_dec, dc_enc = open_dc_side(a.to_dc)
    up, down = a.pipe.converters()
    for n in sizes:
        chunk = os.urandom(n)
        assert dc_dec.update(bytes(up(memoryview(enc.encrypt(chunk))))) == chunk
        reply = os.urandom(n)
        assert dec.encrypt(bytes(down(memoryview(dc_enc.update(reply))))) == reply


def test_fake_tls_shared_buffer_converters_match_up_and_down():
    """The fake-TLS converters (records parsed and cut in the shared buffers) give, chunk by chunk, the
    bytes up()/down() give on a twin pipe: records split anywhere, ChangeCipherSpec and empty records
    between, chunks from 1 byte to several records, a bad record refused by both."""
    import random

    from relay.proto import faketls as T

    rnd = random.Random(5)
    keys = [(os.urandom(32), os.urandom(16)) for _ in range(4)]
    seed = os.urandom(4)

    def pipe():
        return M.Pipe(*[runtime.aes_ctr(k, iv) for k, iv in keys], T.RecordSizer(seed))

    fast, slow = pipe(), pipe()
    up, down = fast.converters()
    wire = b""
    for n in [0, 1, 700, 16384, 18432, 5, 0, 3000] + [rnd.randint(0, 18432) for _ in range(20)]:
        wire += b"\x17\x03\x03" + struct.pack(">H", n) + os.urandom(n)
        if rnd.random() < 0.2:
            wire += b"\x14\x03\x03\x00\x01\x01"
    i = 0
    while i < len(wire):
        k = rnd.choice([1, 4, 5, 6, 100, 16389, 40000, rnd.randint(1, 70000)])
        chunk = wire[i : i + k]
        assert bytes(up(memoryview(bytearray(chunk)))) == slow.up(chunk)
        i += k
    for k in [1, 100, T.WHOLE_MAX, T.WHOLE_MAX + 1, 16384, 40000, 262144, 3, 100001]:
        chunk = os.urandom(k)
        assert bytes(down(memoryview(bytearray(chunk)))) == slow.down(chunk)
    alert = b"\x15\x03\x03\x00\x02\x02\x28"
    with pytest.raises(M.MTProtoError):
        up(memoryview(bytearray(alert)))
    with pytest.raises(M.MTProtoError):
        slow.up(alert)
