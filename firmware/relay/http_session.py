"""An HTTP proxy session: CONNECT tunnels and absolute-URI forwarding with keep-alive."""

from relay import httpproxy as H, runtime, stats as S
from relay.server import Refusal

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


async def _read_head(conn, reader, data):
    while True:
        head = reader.feed(data)
        if head is not None:
            return head
        data = await conn.recv(reader.limit)
        if not data:
            return None


async def serve_http(relay, s, first):
    conn = s.conn
    limit = relay.cfg.limits.http_head
    reader = H.HeadReader(limit)
    try:
        head = await _read_head(conn, reader, first)
        if head is None:
            return
        req = H.parse_request(head)
        if relay.password_required:
            cred = H.basic_credentials(req)
            if cred is None or not relay.login_ok(cred[0], cred[1]):
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


async def _send_body(relay, s, src, dst, framer, pending, up):
    """Copy one message body from src to dst. pending: bytes already read. Returns what follows it."""
    st = relay.stats
    while True:
        n = framer.consume(pending)
        if n:
            await dst.send(pending[:n])
            if up:
                st.bytes_up += n
            else:
                st.bytes_down += n
        if framer.done:
            return pending[n:]
        pending = await src.recv()
        if not pending:
            if framer.kind == H.UNTIL_CLOSE:
                return b""
            raise OSError(0, "peer closed mid-body")
        s.active = runtime.now_ms()
        pending = bytes(pending)


async def _forward(relay, s, req, reader):
    conn = s.conn
    limit = relay.cfg.limits.http_head
    up = None
    key = None
    s.timeout_ms = relay.idle_ms
    try:
        while True:
            reused = up is not None and key == (req.host, req.port)
            if not reused:
                if up is not None:
                    up.close()
                    relay.tunnel_close(s)
                up = await _open(relay, s, req)
                if up is None:
                    return
                key = (req.host, req.port)
            await up.send(H.forward_head(req))
            body = H.request_framing(req)
            after = await _send_body(relay, s, conn, up, body, reader.rest, True)
            resp, rest = await _response_head(up, limit, conn)
            if resp is None and reused and body.kind == H.NONE:
                # The origin dropped the idle connection we kept: ask again on a new one.
                up.close()
                relay.tunnel_close(s)
                up = await _open(relay, s, req)
                if up is None:
                    return
                await up.send(H.forward_head(req))
                resp, rest = await _response_head(up, limit, conn)
            if resp is None:
                await conn.send(H.error_response(502, "the destination closed without answering"))
                return
            framer = H.response_framing(resp, req.method)
            keep = not H.client_wants_close(req) and framer.kind != H.UNTIL_CLOSE
            await conn.send(H.client_head(resp, keep))
            extra = await _send_body(relay, s, up, conn, framer, rest, False)
            if framer.kind == H.UNTIL_CLOSE or extra or not H.origin_keeps_alive(resp):
                up.close()
                up = None
                relay.tunnel_close(s)
            if not keep:
                return
            reader = H.HeadReader(limit)
            head = await _read_head(conn, reader, after)
            if head is None:
                return
            req = H.parse_request(head)
    finally:
        if up is not None:
            up.close()
        relay.tunnel_close(s)


async def _open(relay, s, req):
    """A counted upstream connection for req, or None after answering the refusal."""
    try:
        relay.tunnel_open(s)
        return await relay.connect(req.host, req.port, s)
    except Refusal as r:
        relay.tunnel_close(s)
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
