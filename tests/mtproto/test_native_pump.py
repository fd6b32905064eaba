"""The native MTProto pump (firmware/relay/runtime/_mtpump.c, CPython's fast path) against the Python one.

The same handshakes and the same client and DC streams go through a proxy whose ciphers are the native
module's and through one whose ciphers are `cryptography`'s (the Python path every other runtime and the
fallback run): the bytes out, the records cut, the state handed over mid-record and the errors must be
the same. Then the relay as a process, with the module and with RELAY_NATIVE=off, says which engine it
runs and carries a fake-TLS client either way.
"""

import os
import random
import struct
import threading
import time

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from relay.proto import faketls as T, mtproto as M
from tests.helpers.relayproc import RelayProcess
from tests.mtproto import peers
from tests.mtproto.test_relay_mtproto import EE, fake_tls_session, mt_config

native = pytest.importorskip("relay.runtime._mtpump", reason="not built here: `make setup` builds it (libssl-dev)")

PLAIN = peers.plain_key()
DD = os.urandom(16)
DOMAIN = "www.example.com"
SECRETS = [M.Secret("plain", PLAIN), M.Secret("dd", DD), M.Secret("ee", EE, DOMAIN.encode())]


def crypto_ctr(key, iv):
    """The Python path's cipher: `cryptography`'s AES-256-CTR, as runtime/cpython.py's _CTR opens it."""
    return Cipher(algorithms.AES(bytes(key)), modes.CTR(bytes(iv))).encryptor()


def records(rnd, total, ccs=0.2):
    """ApplicationData records of random sizes (empty ones too, the largest TLS allows), CCS between."""
    out = b""
    for n in [0, 1, 18432] + [rnd.randint(0, 18432) for _ in range(total)]:
        out += b"\x17\x03\x03" + struct.pack(">H", n) + os.urandom(n)
        if rnd.random() < ccs:
            out += b"\x14\x03\x03\x00\x01\x01"
    return out


def client_wire(kind):
    """A client's first bytes for a secret kind; for ee a record cut short at the end, so that the Python
    pipe holds the start of a record when the native one takes over."""
    if kind == "ee":
        head, _, _ = peers.obfs2_client_header(EE, peers.TAG_PADDED, 2)
        first = b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x50" + head + os.urandom(16)
        return peers.client_hello(EE, DOMAIN) + first + b"\x17\x03\x03\x01\x00" + os.urandom(77)
    key, tag = (DD, peers.TAG_PADDED) if kind == "dd" else (PLAIN, peers.TAG_INTERMEDIATE)
    head, enc, _ = peers.obfs2_client_header(key, tag, -3)
    return head + enc.update(os.urandom(300))


def twins(kind):
    """The same handshake on a native proxy and a Python one (same random draws) -> their Accepted events."""
    wire = client_wire(kind)
    out = []
    for aes in (native.CTR, crypto_ctr):
        rnd = random.Random(kind)
        proxy = M.Proxy(SECRETS, rnd.randbytes, aes_ctr=aes)
        evs = proxy.handshake(int(time.time())).feed(wire)
        assert isinstance(evs[-1], M.Accepted), evs
        out.append((evs[:-1] and evs[0].data, evs[-1]))
    (hello_n, a_n), (hello_p, a_p) = out
    assert hello_n == hello_p and a_n.to_dc == a_p.to_dc and (a_n.tag, a_n.dc) == (a_p.tag, a_p.dc)
    return a_n.pipe, a_p.pipe


