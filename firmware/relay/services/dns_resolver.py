"""Name resolution that never blocks the event loop.

Resolver.resolve(name) -> [address bytes], in the configured preference
order, or raises ResolveError. Fixed names (dns.hosts, then /etc/hosts
where the relay asks DNS itself) come first; then dns.servers over UDP with
our own DNS code (the only way on MicroPython, where getaddrinfo stalls every
connection); with no servers configured, CPython asks the system resolver
and MicroPython reads /etc/resolv.conf. An answer counts only when its
question is the one asked. A small cache honours TTLs. Names come checked
(addr.parse_host); one that is not a host name is NXDOMAIN here too.
"""

from relay.proto import dns
from relay.proto.dns import ResolveError
from relay.runtime import api as runtime
from relay.proto.addr import parse_host, parse_ip

_CACHE_MAX = 128  # entries; a phone crowd asks for a few dozen names
_MIN_TTL = 5
_MAX_TTL = 3600


def resolv_conf_servers(text):
    out = []
    for line in text.split("\n"):
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            ip = parse_ip(parts[1])
            if ip is not None:
                out.append((ip, 53))
    return out


def hosts_file_entries(text):
    """/etc/hosts text -> {name: [address bytes]}, names in lower case."""
    out = {}
    for line in text.split("\n"):
        parts = line.split("#", 1)[0].split()
        if len(parts) < 2:
            continue
        ip = parse_ip(parts[0])
        if ip is None:
            continue
        for name in parts[1:]:
            name = name.lower().rstrip(".")
            ips = out.setdefault(name, [])
            if ip not in ips:
                ips.append(ip)
    return out


