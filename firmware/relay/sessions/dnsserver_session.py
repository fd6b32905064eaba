"""The DNS responder's sessions (proto/dnsserver.py): one datagram each, from a phone on the Wi-Fi (or a
relay of the mesh that forwards its phones' names here).

listen(relay, host, port) answers DNS on host:port until Relay.close(): captive answers and local names
at once (dnsserver.py decides), allowed names forwarded through relay.resolver (dns.servers), or
answered from the resolver's own lookups where none is configured. No protocol logic lives here.
"""

from relay.proto import dns
from relay.proto.addr import parse_ip
from relay.proto.dns import ResolveError
from relay.proto.dnsserver import FORWARD, REPLY, DNSResponder
from relay.proto.portal import wpad_names
from relay.runtime import api as runtime

_MAX_PENDING = 32  # forwarded queries in flight; more get SERVFAIL at once rather than piling up tasks
_SYNTH_TTL = 60  # seconds, for answers made from the system resolver (which tells no TTL)


def make_responder(relay):
    cfg = relay.cfg
    policy = relay.policy
    names = list(cfg.portal.names)
    if cfg.portal.enabled:  # wpad, wpad.lan, ...: browsers' proxy auto-discovery finds the portal's /wpad.dat
        names += wpad_names(cfg.portal.names)
    return DNSResponder(parse_ip(cfg.portal.address), names, lambda name: policy.check_name(name) is None,
                        cfg.dns.answer_unknown, runtime.ms_diff)


class _DNSService:
    """What Relay.close() needs of the DNS loop: one close()."""

    def __init__(self, sock):
        self.sock = sock
        self.task = None

    def close(self):
        if self.task is not None:
            self.task.cancel()
        runtime.udp_close(self.sock)


async def run_dns(relay, host, port, sock=None):
    if sock is None:
        sock = runtime.udp_bind(parse_ip(host), port)
    responder = relay.dns_responder or make_responder(relay)  # one cache for every listener
    relay.dns_responder = responder
    pending = [0]
    while True:
        try:
            data, src, sport = await runtime.udp_recv(sock)
        except OSError:
            await runtime.sleep_ms(10)  # an ICMP error surfaced on the socket; keep serving
            continue
        try:
            act = responder.handle(data, runtime.now_ms())
        except Exception as e:  # a bug must not take DNS down for everyone; say so and go on
            relay.log.warn("dns: dropped a packet: %s" % repr(e))
            continue
        if act is None:
            continue
        if act[0] == REPLY:
            runtime.udp_send(sock, act[1], src, sport)
        elif act[0] == FORWARD:
            if pending[0] >= _MAX_PENDING:
                runtime.udp_send(sock, responder.fail(act[1]), src, sport)
            else:
                pending[0] += 1
                runtime.create_task(_forward(relay, responder, sock, act[1], src, sport, pending))


async def _forward(relay, responder, sock, q, src, sport, pending):
    out = None
    try:
        if relay.resolver.servers and q.name not in relay.resolver.hosts:
            answer = await relay.resolver.forward(q.raw)
            out = responder.finish(q, answer, runtime.now_ms())
        else:
            out = await _synthesize(relay, responder, q)
    except ResolveError:
        pass
    except OSError:
        pass
    finally:
        pending[0] -= 1
    if out is None:
        out = responder.fail(q)
    runtime.udp_send(sock, out, src, sport)


async def _synthesize(relay, responder, q):
    """An answer from relay.resolver (fixed names, or the system's resolver): A and AAAA only."""
    if q.qtype != dns.TYPE_A and q.qtype != dns.TYPE_AAAA:
        return responder.finish(q, dns.build_response(q.raw, q.qend, dns.RCODE_OK, aa=False), runtime.now_ms())
    try:
        ips = await relay.resolver.resolve(q.name)
    except ResolveError as e:
        if e.reason != "nxdomain":
            return None
        ips = None
    if ips is None:
        answer = dns.build_response(q.raw, q.qend, dns.RCODE_NXDOMAIN, aa=False)
    else:
        want = 4 if q.qtype == dns.TYPE_A else 16
        recs = [(q.qtype, _SYNTH_TTL, ip) for ip in ips if len(ip) == want]
        answer = dns.build_response(q.raw, q.qend, dns.RCODE_OK, recs, aa=False)
    return responder.finish(q, answer, runtime.now_ms())


def listen(relay, host, port):
    """Answer DNS on host:port (UDP) with the relay's one responder until Relay.close(); -> (host, port)."""
    sock = runtime.udp_bind(parse_ip(host), port)
    svc = _DNSService(sock)
    svc.task = runtime.create_task(run_dns(relay, host, port, sock))
    relay.listeners.append(svc)
    return (host, port)
