"""The proxy port: socks.port serves SOCKS and HTTP (and http.port SOCKS too); a connection's first byte
picks the driver: a SOCKS version (sessions/socks_session.py) or an HTTP method's upper-case letter
(sessions/http_session.py). Anything else is refused and closed.
"""

from relay.proto import socks, stats as S
from relay.sessions.socks_session import serve_socks

FIRST_READ = 4096  # a session's first read: any greeting, or an HTTP request line; big reads only once a tunnel runs


async def serve_proxy(relay, s, first=None):
    """-> what to tunnel, or None when done (see Tunnels.serve). first: bytes the fast path already read."""
    if first is None:
        first = await s.conn.recv(FIRST_READ)
        if not first:
            return None
    b = first[0]
    if socks.version(b) is not None:
        return await serve_socks(relay, s, first)
    if 0x41 <= b <= 0x5A:  # an upper-case letter: an HTTP method
        from relay.sessions.http_session import serve_http  # loaded when first asked: a board's heap is small

        return await serve_http(relay, s, first)
    relay.stats.refuse(S.R_PROTOCOL)
    if b == 0x16:
        relay.log.debug("TLS ClientHello on a proxy port; closing")
    return None
