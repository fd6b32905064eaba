"""Zero-tap mode: TCP the firewall redirected to us goes on to where the phone sent it.

On a Linux board the rendered nftables rules (relayctl wifi render) redirect a
phone's TCP toward the addresses the policy allows (Telegram's ranges by
default) to transparent.host:transparent.port. For each such connection the
runtime reads the original destination (SO_ORIGINAL_DST or its IPv6 twin) and
it takes exactly the SOCKS CONNECT path: the session limits (limits, fair
share), the router (guard, policy, uplink state, upstreams), the tunnel
(counters, shaping). A phone then runs Telegram with no proxy settings at all.

A refused destination is closed at once with nothing sent: the phone sees a
connection that ends, as it would on a dead network. MicroPython has no way
to learn the original destination, so the server opens no listener there (it
says so); the portal's links remain the way in. Counters only: nothing
records who went where.
"""

from relay.proto.stats import Refusal

R_NOT_REDIRECTED = "not-redirected"  # a connection that came straight to the port, not through the firewall


async def serve_transparent(relay, s):
    """-> (upstream, b"") to tunnel, or None when refused (see Tunnels.serve)."""
    dst = s.conn.original_dst()
    if dst is None or dst == s.conn.local():
        # Not redirected: someone dialled the port itself. Going on would loop back into the relay.
        relay.stats.refuse(R_NOT_REDIRECTED)
        return None
    ip, port = dst
    try:
        relay.sessions.tunnel_open(s)
        up = await relay.router.connect(ip, port, s)
    except Refusal as r:
        relay.sessions.tunnel_close(s)
        relay.stats.refuse(r.reason)
        return None
    return up, b""
