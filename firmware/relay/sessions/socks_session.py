"""A SOCKS session: drive socks.py's handshake, then tunnel or relay UDP."""

from relay.proto import socks, stats as S
from relay.server import Refusal

SOCKS5_REPLY = {
    S.R_GUARD: socks.REP_NOT_ALLOWED,
    S.R_DNS: socks.REP_HOST_UNREACHABLE,
    S.R_REFUSED: socks.REP_REFUSED,
    "net-unreachable": socks.REP_NET_UNREACHABLE,
    "host-unreachable": socks.REP_HOST_UNREACHABLE,
    S.R_TIMEOUT: socks.REP_TTL_EXPIRED,
    S.R_UPLINK_DOWN: socks.REP_NET_UNREACHABLE,
    S.R_POLICY: socks.REP_NOT_ALLOWED,
    S.R_QUOTA: socks.REP_NOT_ALLOWED,
    S.R_BUDGET: socks.REP_NOT_ALLOWED,
}


async def serve_socks(relay, s, first):
    """Handshake, then (upstream, first client bytes) for the server to tunnel, or None when done.

    first is read once: on MicroPython it lies in the shared receive buffer, which the next
    recv() rewrites (the handshake objects copy what they keep)."""
    conn = s.conn
    v5 = first[0] == 5
    hs = socks.Socks5Handshake(relay.password_required) if v5 else socks.Socks4Handshake()
    data = first
    try:
        while True:
            events = hs.feed(data)
            while events:
                ev = events.pop(0)
                if isinstance(ev, socks.Send):
                    await conn.send(ev.data)
                elif isinstance(ev, socks.Login):
                    ok = relay.login_ok(ev.user, ev.password)
                    await conn.send(hs.login_reply(ok))
                    if not ok:
                        relay.stats.refuse(S.R_AUTH)
                        return
                    events = hs.feed(b"")  # the request may have come with the login
                elif v5:
                    return await _request5(relay, s, hs, ev)
                else:
                    return await _request4(relay, s, hs, ev)
            data = await conn.recv(socks.HANDSHAKE_READ)
            if not data:
                return
    except socks.SocksError as e:
        relay.stats.refuse(e.reason)
        if e.reply:
            await conn.send(e.reply)


def reply5(reason, bound):
    if reason is None:
        return socks.socks5_reply(socks.REP_OK, bound[0], bound[1])
    return socks.socks5_reply(SOCKS5_REPLY.get(reason, socks.REP_FAILURE))


def reply4(reason, bound):
    return socks.socks4_reply(reason is None)


async def _request5(relay, s, hs, req):
    if req.cmd == socks.CMD_UDP:
        from relay.sessions.udp_session import serve_udp

        await serve_udp(relay, s, req)
        return None
    return await connect_and_reply(relay, s, req, hs.rest, reply5)


async def _request4(relay, s, hs, req):
    if relay.password_required:
        relay.stats.refuse(S.R_AUTH)  # SOCKS4 carries no password
        await s.conn.send(socks.socks4_reply(False))
        return None
    return await connect_and_reply(relay, s, req, hs.rest, reply4)


async def connect_and_reply(relay, s, req, rest, reply):
    """Count the tunnel, reach the destination, answer. reply(reason, bound) -> bytes.
    Returns (upstream, rest) for the server to relay; the handshake's frames are gone by then,
    which is what an idle tunnel costs least with."""
    try:
        relay.tunnel_open(s)
        up = await relay.connect(req.host, req.port, s)
    except Refusal as r:
        relay.tunnel_close(s)
        relay.stats.refuse(r.reason)
        await s.conn.send(reply(r.reason, None))
        return None
    try:
        await s.conn.send(reply(None, up.local() or (None, 0)))
    except BaseException:
        up.close()
        raise
    return up, rest