@pytest.mark.parametrize("kind", ["plain", "dd", "ee"])
def test_native_converters_match_python_ones(kind):
    """Random streams both ways in random splits (1 byte to many records): byte for byte the same."""
    pn, pp = twins(kind)
    if kind == "ee":
        assert pp.rbuf, "the Python pipe should hold a record start at the hand-over"
    up_n, down_n = pn.converters()
    up_p, down_p = pp.converters()
    assert type(up_n).__module__ == native.__name__  # the native pipe's ways, not M.Pipe's methods
    assert type(up_p).__module__ != native.__name__  # and the twin runs the Python path
    rnd = random.Random(1)
    # ee: the rest of the record held at the hand-over (256 bytes, 77 came), then whole records
    wire = os.urandom(5000) if kind != "ee" else os.urandom(256 - 77) + records(rnd, 30)
    i = 0
    while i < len(wire):
        k = rnd.choice([1, 2, 4, 5, 6, 100, 16389, 18437, 40000, rnd.randint(1, 70000)])
        chunk = memoryview(bytearray(wire[i : i + k]))
        assert bytes(up_n(chunk)) == bytes(up_p(chunk))
        i += k
    for k in [1, 100, T.WHOLE_MAX, T.WHOLE_MAX + 1, 16384, 40000, 262144, 3, 100001, 65536, 0]:
        chunk = memoryview(bytearray(os.urandom(k)))
        assert bytes(down_n(chunk)) == bytes(down_p(chunk))


def fresh_ee_pair(seed):
    keys = [(os.urandom(32), os.urandom(16)) for _ in range(4)]
    pn = M.Pipe(*[native.CTR(k, iv) for k, iv in keys], T.RecordSizer(seed))
    pp = M.Pipe(*[crypto_ctr(k, iv) for k, iv in keys], T.RecordSizer(seed))
    return pn.converters()[0], pp.converters()[0]


def test_records_cut_at_every_boundary():
    """Three records (an empty one, a CCS, a short one) and the start of a fourth, cut into two chunks at
    every position: the same bytes for the DC after each chunk."""
    wire = b"\x17\x03\x03\x00\x00" + b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x07" + os.urandom(7)
    wire += b"\x17\x03\x03\x00\x09" + os.urandom(4)
    for cut in range(len(wire) + 1):
        up_n, up_p = fresh_ee_pair(os.urandom(4))
        for part in (wire[:cut], wire[cut:], os.urandom(5)):
            assert bytes(up_n(memoryview(bytearray(part)))) == bytes(up_p(memoryview(bytearray(part)))), cut


@pytest.mark.parametrize("bad", [
    b"\x15\x03\x03\x00\x02\x02\x28",  # an alert
    b"\x16\x03\x03\x00\x04\x00\x00\x00\x00",  # a renegotiation
    b"\x17\x03\x01\x00\x01\x00",  # not TLS 1.2's version
    b"\x17\x03\x03\x48\x01",  # longer than TLS allows
])
@pytest.mark.parametrize("split", [False, True])
def test_bad_record_raises_the_same_error(bad, split):
    up_n, up_p = fresh_ee_pair(os.urandom(4))
    good = b"\x17\x03\x03\x00\x03abc"
    assert bytes(up_n(good)) == bytes(up_p(good))
    errors = []
    for up in (up_n, up_p):
        with pytest.raises(M.MTProtoError) as e:
            if split:
                assert bytes(up(bad[:3])) == b""  # the header not whole yet: held, nothing decided
            up(bad[3:] if split else bad)
        errors.append(e.value.reason)
    assert errors == ["tls", "tls"]


def drain(sock):
    sock.setblocking(False)
    out = b""
    try:
        while True:
            out += sock.recv(1 << 20)
    except BlockingIOError:
        return out


