"""An HTTP proxy session: CONNECT tunnels and absolute-URI forwarding with keep-alive."""

from relay.proto import httpproxy as H, stats as S
from relay.runtime import api as runtime
from relay.proto.stats import Refusal
from relay.sessions.request_head import read_head

HTTP_STATUS = {
    S.R_GUARD: 403,
    S.R_FULL: 503,
    S.R_CLIENT_FULL: 503,
    S.R_TIMEOUT: 504,
    S.R_UPLINK_DOWN: 503,
    S.R_POLICY: 403,
    S.R_QUOTA: 403,
    S.R_BUDGET: 403,
}
_EXPLAIN = {
    S.R_GUARD: "the relay does not connect to local or private addresses",
    S.R_FULL: "the relay is full; try again in a minute",
    S.R_CLIENT_FULL: "too many connections from this device",
    S.R_TIMEOUT: "the destination did not answer in time",
    S.R_DNS: "the name could not be resolved",
    S.R_REFUSED: "the destination refused the connection",
    S.R_UPLINK_DOWN: "the relay's link to the outside is down right now; it comes back by itself",
    S.R_POLICY: "this relay carries only the services its volunteers chose (Telegram first)",
    S.R_QUOTA: "this device has used its share for today; it renews tomorrow",
    S.R_BUDGET: "the relay's data for today is used up; it renews tomorrow",
}
_AUTH_HEADER = b'Proxy-Authenticate: Basic realm="relay"\r\n'


def refusal_response(reason):
    return H.error_response(HTTP_STATUS.get(reason, 502), _EXPLAIN.get(reason, "the destination cannot be reached"))


async def serve_http(relay, s, first):
    conn = s.conn
    limit = relay.cfg.limits.http_head
    reader = H.HeadReader(limit)
    try:
        head = await read_head(conn, reader, first)
        if head is None:
            return
        req = H.parse_request(head)
        if relay.router.password_required:
            cred = H.basic_credentials(req)
            if cred is None or not relay.router.login_ok(cred[0], cred[1]):
                relay.stats.refuse(S.R_AUTH)
                await conn.send(H.error_response(407, "proxy login required", _AUTH_HEADER))
                return
        if req.method == b"CONNECT":
            return await _connect(relay, s, req, reader.rest)
        else:
            await _forward(relay, s, req, reader)
    except H.HttpError as e:
        relay.stats.refuse(e.reason)
        await conn.send(H.error_response(e.status, str(e)))


async def _connect(relay, s, req, rest):
    """(upstream, first client bytes) for the server to relay, or None after a refusal."""
    up = await _open(relay, s, req)
    if up is None:
        return None
    try:
        await s.conn.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
    except BaseException:
        up.close()
        raise
    return up, rest


