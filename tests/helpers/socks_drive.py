"""The one SOCKS driver (sessions/socks_session.py's SocksDriver) fed the way both of its shells feed it,
with a stand-in for the seam it asks (no I/O): for the split tests (tests/firmware/test_socks_splits.py)
and the fuzzer (tests/fuzz/fuzz_socks.py).

drive(): phone / s3cret is the one account; bytes after the request are the tunnel's first payload
(.rest). shared=True hands each piece over as a view of one bytearray that is rewritten before the next
feed, as MicroPython's receive buffer is.
"""

from relay.proto import socks
from relay.sessions.socks_session import CLOSE, MORE, SocksDriver


class _Seam:
    """What the driver asks of the relay: the login check, the session limits, the route, the counters."""

    def __init__(self, password_required):
        self.router = self
        self.sessions = self
        self.stats = self
        self.password_required = password_required
        self.refused = None

    def login_ok(self, user, password):
        return (user, password) == (b"phone", b"s3cret")

    def tunnel_open(self, s):
        pass

    def tunnel_close(self, s):
        pass

    def route(self, host, port):
        return None

    def refuse(self, reason):
        self.refused = reason


def drive(chunks, password_required, shared=False):
    """-> (bytes answered, (host, port, rest) of the request or the refusal's reason)."""
    seam = _Seam(password_required)
    version = socks.version(chunks[0][0])
    if version is None:
        return b"", "protocol"  # not SOCKS: the proxy port's dispatch refuses it (or HTTP takes it)
    d = SocksDriver(seam, None, version)
    buf = bytearray(max(len(c) for c in chunks))  # one buffer for every piece, as on MicroPython
    out = b""
    then = MORE
    for c in chunks:
        if shared:  # the MicroPython receive path: a view of one buffer the next read rewrites
            buf[: len(c)] = c
            data = memoryview(buf)[: len(c)]
        else:
            data = c
        if then == MORE:
            sent, then = d.feed(data)
            out += sent
        else:
            d.hs.feed(data)  # after the request: payload, kept for the tunnel (the fast shell reads on)
        if shared:
            buf[: len(c)] = b"\x05" * len(c)  # the next read lands here before anything looks again
        if then == CLOSE:
            return out, seam.refused
    if then == MORE:
        return out, None
    return out, (d.req.host, d.req.port, bytes(d.rest()))


def cut(msg, cuts):
    chunks, last = [], 0
    for c in sorted(set(cuts)) + [len(msg)]:
        if c > last:
            chunks.append(msg[last:c])
            last = c
    return chunks