@pytest.mark.parametrize("kind,way", [("dd", 1), ("ee", 1), ("ee", 0)])
def test_relay_reads_converts_and_sends_in_one_call(kind, way):
    """way.relay(sfd, dfd, want) on real sockets: what arrives, with what it hands back untaken, is what the
    Python converter makes of the same reads; nothing to read, and EOF, say so."""
    import socket

    pn, pp = twins(kind)
    native_way, python_way = pn.converters()[way], pp.converters()[way]
    src, b = socket.socketpair()  # src: the far end the relay reads from; b: the relay's side of it
    c, dst = socket.socketpair()  # c: the relay's side toward dst
    for s in (b, c):
        s.setblocking(False)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    rnd = random.Random(2)
    data = os.urandom(300000) if way else os.urandom(256 - 77) + records(rnd, 15, ccs=0.3)  # see client_wire
    expect = got = b""
    tails = 0
    try:
        assert native_way.relay(b.fileno(), c.fileno(), 65536) == (-1, None)  # nothing to read
        feeder = threading.Thread(target=lambda: (src.sendall(data), src.shutdown(socket.SHUT_WR)))
        feeder.start()  # more than a socket pair holds: sent while the relay reads
        left = len(data)
        while left:
            n, tail = native_way.relay(b.fileno(), c.fileno(), rnd.choice([1, 100, 16389, 65536]))
            if n == -1:
                time.sleep(0.001)  # the feeder is behind
                continue
            assert n > 0
            piece = data[len(data) - left : len(data) - left + n]
            left -= n
            expect += bytes(python_way(piece))
            got += drain(dst)  # what c sent reached dst's queue already (a socket pair)
            if tail is not None:
                tails += 1
                got += tail  # the caller sends it before it reads more: here it goes in line
        feeder.join(10)
        assert native_way.relay(b.fileno(), c.fileno(), 100) == (0, None)  # EOF
        assert got == expect
        assert tails, "a 4 KiB send buffer took every chunk whole?"
    finally:
        for s in (src, b, c, dst):
            s.close()


class Owner:
    """What the poller hands the table as a watch's owner (the fast pump's direction): moved() returns it."""


def bound(table, ep):
    """The table as the event loop runs it, bound to ep: poll() calls table() -> the events it left for
    Python ([] when it called nothing: a call with nothing to say would cost the Python frame it saves)."""
    calls = []
    table.bind(ep.fileno(), 64, calls.append)

    def poll():
        calls.clear()
        assert table() is None
        assert len(calls) <= 1 and calls != [[]], calls
        return calls[0] if calls else []

    return poll


def test_table_relays_chunks_itself_and_leaves_the_rest():
    """The table bound to a real epoll set, on real sockets: the chunks of a watched way arrive converted as
    the Python way converts them, and none comes back to Python; the bytes are counted on the way (take()),
    its owner listed once per moved(); backpressure, EOF and another socket's events come back as
    events; an unwatched socket is Python's again."""
    import select
    import socket

    pn, pp = twins("ee")
    native_way, python_way = pn.converters()[1], pp.converters()[1]  # DC -> client: records cut
    src, b = socket.socketpair()
    c, dst = socket.socketpair()
    other, o = socket.socketpair()
    for s in (b, c, o):
        s.setblocking(False)
    ep = select.epoll()
    ep.register(b.fileno(), select.EPOLLIN)
    ep.register(o.fileno(), select.EPOLLIN)
    table = native.Table()
    poll = bound(table, ep)
    owner = Owner()
    table.watch(b.fileno(), native_way, c.fileno(), 65536, owner)
    try:
        assert poll() == [] and table.moved() == []  # nothing ready
        sent = expect = got = b""
        for size in (1, 1000, 16000, 40000):
            chunk = os.urandom(size)
            src.sendall(chunk)  # a socket pair: in b's queue when sendall returns
            assert poll() == []  # relayed in C: nothing for Python
            sent += chunk
            expect += bytes(python_way(chunk))
            got += drain(dst)
        assert got == expect
        assert table.moved() == [owner] and table.moved() == []  # listed once, then taken
        assert native_way.take() == len(sent) and native_way.take() == 0
        other.sendall(b"x")  # a socket the table does not watch: Python's event, untouched
        assert poll() == [(o.fileno(), select.EPOLLIN)]
        assert o.recv(10) == b"x"
        # backpressure: a tail comes back (dd's ciphers: the bytes out do not depend on how reads cut them)
        dn, dp = twins("dd")
        native_way, python_way = dn.converters()[1], dp.converters()[1]
        table.watch(b.fileno(), native_way, c.fileno(), 65536, owner)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        big = os.urandom(200000)
        feeder = threading.Thread(target=src.sendall, args=(big,))
        feeder.start()
        expect, got, tails, left = bytes(python_way(big)), b"", 0, len(big)
        deadline = time.time() + 10
        while left and time.time() < deadline:
            for item in poll():
                fd, ev, n, tail = item
                assert (fd, ev) == (b.fileno(), select.EPOLLIN) and n > 0 and isinstance(tail, bytes), item
                left -= n
                got += drain(dst) + tail  # the pump sends a tail before it reads again
                tails += 1
            left -= native_way.take()
            got += drain(dst)
        feeder.join(10)
        assert left == 0 and got == expect and tails
        src.shutdown(socket.SHUT_WR)  # EOF: the event comes back with what the read said
        assert poll() == [(b.fileno(), select.EPOLLIN, 0, None)]
        table.unwatch(b.fileno())
        assert poll() == [(b.fileno(), select.EPOLLIN)]  # Python's to read now
    finally:
        ep.close()
        for s in (src, b, c, dst, other, o):
            s.close()


