"""How a tunnel starts and ends, on every I/O path: what the client pipelined with its handshake is
charged like any other byte, and a tunnel's end never leaves the event loop watching a closed socket.

Both were bugs of the task pumps (issue 14): the bytes a client sent together with its SOCKS request
went to the destination past fair sharing's quota and budget, and a tunnel whose client reset closed
its upstream socket while the other direction's task still waited on it, so the next socket the
relay opened could get that descriptor and fail inside its connect (ENOENT from epoll_ctl).
"""

import os
import signal
import socket
import struct
import time

from tests.helpers.origin import ThreadedTCP
from tests.integration.test_proxy import connect_req, socks5_reply


class Silent(ThreadedTCP):
    """A destination that accepts, reads and discards, and never sends a byte."""

    def __init__(self):
        super().__init__()
        self.got = 0
        self.start()

    def serve(self, c):
        c.settimeout(30)
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                self.got += len(d)
        except OSError:
            pass
        c.close()


def _greeted(port, src="127.0.0.1"):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    return s


def _sessions(relay, n, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if relay.status_json()["sessions"] == n:
            return
        time.sleep(0.02)
    raise AssertionError("the relay did not get to %d sessions" % n)


def _stopped(pid, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
        time.sleep(0.005)
    raise AssertionError("the relay did not stop")


def test_a_reset_tunnel_frees_its_upstream_before_the_next_connect(runtime, start_relay, echo):
    """Client A's tunnel (to a silent destination) is reset at the moment client B asks for a connect.
    The relay is held (SIGSTOP) while both happen, so it sees them in one wake-up, A's reset first: A's
    upstream socket must not be closed under its reader and handed to B's connect."""
    silent = Silent()
    relay = start_relay(runtime)
    try:
        for _ in range(3):
            # Z's descriptor frees before A's upstream is opened: A's upstream then gets the lowest
            # number the relay has free, below A's client socket, which B's connect would get next.
            z = socket.create_connection(("127.0.0.1", relay.socks), timeout=10)
            a = _greeted(relay.socks)
            z.close()
            _sessions(relay, 1)
            a.sendall(connect_req("127.0.0.1", silent.port))
            assert socks5_reply(a)[:2] == b"\x05\x00"
            b = _greeted(relay.socks)
            _sessions(relay, 2)
            os.kill(relay.proc.pid, signal.SIGSTOP)
            try:
                _stopped(relay.proc.pid)
                a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                a.close()  # a reset
                b.sendall(connect_req("127.0.0.1", echo.port))
                time.sleep(0.05)
            finally:
                os.kill(relay.proc.pid, signal.SIGCONT)
            reply = socks5_reply(b)
            assert reply[:2] == b"\x05\x00", "B's connect failed: %r" % reply
            b.sendall(b"still here")
            assert b.recv(64) == b"still here"
            b.close()
            _sessions(relay, 0)
        assert relay.alive()
    finally:
        silent.close()


def test_bytes_sent_with_the_request_are_charged_to_the_quota(runtime, start_relay):
    """A phone that pipelines its payload with its SOCKS request (greeting, request and data in one
    write) is charged for that payload: over its quota, its next tunnel is refused."""
    silent = Silent()
    quota = 3000
    relay = start_relay(runtime, {"share": {"client_quota": quota}})
    try:
        s = socket.socket()
        s.bind(("127.0.0.7", 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", relay.socks))
        payload = b"x" * 3500
        s.sendall(b"\x05\x01\x00" + connect_req("127.0.0.1", silent.port) + payload)
        assert s.recv(2) == b"\x05\x00"
        assert socks5_reply(s)[:2] == b"\x05\x00"
        deadline = time.monotonic() + 10
        while silent.got < len(payload) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert silent.got <= len(payload)
        s.close()
        again = _greeted(relay.socks, "127.0.0.7")
        again.sendall(connect_req("127.0.0.1", silent.port))
        assert socks5_reply(again)[:2] == b"\x05\x02", "the payload sent with the request was not charged"
        again.close()
        assert relay.status_json()["refused"]["quota"] >= 1
    finally:
        silent.close()
