"""The MTProto listeners and what their sessions share: secrets, replay filter, mask site, address limits.

start() opens mtproto.port (and the old port of a retired secret while it is
still accepted), loads the replay filter from mtproto.replay_file, learns the
mask site's TLS profile, and starts the clock. reload() applies a new
config.json to running listeners without touching open tunnels: SIGHUP
(`systemctl reload relay`) or POST /api/reload on the status listener.
Only mtproto.* (and the address limits) change on a reload; anything else
waits for a restart, and the log says so.
accept() admits a connection: the per-address limit first (counted as
`address-rate`, a flood is closed at once), then the session limit.
Counters per secret, never per client.
"""

from relay.proto import faketls as T, mtproto as M
from relay.runtime import api as runtime
from relay.proto.addr import split_host_port
from relay.proto.ratelimit import AddressLimiter
from relay.services.replay_store import ReplayStore, keep as keep_replay

R_ADDRESS_RATE = "address-rate"
PUBLIC_BURST = 128  # boards/public.toml's capacity.address_burst
_TICK_MS = 30000  # retired secrets and ports are looked at this often
# While no clock is known, a retired secret's grace runs on the monotonic clock, but the relay cannot tell when
# it was retired: until - mtproto.clock_hint bounds it, and so does this (relayctl mtproto rotate's default grace).
UNCLOCKED_GRACE_S = 7 * 86400


class _Closer:
    """Sits in relay.listeners so that Relay.close() flushes the replay journal last."""

    def __init__(self, svc):
        self.svc = svc

    def close(self):
        svc = self.svc
        try:
            svc.store.save(svc.proxy.replay)
        except OSError as e:
            svc.relay.log.warn("mtproto.replay_file: cannot write at stop (%s)" % e)