def test_table_hands_a_broken_record_back_as_its_error():
    """The client's bytes break the framing: table() does not raise, it hands back the way's error."""
    import select
    import socket

    pn, _ = twins("ee")
    up = pn.converters()[0]
    src, b = socket.socketpair()
    c, dst = socket.socketpair()
    b.setblocking(False)
    ep = select.epoll()
    ep.register(b.fileno(), select.EPOLLIN)
    table = native.Table()
    poll = bound(table, ep)
    table.watch(b.fileno(), up, c.fileno(), 65536, Owner())
    try:
        src.sendall(os.urandom(256 - 77) + b"\x15\x03\x03\x00\x02\x02\x28")  # the held record's rest, an alert
        [(fd, ev, n, err)] = poll()
        assert (fd, ev, n) == (b.fileno(), select.EPOLLIN, -3) and isinstance(err, M.MTProtoError)
        assert err.reason == "tls"
    finally:
        ep.close()
        for s in (src, b, c, dst):
            s.close()


def test_cipher_is_the_runtime_aes_ctr():
    """CTR keeps cryptography's stream across any calls: long runs, odd offsets, a counter that wraps."""
    key, iv = os.urandom(32), b"\xff" * 15 + b"\xf0"
    a, b = native.CTR(key, iv), crypto_ctr(key, iv)
    rnd = random.Random(3)
    buf = bytearray(70000)
    for _ in range(300):
        data = os.urandom(rnd.choice([0, 1, 15, 16, 17, 1000, 65536]))
        if rnd.random() < 0.5:
            assert bytes(a.update(data)) == b.update(data)
        else:
            n = a.update_into(data, buf)
            assert bytes(buf[:n]) == b.update(data)


@pytest.mark.parametrize("env,engine", [({}, "native"), ({"RELAY_NATIVE": "off"}, "cryptography")])
def test_relay_says_its_engine_and_serves_either_way(dc, tmp_path, env, engine):
    """Built, the relay runs MTProto natively; with RELAY_NATIVE=off (as where it is not built) on the
    Python path. Either way a fake-TLS client is relayed, and a broken record ends its tunnel, counted."""
    cfg = mt_config(dc.port)
    cfg["mtproto"]["secrets"] = ["ee" + EE.hex() + DOMAIN.encode().hex()]
    r = RelayProcess("cpython", tmp_path, cfg, env=env)
    port = cfg["mtproto"]["port"]
    try:
        assert r.status_json()["mtproto"]["aes_ctr"] == engine
        s = fake_tls_session(port, EE)
        tls = peers.TLSStream(s)
        head, enc, dec = peers.obfs2_client_header(EE, peers.TAG_PADDED, 3)
        big = os.urandom(100000)
        tls.send(head + enc.update(peers.frame(peers.TAG_PADDED, big)), first=True)
        assert peers.read_frame(lambda n: dec.update(tls.read(n)), peers.TAG_PADDED) == big  # the DC echoes
        s.sendall(b"\x15\x03\x03\x00\x02\x02\x28")
        s.settimeout(5)
        assert s.recv(100) == b""  # the tunnel ended
        s.close()
        assert r.status_json()["refused"].get("mtproto-protocol") == 1
    finally:
        r.stop()


