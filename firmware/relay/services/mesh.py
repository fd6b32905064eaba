"""Relays that share uplinks over a mesh: which uplink relay carries this relay's tunnels, and serving others.

The routing is babeld's (rendered by `relayctl mesh render`); this module only
reads what it installed. Every relay has its own address in the mesh; a relay
with an uplink also holds a service address inside mesh.uplinks, which babeld
announces like any other. A relay without an uplink (mesh.service "") finds
the service addresses the kernel routes to (proto/meshroutes.py), nearest first,
health-checks them, and chains its tunnels to the first healthy one through
the upstream code (MeshUpstreams feeds upstream.Upstreams its list). When a
carrier stops answering, new tunnels go to the next one at once and the
tunnels that were open through it are ended, so phones reconnect instead of
waiting on a dead path.

Fair sharing at the uplink relay counts phones, not relays: each tunnel carries
a phone identity as its SOCKS5 username (RFC 1929), a token this relay derives
from the phone's address with a secret drawn at boot (so it changes every boot,
is never written anywhere and tells the uplink relay nothing about the address),
with a proof made from mesh.key as the password, each login numbered so a captured one is good once. The
mesh listener (sessions/mesh_session.py, proto/meshid.py) accepts identities only with a valid, fresh proof:
a phone, which does not know the key, cannot pass one, and only a relay of the mesh can.
"""

from relay.runtime import api as runtime
from relay.proto.addr import format_ip, in_net, parse_cidr, parse_ip, split_host_port
from relay.proto.meshroutes import default_gateway, hosts_in, neighbour_addresses, parse_babel_dump, parse_route4, parse_route6
from relay.proto.meshid import Window, login, token
from relay.services.upstream import PrefixConn, Upstream, Upstreams, socks5_handshake

_ROUTE4 = "/proc/net/route"
_ROUTE6 = "/proc/net/ipv6_route"
_DOWN_AFTER = 2  # failed checks in a row before the tunnels through a carrier are ended
_DUMP_MAX = 65536  # bytes of babeld's dump we read; a building's mesh is a few KiB


class _Login:
    """The user/password pair upstream.socks5_handshake reads."""

    __slots__ = ("user", "password")

    def __init__(self, user, password):
        self.user = user
        self.password = password


class MeshUplink(Upstream):
    """An uplink relay the mesh routes to: its service address, babeld's metric, the tunnels it carries."""

    __slots__ = ("metric", "fails", "sessions", "routed", "static")

    def __init__(self, ip, port, index, static=False):
        host = format_ip(ip)
        Upstream.__init__(self, "socks5h://%s:%d" % ("[" + host + "]" if len(ip) == 16 else host, port), index)
        self.user = self.password = b"-"  # the health check offers RFC 1929 as a real tunnel does
        self.label = "mesh:" + host  # a relay's address, never a phone's
        self.metric = 0
        self.fails = 0
        self.sessions = set()
        self.routed = True
        self.static = static


class MeshUpstreams(Upstreams):
    """The upstream list of a relay without an uplink: the mesh's uplink relays first (nearest first, as
    babeld's metric says), then any upstream.proxies configured as a last resort."""

    def __init__(self, mesh, relay, cfg):
        up = cfg.upstream
        Upstreams.__init__(self, relay, up.proxies, up.direct, mesh.hop_ms)
        self.mesh = mesh
        self.fixed = list(self.list)
        self.found = {}  # service address bytes -> MeshUplink

    async def through(self, u, host, port, s=None):
        if type(u) is not MeshUplink:
            return await Upstreams.through(self, u, host, port)
        # A short connect: a dead relay whose route babeld has not withdrawn yet costs hop_timeout, not connect_timeout.
        conn = await runtime.wait_for_ms(runtime.connect_tcp(u.ip, u.port), self.mesh.hop_ms)
        try:
            rest = await socks5_handshake(conn, self.mesh.login(s), host, port)
        except BaseException:
            conn.close()
            raise
        u.healthy = True
        u.fails = 0
        if s is not None:
            u.sessions.add(s)
        return PrefixConn(conn, rest) if rest else conn

    async def health_loop(self):
        await self.mesh.run()

    def update(self, found):
        """found: [(address, metric, static)] the kernel routes to now, nearest first."""
        seen = []
        mesh_list = []
        for ip, metric, static in found:
            u = self.found.get(ip)
            if u is None:
                u = self.found[ip] = MeshUplink(ip, self.mesh.port, len(self.found), static)
            u.metric = metric
            u.routed = True
            seen.append(ip)
            mesh_list.append(u)
        for ip in list(self.found):
            if ip not in seen:
                u = self.found[ip]
                u.routed = False  # babeld withdrew it: gone from the choice; its open tunnels end below
                u.healthy = False
                if not u.sessions:
                    del self.found[ip]
        self.list = mesh_list + self.fixed

    def mesh_uplinks(self):
        return [self.found[ip] for ip in self.found]


