"""Abuse on both runtimes; after each, a normal client is still served promptly."""

import os
import socket
import struct
import threading
import time

import pytest

from tests.helpers.origin import Origin

from tests.integration.test_proxy import connect_req, curl, socks5_request


@pytest.fixture
def origin():
    """Each test its own origin: what one test's abuse leaves in an origin must not look like the next one's relay."""
    o = Origin(size=1 << 20)
    yield o
    o.close()


def served_promptly(relay, origin):
    t0 = time.monotonic()
    url = f"http://127.0.0.1:{origin.port}/small"
    r = curl("--socks5", f"127.0.0.1:{relay.socks}", url, "--max-time", "15")
    if r.stdout != b"hello relay\n":
        direct = curl(url, "--max-time", "5")  # tells a stuck origin from a stuck relay
        state = relay.status_json() if relay.alive() else relay.stop()
        pytest.fail(f"not served through the relay: {r.stderr!r}; origin directly: {direct.stdout!r} {direct.stderr!r}; {state}")
    assert relay.alive()
    return time.monotonic() - t0


def raw(port, data, read=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(data)
    except OSError:
        pass
    got = b""
    if read:
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        except OSError:
            pass
    s.close()
    return got


def test_truncated_greetings(runtime, start_relay, origin):
    relay = start_relay(runtime)
    for data in (b"\x05", b"\x05\x02\x00", b"\x05\x01\x00\x05\x01\x00\x03\x10ab", b"\x04\x01\x00", b"GET http://x"):
        raw(relay.socks, data, read=False)
    served_promptly(relay, origin)


def test_megabyte_of_garbage(runtime, start_relay, origin):
    relay = start_relay(runtime)
    junk = bytes((i * 37 + 11) % 256 for i in range(1 << 20))
    for port, lead in ((relay.socks, b"\x05\x01\x00"), (relay.socks, b""), (relay.http, b"GET ")):
        raw(port, lead + junk)
    served_promptly(relay, origin)


def test_64k_request_line(runtime, start_relay, origin):
    relay = start_relay(runtime)
    answer = raw(relay.http, b"GET http://example.org/" + b"a" * 65536 + b" HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    served_promptly(relay, origin)


def test_slowloris(runtime, start_relay, origin):
    relay = start_relay(runtime, {"limits": {"handshake_timeout": 2}})
    clients = []
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", relay.http), timeout=10)
        s.sendall(b"GET http://127.0.0.1/ HTTP/1.1\r\nX-Slow: ")
        clients.append(s)
    took = served_promptly(relay, origin)
    assert took < 3
    time.sleep(3.5)  # past the handshake timeout: the relay has hung up on every one of them
    closed = 0
    for s in clients:
        s.settimeout(2)
        try:
            s.sendall(b"a")
            if s.recv(1) == b"":
                closed += 1
        except OSError:
            closed += 1
        s.close()
    assert closed == 100
    st = relay.status_json()
    assert st["refused"].get("handshake-timeout", 0) >= 100
    served_promptly(relay, origin)


def test_2000_abandoned_connections(start_relay, origin):
    relay = start_relay("cpython", {"limits": {"sessions": 4096}})
    socks_ = []
    for _ in range(2000):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", relay.socks))
        socks_.append(s)
    time.sleep(0.5)
    for s in socks_:
        s.close()
    took = served_promptly(relay, origin)
    assert took < 3
    deadline = time.monotonic() + 10
    while relay.status_json()["sessions"] > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert relay.status_json()["sessions"] == 0


class FloodOrigin:
    """Sends `total` bytes to whoever connects, as fast as the socket takes them."""

    def __init__(self, total):
        self.total = total
        self.sent = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        c, _ = self.sock.accept()
        chunk = b"\xab" * 65536
        c.settimeout(60)
        try:
            while self.sent < self.total:
                self.sent += c.send(chunk)
        except OSError:
            pass
        c.close()

    def close(self):
        self.sock.close()


def memory(relay):
    st = relay.status_json(gc=True)
    return st["rss_kib"] * 1024 if st["rss_kib"] is not None else st["heap_used"]


def test_client_that_stops_reading_keeps_memory_bounded(runtime, start_relay, origin):
    relay = start_relay(runtime)
    flood = FloodOrigin(50 * 1024 * 1024)
    before = memory(relay)
    s, reply = socks5_request(relay.socks, connect_req("127.0.0.1", flood.port))
    assert reply[1] == 0
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    time.sleep(3)  # the origin pushes as fast as it can; the client reads nothing
    stalled_at = flood.sent
    time.sleep(1)
    after = memory(relay)
    growth = after - before
    print(f"\n[{runtime}] origin managed to send {flood.sent} of 50 MiB; relay memory growth {growth} bytes")
    # Backpressure reached the origin: it is stuck (only kernel socket buffers hold the rest).
    assert flood.sent == stalled_at and flood.sent < 40 * 1024 * 1024
    assert growth < 4 * 1024 * 1024
    s.close()
    flood.close()
    served_promptly(relay, origin)


def _open_pipes(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:")
        except OSError:
            pass
    return n


def test_destinations_that_reset_leak_nothing(runtime, start_relay, origin):
    """A destination half-closes, then resets while the client pushes a full buffer's worth: the send
    fails right after a read that filled the buffer, the very moment the fast path would switch to
    splicing. No pipe, socket or session may outlive the tunnels."""
    relay = start_relay(runtime, {"limits": {"buffer": 4096}})
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def resetting():
        while True:
            try:
                a, _ = srv.accept()
            except OSError:
                return
            a.shutdown(socket.SHUT_WR)  # the relay passes the half-close on
            time.sleep(0.2)
            a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            a.close()  # then a reset

    threading.Thread(target=resetting, daemon=True).start()
    try:
        pipes = _open_pipes(relay.proc.pid)
        for _ in range(10):
            c, reply = socks5_request(relay.socks, connect_req("127.0.0.1", srv.getsockname()[1]))
            assert reply[:2] == b"\x05\x00"
            c.settimeout(10)
            c.recv(10)  # EOF on runtimes with half-close; the close itself on MicroPython
            time.sleep(0.4)  # the destination has reset by now
            try:
                c.sendall(b"x" * (1 << 20))
            except OSError:
                pass
            c.close()
        deadline = time.monotonic() + 10
        while relay.status_json()["tunnels_open"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert relay.status_json()["tunnels_open"] == 0
        assert _open_pipes(relay.proc.pid) == pipes
    finally:
        srv.close()
    served_promptly(relay, origin)
