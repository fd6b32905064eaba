"""Upstream proxies and the uplink monitor.

Upstreams: an ordered list of SOCKS5 or HTTP proxies (another relay, or a
volunteer proxy abroad). New tunnels go to the first healthy one; a proxy
that fails is marked down at once and the next is tried in the same
request, so failover costs one connect attempt. A health loop brings it
back when it answers again. upstream.direct lists destinations (CIDRs,
domain suffixes) that skip the upstreams.

With upstream.probe set, services/pathfind.py probes each upstream end to end and
orders them (the path finder).

Names: the guard refuses names it knows are local before they leave. A proxy
on the open internet then gets names as the client gave them (its resolver is
not the censor's). A socks5:// or http:// proxy on an address the guard
refuses (this device, its LAN) would resolve them on this device's networks:
there the relay resolves them itself and sends the address the guard
allowed. socks5h:// (curl's word for "the proxy resolves") sends names even
then: an engine on loopback whose exit is abroad, another relay that guards
itself.

UplinkMonitor: periodic TCP probes decide whether the uplink is up. While
it is down, new tunnels are refused at once (SOCKS 0x03, HTTP 503) instead
of waiting for timeouts; DNS, the portal and status keep working.
"""

from relay.proto import httpproxy, socks
from relay.runtime import api as runtime
from relay.proto.addr import in_net, parse_cidr, parse_ip, split_host_port
from relay.proto.proxyurl import parse_proxy_url
from relay.proto.stats import Refusal


class Upstream:
    __slots__ = ("kind", "ip", "port", "user", "password", "healthy", "label", "ms", "note", "conns", "tunnels",
                 "index", "resolves", "probes")

    def __init__(self, url, index, name=None):
        self.kind, self.ip, self.port, self.user, self.password = parse_proxy_url(url)
        self.resolves = self.kind == "socks5h"  # names go to it even on a guarded address
        if self.resolves:
            self.kind = "socks5"
        self.healthy = True
        self.index = index  # its place in upstream.proxies: the tie-breaker between equally fast paths
        self.label = name or "upstream%d" % index  # counters and logs never carry the address
        self.ms = None  # the path finder's last end-to-end time (services/pathfind.py)
        self.note = ""
        self.conns = []  # (tunnel, session) open through it, kept only while the path finder runs
        self.probes = 0  # the path finder's probes through it
        self.tunnels = 0


class PrefixConn:
    """A connection whose first recv() returns bytes the handshake already read."""

    __slots__ = ("conn", "prefix", "peer")

    def __init__(self, conn, prefix):
        self.conn = conn
        self.prefix = prefix
        self.peer = conn.peer

    async def recv(self, limit=0):
        if self.prefix:
            p, self.prefix = self.prefix, b""
            return p
        return await self.conn.recv(limit)

    async def send(self, data):
        await self.conn.send(data)

    def shutdown_write(self):
        return self.conn.shutdown_write()

    def is_open(self):
        return self.conn.is_open()

    def hang_up(self):
        self.conn.hang_up()

    def local(self):
        return self.conn.local()

    def close(self):
        self.conn.close()