class Mesh:
    def __init__(self, relay, cfg):
        m = cfg.mesh
        self.relay = relay
        self.key = m.key.encode()
        self.secret = runtime.random_bytes(16)  # per boot: tokens from an earlier boot mean nothing now
        self.logins = 0  # this boot's login numbers (proto/meshid.py): new tokens each boot, so 0 is fresh
        self.window = Window()  # the uplink side: each login of a token is good once
        self.replays = 0
        self.port = m.port
        self.address = m.address
        self.service = m.service
        self.listen = list(m.listen)
        self.names = m.names
        self.hop_ms = int(m.hop_timeout * 1000)
        self.check_ms = int(m.check_interval * 1000)
        self.network = parse_cidr(m.network) if m.network else None
        self.nets = []
        self.static = []
        self.gateway = False
        for entry in m.uplinks:
            if entry == "gateway":
                self.gateway = True  # a satellite: the relay whose Wi-Fi it joined
                continue
            net = parse_cidr(entry)
            if net[1] == len(net[0]) * 8:
                self.static.append(net[0])
            else:
                self.nets.append(net)
        self.own = [ip for ip in (parse_ip(m.address), parse_ip(m.service)) if ip is not None]
        self.babeld = split_host_port(m.babeld) if m.babeld else None
        self.relays = []  # [(address, metric)] of the relays the mesh routes to
        self.neighbours = []
        self.changed = runtime.now_ms()
        self.upstreams = None
        self.dns_fixed = list(relay.resolver.servers) if cfg.dns.servers else []
        self.dns_port = cfg.dns.listen_port
        if not m.service:  # no uplink of our own: chain through the mesh, names too
            self.upstreams = MeshUpstreams(self, relay, cfg)  # the relay's upstreams from now on
            relay.resolver.system = False

    # -- serving other relays and satellites -----------------------------------------

    def login(self, s):
        """The next login for session s's phone (the relay's own, for health checks) at an uplink relay."""
        self.logins += 1
        tok = token(self.secret, s.client if s is not None else b"relay")
        user, password = login(self.key, tok, self.logins)
        return _Login(user, password)

    def identity(self, user, password):
        """A login at our mesh listener -> the phone's token, or None (a wrong proof, or a replayed login)."""
        from relay.proto.meshid import check  # the uplink side only

        got = check(self.key, user, password)
        if got is None:
            return None
        if not self.window.fresh(got[0], got[1]):
            self.replays += 1
            return None
        return got[0]

    def hosts(self):
        """Where the mesh listener answers (the server opens it): the service address of a relay with an
        uplink, then mesh.listen. A relay with an uplink also answers DNS on its service address: relays
        without one forward their phones' allowed names there (the policy applies here too)."""
        return ([self.service] if self.service else []) + self.listen

    def tasks(self):
        """Background work for the server to run: the routes, health and topology loop (a relay without an
        uplink runs it as its upstreams' health loop instead)."""
        return [self.run()] if self.upstreams is None else []

    def serving(self):
        """Whether tunnels handed to us can go on: our own uplink is up, or a mesh uplink answers."""
        if self.upstreams is not None:
            return self.upstreams.any_healthy()
        up = self.relay.uplink
        return up is None or up.up

    # -- the loop: routes, health, topology ------------------------------------------------

    async def run(self):
        while True:
            try:
                await self.check()
            except (OSError, ValueError, runtime.TimeoutError) as e:
                self.relay.log.warn("mesh: %s" % e)
            if self.babeld is not None:
                # Every check, and whatever check() met: a link babeld only just counted (its first hellos
                # and IHUs exchanged) shows on both relays' status within one check, not one of them
                # seconds later (`relayctl mesh status` showed a link on one end only).
                try:
                    await self._read_babeld()
                except (OSError, ValueError, runtime.TimeoutError) as e:
                    self.relay.log.warn("mesh: babeld's links: %s" % (repr(e) if not str(e) else e))
            await runtime.sleep_ms(self.check_ms)

    def _routes(self):
        routes4 = []
        routes = []
        try:
            routes4 = parse_route4(runtime.read_file(_ROUTE4).decode())
            routes = routes4 + parse_route6(runtime.read_file(_ROUTE6).decode())
        except OSError:
            pass  # no /proc (a microcontroller): only the static uplinks count
        return routes4, routes

    async def check(self):
        routes4, routes = self._routes()
        if self.network is not None:
            self.relays = hosts_in(routes, [self.network], self.own)
        ups = self.upstreams
        if ups is None:
            return
        found = [(ip, metric, False) for ip, metric in hosts_in(routes, self.nets, self.own)]
        extra = list(self.static)
        if self.gateway:
            gw = default_gateway(routes4) or self._station_gateway()
            if gw is not None:
                extra.append(gw)
        for ip in extra:
            metric = 0
            for _dest, metric_found in hosts_in(routes, [(ip, len(ip) * 8)]):
                metric = metric_found
            found.append((ip, metric, True))
        ups.update(found)
        self._route_names()  # a new uplink relay counts as healthy until checked: names have somewhere to go at once
        was = ups.any_healthy()
        for u in ups.mesh_uplinks():
            ok = u.routed and await ups.alive(u)
            u.healthy = ok
            u.fails = 0 if ok else u.fails + 1
            u.sessions = set(s for s in u.sessions if s in self.relay.sessions)
            if u.fails >= _DOWN_AFTER and u.sessions:
                self._end_tunnels(u)
        for u in ups.fixed:  # upstream.proxies, the last resort: checked as Upstreams.health_loop would
            u.healthy = await ups.alive(u)
        self._route_names()
        if ups.any_healthy() != was:
            self.changed = runtime.now_ms()
            self.relay.log.info("mesh: " + ("an uplink relay answers" if not was else "no uplink relay answers"))

    def _route_names(self):
        """Names go where tunnels go: the healthy uplink relays' DNS, nearest first, then any configured server."""
        ups = self.upstreams
        self.relay.resolver.servers = [(u.ip, self.dns_port) for u in ups.list if type(u) is MeshUplink and u.healthy] \
            + self.dns_fixed

    def _station_gateway(self):
        """A board's Wi-Fi station knows its gateway (platform/wifi.py); there is no /proc to read there."""
        plat = self.relay.platform
        link = plat.link if plat is not None else None
        return parse_ip(link.info.get("gateway") or "") if link is not None else None

    def _end_tunnels(self, u):
        """The carrier is gone: end its tunnels now (the phone sees a close and reconnects through the next one)."""
        for s in u.sessions:
            s.cancel()
        u.sessions = set()

    async def _read_babeld(self):
        ip = parse_ip(self.babeld[0])
        conn = await runtime.wait_for_ms(runtime.connect_tcp(ip, self.babeld[1]), 1000)
        try:
            await conn.send(b"dump\n")
            buf = b""
            while buf.count(b"\nok\n") + buf.startswith(b"ok\n") < 2 and len(buf) < _DUMP_MAX:
                data = await runtime.recv_within(conn, 1000)
                if not data:
                    break
                buf += bytes(data)
        finally:
            conn.close()
        dump = parse_babel_dump(buf.decode())
        self.neighbours = neighbour_addresses(dump, self._relay_prefix)

    def _relay_prefix(self, prefix):
        net = parse_cidr(prefix.split(" ")[0])
        if net is None or self.network is None or net[1] != len(net[0]) * 8 or not in_net(net[0], self.network):
            return None
        return format_ip(net[0])

    # -- what status and the portal show ---------------------------------------------------

    def name(self, ip_text):
        return self.names.get(ip_text, ip_text)

    def carrier(self):
        """The uplink relay new tunnels go to now, or None (we have our own uplink, or none answers)."""
        ups = self.upstreams
        if ups is None:
            return None
        for u in ups.list:
            if type(u) is MeshUplink and u.healthy:
                return u
        return None

    def via(self):
        """Which relay carries this relay's traffic, for the portal: a name, "" for this relay itself, None for none."""
        if self.upstreams is None:
            return ""
        c = self.carrier()
        return None if c is None else self.name(format_ip(c.ip))

    def phones(self):
        """(phones on this relay now, phones of other relays whose tunnels this relay carries now)."""
        mine = carried = 0
        for k in self.relay.sessions.per_client:
            if bytes(k[:5]) == b"mesh:":
                carried += 1
            else:
                mine += 1
        return mine, carried

    def status(self):
        mine, carried = self.phones()
        d = {"address": self.address, "service": self.service, "name": self.name(self.address),
             "phones": mine, "phones_carried": carried,
             "relays": [{"address": format_ip(ip), "name": self.name(format_ip(ip)), "metric": m} for ip, m in self.relays],
             "neighbours": self.neighbours, "carrier": None, "uplinks": [], "replays": self.replays}
        ups = self.upstreams
        if ups is None:
            d["carrier"] = {"address": self.service, "name": self.name(self.address), "self": True}
            return d
        d["dns"] = [format_ip(ip) for ip, _ in self.relay.resolver.servers]  # where the phones' names go
        c = self.carrier()
        if c is not None:
            d["carrier"] = {"address": format_ip(c.ip), "name": self.name(format_ip(c.ip)), "metric": c.metric,
                            "self": False}
        for u in ups.mesh_uplinks():
            a = format_ip(u.ip)
            d["uplinks"].append({"address": a, "name": self.name(a), "metric": u.metric, "healthy": u.healthy, "routed": u.routed,
                                 "tunnels": len([s for s in u.sessions if s in self.relay.sessions])})
        return d
