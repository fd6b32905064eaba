"""Where a tunnel goes: who may ask, then the destination checked, resolved, guarded, and reached directly
or through an upstream proxy. One decision for SOCKS, HTTP, MTProto, zero-tap, the mesh and UDP.

A destination is first made one thing (addr.parse_host: address bytes, or a checked lower-case name;
the guard must see 127.1 as the loopback whoever resolves it), then:
  - route(): the checks that need no waiting, and the addresses when none is needed;
  - open(): what route() left to do (the lookup, or the upstream proxies), then the one dial loop
    (core/dial.py) over the allowed addresses; connect() is both in one call.
Names go to an upstream proxy only after the guard's say (upstream_target); refusals are
stats.Refusal with the reason the protocols turn into their replies. The upstreams (the mesh's when
this relay has no uplink of its own) and the uplink monitor are the server's to set.
"""

from relay.core.dial import dial
from relay.proto import stats as S
from relay.proto.addr import parse_host
from relay.proto.crypto import equal
from relay.proto.dns import ResolveError
from relay.proto.stats import Refusal


class Router:
    def __init__(self, cfg, stats, log, guard, policy, resolver):
        self.stats = stats
        self.log = log
        self.guard = guard
        self.policy = policy
        self.resolver = resolver
        self.connect_ms = int(cfg.limits.connect_timeout * 1000)
        self.users = {}
        for user, password in cfg.socks.users:
            self.users[user] = password
        self.password_required = cfg.socks.auth == "password"
        self.upstreams = None  # services.upstream.Upstreams (or the mesh's), when the server has them
        self.uplink = None  # services.upstream.UplinkMonitor, when uplink.monitor is on

    def login_ok(self, user, password):
        """The proxy login (SOCKS5 RFC 1929, HTTP Basic): one constant-time compare."""
        want = self.users.get(user)
        return want is not None and equal(password, want)

    def destination(self, host):
        """host as a client gave it -> address bytes (numeric names too: 127.1, 0x7f000001), or a name
        in lower case. Raises Refusal for text that is neither (a label over 63 bytes, "-1::1")."""
        if type(host) is not str:
            return host
        try:
            return parse_host(host)
        except ValueError:
            raise Refusal(S.R_DNS)

    def resolve_known(self, host):
        """The addresses of host the guard and the policy allow, when no lookup is needed (an address,
        dns.hosts, a cached answer); None when only a lookup can tell. Raises Refusal."""
        host = self.destination(host)
        if type(host) is str:
            verdict = self.policy.check_name(host)
            if verdict == "policy":
                raise Refusal(S.R_POLICY)
            ips = self.resolver.known(host)
            if ips is None:
                return None
            return self._allowed(host, ips, verdict is None)
        return self._allowed(host, [host], False)

    async def resolve(self, host):
        """host: address bytes or a name -> addresses the guard and the policy allow, or Refusal."""
        ips = self.resolve_known(host)
        if ips is not None:
            return ips
        host = self.destination(host)
        by_name = self.policy.check_name(host) is None  # allowed by its name: its addresses need no check
        try:
            ips = await self.resolver.resolve(host)
        except ResolveError as e:
            raise Refusal(S.R_TIMEOUT if e.reason == "timeout" else S.R_DNS)
        return self._allowed(host, ips, by_name)

    def _allowed(self, host, ips, by_name):
        allowed = [ip for ip in ips if self.guard.check(ip) is None]
        if allowed and not by_name:
            allowed = [ip for ip in allowed if self.policy.check_ip(ip) is None]
            if not allowed:
                raise Refusal(S.R_POLICY)
        if not allowed:
            if self.log.debug_on:
                self.log.debug("guard refused %s: %s" % (host, self.guard.check(ips[0])))
            raise Refusal(S.R_GUARD)
        return allowed

    def route(self, host, port):
        """The checks before a connect that need no waiting: -> the addresses to try directly, or None
        when an upstream proxy or a lookup has to answer first (open() does). Raises Refusal."""
        if self.policy.check_port(port) is not None:
            raise Refusal(S.R_POLICY)
        if self.uplink is not None and not self.uplink.up:
            raise Refusal(S.R_UPLINK_DOWN)
        host = self.destination(host)
        ups = self.upstreams
        if ups is not None and not ups.goes_direct(host):
            self.upstream_target(host, True)  # refuse now what no upstream may be asked for
            return None
        return self.resolve_known(host)

    def upstream_target(self, host, names_here):
        """What to ask an upstream proxy for: address bytes, a name it may resolve itself, or None when
        the relay must resolve the name first (names_here: the proxy sits on a guarded address, where
        its lookups would land on this device's networks). The guard decides before anything leaves:
        numeric names are addresses by now, names it knows are local are refused, and a name with a
        fixed address (dns.hosts, /etc/hosts) goes as that address. Raises Refusal."""
        if type(host) is not str:
            if self.guard.check(host) is not None:
                raise Refusal(S.R_GUARD)
            if self.policy.check_ip(host) is not None:
                raise Refusal(S.R_POLICY)
            return host
        verdict = self.policy.check_name(host)
        if verdict == "policy":
            raise Refusal(S.R_POLICY)
        if self.guard.check_name(host) is not None:
            raise Refusal(S.R_GUARD)
        fixed = self.resolver.fixed(host)
        if fixed:
            for ip in fixed:
                if self.guard.check(ip) is not None:
                    raise Refusal(S.R_GUARD)  # the upstream may read the same hosts file
            return self._allowed(host, fixed, verdict is None)[0]
        if names_here:
            return None
        if verdict is not None:
            raise Refusal(S.R_POLICY)  # only its addresses could admit it, and the upstream resolves it
        return host

    async def through_upstream(self, u, host):
        """Upstreams.connect's target(u, host): what to ask upstream u for (see upstream_target)."""
        target = self.upstream_target(host, self.upstreams.names_here(u))
        if target is None:
            target = (await self.resolve(host))[0]
        return target

    async def open(self, host, port, ips, s=None, since=None, budget_ms=0):
        """A TCP connection to host:port after route(): through an upstream, or each allowed address in
        turn (ips: route()'s addresses, None when it left a lookup or the upstreams to do here).
        s: the session asking (an upstream in the mesh passes its phone's identity along); since,
        budget_ms: the session's deadline (see core/dial.py). Raises Refusal."""
        if ips is None:
            host = self.destination(host)
            ups = self.upstreams
            if ups is not None and not ups.goes_direct(host):
                conn = await ups.connect(host, port, self.connect_ms, self.through_upstream, s)
                self.stats.tunnels_total += 1
                return conn
            ips = await self.resolve(host)
        conn = await dial(ips, port, self.connect_ms, since, budget_ms)
        self.stats.tunnels_total += 1
        return conn

    async def connect(self, host, port, s=None):
        """route() and open() in one: a TCP connection to host:port, or Refusal."""
        return await self.open(host, port, self.route(host, port), s)

    async def connect_own(self, host, port):
        """The relay's own connection to a destination its volunteer configured (the fleet's broker): the
        route tunnels take (the upstreams, the mesh; upstream.direct goes direct), so it never leaves around
        them; no guard or policy (no phone asked for it: a broker on the LAN is fine). Raises Refusal."""
        host = self.destination(host)
        ups = self.upstreams
        if ups is not None and not ups.goes_direct(host):
            return await ups.connect(host, port, self.connect_ms, self._own_target)
        return await dial(await self._own_ips(host), port, self.connect_ms)

    async def _own_target(self, u, host):
        if type(host) is str and self.upstreams.names_here(u):
            return (await self._own_ips(host))[0]  # see upstream_target: such a proxy would resolve it here
        return host

    async def _own_ips(self, host):
        if type(host) is not str:
            return [host]
        try:
            return await self.resolver.resolve(host)
        except ResolveError as e:
            raise Refusal(S.R_TIMEOUT if e.reason == "timeout" else S.R_DNS)

    async def connect_any(self, dests, s=None):
        """The first of dests [(host, port)] that connect() reaches (a data centre's addresses); Refusal
        of the last when none is reached."""
        last = Refusal(S.R_FAILED)
        for host, port in dests:
            try:
                return await self.connect(host, port, s)
            except Refusal as r:
                last = r
        raise last
