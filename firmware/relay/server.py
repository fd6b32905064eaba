"""The relay loop: listeners, sessions, limits, timeouts, upstream connects (tunnels.py relays).

The only module (with runtime/) that does I/O. It reads bytes, hands them to
the protocol objects (socks.py, httpproxy.py) and acts on their answers.
A session is one accepted client connection. Its handshake and idle
deadlines are enforced by one sweeper task that cancels overdue sessions,
so the data path carries no per-read timer.
"""

from relay import runtime
from relay.proto import stats as S
from relay.proto.guard import Guard
from relay.services.resolve import Resolver
from relay.core.route import Routes
from relay.proto.stats import Refusal  # noqa: F401  (sessions import it from here)
from relay.core.tunnel import Tunnels
from relay.proto.crypto import equal  # the one constant-time compare

_SWEEP_MS = 1000
FIRST_READ = 4096  # a session's first read: any greeting, or an HTTP request line; big reads only once a tunnel runs


class Session:
    __slots__ = ("conn", "task", "peer_task", "active", "timeout_ms", "tunnel", "win_t", "win_b")

    def __init__(self, conn, timeout_ms):
        self.conn = conn
        self.task = None
        self.peer_task = None  # the upstream->client pump once a tunnel runs
        self.active = runtime.now_ms()
        self.timeout_ms = timeout_ms
        self.tunnel = False
        # win_t/win_b (share.py's interactive window) are set only when fair sharing runs:
        # on MicroPython every attribute is a slot in the instance's map, and an idle tunnel
        # should cost as few as possible.

    @property
    def client(self):
        return self.conn.peer[0]


