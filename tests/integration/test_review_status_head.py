"""review-fw: the status listener (and the admin page on it) answers a request head over its limit with a 400.

status.serve_status feeds a HeadReader(2048) and does not catch its HttpError; server.Relay._guarded
catches only OSError and CancelledError. A head over 2 KiB (a browser with a few cookies and an
Authorization header on the admin page, a long query) gets no answer, just a close, and the relay
prints a "Task exception was never retrieved" traceback. Issue 13: a malformed request gets a
protocol reply or a close, never a traceback.
"""

import socket
import time


def ask(relay, path, cookie_bytes, n):
    """The first n bytes of the status listener's answer to GET path with cookie_bytes of cookies."""
    s = socket.create_connection(("127.0.0.1", relay.status), timeout=5)
    try:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: " + b"a" * cookie_bytes + b"\r\n\r\n")
        return s.recv(n)
    finally:
        s.close()


def test_an_oversized_head_gets_a_400_and_no_traceback(runtime, start_relay):
    relay = start_relay(runtime)
    reply = ask(relay, b"/admin", 5000, 256)
    time.sleep(0.3)
    _, err = relay.stop()
    assert reply.startswith(b"HTTP/1.1 400"), reply
    assert b"larger than" in reply, reply
    assert "Traceback" not in err, err[-800:]


def test_a_head_with_a_browsers_cookies_is_answered(start_relay):
    """3 KiB of cookies (a browser on the LAN that also keeps the router's) fits the limit, as on the portal."""
    relay = start_relay("cpython-portable")
    reply = ask(relay, b"/api/status", 3000, 64)
    assert reply.startswith(b"HTTP/1.1 200"), reply
