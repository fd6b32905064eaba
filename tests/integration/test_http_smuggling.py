"""Issue 13 item 7 on every I/O path: request-smuggling material gets a 400 and never reaches the origin;
bracketed hosts with a port out of range get a 400 at once (issue 13 "Also")."""

import socket
import threading
import time

import pytest

from tests.helpers.origin import ThreadedTCP, read_to_close


class RecordingOrigin(ThreadedTCP):
    """Keeps every byte it is sent and answers each request head with an empty 200."""

    def __init__(self):
        super().__init__()
        self.got = bytearray()
        self.lock = threading.Lock()

    def serve(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                while True:
                    d = conn.recv(65536)
                    if not d:
                        return
                    with self.lock:
                        self.got += d
                    if b"\r\n\r\n" in d:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except OSError:
                pass


@pytest.fixture(scope="module")
def recorder():
    r = RecordingOrigin().start()
    yield r
    r.close()


def _ask(port, raw, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    t = time.monotonic()
    s.sendall(raw)
    out = read_to_close(s)
    s.close()
    return out, time.monotonic() - t


def test_smuggling_heads_get_400_and_reach_nobody(runtime, start_relay, recorder):
    relay = start_relay(runtime)
    with recorder.lock:
        recorder.got.clear()
    o = f"127.0.0.1:{recorder.port}".encode()
    cases = [
        b"GET http://" + o + b"/ HTTP/1.1\r\nHost: " + o + b"\r\nX-A: b\nContent-Length: 5\r\n\r\nhello",
        b"POST http://" + o + b"/ HTTP/1.1\r\nHost: " + o + b"\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"GET http://" + o + b"/ HTTP/1.1\r\nHost: " + o + b"\r\nX-A: b\rTransfer-Encoding: chunked\r\n\r\n",
    ]
    for raw in cases:
        out, _ = _ask(relay.http, raw)
        assert out.startswith(b"HTTP/1.1 400 "), (raw, out)
    # A good request on the same relay still goes through, so the origin above was reachable.
    out, _ = _ask(relay.http, b"GET http://" + o + b"/ok HTTP/1.1\r\nHost: " + o + b"\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"ok"), out
    with recorder.lock:
        seen = bytes(recorder.got)
    assert seen.count(b"\r\n\r\n") == 1 and b"GET /ok " in seen, seen


@pytest.mark.parametrize("raw", [b"CONNECT [::1]:70721 HTTP/1.1\r\n\r\n", b"GET http://[::1]:99999/ HTTP/1.1\r\n\r\n"])
def test_bracketed_port_out_of_range_is_400_at_once(runtime, start_relay, raw):
    relay = start_relay(runtime)
    for port in (relay.http, relay.socks):  # both listeners answer HTTP
        out, took = _ask(port, raw)
        assert out.startswith(b"HTTP/1.1 400 "), out
        assert took < 3, took  # the answer, not a handshake timeout (5 s here)
    out, err = relay.stop()
    assert "Traceback" not in err and "OverflowError" not in err, err