class Upstreams:
    def __init__(self, relay, urls, direct, check_ms):
        self.relay = relay
        up = relay.cfg.upstream
        names = up.names
        self.list = [Upstream(u, i, names[i] if i < len(names) else None) for i, u in enumerate(urls)]
        self.finder = None
        if up.probe:  # end-to-end probes order the upstreams (services/pathfind.py)
            from relay.services.pathfind import PathFinder

            self.finder = PathFinder(self, up.probe, int(relay.cfg.uplink.timeout * 1000),
                                     int(up.standby_interval * 1000))
        self.direct_nets = []
        self.direct_names = []
        for d in direct:
            net = parse_cidr(d)
            if net is not None:
                self.direct_nets.append(net)
            else:
                self.direct_names.append(d.lower().lstrip("."))
        self.check_ms = check_ms

    def goes_direct(self, host):
        if type(host) is str:
            ip = parse_ip(host)
            if ip is None:
                name = host.lower().rstrip(".")
                for suffix in self.direct_names:
                    if name == suffix or name.endswith("." + suffix):
                        return True
                return False
            host = ip
        for net in self.direct_nets:
            if in_net(host, net):
                return True
        return False

    def names_here(self, u):
        """Must the relay resolve a name before asking u? Yes when u sits on an address the guard refuses
        and was not declared socks5h (see the module's docstring)."""
        return not u.resolves and self.relay.guard.check(u.ip) is not None

    def any_healthy(self):
        for u in self.list:
            if u.healthy:
                return True
        return False

    async def connect(self, host, port, timeout_ms, target=None, who=None):
        """A tunnel to host:port through the first upstream that works. Raises Refusal.
        target(u, host): what to ask u for instead (the address of a name the relay resolved);
        who: the session it is for (the mesh passes its phone's identity along)."""
        order = [u for u in self.list if u.healthy]
        if self.finder is None:
            order += [u for u in self.list if not u.healthy]
        for u in order:
            dest = host if target is None else await target(u, host)  # its Refusal is the destination's
            try:
                conn = await runtime.wait_for_ms(self.through(u, dest, port, who), timeout_ms)
                u.tunnels += 1
                if self.finder is not None:
                    self.finder.track(u, conn, who)
                return conn
            except socks.SocksError as e:
                if e.reason != "upstream":
                    raise Refusal(e.reason)  # the destination's answer, not the proxy's fault
                u.healthy = False
            except httpproxy.HttpError as e:
                if e.status != 502 or e.reason != "upstream":
                    raise Refusal("refused" if e.status == 502 else "failed")
                u.healthy = False
            except (OSError, runtime.TimeoutError):
                u.healthy = False
        raise Refusal("uplink-down")

    async def through(self, u, host, port, who=None):
        conn = await runtime.connect_tcp(u.ip, u.port)
        try:
            if u.kind == "socks5":
                rest = await socks5_handshake(conn, u, host, port)
            else:
                rest = await _http_connect(conn, u, host, port)
        except BaseException:
            conn.close()
            raise
        u.healthy = True
        return PrefixConn(conn, rest) if rest else conn

    async def health_loop(self):
        while True:
            if self.finder is not None:
                await self.finder.run()  # its own beat per upstream; never returns
            else:
                for u in self.list:
                    u.healthy = await self.alive(u)
            await runtime.sleep_ms(self.check_ms)

    async def alive(self, u):
        """The proxy accepts a connection and answers a SOCKS greeting (HTTP: accepts)."""
        try:
            conn = await runtime.wait_for_ms(runtime.connect_tcp(u.ip, u.port), self.check_ms)
        except (OSError, runtime.TimeoutError):
            return False
        try:
            if u.kind != "socks5":
                return True
            cl = socks.Socks5Client("", 0, u.user, u.password)
            await conn.send(cl.greeting())
            reply = await runtime.recv_within(conn, self.check_ms)
            return len(reply) >= 2 and reply[0] == 5 and reply[1] != 0xFF
        except (OSError, runtime.TimeoutError):
            return False
        finally:
            conn.close()


async def socks5_handshake(conn, u, host, port):
    cl = socks.Socks5Client(host, port, u.user, u.password)
    await conn.send(cl.greeting())
    while not cl.done:
        data = await conn.recv()
        if not data:
            raise socks.SocksError("upstream closed during the handshake", reason="upstream")
        for ev in cl.feed(data):
            await conn.send(ev.data)
    return cl.rest


async def _http_connect(conn, u, host, port):
    cred = (u.user, u.password) if u.user else None
    await conn.send(httpproxy.connect_request(host, port, cred))
    reader = httpproxy.HeadReader(8192)
    head = None
    while head is None:
        data = await conn.recv()
        if not data:
            raise httpproxy.HttpError(502, "upstream closed during CONNECT", "upstream")
        head = reader.feed(data)
    resp = httpproxy.parse_response(head)
    if resp.status != 200:
        bad_proxy = resp.status in (407, 400, 405)
        raise httpproxy.HttpError(502 if bad_proxy else 403, "upstream answered %d" % resp.status,
                                  "upstream" if bad_proxy else "refused")
    return reader.rest


class UplinkMonitor:
    def __init__(self, relay, targets, interval_ms, timeout_ms, down_after):
        self.relay = relay
        self.targets = [split_host_port(t) for t in targets]
        self.targets = [(parse_ip(h), p) for h, p in self.targets]
        self.interval_ms = interval_ms
        self.timeout_ms = timeout_ms
        self.down_after = down_after
        self.up = True
        self.changed = runtime.now_ms()
        self.failures = 0
        self.changes = 0

    def state(self):
        return {"up": self.up, "since_s": runtime.ms_since(self.changed) // 1000, "changes": self.changes}

    async def run(self):
        while True:
            ok = await self.probe()
            if ok:
                self.failures = 0
                if not self.up:
                    self._set(True)
            else:
                self.failures += 1
                if self.up and self.failures >= self.down_after:
                    self._set(False)
            await runtime.sleep_ms(self.interval_ms if self.up else max(1000, self.interval_ms // 3))

    def _set(self, up):
        self.up = up
        self.changed = runtime.now_ms()
        self.changes += 1
        self.relay.log.info("uplink " + ("up" if up else "down"))

    async def probe(self):
        ups = self.relay.upstreams
        if ups is not None and ups.list:
            return ups.any_healthy()
        for ip, port in self.targets:
            try:
                conn = await runtime.wait_for_ms(runtime.connect_tcp(ip, port), self.timeout_ms)
                conn.close()
                return True
            except (OSError, runtime.TimeoutError):
                pass
        return False
