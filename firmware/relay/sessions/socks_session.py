"""A SOCKS session (proto/socks.py): the one reaction to its events, whichever shell moves the bytes.

SocksDriver turns what the client says into what to do: bytes to send, read more, close, a UDP
association, or a CONNECT (counted by the session limits, checked by the router; its addresses are
known, or the router still has a lookup or an upstream proxy to ask). Its replies answer each
outcome (SOCKS5 codes from the refusal's reason, SOCKS4's granted/rejected). Two thin shells drive it:
  - serve_socks here, a coroutine (every runtime; MicroPython's only way);
  - sessions/socks_fast.py, loop callbacks with no task (the CPython fast path).
The same driver decides in both: version, login, refusals, limits and route, and the replies.
"""

from relay.proto import socks, stats as S
from relay.proto.stats import Refusal

MORE = 0  # what next: read more from the client
CLOSE = 1  # close (after sending what feed() returned)
CONNECT = 2  # reach driver.req's destination: driver.ips to dial, or None (route() left a lookup or an upstream)
UDP = 3  # a UDP association for driver.req (RFC 1928 section 7)

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


def reply5(reason, bound=None):
    if reason is None:
        return socks.socks5_reply(socks.REP_OK, bound[0], bound[1])
    return socks.socks5_reply(SOCKS5_REPLY.get(reason, socks.REP_FAILURE))


def reply4(reason, bound=None):
    return socks.socks4_reply(reason is None)


class SocksDriver:
    """One SOCKS handshake's decisions. version: the first byte's (socks.version()), or None until begin();
    login(user, password) -> ok: the proxy's accounts by default (a mesh hop passes the mesh's proof);
    udp: whether UDP ASSOCIATE is served here at all."""

    __slots__ = ("relay", "s", "hs", "reply", "req", "ips", "login", "password_required", "udp", "connecting",
                 "handed")

    def __init__(self, relay, s, version=None, login=None, password_required=None, udp=True):
        self.relay = relay
        self.s = s
        self.hs = None
        self.reply = None
        self.req = None
        self.ips = None
        self.login = login  # None: the proxy's accounts (Router.login_ok)
        self.password_required = relay.router.password_required if password_required is None else password_required
        self.udp = udp
        self.connecting = None  # the callback shell's connect in flight (core/dial.py's CallbackDial)
        self.handed = None  # the callback shell's upstream, while a task it handed the tunnel to has not run
        if version is not None:
            self.begin(version)

    def begin(self, version):
        """The first byte named the version (VER5 or VER4)."""
        if version == socks.VER5:
            self.hs = socks.Socks5Handshake(self.password_required)
            self.reply = reply5
        else:
            self.hs = socks.Socks4Handshake()
            self.reply = reply4

    def feed(self, data):
        """Client bytes -> (bytes to send now, MORE, CLOSE, CONNECT or UDP).

        data is read once: on MicroPython it lies in the shared receive buffer, which the next recv()
        rewrites (the handshake objects copy what they keep)."""
        out = b""
        try:
            events = self.hs.feed(data)
            while events:
                ev = events.pop(0)
                t = type(ev)
                if t is socks.Send:
                    out = out + ev.data if out else ev.data
                elif t is socks.Login:
                    ok = (self.login or self.relay.router.login_ok)(ev.user, ev.password)
                    out += self.hs.login_reply(ok)
                    if not ok:
                        self.relay.stats.refuse(S.R_AUTH)
                        return out, CLOSE
                    events = self.hs.feed(b"")  # the request may have come with the login
                else:
                    self.req = ev
                    return self._request(out)
        except socks.SocksError as e:
            self.relay.stats.refuse(e.reason)
            return out + e.reply, CLOSE
        return out, MORE

    def _request(self, out):
        relay, s, req = self.relay, self.s, self.req
        if req.cmd == socks.CMD_UDP:
            if self.udp:
                return out, UDP
            relay.stats.refuse(S.R_COMMAND)
            return out + socks.socks5_reply(socks.REP_COMMAND), CLOSE
        if self.reply is reply4 and relay.router.password_required:
            relay.stats.refuse(S.R_AUTH)  # SOCKS4 carries no password
            return out + reply4(S.R_AUTH), CLOSE
        try:
            relay.sessions.tunnel_open(s)  # the limits first, then where to
        except Refusal as r:
            relay.stats.refuse(r.reason)
            return out + self.reply(r.reason), CLOSE
        try:
            self.ips = relay.router.route(req.host, req.port)
        except Refusal as r:
            return out + self.refused(r.reason), CLOSE
        return out, CONNECT

    def connected(self, up):
        """The success reply, with the address the relay's side of the tunnel is bound to."""
        return self.reply(None, up.local() or (None, 0))

    def refused(self, reason):
        """No tunnel after all: counted free, the refusal counted; -> the reply that says why."""
        self.relay.sessions.tunnel_close(self.s)
        self.relay.stats.refuse(reason)
        return self.reply(reason)

    def rest(self):
        """What the client sent after its request: it goes first once the tunnel runs."""
        return self.hs.rest


async def serve_socks(relay, s, first, driver=None):
    """The await shell: handshake, then (upstream, first client bytes) for the tunnel, or None when done.
    The handshake's frames are gone once this returns: what an idle tunnel costs least with."""
    d = driver or SocksDriver(relay, s, first[0])
    conn = s.conn
    since = s.active  # the handshake's deadline bounds the connects too
    data = first
    while True:
        out, then = d.feed(data)
        if out:
            await conn.send(out)
        if then == MORE:
            data = await conn.recv(socks.HANDSHAKE_READ)
            if not data:
                return None
            continue
        if then == CLOSE:
            return None
        if then == UDP:
            from relay.sessions.udp_session import serve_udp  # loaded when first asked: a board's heap is small

            await serve_udp(relay, s, d.req)
            return None
        try:
            up = await relay.router.open(d.req.host, d.req.port, d.ips, s, since, relay.sessions.handshake_ms)
        except Refusal as r:
            await conn.send(d.refused(r.reason))
            return None
        try:
            await conn.send(d.connected(up))
        except BaseException:
            up.close()
            raise
        return up, d.rest()