class Resolver:
    def __init__(self, servers, hosts, prefer_v6, timeout_ms, system_ok, hosts_file="/etc/hosts"):
        """system_ok: the runtime has a resolver that does not stall the loop (runtime.caps.system_resolver)."""
        self.servers = list(servers)
        self.prefer_v6 = prefer_v6
        self.timeout_ms = timeout_ms
        self.cache = {}  # name -> (stored_ms, ttl_ms, [addresses]): ages by runtime.ms_since (ticks wrap)
        self.system = not self.servers and system_ok
        self.hosts = {}
        if not self.system and hosts_file:  # the system resolver reads it itself
            try:
                self.hosts = hosts_file_entries(runtime.read_file(hosts_file).decode())
            except (OSError, UnicodeError):
                pass  # a board has none
        for name in hosts:
            self.hosts[name.lower().rstrip(".")] = hosts[name]  # dns.hosts wins
        if not self.servers and not self.system:
            try:
                self.servers = resolv_conf_servers(runtime.read_file("/etc/resolv.conf").decode())
            except OSError:
                pass

    def fixed(self, name):
        """The addresses dns.hosts or the hosts file give name (lower case), or None."""
        return self.hosts.get(name)

    def _order(self, ips):
        first = [a for a in ips if (len(a) == 16) == self.prefer_v6]
        return first + [a for a in ips if (len(a) == 16) != self.prefer_v6]

    def known(self, name):
        """The addresses of name without asking anyone (dns.hosts, an unexpired cached answer), or None."""
        name = name.lower().rstrip(".")
        fixed = self.hosts.get(name)
        if fixed:
            return self._order(fixed)
        hit = self.cache.get(name)
        if hit is not None:
            if 0 <= runtime.ms_since(hit[0]) < hit[1]:
                return hit[2]
            del self.cache[name]
        return None

    async def resolve(self, name):
        ips = self.known(name)
        if ips is not None:
            return ips
        try:
            name = parse_host(name)
        except ValueError:
            raise ResolveError("nxdomain")  # e.g. a label over 63 bytes: no resolver could answer
        if type(name) is not str:
            return [name]
        now = runtime.now_ms()
        if self.system:
            ips = await runtime.system_resolve(name)
            ttl = 60
        elif not self.servers:
            raise ResolveError("failed")
        else:
            ips, ttl = await self._ask(name)
        if not ips:
            raise ResolveError("nxdomain")
        ips = self._order(ips)
        if len(self.cache) >= _CACHE_MAX:
            self.cache.clear()  # cheaper than LRU bookkeeping on a board; refills in seconds
        self.cache[name] = (now, 1000 * max(_MIN_TTL, min(ttl, _MAX_TTL)), ips)
        return ips

    async def _ask(self, name):
        last = ResolveError("timeout")
        for ip, port in self.servers:
            try:
                return await runtime.wait_for_ms(self._query(ip, port, name), self.timeout_ms)
            except runtime.TimeoutError:
                last = ResolveError("timeout")
            except ResolveError as e:
                if e.reason == "nxdomain":
                    raise
                last = e
            except OSError:
                last = ResolveError("failed")
        raise last

    async def _query(self, server_ip, port, name):
        try:
            q4 = dns.build_query(_qid(), name, dns.TYPE_A)
            q6 = dns.build_query(_qid(), name, dns.TYPE_AAAA)
        except dns.DNSError:
            raise ResolveError("nxdomain")
        bind = bytes(len(server_ip))
        sock, _ = runtime.udp_open(bind, 49152 + (_qid() & 0x3FFF))  # the hint matters only where no port 0 exists
        try:
            if not runtime.udp_send(sock, q4, server_ip, port) or not runtime.udp_send(sock, q6, server_ip, port):
                raise ResolveError("failed")  # no route to this resolver: try the next at once
            pending = {(q4[0] << 8) | q4[1]: dns.TYPE_A, (q6[0] << 8) | q6[1]: dns.TYPE_AAAA}
            ips, ttl, nx = [], 86400, 0
            while pending:
                data, src, sport = await runtime.udp_recv(sock)
                if src != server_ip or sport != port:
                    continue  # not our resolver: ignore, do not trust
                try:
                    msg = dns.parse(data)
                except dns.DNSError:
                    continue
                qtype = pending.get(msg.id)
                if qtype is None or not msg.is_response or not dns.asks(msg, name, qtype):
                    continue  # an answer to another question (a stale or forged one) is no answer
                del pending[msg.id]
                if msg.rcode == dns.RCODE_NXDOMAIN:
                    nx += 1
                    continue
                if msg.rcode != dns.RCODE_OK:
                    continue
                got, t = dns.addresses(msg, qtype)
                ips += got
                ttl = min(ttl, t)
            if not ips and nx:
                raise ResolveError("nxdomain")
            return ips, ttl
        finally:
            runtime.udp_close(sock)

    async def forward(self, query):
        """Send a client's raw DNS query to the configured servers in turn; -> the first
        answer's bytes (its id is ours, the caller restores the client's), or ResolveError."""
        if not self.servers:
            raise ResolveError("failed")
        last = ResolveError("timeout")
        for ip, port in self.servers:
            try:
                return await runtime.wait_for_ms(self._forward_one(ip, port, query), self.timeout_ms)
            except runtime.TimeoutError:
                last = ResolveError("timeout")
            except OSError:
                last = ResolveError("failed")
        raise last

    async def _forward_one(self, server_ip, port, query):
        qid = _qid()
        out = bytearray(query)
        out[0] = qid >> 8
        out[1] = qid & 0xFF
        sock, _ = runtime.udp_open(bytes(len(server_ip)), 49152 + (qid & 0x3FFF))
        try:
            if not runtime.udp_send(sock, out, server_ip, port):
                raise OSError("cannot reach the resolver")
            while True:
                data, src, sport = await runtime.udp_recv(sock)
                if src == server_ip and sport == port and len(data) >= 12 and data[0] == out[0] and data[1] == out[1]:
                    return data  # dnsserver checks the question before passing anything on
        finally:
            runtime.udp_close(sock)


def _qid():
    b = runtime.random_bytes(2)
    return (b[0] << 8) | b[1]
