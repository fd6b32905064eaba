"""One MTProto client connection (proto/mtproto.py): drive its handshake, reach the DC, tunnel with the
ciphers on the way.

A client that proves one of the secrets gets a tunnel to the Telegram data
centre its header names (addresses from mtproto.dcs), counted and limited like
every tunnel (the session limits, the router's guard). A client that does not
is handed to the mask site with every byte it sent, from its first
(services/masking.py), as soon as the bytes decide it; one that stops sending
before they do is handed over when the handshake timeout ends. The relay never
answers such a client itself. Counters per secret, never per client. The tunnel
is the pump's (core/tunnel.py), with this protocol's tap: its ciphers, its
counters, fair sharing, no half-close. The listeners and what they share are
services/mtproto_service.py's.
"""

from relay.core.tunnel import Tap
from relay.proto import mtproto as M
from relay.proto.stats import Refusal
from relay.runtime import api as runtime
from relay.services import masking

R_PREFIX = "mtproto-"  # refusal keys: mtproto-secret, -replay, -clock, -protocol, -incomplete, -dc
_SWEEP_SLACK_MS = 3000  # the session hands a silent prober over itself; the sweeper is only the backstop


async def serve_mtproto(relay, s):
    """-> what to tunnel, or None when done (see Tunnels.serve)."""
    svc = relay.mtproto
    conn = s.conn
    hs = svc.handshake()
    handshake_ms = relay.sessions.handshake_ms
    s.timeout_ms = handshake_ms + _SWEEP_SLACK_MS
    got = 0  # bytes the client sent before its tunnel opened: the header and its first request count as upload
    while True:
        left = handshake_ms - runtime.ms_since(s.active)
        try:
            if left <= 0:
                raise runtime.TimeoutError()
            data = await runtime.recv_within(conn, left)
            got += len(data)
            evs = hs.feed(data) if data else hs.eof()
        except runtime.TimeoutError:
            evs = hs.expire()
        for ev in evs:
            if isinstance(ev, M.Send):
                await conn.send(ev.data)
            elif isinstance(ev, M.Refused):
                relay.stats.refuse(R_PREFIX + ev.reason)
                if ev.head is not None:
                    await masking.hand_over(relay, s, ev.head)
                return None
            else:
                return await _open(relay, s, svc, ev, got)
        if hs.done:
            return None  # it stopped after the ServerHello: nothing more to say than a close


async def _open(relay, s, svc, ev, first_n):
    """The DC reached and its header sent: -> (upstream, b"", tap) for the pump, or None after a refusal."""
    addrs = svc.dcs.get(ev.dc if ev.dc > 0 else -ev.dc)  # negative ids: the same DC's media side
    if not addrs:
        relay.stats.refuse(R_PREFIX + "dc")
        return None
    try:
        relay.sessions.tunnel_open(s)  # the budget and the client's quota too (Sharing.check_open)
        up = await relay.router.connect_any(addrs, s)
    except Refusal as r:
        relay.sessions.tunnel_close(s)
        relay.stats.refuse(r.reason)
        return None
    c = svc.counters[ev.index]
    c[0] += 1
    try:
        await up.send(ev.to_dc)
    except BaseException:
        up.close()
        raise
    c[1] += 1  # open from here on: the tap's ended() counts it closed
    tap = MTProtoTap(relay, c, ev.pipe)
    tap.moved(s, first_n, False)
    if tap.sharing is not None:
        tap.sharing.charge(s, first_n)  # the handshake's bytes: charged, not paced (they are sent already)
    return up, b"", tap


class MTProtoTap(Tap):
    """One MTProto tunnel's hooks for the pump: the relay's counters and its secret's, the ciphers on the
    way, fair sharing like any tunnel (the phone's quota, the uplink's budget, pacing), and no half-close
    (either side's EOF ends the tunnel)."""

    __slots__ = ("c", "pipe")
    half_close = False

    def __init__(self, relay, c, pipe):
        Tap.__init__(self, relay.stats, relay.sharing)
        self.c = c  # [connects, open, bytes_up, bytes_down] of the secret the client proved
        self.pipe = pipe

    def moved(self, s, n, down):
        Tap.moved(self, s, n, down)
        self.c[3 if down else 2] += n

    def transforms(self, shared):
        if shared:  # the fast pump: ciphers that write into buffers of their own where they can
            return self.pipe.converters()
        return self.pipe.up, self.pipe.down

    def refused(self, exc, down):
        """The client's bytes broke the framing: counted; the tunnel ends."""
        if isinstance(exc, M.MTProtoError):
            self.stats.refuse(R_PREFIX + "protocol")

    def ended(self, s):
        self.c[1] -= 1