class Relay(Routes, Tunnels):
    def __init__(self, cfg, log):
        self.cfg = cfg
        self.log = log
        self.stats = S.Stats()
        g = cfg.guard
        self.guard = Guard(g.allow, g.deny, g.management, g.own, cfg.portal.names)
        d = cfg.dns
        self.resolver = Resolver(d.servers, d.hosts, d.prefer == "ipv6", int(d.timeout * 1000))
        lim = cfg.limits
        self.handshake_ms = int(lim.handshake_timeout * 1000)
        self.idle_ms = int(lim.idle_timeout * 1000)
        self.connect_ms = int(lim.connect_timeout * 1000)
        self.sessions = set()
        self.per_client = {}  # client address -> open tunnels; gone when it drops to zero
        self.users = {}
        for user, password in cfg.socks.users:
            self.users[user] = password
        self.password_required = cfg.socks.auth == "password"
        self.listeners = []
        self.udp_port_next = cfg.socks.udp_port_base
        self.upstreams = None
        if cfg.upstream.proxies:
            from relay.services.upstream import Upstreams

            up = cfg.upstream
            self.upstreams = Upstreams(self, up.proxies, up.direct, int(up.check_interval * 1000))
        self.mesh = None
        if cfg.mesh.enabled:  # relays sharing uplinks: may replace self.upstreams with the mesh's uplink relays
            from relay.services.mesh import Mesh

            self.mesh = Mesh(self, cfg)
        self.uplink = None
        if cfg.uplink.monitor:
            from relay.services.upstream import UplinkMonitor

            u = cfg.uplink
            self.uplink = UplinkMonitor(self, u.targets, int(u.interval * 1000), int(u.timeout * 1000), u.down_after)
        self.background = []
        self.stopped = runtime.Event()  # set to stop serve(); exit_code says why
        self.exit_code = 0
        p = cfg.policy
        from relay.proto.policy import Policy

        self.policy = Policy(p.preset, lambda path: runtime.read_file(path).decode(), p.allow_domains,
                             p.deny_domains, p.allow_cidrs, p.deny_cidrs, p.ports)
        self.sharing = None
        sh = cfg.share
        if sh.rate_down or sh.rate_up or sh.client_quota or sh.budget_day or sh.budget_total or sh.state_file:
            from relay.services.shaper import Sharing

            self.sharing = Sharing(self, cfg)
        runtime.set_buffer_size(lim.buffer)
        self.udp_max = runtime.set_udp_max(lim.udp_datagram)
        self.fast = runtime.fast_pump is not None and cfg.io.backend == "auto"
        self.fast_socks = None  # starts a SOCKS session on loop callbacks, where the runtime can
        if self.fast and runtime.connect_start is not None:
            from relay.sessions.socks_fast import FastSocks

            self.fast_socks = FastSocks

    # -- lifecycle ---------------------------------------------------------

    async def start(self):
        runtime.raise_fd_limit()
        from relay.platform import own

        watch = await own.start(self)  # the device's addresses, for the guard, before anyone is served
        if watch is not None:
            self.background.append(runtime.create_task(watch))
        done = []
        for sect in (self.cfg.socks, self.cfg.http):
            if not sect.enabled or (sect.host, sect.port) in done:
                continue
            done.append((sect.host, sect.port))
            lst = await runtime.listen_tcp(sect.host, sect.port, self.cfg.limits.backlog, self._accept)
            self.listeners.append(lst)
            self.guard.add_own([sect.host])
        st = self.cfg.status
        if st.enabled:
            lst = await runtime.listen_tcp(st.host, st.port, 8, self._accept_status)
            self.listeners.append(lst)
            done.append((st.host, st.port))
        if self.cfg.portal.enabled or self.cfg.dns.listen_enabled:
            from relay.sessions import portal_session as services

            done += await services.start(self)
        if self.cfg.mtproto.enabled:
            from relay.sessions.mtproto_session import start_mtproto

            done.append(await start_mtproto(self))
        if self.cfg.transparent.enabled:
            from relay.sessions.transparent_session import start_transparent

            t = await start_transparent(self)
            if t is not None:
                done.append(t)
        if self.mesh is not None:
            done += await self.mesh.start()
        self.sweeper = runtime.create_task(self._sweep())
        if self.upstreams is not None:
            self.background.append(runtime.create_task(self.upstreams.health_loop()))
        if self.uplink is not None:
            self.background.append(runtime.create_task(self.uplink.run()))
        if self.sharing is not None:
            for coro in self.sharing.tasks():
                self.background.append(runtime.create_task(coro))
        if self.cfg.status.console_interval:
            self.background.append(runtime.create_task(self._console_status()))
        if self.cfg.fleet.enabled:
            from relay.services.fleet_mqtt import FleetLink

            self.fleet = FleetLink(self)
            self.background.append(runtime.create_task(self.fleet.run()))
        return done

    async def _console_status(self):
        """A board without a network status page still tells its serial console how it is doing."""
        import json

        from relay.services.status import snapshot

        while True:
            await runtime.sleep_ms(self.cfg.status.console_interval * 1000)
            runtime.stdout_write("relay status " + json.dumps(snapshot(self)) + "\n")

    def close(self):
        for lst in self.listeners:
            lst.close()
        self.sweeper.cancel()
        for t in self.background:
            t.cancel()
        if self.sharing is not None:
            try:
                self.sharing.save()
            except OSError:
                pass
        for s in list(self.sessions):
            self._cancel(s)

    async def _sweep(self):
        while True:
            await runtime.sleep_ms(_SWEEP_MS)
            now = runtime.now_ms()  # once per sweep: a public relay sweeps 50,000 sessions a second
            diff = runtime.ms_diff
            for s in list(self.sessions):
                if diff(now, s.active) > s.timeout_ms:
                    expire = getattr(s.task, "expire", None)
                    if expire is not None:
                        expire()  # a callback-driven handshake decides itself (a connect may try the next address)
                        continue
                    if not s.tunnel:
                        self.stats.refuse(S.R_HANDSHAKE_TIMEOUT)
                    self._cancel(s)

    def _cancel(self, s):
        for t in (s.peer_task, s.task):
            if t is not None:
                try:
                    t.cancel()
                except RuntimeError:
                    pass  # MicroPython: a task cannot cancel itself

    def restart(self):
        """Stop and exit with status 75 (EX_TEMPFAIL): systemd's Restart= and procd's respawn start
        the relay again; a MicroPython board resets (platform.restart())."""
        self.exit_code = 75
        self.stopped.set()

    # -- accepting ---------------------------------------------------------

    def _accept(self, conn):
        if len(self.sessions) >= self.cfg.limits.sessions:
            self.stats.refuse(S.R_FULL)
            conn.close()  # out of sockets: the kindest answer is a fast close
            return
        s = Session(conn, self.handshake_ms)
        self.sessions.add(s)
        self.stats.sessions += 1
        if self.fast_socks is not None:
            self.fast_socks(self, s)  # no task unless the session needs one (HTTP, a lookup, an upstream, UDP)
        else:
            s.task = runtime.create_task(self._serve(s))

    def _accept_status(self, conn):
        from relay.services.status import serve_status

        s = Session(conn, self.handshake_ms)
        self.sessions.add(s)
        s.task = runtime.create_task(self._guarded(s, serve_status))

    async def _guarded(self, s, handler):
        try:
            first = await s.conn.recv()
            if first:
                await handler(self, s, first)
        except OSError:
            pass
        except runtime.CancelledError:
            pass
        finally:
            self.sessions.discard(s)
            s.conn.close()

    async def _serve(self, s, first=None, pending=None):
        """Serve session s to its end. first: bytes the callback handshake already read;
        pending: a coroutine that finishes its handshake and returns what the handshake would."""
        conn = s.conn
        try:
            if pending is not None:
                then = await pending
            else:
                if first is None:
                    first = await conn.recv(FIRST_READ)
                if not first:
                    return
                then = await self._dispatch(s, first)
            if then is not None:
                first = None
                up, head = then
                then = None
                if head:
                    try:
                        await up.send(head)
                    except BaseException:
                        up.close()
                        raise
                    self.stats.bytes_up += len(head)
                if self._detach(s, up):
                    return
                try:
                    if self._lean(s, up):  # MicroPython: copy right here, one frame less per idle tunnel
                        await runtime.pipe(s.conn, up, 0, self.moved, s, False)
                    else:
                        await self.tunnel(s, up)
                finally:
                    up.close()
        except OSError:
            pass
        except runtime.CancelledError:
            pass
        finally:
            if s.task is not None:  # a detached tunnel ends in its own callback
                self._end(s)

    async def _dispatch(self, s, first):
        """Pick the protocol by the first byte; -> (upstream, head) to tunnel, or None when done."""
        b = first[0]
        if b == 5 or b == 4:
            from relay.sessions.socks_session import serve_socks

            return await serve_socks(self, s, first)
        if 0x41 <= b <= 0x5A:  # an upper-case letter: an HTTP method
            from relay.sessions.http_session import serve_http

            return await serve_http(self, s, first)
        self.stats.refuse(S.R_PROTOCOL)
        if b == 0x16:
            self.log.debug("TLS ClientHello on a proxy port; closing")
        return None

    def _end(self, s):
        if s.peer_task is not None:
            try:
                s.peer_task.cancel()
            except RuntimeError:
                pass
        s.conn.close()
        self.tunnel_close(s)
        if s in self.sessions:
            self.sessions.discard(s)
            self.stats.sessions -= 1

    # -- auth --------------------------------------------------------------

    def login_ok(self, user, password):
        want = self.users.get(user)
        return want is not None and equal(password, want)

    # -- upstream ----------------------------------------------------------

    def tunnel_open(self, s):
        """Count a tunnel for session s, or raise Refusal when a limit is reached."""
        st = self.stats
        if st.tunnels >= self.cfg.limits.tunnels:
            raise Refusal(S.R_FULL)
        n = self.per_client.get(s.client, 0)
        if n >= self.cfg.limits.tunnels_per_client:
            raise Refusal(S.R_CLIENT_FULL)
        if self.sharing is not None:
            self.sharing.check_open(s)
        self.per_client[s.client] = n + 1
        st.tunnels += 1
        s.tunnel = True

    def tunnel_close(self, s):
        if not s.tunnel:
            return
        s.tunnel = False
        self.stats.tunnels -= 1
        n = self.per_client.get(s.client, 1) - 1
        if n > 0:
            self.per_client[s.client] = n
        else:
            self.per_client.pop(s.client, None)