class _Slots:
    """Forwards in flight at once, bounded by memory on a runtime with one heap (MicroPython): a forward
    stalled on a slow client holds one copy of a read (the shared buffer is reused meanwhile), so at most
    a quarter of the heap goes to them. More wait for a slot (up to the connect timeout), then get a 503."""

    def __init__(self, relay):
        heap = runtime.heap_size()
        lim = relay.cfg.limits
        per = lim.buffer + 2 * lim.http_head + _FORWARD_OVERHEAD
        self.free = -1 if heap is None else max(1, heap // 4 // per)  # -1: no bound (CPython: the OS's memory)
        self.freed = runtime.Event()

    async def take(self, wait_ms):
        if self.free < 0:
            return True
        t = runtime.now_ms()
        while self.free == 0:
            left = wait_ms - runtime.ms_since(t)
            if left <= 0:
                return False
            self.freed.clear()
            try:
                await runtime.wait_for_ms(self.freed.wait(), left)
            except runtime.TimeoutError:
                return False
        self.free -= 1
        return True

    def give(self):
        if self.free >= 0:
            self.free += 1
            self.freed.set()


_FORWARD_OVERHEAD = 4096  # a forward's objects and frames beside its read copy and two heads


async def _send_body(relay, s, src, dst, framer, pending, up, chunk=False):
    """Relay one message body from src to dst. pending: bytes already read. Returns the bytes after it.

    Reads are relayed as they come, without a copy (on MicroPython they are views of the one shared
    buffer; runtime's send copies only what a slow peer leaves unsent). chunk: frame a close-delimited
    body as chunks (_chunk), so a client can tell a cut from the end. An OSError mid-body propagates: the caller
    closes, and the client, short of its Content-Length or last chunk, sees an error."""
    st = relay.stats
    while True:
        n = framer.consume(pending)
        tail = b""
        if framer.done and n < len(pending):
            tail = bytes(pending[n:])  # copied before any wait: the shared buffer is reused meanwhile
        if n:
            if chunk:
                await dst.send(_chunk(pending, n))
            else:
                await dst.send(pending[:n] if n < len(pending) else pending)
            if up:
                st.bytes_up += n
            else:
                st.bytes_down += n
        if framer.done:
            return tail
        pending = await src.recv()
        if not pending:
            if framer.kind == H.UNTIL_CLOSE:
                if chunk:
                    await dst.send(b"0\r\n\r\n")
                return b""
            raise OSError(0, "peer closed mid-body")
        s.active = runtime.now_ms()


def _chunk(data, n):
    """The first n bytes of data framed as one chunk, in one buffer: sent in pieces, the shared receive buffer
    holding data could be reused while the size line waits for a slow client (the one copy this path makes,
    and only for bodies that end with the origin's close)."""
    size = b"%x\r\n" % n
    k = len(size)
    out = bytearray(k + n + 2)
    out[:k] = size
    out[k : k + n] = data[:n]
    out[k + n :] = b"\r\n"
    return out


class _Origin:
    """The upstream connection kept between requests (keep-alive) and the (host, port) it goes to."""

    __slots__ = ("conn", "key")

    def __init__(self):
        self.conn = None
        self.key = None

    def drop(self, relay, s):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
            relay.sessions.tunnel_close(s)


async def _forward(relay, s, req, reader):
    slots = relay.http_slots
    if slots is None:
        slots = relay.http_slots = _Slots(relay)
    conn = s.conn
    limit = relay.cfg.limits.http_head
    origin = _Origin()
    s.timeout_ms = relay.idle_ms
    try:
        while True:
            if not await slots.take(relay.router.connect_ms):
                relay.stats.refuse(S.R_FULL)
                await conn.send(refusal_response(S.R_FULL))
                return
            sent = [False]  # whether the response head went out: after it, a failure can only close
            try:
                keep, after = await _exchange(relay, s, req, reader, origin, limit, sent)
            except MemoryError:
                # The heap ran out all the same (fragmentation): before the answer a 503, during it a close;
                # either way the client sees an error, never a short body.
                relay.stats.refuse(S.R_FULL)
                if not sent[0]:
                    await conn.send(refusal_response(S.R_FULL))
                return
            finally:
                slots.give()
            if not keep:
                return
            reader = H.HeadReader(limit)
            head = await read_head(conn, reader, after)
            if head is None:
                return
            req = H.parse_request(head)
    finally:
        origin.drop(relay, s)
        relay.sessions.tunnel_close(s)


async def _exchange(relay, s, req, reader, origin, limit, sent):
    """One request and its response. -> (keep the client connection?, bytes read after the request)."""
    conn = s.conn
    key = (req.host, req.port)
    reused = origin.conn is not None and origin.key == key
    if not reused:
        origin.drop(relay, s)
        origin.conn = await _open(relay, s, req)
        if origin.conn is None:
            return False, b""
        origin.key = key
    up = origin.conn
    await up.send(H.forward_head(req))
    body = H.request_framing(req)
    after = await _send_body(relay, s, conn, up, body, reader.rest, True)
    resp, rest = await _response_head(up, limit, conn)
    if resp is None and reused and body.kind == H.NONE:
        # The origin dropped the idle connection we kept: ask again on a new one.
        origin.drop(relay, s)
        up = origin.conn = await _open(relay, s, req)
        if up is None:
            return False, b""
        await up.send(H.forward_head(req))
        resp, rest = await _response_head(up, limit, conn)
    if resp is None:
        await conn.send(H.error_response(502, "the destination closed without answering"))
        return False, b""
    framer = H.response_framing(resp, req.method)
    # A body that ends with the origin's close looks whole to the client even when it was cut: to an
    # HTTP/1.1 client it goes as chunks, so a cut shows (an HTTP/1.0 client has no way to tell).
    chunk = framer.kind == H.UNTIL_CLOSE and req.version == b"HTTP/1.1" and resp.get(b"transfer-encoding") is None
    keep = not H.client_wants_close(req) and (framer.kind != H.UNTIL_CLOSE or chunk)
    sent[0] = True
    await conn.send(H.client_head(resp, keep, chunk))
    extra = await _send_body(relay, s, up, conn, framer, rest, False, chunk)
    if framer.kind == H.UNTIL_CLOSE or extra or not H.origin_keeps_alive(resp):
        origin.drop(relay, s)
    return keep, after


async def _open(relay, s, req):
    """A counted upstream connection for req, or None after answering the refusal."""
    try:
        relay.sessions.tunnel_open(s)
        return await relay.router.connect(req.host, req.port, s)
    except Refusal as r:
        relay.sessions.tunnel_close(s)
        relay.stats.refuse(r.reason)
        await s.conn.send(refusal_response(r.reason))
        return None


async def _response_head(up, limit, conn):
    """Read the final response head, passing 1xx interim responses straight through."""
    reader = H.HeadReader(limit)
    data = b""
    while True:
        head = reader.feed(data)
        while head is None:
            data = await up.recv()
            if not data:
                return None, b""
            head = reader.feed(data)
        resp = H.parse_response(head)
        if resp.status >= 200:
            return resp, reader.rest
        await conn.send(head + b"\r\n\r\n")
        data = reader.rest
        reader = H.HeadReader(limit)
