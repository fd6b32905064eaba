"""Every SOCKS handshake kind, split at every byte boundary, against the relay on each I/O path.

MicroPython reads into one shared receive buffer: anything the session keeps from an earlier read
must be a copy, or a later read rewrites it (a SOCKS4 CONNECT whose user id is 0x05 then looked
like a SOCKS5 greeting, past socks.auth = password). Here each handshake (SOCKS4, SOCKS4a, SOCKS5
with no authentication and with an RFC 1929 login; IPv4, IPv6 and name targets) is sent in two
segments cut at each byte, and once a byte per segment, to one relay per runtime and auth mode;
every connection must get exactly the replies its protocol gives, and a tunnel that opens must
carry data both ways. Segments are sent with TCP_NODELAY and a pause, so the relay reads them apart.
"""

import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers.origin import EchoServer, read_at_least
from tests.helpers.relayproc import RelayProcess

USER, PASSWORD = b"phone", b"s3cret"
PAUSE = 0.01  # between segments: long enough for the relay to read each one on its own
PAYLOAD = b"\x05\x00\x01 after the handshake"  # starts like a SOCKS5 greeting on purpose


@pytest.fixture(scope="module")
def echoes():
    e4, e6 = EchoServer(), EchoServer("::1")
    yield e4, e6
    e4.close()
    e6.close()


def _relays(runtime, tmp_path_factory, echoes):
    hosts = {"echo.test": ["127.0.0.1"], "echo6.test": ["::1"]}
    tmp = tmp_path_factory.mktemp("splits")
    plain = RelayProcess(runtime, tmp, {"dns": {"hosts": hosts}})
    try:
        auth = RelayProcess(runtime, tmp, {"dns": {"hosts": hosts}, "socks": {
            "auth": "password", "users": [{"user": USER.decode(), "pass": PASSWORD.decode()}]}})
    except BaseException:
        plain.stop()
        raise
    return plain, auth


def kinds(e4, e6):
    """(name, client bytes up to the request, login?, the request's refusal code or None) for every
    handshake kind and address type, and requests the relay refuses."""
    p4, p6 = struct.pack(">H", e4.port), struct.pack(">H", e6.port)
    v4 = b"\x01\x7f\x00\x00\x01" + p4
    v6 = b"\x04" + b"\x00" * 15 + b"\x01" + p6
    name = b"\x03\x09echo.test" + p4
    name6 = b"\x03\x0aecho6.test" + p6
    login = b"\x01" + bytes([len(USER)]) + USER + bytes([len(PASSWORD)]) + PASSWORD
    out = []
    for label, req, refusal in (("ipv4", b"\x01\x00" + v4, None), ("ipv6", b"\x01\x00" + v6, None),
                                ("name", b"\x01\x00" + name, None), ("name6", b"\x01\x00" + name6, None),
                                ("bind", b"\x02\x00" + v4, 7), ("atyp9", b"\x01\x00\x09" + v4[1:], 8),
                                ("guarded", b"\x01\x00\x01\x0a\x00\x00\x01" + p4, 2)):
        out.append(("socks5-" + label, b"\x05\x01\x00" + b"\x05" + req, False, refusal))
        out.append(("socks5-login-" + label, b"\x05\x01\x02" + login + b"\x05" + req, True, refusal))
    out.append(("socks5-wrong-password", b"\x05\x01\x02\x01\x05phone\x05wrong" + b"\x05\x01\x00" + v4, True, "login"))
    s4 = b"\x04\x01" + p4 + b"\x7f\x00\x00\x01"
    out.append(("socks4", s4 + b"\x00", None, None))
    out.append(("socks4-uid05", s4 + b"\x05\x00", None, None))  # the user id 0x05: a later segment starts 05 00
    out.append(("socks4a", b"\x04\x01" + p4 + b"\x00\x00\x00\x01" + b"u\x00echo.test\x00", None, None))
    return out


def _read_socks5_reply(s):
    head = read_at_least(s, 4)
    if len(head) < 4:
        return head
    return head + read_at_least(s, {1: 6, 4: 18}.get(head[3], 0))


def expected(kind, auth_relay):
    """What the relay must answer: ("tunnel", replies before it) or ("closed", replies before the close)."""
    name, _, login, refusal = kind
    if login is None:  # SOCKS4 carries no password
        return ("closed", [b"\x00\x5b"]) if auth_relay else ("tunnel", [b"\x00\x5a"])
    if auth_relay != login:
        return "closed", [b"\x05\xff"]  # the greeting offers only the method this relay does not take
    replies = [b"\x05\x02", b"\x01\x00"] if login else [b"\x05\x00"]
    if refusal == "login":
        return "closed", [b"\x05\x02", b"\x01\x01"]
    if refusal is not None:
        return "closed", replies + [bytes((5, refusal))]
    return "tunnel", replies + [b"\x05\x00"]


def run_case(port, kind, segments, auth_relay):
    """Send segments with pauses, read what comes back; -> a description of any mismatch, or None."""
    name = kind[0]
    outcome, replies = expected(kind, auth_relay)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        try:
            for i, seg in enumerate(segments):
                if i:
                    time.sleep(PAUSE)
                s.sendall(seg)
        except OSError:
            if outcome != "closed":
                raise  # a refusing relay may close before the client has said everything
        got = []
        for want in replies:
            if name.startswith("socks4"):
                r = read_at_least(s, 8)[:2]
            elif want[0] == 5 and got and got[-1] in (b"\x05\x00", b"\x01\x00"):
                r = _read_socks5_reply(s)[:2]  # the request's reply: VER REP RSV ATYP ADDR PORT
            else:
                r = read_at_least(s, 2)
            got.append(r)
            if r != want:
                return f"{name} {[len(x) for x in segments]}: replies {got}, expected {replies}"
        if outcome == "closed":
            rest = s.recv(64)
            return None if rest == b"" else f"{name}: expected a close after {replies}, got {rest!r}"
        s.sendall(PAYLOAD)
        echo = read_at_least(s, len(PAYLOAD))
        return None if echo == PAYLOAD else f"{name} {[len(x) for x in segments]}: echo {echo!r}"
    except OSError as e:
        return f"{name} {[len(x) for x in segments]}: {e}"
    finally:
        s.close()


def all_cases(kinds_):
    for kind in kinds_:
        data = kind[1]
        yield kind, [data[i : i + 1] for i in range(len(data))]
        for i in range(1, len(data)):
            yield kind, [data[:i], data[i:]]


@pytest.mark.parametrize("runtime", ["cpython", "cpython-portable", "micropython"])
def test_every_handshake_split_at_every_byte(runtime, tmp_path_factory, echoes):
    plain, auth = _relays(runtime, tmp_path_factory, echoes)
    try:
        cases = list(all_cases(kinds(*echoes)))
        with ThreadPoolExecutor(16) as pool:
            jobs = [pool.submit(run_case, r.socks, kind, segs, r is auth)
                    for r in (plain, auth) for kind, segs in cases]
            failures = [f for f in (j.result() for j in jobs) if f]
        assert not failures, f"{len(failures)} of {len(jobs)} cases failed, e.g.:\n" + "\n".join(failures[:12] + [f for f in failures if "uid05" in f][:3])
        assert plain.alive() and auth.alive()
    finally:
        plain.stop()
        auth.stop()
