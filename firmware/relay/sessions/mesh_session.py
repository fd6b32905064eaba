"""A session on the mesh listener: another relay (or a satellite) hands us a phone's tunnel.

SOCKS5 with RFC 1929 login, always: the username is the phone's token and the
password its proof made with mesh.key (mesh.py). Once the proof checks, the
session counts as that phone (MeshSession.client is the token), so limits,
fair sharing and quotas here apply per phone, not per relay. A wrong proof is
refused like a wrong password. While this relay cannot carry tunnels itself
(its uplink monitor says down, or it chains through the mesh and no uplink
relay answers), the greeting is answered "no acceptable method" (0xFF): the
asking relay's health check and connect take that as "try the next one".
"""

from relay import runtime
from relay.proto import socks, stats as S
from relay.services.mesh import proof_ok
from relay.server import Session
from relay.sessions.socks_session import connect_and_reply, reply5

_NO_METHOD = b"\x05\xff"


class MeshSession(Session):
    __slots__ = ("who",)

    def __init__(self, conn, timeout_ms):
        Session.__init__(self, conn, timeout_ms)
        self.who = None

    @property
    def client(self):
        return self.who if self.who is not None else self.conn.peer[0]


def accept(relay, conn):
    if len(relay.sessions) >= relay.cfg.limits.sessions:
        relay.stats.refuse(S.R_FULL)
        conn.close()
        return
    s = MeshSession(conn, relay.handshake_ms)
    relay.sessions.add(s)
    relay.stats.sessions += 1
    s.task = runtime.create_task(relay._serve(s, None, serve_mesh(relay, s)))


async def serve_mesh(relay, s):
    """-> (upstream, first bytes) for the server to tunnel, or None when done."""
    conn = s.conn
    hs = socks.Socks5Handshake(True)
    mesh = relay.mesh
    first = True
    try:
        while True:
            data = await conn.recv(socks.HANDSHAKE_READ)
            if not data:
                return None
            if first and not mesh.serving():
                relay.stats.refuse(S.R_UPLINK_DOWN)
                await conn.send(_NO_METHOD)
                return None
            first = False
            for ev in hs.feed(data):
                if isinstance(ev, socks.Send):
                    await conn.send(ev.data)
                elif isinstance(ev, socks.Login):
                    ok = proof_ok(mesh.key, ev.user, ev.password)
                    await conn.send(hs.login_reply(ok))
                    if not ok:
                        relay.stats.refuse(S.R_AUTH)
                        return None
                    s.who = b"mesh:" + ev.user  # never an address: nothing here names the phone
                elif ev.cmd != socks.CMD_CONNECT:
                    await conn.send(socks.socks5_reply(socks.REP_COMMAND))
                    return None
                else:
                    return await connect_and_reply(relay, s, ev, hs.rest, reply5)
    except socks.SocksError as e:
        relay.stats.refuse(e.reason)
        if e.reply:
            await conn.send(e.reply)
    return None
