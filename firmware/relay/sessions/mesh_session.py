"""A session on the mesh listener: another relay (or a satellite) hands us a phone's tunnel.

SOCKS5 with RFC 1929 login, always: the username is the phone's token and the
password its proof made with mesh.key (proto/meshid.py), good once. Once the proof checks, the
session counts as that phone (MeshSession.client is the token), so limits,
fair sharing and quotas here apply per phone, not per relay. A wrong proof, and a
replayed login (counted: mesh.replays in status), is refused like a wrong password; a UDP association is not offered here. While this
relay cannot carry tunnels itself (its uplink monitor says down, or it chains
through the mesh and no uplink relay answers), the greeting is answered "no
acceptable method" (0xFF): the asking relay's health check and connect take that
as "try the next one". The SOCKS handshake itself is the one SOCKS driver's.
"""

from relay.core.session import Session
from relay.proto import socks, stats as S
from relay.sessions.socks_session import SocksDriver, serve_socks

_NO_METHOD = b"\x05\xff"


class MeshSession(Session):
    __slots__ = ("who",)

    def __init__(self, conn, timeout_ms):
        Session.__init__(self, conn, timeout_ms)
        self.who = None

    @property
    def client(self):
        return self.who if self.who is not None else self.conn.peer[0]


async def serve_mesh(relay, s):
    """-> what to tunnel, or None when done (see Tunnels.serve)."""
    conn = s.conn
    data = await conn.recv(socks.HANDSHAKE_READ)
    if not data:
        return None
    if not relay.mesh.serving():
        relay.stats.refuse(S.R_UPLINK_DOWN)
        await conn.send(_NO_METHOD)
        return None
    mesh = relay.mesh

    def login(user, password):
        tok = mesh.identity(user, password)
        if tok is None:
            return False
        s.who = b"mesh:" + tok  # never an address: nothing here names the phone
        return True

    return await serve_socks(relay, s, data, SocksDriver(relay, s, socks.VER5, login, True, False))
