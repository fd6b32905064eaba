"""The Wi-Fi side's services, I/O glue: the onboarding portal (HTTP) and the DNS responder (UDP).

start(relay) opens what config asks for (portal.enabled, dns.listen_enabled)
and returns the [(host, port)] now listening; Relay.close() closes them.
serve_portal(relay, session, first_bytes) answers one HTTP request with
portal.py; run_dns(relay, host, port) answers DNS with dnsserver.py and
forwards allowed names through relay.resolver. No protocol logic lives here.
"""

from relay.proto import dns
from relay import runtime
from relay.proto import httpproxy as H
from relay.proto.addr import parse_ip
from relay.proto.dnsserver import FORWARD, REPLY, DNSResponder
from relay.proto.portal import Portal, parse_head, wpad_names
from relay.services.resolve import ResolveError

_MAX_PENDING = 32  # forwarded queries in flight; more get SERVFAIL at once rather than piling up tasks
_SYNTH_TTL = 60  # seconds, for answers made from the system resolver (which tells no TTL)


def make_portal(relay):
    cfg = relay.cfg
    p = cfg.portal
    socks = (p.address, cfg.socks.port) if cfg.socks.enabled else None
    if cfg.http.enabled:
        http = (p.address, cfg.http.port)
    else:
        http = socks  # the SOCKS port answers HTTP proxy requests too
    user = password = None
    if cfg.socks.auth == "password" and cfg.socks.users:
        user, password = cfg.socks.users[0][0].decode(), cfg.socks.users[0][1].decode()
    mt = None
    m = cfg.mtproto
    if m.enabled and m.secrets:
        from relay.proto.mtproto import parse_secret

        # The first secret is the one to share: a flashed board's own (relayctl flash puts it first).
        mt = (p.address, m.port, parse_secret(m.secrets[0], m.tls_domain).link_text())
    return Portal(p.address, p.port, p.names, socks, http, user, password, p.languages,
                  _qr(relay, "portal.qr_svg", p.qr_svg), runtime.random_bytes(16), mt,
                  _qr(relay, "portal.qr_mtproto_svg", p.qr_mtproto_svg) if mt else None, cfg.policy.preset)


def _qr(relay, key, path):
    if not path:
        return None
    try:
        return runtime.read_file(path)
    except OSError as e:
        relay.log.warn("%s: cannot read %s: %s; the page shows no QR code for it" % (key, path, e))
        return None


def make_responder(relay):
    cfg = relay.cfg
    policy = relay.policy
    names = list(cfg.portal.names)
    if cfg.portal.enabled:  # wpad, wpad.lan, ...: browsers' proxy auto-discovery finds the portal's /wpad.dat
        names += wpad_names(cfg.portal.names)
    return DNSResponder(parse_ip(cfg.portal.address), names, lambda name: policy.check_name(name) is None,
                        cfg.dns.answer_unknown)


def info(relay, client_ip=None):
    from relay.services.status import snapshot

    counters = snapshot(relay)
    r = getattr(relay, "dns_responder", None)
    if r is not None:
        counters["dns"] = {"answered": r.answered, "forwarded": r.forwarded, "cached": r.cached,
                           "refused": r.refused, "dropped": r.dropped}
    up = relay.uplink
    share = relay.sharing.status(client_ip) if relay.sharing is not None else None
    clock = counters["mtproto"]["clock"] if "mtproto" in counters else None
    d = {"people": len(relay.per_client), "uplink": None if up is None else up.up,
         "since_s": None if up is None else up.state()["since_s"], "share": share, "counters": counters,
         "clock": clock, "path": (counters.get("path") or {}).get("path", False)}  # False: no path finder
    mesh = relay.mesh
    if mesh is not None:  # which relay of the mesh carries the traffic ("": this one)
        d["via"] = mesh.via()
        if up is None and mesh.upstreams is not None:
            d["uplink"] = d["via"] is not None
            d["since_s"] = runtime.ms_since(mesh.changed) // 1000
    return d


async def serve_portal(relay, s, first):
    portal = relay.portal
    reader = H.HeadReader(4096)  # a phone's request head is well under 1 KB
    data = first
    try:
        while True:
            head = reader.feed(data)
            if head is not None:
                break
            data = await s.conn.recv()
            if not data:
                return
    except H.HttpError as e:
        await s.conn.send(H.error_response(e.status, str(e)))
        return
    r = parse_head(head)
    if r is not None and (r.path == "/admin" or r.path.startswith("/admin/")):
        from relay.services.status import serve_admin

        await serve_admin(relay, s, head, True)  # the portal is the Wi-Fi side: admin.py answers only if the site lets it
        return
    await s.conn.send(portal.respond(head, s.client, lambda ip: info(relay, ip)))


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
    responder = getattr(relay, "dns_responder", None) or make_responder(relay)  # one cache for every listener
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


async def start(relay):
    """Open the portal and DNS listeners config asks for; -> [(host, port)] listening."""
    from relay.server import Session

    cfg = relay.cfg
    done = []
    if cfg.portal.enabled:
        relay.portal = make_portal(relay)
        if cfg.portal.admin_on_wifi and cfg.portal.admin_password:
            relay.log.warn("portal.admin_on_wifi: the admin page answers on the Wi-Fi, where its password crosses "
                           "the air in the clear; the status listener (wired side) does not need that")

        def accept(conn):
            if len(relay.sessions) >= cfg.limits.sessions:
                conn.close()  # out of sockets: the kindest answer is a fast close
                return
            s = Session(conn, relay.handshake_ms)
            relay.sessions.add(s)
            s.task = runtime.create_task(relay._guarded(s, serve_portal))

        lst = await runtime.listen_tcp(cfg.portal.host, cfg.portal.port, 32, accept)
        relay.listeners.append(lst)
        done.append((cfg.portal.host, cfg.portal.port))
    d = cfg.dns
    if d.listen_enabled:
        done.append(listen_dns(relay, d.listen_host, d.listen_port))
    return done


def listen_dns(relay, host, port):
    """Answer DNS on host:port (UDP) with the relay's one responder until Relay.close(); -> (host, port)."""
    sock = runtime.udp_bind(parse_ip(host), port)
    svc = _DNSService(sock)
    svc.task = runtime.create_task(run_dns(relay, host, port, sock))
    relay.listeners.append(svc)
    return (host, port)
