"""The MTProto proxy listener: drive mtproto.py's handshake, reach the DC, pump both ways.

A client that proves one of the secrets gets a tunnel to the Telegram data
centre its header names (addresses from mtproto.dcs), counted and limited like
every tunnel (relay.tunnel_open, the guard in relay.connect). A client that
does not is never answered: it is held until it leaves or the handshake
timeout ends it, or, with mtproto.mask set, handed to that site as if the
relay were it. Counters per secret, never per client.
"""

from relay import mtproto as M, runtime, stats as S
from relay.addr import split_host_port
from relay.server import Refusal, Session

R_PREFIX = "mtproto-"  # refusal keys: mtproto-secret, -replay, -clock, -protocol, -dc


class MTProtoService:
    """The listener's shared state: parsed secrets, the replay cache, counters per secret."""

    def __init__(self, relay):
        cfg = relay.cfg.mtproto
        self.relay = relay
        self.secrets = [M.parse_secret(t, cfg.tls_domain) for t in cfg.secrets]
        self.proxy = M.Proxy(self.secrets, runtime.random_bytes, cfg.time_window, cfg.clock_unknown, cfg.replay_cache,
                             relay.clock.floor)
        self.dcs = cfg.dcs
        self.mask = split_host_port(cfg.mask, 443) if cfg.mask else None
        # per secret: [connects, open, bytes_up, bytes_down]
        self.counters = [[0, 0, 0, 0] for _ in self.secrets]

    def as_dict(self):
        out = []
        for i in range(len(self.secrets)):
            c = self.counters[i]
            out.append({"kind": self.secrets[i].kind, "connects": c[0], "open": c[1], "bytes_up": c[2], "bytes_down": c[3]})
        clock = self.relay.clock.as_dict()
        return {"clock_known": clock["known"], "clock": clock, "clock_unknown": self.proxy.clock_unknown,
                "secrets": out}

    def accept(self, conn):
        relay = self.relay
        if len(relay.sessions) >= relay.cfg.limits.sessions:
            relay.stats.refuse(S.R_FULL)
            conn.close()
            return
        s = Session(conn, relay.handshake_ms)
        relay.sessions.add(s)
        relay.stats.sessions += 1
        s.task = runtime.create_task(self._serve(s))

    async def _serve(self, s):
        try:
            first = await s.conn.recv()
            if first:
                await serve_mtproto(self.relay, s, first)
        except OSError:
            pass
        except runtime.CancelledError:
            pass
        finally:
            if s.task is not None:  # a tunnel handed to the fast path ends in its own callback
                self.relay._end(s)


async def start_mtproto(relay):
    """Open the listener; -> (host, port) for the ready line."""
    from relay import clock

    cfg = relay.cfg.mtproto
    relay.clock = clock.Clock(cfg.clock_hint)
    svc = MTProtoService(relay)
    relay.mtproto = svc
    relay.background.append(runtime.create_task(clock.keep(relay)))  # SNTP, the modem's time
    lst = await runtime.listen_tcp(cfg.host, cfg.port, relay.cfg.limits.backlog, svc.accept)
    relay.listeners.append(lst)
    relay.guard.add_own([cfg.host])
    return (cfg.host, cfg.port)


async def serve_mtproto(relay, s, first):
    svc = relay.mtproto
    conn = s.conn
    hs = svc.proxy.handshake(relay.clock.now())
    data = first
    while True:
        for ev in hs.feed(data):
            if isinstance(ev, M.Send):
                await conn.send(ev.data)
            elif isinstance(ev, M.Refused):
                relay.stats.refuse(R_PREFIX + ev.reason)
                if ev.head is not None:
                    await _bad_client(relay, s, ev.head)
                return
            else:
                await _tunnel(relay, s, svc, ev)
                return
        data = await conn.recv()
        if not data:
            return


async def _bad_client(relay, s, head):
    """Say nothing a proxy would say: pass the bytes to the masking site, or swallow them."""
    svc = relay.mtproto
    if svc.mask is not None:
        try:
            relay.tunnel_open(s)
            up = await relay.connect(svc.mask[0], svc.mask[1])
        except Refusal:
            relay.tunnel_close(s)
            up = None
        if up is not None:
            try:
                await relay.tunnel(s, up, head)
            finally:
                up.close()
                relay.tunnel_close(s)
            return
    # Hold the connection and read what comes, as a server waiting for more would; the
    # sweeper closes it at the handshake timeout.
    while True:
        data = await s.conn.recv()
        if not data:
            return


async def _connect_dc(relay, addrs):
    last = Refusal(S.R_FAILED)
    for ip, port in addrs:
        try:
            return await relay.connect(ip, port)
        except Refusal as r:
            last = r
    raise last


async def _tunnel(relay, s, svc, ev):
    addrs = svc.dcs.get(ev.dc if ev.dc > 0 else -ev.dc)  # negative ids: the same DC's media side
    if not addrs:
        relay.stats.refuse(R_PREFIX + "dc")
        return
    try:
        relay.tunnel_open(s)
        up = await _connect_dc(relay, addrs)
    except Refusal as r:
        relay.tunnel_close(s)
        relay.stats.refuse(r.reason)
        return
    c = svc.counters[ev.index]
    c[0] += 1
    c[1] += 1
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
        if up is not None:
            c[1] -= 1
            up.close()
            relay.tunnel_close(s)


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
