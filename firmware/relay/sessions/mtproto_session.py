"""One MTProto client connection: drive mtproto.py's handshake, reach the DC, pump both ways.

A client that proves one of the secrets gets a tunnel to the Telegram data
centre its header names (addresses from mtproto.dcs), counted and limited like
every tunnel (relay.tunnel_open, the guard in relay.connect). A client that
does not is handed to the mask site with every byte it sent, from its first
(masking.py), as soon as the bytes decide it; one that stops sending before
they do is handed over when the handshake timeout ends. The relay never
answers such a client itself. Counters per secret, never per client.
The listeners and what they share are mtproto_service.py's.
"""

from relay.services import masking
from relay.proto import mtproto as M, stats as S
from relay import runtime
from relay.server import Refusal

R_PREFIX = "mtproto-"  # refusal keys: mtproto-secret, -replay, -clock, -protocol, -incomplete, -dc
_SWEEP_SLACK_MS = 3000  # the session hands a silent prober over itself; the sweeper is only the backstop


async def start_mtproto(relay):
    """Open the listeners; -> (host, port) for the ready line."""
    from relay.services.mtproto_service import MTProtoService

    svc = MTProtoService(relay)
    relay.mtproto = svc
    return await svc.start()


async def serve_mtproto(relay, s):
    svc = relay.mtproto
    conn = s.conn
    hs = svc.proxy.handshake(relay.clock.now())
    s.timeout_ms = relay.handshake_ms + _SWEEP_SLACK_MS
    got = 0  # bytes the client sent before its tunnel opened: the header and its first request count as upload
    while True:
        left = relay.handshake_ms - runtime.ms_since(s.active)
        try:
            if left <= 0:
                raise runtime.TimeoutError()
            data = await runtime.wait_for_ms(_read(conn), left)
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
                return
            else:
                await _tunnel(relay, s, svc, ev, got)
                return
        if hs.done:
            return  # it stopped after the ServerHello: nothing more to say than a close


async def _read(conn):
    # A copy taken in the reading task itself: wait_for runs this as a task of its own, and on
    # MicroPython recv() returns a view of the one shared buffer, which the next task to read reuses
    # before the waiting handshake resumes. (On CPython recv() returns fresh bytes: no copy is made.)
    return bytes(await conn.recv())


async def _connect_dc(relay, addrs, s=None):
    last = Refusal(S.R_FAILED)
    for ip, port in addrs:
        try:
            return await relay.connect(ip, port, s)
        except Refusal as r:
            last = r
    raise last


async def _tunnel(relay, s, svc, ev, first_n=0):
    addrs = svc.dcs.get(ev.dc if ev.dc > 0 else -ev.dc)  # negative ids: the same DC's media side
    if not addrs:
        relay.stats.refuse(R_PREFIX + "dc")
        return
    try:
        relay.tunnel_open(s)
        up = await _connect_dc(relay, addrs, s)
    except Refusal as r:
        relay.tunnel_close(s)
        relay.stats.refuse(r.reason)
        return
    c = svc.counters[ev.index]
    c[0] += 1
    c[1] += 1
    relay.moved(s, first_n, False)
    c[2] += first_n
    try:
        await up.send(ev.to_dc)
        s.timeout_ms = relay.idle_ms
        s.active = runtime.now_ms()
        if relay.fast:  # the callback pump with the ciphers on the way, and no task once it runs
            conv_up, conv_down = ev.pipe.converters()
            tap = _Tap(relay, c)
            # MTProto has no half-close: either side's EOF ends the tunnel, as on the task path
            if relay._detach(s, up, tap, conv_up, conv_down, False, tap.done):
                up = None  # the pump has it; tap.done ends the tunnel
                return
        s.peer_task = runtime.create_task(_down(relay, s, up, ev.pipe, c))
        await _up(relay, s, up, ev.pipe, c)
    finally:
        if up is not None:  # else the fast pump has it, and tap.done ends the tunnel
            c[1] -= 1
            relay.tunnel_close(s)  # counted free at once; the socket waits for its reader to stop
            await _stop_peer(s)
            up.close()


async def _stop_peer(s):
    """End the DC->client task before its socket is closed: an event loop still watching a closed descriptor
    hands its number's next owner an error (ENOENT from epoll_ctl in a connect, seen under load)."""
    t = s.peer_task
    if t is None:
        return
    s.peer_task = None
    try:
        t.cancel()
        await t
    except runtime.CancelledError:
        pass
    except RuntimeError:
        pass  # MicroPython: the task ended between the check and the cancel


class _Tap:
    """The fast pump's accounting for one MTProto tunnel: the relay's counters and its secret's."""

    __slots__ = ("relay", "c", "sharing")

    def __init__(self, relay, c):
        self.relay = relay
        self.c = c
        self.sharing = None  # as on the task path: MTProto tunnels are not paced (see the issue 9 note)

    def moved(self, s, n, down):
        self.relay.moved(s, n, down)
        self.c[3 if down else 2] += n

    def refused(self, exc, down):
        """The pump's converter refused the client's bytes (broken framing): count it; the tunnel ends."""
        if isinstance(exc, M.MTProtoError):
            self.relay.stats.refuse(R_PREFIX + "protocol")

    def done(self, pump, clean):
        """The detached tunnel ended: count it closed, close the DC's side, end the session."""
        self.c[1] -= 1
        self.relay._detached_done(pump, clean)


async def _up(relay, s, up, pipe, c):
    src = s.conn
    st = relay.stats
    now = runtime.now_ms
    try:
        while True:
            data = await src.recv()
            n = len(data)
            if not n:
                return
            s.active = now()
            out = pipe.up(data)
            if out:
                await up.send(out)
            st.bytes_up += n
            c[2] += n
    except M.MTProtoError:
        st.refuse(R_PREFIX + "protocol")
    except OSError:
        pass


async def _down(relay, s, up, pipe, c):
    dst = s.conn
    st = relay.stats
    now = runtime.now_ms
    try:
        while True:
            data = await up.recv()
            n = len(data)
            if not n:
                break
            s.active = now()
            await dst.send(pipe.down(data))
            st.bytes_down += n
            c[3] += n
    except OSError:
        pass
    except runtime.CancelledError:
        return
    s.peer_task = None
    relay._cancel(s)  # the DC is gone: end the client's side too