class MTProtoService:
    def __init__(self, relay, serve):
        """serve(relay, session): the MTProto session's handshake (sessions/mtproto_session.py)."""
        self.relay = relay
        self.serve = serve
        self.listeners = {}  # port -> Listener
        self.by_secret = {}  # secret text -> [connects, open, bytes_up, bytes_down]; kept across reloads
        self.limiter = AddressLimiter(0, 1)
        self.relearn = runtime.Event()  # set when a reload names another mask site or domain
        self.mask_key = None  # the (mask, domain) the profile is of
        self.taken_ms = {}  # retired secret text -> when this relay first took it (runtime.now_ms())
        cfg = relay.cfg.mtproto
        self.store = ReplayStore(cfg.replay_file, relay.log)
        replay = self.store.load(cfg.replay_cache)
        self.proxy = M.Proxy([], runtime.random_bytes, cfg.time_window, cfg.clock_unknown, replay, aes_ctr=runtime.aes_ctr)
        self.apply(relay.cfg)

    def apply(self, cfg):
        """Take config cfg's MTProto settings for every handshake from now on."""
        m = cfg.mtproto
        texts = list(m.secrets)
        secrets = [M.parse_secret(t, m.tls_domain) for t in texts]
        taken = {}
        for r in m.retired:
            t = r["secret"].strip().lower()
            if t not in texts:
                s = M.parse_secret(r["secret"], m.tls_domain)
                s.until = r["until"]
                secrets.append(s)
                texts.append(t)
                taken[t] = self.taken_ms.get(t, runtime.now_ms())  # a reload does not start its grace again
        self.taken_ms = taken
        self.secrets = secrets
        self.texts = texts
        self.counters = [self.by_secret.setdefault(t, [0, 0, 0, 0]) for t in texts]
        p = self.proxy
        p.time_window = m.time_window
        p.clock_unknown = m.clock_unknown
        p.set_secrets(secrets)
        self.dcs = m.dcs
        self.mask = split_host_port(m.mask, 443) if m.mask else None
        self.domain = ""
        for s in secrets:
            if s.kind == M.KIND_EE:
                self.domain = s.domain.decode()
                break
        key = (self.mask, self.domain)
        if self.mask_key is not None and key != self.mask_key:
            # Another site or name: its look is learned now; the old site's would not match it meanwhile.
            p.profile = T.MaskProfile.stand_in(runtime.random_bytes)
            self.relearn.set()
        self.mask_key = key
        lim = cfg.limits
        # A relay facing the internet is never without a per-address limit (PUBLIC_BURST unless set).
        self.limiter.burst = lim.address_burst or (PUBLIC_BURST if m.public else 0)
        self.limiter.rate = lim.address_rate
        self.cfg = m

    def retired_live(self, text, until, now):
        """Whether the retired secret `text` is still accepted. now: Unix time, None while no clock is known:
        then its grace runs on the monotonic clock from when the relay took it, for until - the clock's
        floor (mtproto.clock_hint) seconds, UNCLOCKED_GRACE_S at most."""
        if now is not None:
            return now <= until
        t = self.taken_ms.get(text)
        if t is None:
            return False
        left = min(until - self.relay.clock.floor, UNCLOCKED_GRACE_S)
        return runtime.ms_since(t) <= left * 1000

    def handshake(self):
        """A new client's handshake (proto/mtproto.py), with retired secrets whose grace ended refused."""
        now = self.relay.clock.now()
        if now is None and self.taken_ms:
            for i in range(len(self.secrets)):
                s = self.secrets[i]
                if s.until and not s.gone and not self.retired_live(self.texts[i], s.until, None):
                    s.gone = True
        return self.proxy.handshake(now)

    def wanted_ports(self):
        """mtproto.port, and the ports old links name while their secret is still accepted."""
        now = self.relay.clock.now()
        ports = [self.cfg.port]
        for r in self.cfg.retired:
            if "port" in r and r["port"] not in ports and self.retired_live(r["secret"].strip().lower(), r["until"], now):
                ports.append(r["port"])
        return ports

    async def _listen(self):
        want = self.wanted_ports()
        for port in want:
            if port not in self.listeners:
                self.listeners[port] = await runtime.listen_tcp(self.cfg.host, port, self.relay.cfg.limits.backlog,
                                                                self.accept)
        for port in list(self.listeners):
            if port not in want:
                self.listeners.pop(port).close()

    async def start(self):
        from relay.services import clock, masking

        relay = self.relay
        relay.clock = clock.Clock(self.cfg.clock_hint)
        self.proxy.clock_floor = relay.clock.floor
        relay.background.append(runtime.create_task(clock.keep(relay)))  # SNTP, the modem's time
        await self._listen()
        relay.listeners.append(self)  # Relay.close() closes every port
        relay.listeners.append(_Closer(self))
        relay.guard.add_own([self.cfg.host])
        relay.background.append(runtime.create_task(keep_replay(relay, self.store, self.proxy.replay)))
        relay.background.append(runtime.create_task(self._tick()))
        relay.background.append(runtime.create_task(masking.keep_profile(relay, self)))  # a reload may add a mask
        relay.on_reload = self.reload
        runtime.on_hangup(lambda: runtime.create_task(self.reload()))
        return (self.cfg.host, self.cfg.port)

    def close(self):
        for lst in self.listeners.values():
            lst.close()
        self.listeners = {}

    async def _tick(self):
        while True:
            await runtime.sleep_ms(_TICK_MS)
            try:
                await self._listen()  # a retired port whose time is up closes
            except OSError as e:
                self.relay.log.warn("mtproto: cannot listen: %s" % e)

    async def reload(self):
        """Read config.json again and apply its MTProto part; -> list of problems (empty: applied)."""
        relay = self.relay
        from relay.config import ConfigError

        load = relay.load_config
        if load is None:
            return ["no config file to read again (the relay runs on defaults)"]
        try:
            cfg, digest = load()
        except (ConfigError, ValueError, OSError) as e:
            problems = list(getattr(e, "problems", None) or [str(e)])
            relay.log.warn("reload refused, the relay runs on as it was: " + "; ".join(problems))
            return problems
        old = relay.cfg.mtproto
        self.apply(cfg)
        relay.cfg.mtproto = cfg.mtproto
        relay.config_digest = digest  # /api/status and the fleet report name the file the relay took
        if relay.fleet is not None:
            relay.fleet.ident["config"] = digest
        try:
            await self._listen()
        except OSError as e:
            relay.log.warn("reload: cannot listen on a new port: %s" % e)
            return ["cannot listen: %s" % e]
        if cfg.mtproto.host != old.host or cfg.mtproto.replay_cache != old.replay_cache:
            relay.log.warn("reload: mtproto.host and mtproto.replay_cache change at the next restart")
        relay.log.info("reloaded: %d MTProto secrets (%d retiring), ports %s"
                       % (len(self.secrets), len(self.secrets) - len(cfg.mtproto.secrets),
                          ",".join(str(p) for p in sorted(self.listeners))))
        return []

    def accept(self, conn):
        relay = self.relay
        if not self.limiter.allow(conn.peer[0], runtime.now_ms()):
            relay.stats.refuse(R_ADDRESS_RATE)
            conn.close()  # a flood from one address: closed at once, counted, never silent
            return
        s = relay.sessions.admit(conn)
        if s is not None:
            relay.sessions.run(s, self.serve(relay, s))

    def as_dict(self):
        out = []
        for i in range(len(self.secrets)):
            c = self.counters[i]
            d = {"kind": self.secrets[i].kind, "connects": c[0], "open": c[1], "bytes_up": c[2], "bytes_down": c[3]}
            if self.secrets[i].until:
                d["until"] = self.secrets[i].until
            out.append(d)
        clock = self.relay.clock.as_dict()
        f = self.proxy.replay
        return {"clock_known": clock["known"], "clock": clock, "clock_unknown": self.proxy.clock_unknown,
                "secrets": out, "ports": sorted(self.listeners), "mask_profile": self.proxy.profile.as_dict(),
                "replay": {"capacity": f.capacity, "memory_bytes": f.memory(), "persisted": bool(self.store.path)},
                "address_limit": {"burst": self.limiter.burst, "rate": self.limiter.rate,
                                  "refused": self.limiter.refused},
                # the cipher engine: "native" (CPython with runtime/_mtpump.c built: its fast path pumps whole
                # chunks natively), "cryptography" (CPython's Python path), "cryptolib-..." (MicroPython; None
                # until its first handshake)
                "aes_ctr": runtime.aes_ctr_kind()}