class Counted:
    """A client socket that counts what it sends (the relay's bytes_up is every byte a client sent)."""

    def __init__(self, sock):
        self.sock = sock
        self.sent = 0

    def sendall(self, data):
        self.sent += len(data)
        self.sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self.sock, name)


@pytest.mark.parametrize("env", [{}, {"RELAY_NATIVE": "off"}], ids=["native", "python"])
def test_a_busy_tunnel_stays_and_its_bytes_are_counted_at_once(dc, tmp_path, env):
    """Chunks the native dispatch relays without a Python call still count: a tunnel that talks every 0.6 s
    outlives an idle timeout of 2 s, the counters (the relay's and its secret's) hold every byte as soon as
    the status is read, and once silent the tunnel ends at the idle timeout."""
    import socket

    cfg = mt_config(dc.port)
    cfg["mtproto"]["secrets"] = ["ee" + EE.hex() + DOMAIN.encode().hex()]
    cfg["limits"] = {"idle_timeout": 2}
    r = RelayProcess("cpython", tmp_path, cfg, env=env)
    port = cfg["mtproto"]["port"]
    try:
        s = Counted(socket.create_connection(("127.0.0.1", port), timeout=10))
        hello = peers.client_hello(EE, DOMAIN)
        s.sendall(hello)
        peers.read_server_hello(s.sock, EE, hello[11:43])
        tls = peers.TLSStream(s)
        head, enc, dec = peers.obfs2_client_header(EE, peers.TAG_PADDED, 3)
        down = [0]

        def read(n):
            down[0] += n
            return dec.update(tls.read(n))

        first = head
        start = time.monotonic()
        for i in range(8):  # 4.8 s of a chat: more than twice the idle timeout
            msg = os.urandom(random.choice([100, 2000, 30000]))
            tls.send(first + enc.update(peers.frame(peers.TAG_PADDED, msg)), first=i == 0)
            first = b""
            assert peers.read_frame(read, peers.TAG_PADDED) == msg, i
            time.sleep(0.6)
        assert time.monotonic() - start > 4
        st = r.status_json()
        assert st["bytes_up"] == s.sent and st["bytes_down"] == down[0], (st["bytes_up"], s.sent, st["bytes_down"], down)
        [sec] = st["mtproto"]["secrets"]
        assert (sec["bytes_up"], sec["bytes_down"], sec["open"]) == (s.sent, down[0], 1)
        s.sock.settimeout(8)
        silent = time.monotonic()
        assert s.sock.recv(100) == b""  # silent now: the sweeper ends it
        assert 1.5 < time.monotonic() - silent < 6
        assert r.status_json()["mtproto"]["secrets"][0]["open"] == 0
        s.sock.close()
    finally:
        r.stop()


def test_build_without_a_compiler_says_so_and_fails_nothing():
    """`make setup` on a machine without a C compiler: one line, exit 0, the module as it was (the relay
    falls back by itself, as the test above shows with RELAY_NATIVE=off)."""
    import subprocess
    import sys

    from relayctl import native as build

    before = build.target().stat().st_mtime_ns if build.target().exists() else None
    r = subprocess.run([sys.executable, "-m", "relayctl.native", "--force"], capture_output=True, text=True,
                       env=dict(os.environ, CC="/nonexistent/cc"), timeout=60)
    assert r.returncode == 0 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "relayctl: native MTProto pump not built: no C compiler (/nonexistent/cc); the relay uses its Python path"]
    assert (build.target().stat().st_mtime_ns if build.target().exists() else None) == before
