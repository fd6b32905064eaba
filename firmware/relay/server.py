"""The relay: its parts wired together, its listeners, the sweeper, start and stop.

Relay(cfg, log) builds the protocols' shared state (guard, policy, resolver, counters), the seam
(core/: the sessions, the router, the tunnels) and the services config asks for (upstreams, the
mesh, the uplink monitor, fair sharing). start() opens every listener; each accepted connection is
admitted once (Sessions.admit) and handed to its protocol's driver in sessions/, which decides and
asks the seam to route, dial and tunnel. One sweeper task ends overdue sessions, so the data path
carries no per-read timer. This module decides nothing about a protocol, and nothing imports it
but the entry point (__main__.py).
"""

from relay.core.route import Router
from relay.core.session import PageSession, Sessions
from relay.core.tunnel import Tunnels
from relay.proto import stats as S
from relay.proto.guard import Guard
from relay.proto.policy import Policy
from relay.runtime import api as runtime
from relay.services.dns_resolver import Resolver
from relay.sessions.proxy_session import serve_proxy

_SWEEP_MS = 1000


class Relay:
    def __init__(self, cfg, log):
        self.cfg = cfg
        self.log = log
        self.stats = S.Stats()
        caps = runtime.caps
        g = cfg.guard
        self.guard = Guard(g.allow, g.deny, g.management, g.own, cfg.portal.names)
        d = cfg.dns
        self.resolver = Resolver(d.servers, d.hosts, d.prefer == "ipv6", int(d.timeout * 1000), caps.system_resolver)
        p = cfg.policy
        self.policy = Policy(p.preset, lambda path: runtime.read_file(path).decode(), p.allow_domains,
                             p.deny_domains, p.allow_cidrs, p.deny_cidrs, p.ports)
        lim = cfg.limits
        self.idle_ms = int(lim.idle_timeout * 1000)
        self.udp = cfg.socks.udp and caps.udp  # UDP ASSOCIATE is served
        self.udp_port_next = cfg.socks.udp_port_base
        self.listeners = []
        self.binding = None  # the address listen() is binding (a failed bind names it)
        self.background = []
        self.stopped = runtime.Event()  # set to stop serve(); exit_code says why
        self.exit_code = 0
        self.restart_why = None  # who asked for a restart, for its log line
        # Set as they come: by serve() (platform, config_digest, load_config), by start() (the rest).
        self.platform = self.config_digest = self.load_config = self.on_reload = None
        self.mtproto = self.clock = self.fleet = self.portal = self.dns_responder = self.admin = None
        self.http_slots = None
        self.sharing = None
        sh = cfg.share
        if sh.rate_down or sh.rate_up or sh.client_quota or sh.budget_day or sh.budget_total or sh.state_file:
            from relay.services.share_service import Sharing

            self.sharing = Sharing(self, cfg)
        # The seam: sessions, routes, tunnels.
        self.sessions = Sessions(self.stats, lim, int(lim.handshake_timeout * 1000))
        self.sessions.sharing = self.sharing
        fast = caps.fast and cfg.io.backend == "auto"  # the fast path: loop callbacks where the runtime has them
        self.tunnels = self.sessions.tunnels = Tunnels(self.sessions, self.stats, self.sharing, self.idle_ms, fast,
                                                       caps.lean)
        self.router = Router(cfg, self.stats, log, self.guard, self.policy, self.resolver)
        self.upstreams = None
        if cfg.upstream.proxies:
            from relay.services.upstream import Upstreams

            up = cfg.upstream
            self.upstreams = Upstreams(self, up.proxies, up.direct, int(up.check_interval * 1000))
        self.mesh = None
        if cfg.mesh.enabled:  # relays sharing uplinks: a relay without an uplink chains through the mesh's
            from relay.services.mesh import Mesh

            self.mesh = Mesh(self, cfg)
            if self.mesh.upstreams is not None:
                self.upstreams = self.mesh.upstreams
        self.router.upstreams = self.upstreams
        self.uplink = None
        if cfg.uplink.monitor:
            from relay.services.upstream import UplinkMonitor

            u = cfg.uplink
            self.uplink = UplinkMonitor(self, u.targets, int(u.interval * 1000), int(u.timeout * 1000), u.down_after)
        self.router.uplink = self.uplink
        runtime.set_buffer_size(lim.buffer)
        self.udp_max = runtime.set_udp_max(lim.udp_datagram)
        self.fast_socks = None  # SOCKS sessions on loop callbacks, where the runtime can
        if fast:
            from relay.sessions.socks_fast import FastSocks

            self.fast_socks = FastSocks

    # -- lifecycle ---------------------------------------------------------

    async def start(self):
        """Open every listener config asks for; -> [(host, port)] listening (the ready line names them)."""
        runtime.raise_fd_limit()
        from relay.platform import own

        watch = await own.start(self)  # the device's addresses, for the guard, before anyone is served
        if watch is not None:
            self.background.append(runtime.create_task(watch))
        cfg = self.cfg
        done = []
        for sect in (cfg.socks, cfg.http):
            if sect.enabled and (sect.host, sect.port) not in done:
                done.append(await self.listen(sect.host, sect.port, self.accept_proxy, own_address=True))
        st = cfg.status
        if st.enabled:
            done.append(await self.listen(st.host, st.port, self.accept_status, backlog=8))
        if cfg.portal.enabled:
            from relay.sessions.portal_session import make_portal

            self.portal = make_portal(self)
            if cfg.portal.admin_on_wifi and cfg.portal.admin_password:
                self.log.warn("portal.admin_on_wifi: the admin page answers on the Wi-Fi, where its password crosses "
                              "the air in the clear; the status listener (wired side) does not need that")
            done.append(await self.listen(cfg.portal.host, cfg.portal.port, self.accept_portal, backlog=32))
        if cfg.dns.listen_enabled:
            done.append(self.listen_dns(cfg.dns.listen_host, cfg.dns.listen_port))
        if cfg.mtproto.enabled:
            from relay.services.mtproto_service import MTProtoService
            from relay.sessions.mtproto_session import serve_mtproto

            self.mtproto = MTProtoService(self, serve_mtproto)
            done.append(await self.mtproto.start())  # its listeners come and go with retired secrets' ports
        t = cfg.transparent
        if t.enabled:
            if runtime.caps.original_dst:
                done.append(await self.listen(t.host, t.port, self.accept_transparent, own_address=True))
            else:
                self.log.warn("transparent.enabled: this runtime (%s) cannot read a redirected connection's "
                              "destination; zero-tap mode is off, phones use the portal's proxy links" % runtime.NAME)
        mesh = self.mesh
        if mesh is not None:
            for host in mesh.hosts():
                done.append(await self.listen(host, mesh.port, self.accept_mesh, own_address=True))
            if mesh.service and cfg.dns.listen_enabled:
                done.append(self.listen_dns(mesh.service, mesh.dns_port))
            for coro in mesh.tasks():
                self.background.append(runtime.create_task(coro))
        self.sweeper = runtime.create_task(self._sweep())
        if self.upstreams is not None:
            self.background.append(runtime.create_task(self.upstreams.health_loop()))
        if self.uplink is not None:
            self.background.append(runtime.create_task(self.uplink.run()))
        if self.sharing is not None:
            for coro in self.sharing.tasks():
                self.background.append(runtime.create_task(coro))
        if cfg.status.console_interval:
            self.background.append(runtime.create_task(self._console_status()))
        if cfg.fleet.enabled:
            from relay.services.fleet_mqtt import FleetLink

            self.fleet = FleetLink(self)
            self.background.append(runtime.create_task(self.fleet.run()))
        return done

    async def listen(self, host, port, on_conn, backlog=None, own_address=False):
        """A TCP listener on host:port until close(); own_address: the guard refuses it as a destination."""
        self.binding = (host, port)  # a failed bind's message names it
        lst = await runtime.listen_tcp(host, port, backlog or self.cfg.limits.backlog, on_conn)
        self.listeners.append(lst)
        if own_address:
            self.guard.add_own([host])
        return (host, port)

    def listen_dns(self, host, port):
        from relay.sessions import dnsserver_session

        return dnsserver_session.listen(self, host, port)

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
        self.sessions.cancel_all()

    async def _sweep(self):
        while True:
            await runtime.sleep_ms(_SWEEP_MS)
            self.sessions.sweep()

    def restart(self, why="the admin page"):
        """Stop and exit with status 75 (EX_TEMPFAIL): systemd's Restart= and procd's respawn start
        the relay again; a MicroPython board resets (platform.restart()). why: who asked, for the log."""
        self.restart_why = why
        self.exit_code = 75
        self.stopped.set()

    # -- accepting: one admission, then the protocol's driver -------------------------

    def accept_proxy(self, conn):
        """The SOCKS/HTTP port: on the fast path a SOCKS session runs on loop callbacks, with no task
        unless it needs one (HTTP, UDP, a lookup, an upstream); elsewhere it is a task from the start."""
        fast = self.fast_socks
        if fast is not None:
            s = self.sessions.admit(conn, fast)
            if s is not None:
                s.start(self)
            return
        s = self.sessions.admit(conn)
        if s is not None:
            self.sessions.run(s, serve_proxy(self, s))

    def accept_status(self, conn):
        s = self.sessions.admit(conn, PageSession, limited=False)  # the operator's view, even of a full relay
        from relay.sessions.status_session import serve_status

        self.sessions.run(s, serve_status(self, s))

    def accept_portal(self, conn):
        s = self.sessions.admit(conn, PageSession)
        if s is not None:
            from relay.sessions.portal_session import serve_portal

            self.sessions.run(s, serve_portal(self, s))

    def accept_transparent(self, conn):
        s = self.sessions.admit(conn)
        if s is not None:
            from relay.sessions.transparent_session import serve_transparent

            self.sessions.run(s, serve_transparent(self, s))

    def accept_mesh(self, conn):
        from relay.sessions.mesh_session import MeshSession, serve_mesh

        s = self.sessions.admit(conn, MeshSession)
        if s is not None:
            self.sessions.run(s, serve_mesh(self, s))
