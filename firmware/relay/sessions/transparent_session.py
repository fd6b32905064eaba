"""Zero-tap mode: TCP the firewall redirected to us goes on to where the phone sent it.

On a Linux board the rendered nftables rules (relayctl wifi render) redirect a
phone's TCP toward the addresses the policy allows (Telegram's ranges by
default) to transparent.host:transparent.port. For each such connection the
runtime reads the original destination (SO_ORIGINAL_DST or its IPv6 twin) and
it takes exactly the SOCKS CONNECT path: relay.tunnel_open (limits, fair
share), relay.connect (guard, policy, uplink state, upstreams), relay.tunnel
(counters, shaping). A phone then runs Telegram with no proxy settings at all.

A refused destination is closed at once with nothing sent: the phone sees a
connection that ends, as it would on a dead network. MicroPython has no way
to learn the original destination, so the listener is not opened there
(start_transparent says so and returns None); the portal's links remain the
way in. Counters only: nothing records who went where.
"""

from relay import runtime
from relay.proto import stats as S
from relay.server import Refusal, Session

R_NOT_REDIRECTED = "not-redirected"  # a connection that came straight to the port, not through the firewall


async def start_transparent(relay):
    """Open the listener; -> (host, port) for the ready line, or None where the runtime cannot."""
    cfg = relay.cfg.transparent
    if not runtime.HAS_ORIGINAL_DST:
        relay.log.warn("transparent.enabled: this runtime (%s) cannot read a redirected connection's destination; "
                       "zero-tap mode is off, phones use the portal's proxy links" % runtime.NAME)
        return None
    lst = await runtime.listen_tcp(cfg.host, cfg.port, relay.cfg.limits.backlog, lambda c: _accept(relay, c))
    relay.listeners.append(lst)
    relay.guard.add_own([cfg.host])
    return (cfg.host, cfg.port)


def _accept(relay, conn):
    if len(relay.sessions) >= relay.cfg.limits.sessions:
        relay.stats.refuse(S.R_FULL)
        conn.close()
        return
    s = Session(conn, relay.handshake_ms)
    relay.sessions.add(s)
    relay.stats.sessions += 1
    s.task = runtime.create_task(_serve(relay, s))


async def _serve(relay, s):
    try:
        await serve_transparent(relay, s)
    except OSError:
        pass
    except runtime.CancelledError:
        pass
    finally:
        relay._end(s)


async def serve_transparent(relay, s):
    dst = s.conn.original_dst()
    if dst is None or dst == s.conn.local():
        # Not redirected: someone dialled the port itself. Going on would loop back into the relay.
        relay.stats.refuse(R_NOT_REDIRECTED)
        return
    ip, port = dst
    try:
        relay.tunnel_open(s)
        up = await relay.connect(ip, port, s)
    except Refusal as r:
        relay.tunnel_close(s)
        relay.stats.refuse(r.reason)
        return
    try:
        await relay.tunnel(s, up)
    finally:
        up.close()
        relay.tunnel_close(s)
