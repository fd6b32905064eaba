"""Issue 13 item 5: HTTP forwarding under load delivers every body whole, or an error the client sees;
never a short body under a 200. Run on every I/O path; on MicroPython with a heap that ran out before.

The clients open all their requests at once and read nothing for a moment, so every forward is stalled
on a full client socket at the same time: the moment the old code held three copies of a read each."""

import hashlib
import socket
import threading
import time

import pytest

from tests.helpers.origin import Origin, read_to_close

N = 64
SIZE = 1 << 20


@pytest.fixture(scope="module")
def mib_origin():
    o = Origin(size=SIZE)
    o.server.files["/length"] = o.blob
    yield o
    o.close()


def _get(port, origin, path, results, i, go):
    out = {"status": None, "body": b"", "error": None}
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.sendall(b"GET http://127.0.0.1:%d%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (origin.port, path))
        go.wait(30)
        data = read_to_close(s)
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        out["status"] = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else None
        out["head"] = head.lower()
        out["body"] = body
    except OSError as e:
        out["error"] = repr(e)
    results[i] = out


def _dechunk(body):
    """The body of a chunked message, or None when it ends before its last chunk (the client sees an error)."""
    out, i = bytearray(), 0
    while True:
        nl = body.find(b"\r\n", i)
        if nl < 0:
            return None
        size = int(body[i:nl].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        if len(body) < nl + 2 + size + 2:
            return None
        out += body[nl + 2 : nl + 2 + size]
        i = nl + 2 + size + 2


@pytest.mark.parametrize("path", [b"/length", b"/chunked", b"/close"])
def test_concurrent_forwards_deliver_whole_bodies_or_an_error(runtime, start_relay, mib_origin, path):
    relay = start_relay(runtime, {"limits": {"buffer": 65536, "tunnels": 1024, "tunnels_per_client": 1024,
                                             "connect_timeout": 30}}, heap="4M")
    results = [None] * N
    go = threading.Event()
    threads = [threading.Thread(target=_get, args=(relay.http, mib_origin, path, results, i, go)) for i in range(N)]
    for t in threads:
        t.start()
    time.sleep(1.5)  # every forward now waits on a full client socket
    go.set()
    for t in threads:
        t.join(120)
    whole = errors = 0
    for r in results:
        assert r is not None
        if r["error"] or r["status"] != 200:
            errors += 1  # a refusal (503) or a dropped connection: the client knows it failed
            continue
        head = r["head"]
        if b"transfer-encoding: chunked" in head:
            body = _dechunk(r["body"])
            if body is None:
                errors += 1  # cut before the last chunk: curl and browsers report this as an error
                continue
        else:
            length = [line for line in head.split(b"\r\n") if line.startswith(b"content-length:")]
            assert length, head  # a 200 without a length would hide a short body
            body = r["body"]
            if len(body) < int(length[0].split(b":")[1]):
                errors += 1  # short of its Content-Length: an error the client sees
                continue
        assert hashlib.sha256(body).hexdigest() == mib_origin.sha256, (len(body), head)
        whole += 1
    assert whole == N, f"{whole} whole, {errors} errors"  # with memory bounded, none should fail at all
    assert relay.alive()
    out, err = relay.stop()
    assert "MemoryError" not in err and "Traceback" not in err, err[-2000:]
