"""A public relay from the inside: is it a plausible web server, and print its links as cards.

  relayctl public check --config FILE   what the relay can check about itself:
      mask   the mask site answers TLS for the fake-TLS domain with a certificate for it
      dns    the domain's DNS points at this machine (a censor compares the two)
      clock  this machine's clock agrees with the site's (ee clients outside the window are refused)
  relayctl public cards --config FILE --out DIR   a QR card per tg://proxy link (HTML and PNG)

check exits 1 when a check fails, each failure saying what to do. Probes from
outside (is 443 reachable, what does a scanner see) are beyond a machine's own view.
"""

import email.utils
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

from relayctl import hostport, out, paths
from relayctl.errors import CliError


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    c = sub.add_parser("check", help="check the mask site, the domain's DNS and the clock",
                       description="Check what a public relay can check about itself: the mask site answers TLS for "
                       "the fake-TLS domain, the domain's DNS points at this machine, the clock is right.")
    c.add_argument("--config", metavar="FILE", required=True, help="the relay's config.json")
    c.add_argument("--dns", metavar="IP[:PORT]", help="resolver to ask (default: this machine's)")
    c.add_argument("--address", metavar="IP", action="append", default=[],
                   help="this machine's public address (repeatable; default: mtproto.server when it is one, and the "
                        "addresses of this machine's interfaces)")
    c.add_argument("--ca", metavar="FILE", help="trust this CA as well (a private or test CA)")
    c.add_argument("--max-skew", type=int, default=30, help="seconds the clock may differ from the site's (default 30)")
    c.add_argument("--timeout", type=float, default=5.0, help="seconds for each network step (default 5)")
    k = sub.add_parser("cards", help="print a QR card for each tg://proxy link",
                       description="Write one card per MTProto secret: a QR code of its tg://proxy link, the link, and "
                       "how to use it in Kazakh, Russian and English.")
    k.add_argument("--config", metavar="FILE", required=True, help="the relay's config.json")
    k.add_argument("--out", metavar="DIR", default="cards", help="output directory (default cards/)")
    k.add_argument("--server", help="address or name phones reach the relay at (default mtproto.server)")


def run(args):
    from relayctl.cmd_mtproto import links_of, read_config

    cfg = read_config(args.config)
    if args.action == "cards":
        links = [lnk for _, lnk, until in links_of(cfg, args.server) if until is None]
        if not links:
            raise CliError(f"{args.config}: no mtproto.secrets: no links to print; `relayctl mtproto secret`", 2)
        for lnk in links:
            out.info(f"link: {lnk}")
        out.info(out.cards_written(write_cards(links, args.out), args.out))
        return 0
    return check(cfg, args)


# -- check -----------------------------------------------------------------------


def _domain(mt):
    from relayctl.cmd_mtproto import secret_kind

    if mt.get("tls_domain"):
        return mt["tls_domain"]
    for s in mt.get("secrets") or []:
        kind, domain = secret_kind(s)
        if kind == "ee" and domain:
            return domain
    return ""


def _check_args(mt, args):
    """Every option and config value the checks need, read before any check runs: one line for the first
    that is wrong, never a traceback half-way through the report."""
    if args.ca:
        try:
            ssl.create_default_context().load_verify_locations(args.ca)
        except (OSError, ssl.SSLError) as e:
            raise CliError(f"--ca {args.ca}: cannot load it as CA certificates ({getattr(e, 'strerror', None) or e}); "
                           "give a PEM file", 2)
    for a in args.address:
        try:
            ipaddress.ip_address(a)
        except ValueError:
            raise CliError(f"--address {a}: not an IP address; give this machine's public address, e.g. 203.0.113.7", 2)
    if args.dns:
        hostport.split(args.dns, 53, "--dns")
    if mt.get("mask"):
        hostport.split(mt["mask"], 443, "mtproto.mask")


class Report:
    def __init__(self):
        self.failed = 0

    def ok(self, what, text):
        out.info(f"ok    {what}: {text}")

    def fail(self, what, text):
        self.failed += 1
        out.info(f"FAIL  {what}: {text}")

    def warn(self, what, text):
        out.info(f"warn  {what}: {text}")


def check(cfg, args):
    rep = Report()
    mt = cfg.get("mtproto") or {}
    _check_args(mt, args)
    domain = _domain(mt)
    if not mt.get("public"):
        rep.warn("config", "mtproto.public is off: this config is not a public relay's (`relayctl run --public`)")
    if not domain:
        rep.fail("config", "no fake-TLS domain: add an ee secret (`relayctl mtproto secret --tls DOMAIN`)")
        raise CliError(f"public check: {rep.failed} problem(s)", 1)
    site_time = _check_mask(rep, mt, domain, args)
    _check_dns(rep, mt, domain, args)
    _check_clock(rep, site_time, args)
    if rep.failed:
        raise CliError(f"public check: {rep.failed} problem(s); see above", 1)
    out.info("all checks passed")
    return 0


UNREACHED = "unreached"  # _check_mask's answer when no HTTP exchange took place: no Date to look for


def _check_mask(rep, mt, domain, args):
    """TLS to the mask site with SNI = domain; -> the site's clock (Unix seconds), None when its answer had no
    Date, or UNREACHED when the check failed before any answer."""
    if not mt.get("mask"):
        rep.fail("mask", "no mtproto.mask: probes would meet no web server; set it to HOST:PORT of a site for " + domain)
        return UNREACHED
    host, port = hostport.split(mt["mask"], 443, "mtproto.mask")
    where = f"{host}:{port}"
    ctx = ssl.create_default_context()
    if args.ca:
        ctx.load_verify_locations(args.ca)
    try:
        with socket.create_connection((host, port), timeout=args.timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=domain) as t:
                version, cipher = t.version(), t.cipher()[0]
                t.sendall(f"HEAD / HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n".encode())
                head = _read_head(t, args.timeout)
    except ssl.SSLCertVerificationError as e:
        rep.fail("mask", f"{where} answers TLS for {domain} with a certificate a client rejects ({e.verify_message}; "
                 f"it names {', '.join(_cert_names(host, port, domain, args.timeout)) or 'nothing'}): a prober sees it; "
                 f"serve a valid certificate for {domain} there (e.g. Let's Encrypt)")
        return UNREACHED
    except (OSError, ssl.SSLError) as e:
        rep.fail("mask", f"{where} does not answer TLS for {domain} ({e}): start its web server or fix mtproto.mask")
        return UNREACHED
    rep.ok("mask", f"{where} answers TLS for {domain} ({version}, {cipher}, a valid certificate)")
    flight = _flight(host, port, domain, args.timeout)
    if flight:
        rep.ok("mask", f"its first TLS flight carries {flight} bytes of certificate and handshake: the relay's "
               "ServerHello copies that size")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"date:"):
            try:
                return email.utils.parsedate_to_datetime(line[5:].strip().decode()).timestamp()
            except (ValueError, TypeError):
                return None
    return None


def _read_head(t, timeout):
    head = b""
    t.settimeout(timeout)
    try:
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = t.recv(4096)
            if not chunk:
                break
            head += chunk
    except (OSError, ssl.SSLError):
        pass
    return head


def _cert_names(host, port, domain, timeout):
    """The names in the certificate the site sends for domain (unverified)."""
    from cryptography import x509

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=domain) as t:
                der = t.getpeercert(binary_form=True)
        cert = x509.load_der_x509_certificate(der)
        try:
            return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.DNSName)
        except x509.ExtensionNotFound:
            return [a.value for a in cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)]
    except (OSError, ssl.SSLError, ValueError):
        return []


def learn_profile(host, port, domain, timeout):
    """The mask site's TLS profile as the relay learns it (firmware faketls.py: the same probe, the same
    reading). Raises OSError or faketls.ProfileError."""
    faketls = paths.firmware_module("relay.proto.faketls")

    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(faketls.probe_hello(domain, os.urandom))
        reader = faketls.ProfileReader()
        s.settimeout(0.5)  # TLS 1.3 hides where the flight ends: a pause ends it
        try:
            while not reader.done:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reader.feed(chunk)
        except socket.timeout:
            pass
        return reader.profile()


def _flight(host, port, domain, timeout):
    faketls = paths.firmware_module("relay.proto.faketls")

    try:
        return learn_profile(host, port, domain, timeout).flight
    except (OSError, faketls.ProfileError):
        return None


def _resolve(domain, dns_server, timeout):
    """-> the domain's addresses (A and AAAA) as text."""
    if not dns_server:
        try:
            return sorted({ai[4][0] for ai in socket.getaddrinfo(domain, None, type=socket.SOCK_STREAM)})
        except socket.gaierror:
            return []
    dns = paths.firmware_module("relay.proto.dns")

    host, port = hostport.split(dns_server, 53, "--dns")
    found = []
    for qtype in (dns.TYPE_A, dns.TYPE_AAAA):
        qid = int.from_bytes(os.urandom(2), "big")
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(dns.build_query(qid, domain, qtype), (host, port))
            try:
                while True:
                    data, _ = s.recvfrom(4096)
                    msg = dns.parse(data)
                    if msg.id == qid and msg.is_response:
                        break
            except (socket.timeout, dns.DNSError):
                continue
        ips, _ = dns.addresses(msg, qtype)
        found += [str(ipaddress.ip_address(ip)) for ip in ips]
    return found


def own_addresses(mt, given):
    """This machine's addresses: --address, else mtproto.server when it is an address, and its interfaces'."""
    if given:
        return {str(ipaddress.ip_address(a)) for a in given}
    addrs = set()
    try:
        addrs.add(str(ipaddress.ip_address(mt.get("server", ""))))
    except ValueError:
        pass
    try:
        r = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=5)
        for link in json.loads(r.stdout or "[]"):
            for a in link.get("addr_info", []):
                ip = ipaddress.ip_address(a["local"])
                if not (ip.is_loopback or ip.is_link_local):
                    addrs.add(str(ip))
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return addrs


def _check_dns(rep, mt, domain, args):
    answers = _resolve(domain, args.dns, args.timeout)
    mine = own_addresses(mt, args.address)
    if not answers:
        rep.fail("dns", f"{domain} does not resolve: add an A record pointing at this machine"
                 + (f" ({', '.join(sorted(mine))})" if mine else ""))
    elif not mine:
        rep.warn("dns", f"{domain} resolves to {', '.join(answers)}; this machine's public address is unknown here "
                 "(pass --address IP)")
    elif set(answers) & mine:
        rep.ok("dns", f"{domain} resolves to {', '.join(answers)}: this machine")
    else:
        rep.fail("dns", f"{domain} resolves to {', '.join(answers)}, but this machine is {', '.join(sorted(mine))}: "
                 "a censor compares the two; point the domain's A record here, or use a domain that does")


def _check_clock(rep, site_time, args):
    synced = None
    try:
        r = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True,
                           timeout=5)
        synced = r.stdout.strip() if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    if site_time == UNREACHED:
        tail = "NTP keeps it right (timedatectl)" if synced == "yes" else "check that NTP runs (timedatectl set-ntp true)"
        rep.warn("clock", "not compared with the mask site's: its check failed above, so no answer was read; " + tail)
        return
    if site_time is None:
        if synced == "yes":
            rep.ok("clock", "synchronised by NTP (timedatectl); the mask site sent no Date to compare")
        else:
            rep.warn("clock", "the mask site sent no Date header to compare with; check that NTP runs "
                     "(timedatectl set-ntp true)")
        return
    skew = time.time() - site_time
    if abs(skew) > args.max_skew:
        rep.fail("clock", f"this machine's clock is {skew:+.0f} s off the mask site's: fake-TLS clients outside the "
                 "window are refused; turn on NTP (timedatectl set-ntp true) or set the time")
    else:
        rep.ok("clock", f"within {abs(skew):.0f} s of the mask site's" + (" (NTP synchronised)" if synced == "yes" else ""))


# -- cards -------------------------------------------------------------------------

STEPS = (
    ("kk", "Қазақша", "Кодты сканерлеңіз немесе сілтемені ашыңыз: Telegram проксиді өзі қосады."),
    ("ru", "Русский", "Отсканируйте код или откройте ссылку: Telegram сам включит прокси."),
    ("en", "English", "Scan the code or open the link: Telegram turns the proxy on by itself."),
)


def write_cards(links, out_dir):
    """One card per tg://proxy link: card-N.html (QR as embedded PNG), card-N.png (the QR alone), index.html."""
    import base64
    import html
    import io

    import segno

    from relayctl.files import write_private

    from relayctl.cmd_cards import qr_png

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    names = []
    for i, lnk in enumerate(links, 1):
        png = qr_png(lnk)
        steps = "".join(f'<p lang="{lang}"><b>{html.escape(name)}</b>: {html.escape(text)}</p>'
                        for lang, name, text in STEPS)
        page = (f'<!doctype html><html><head><meta charset="utf-8"><title>Telegram proxy {i}</title><style>'
                'body{font-family:"DejaVu Sans",Arial,sans-serif}.card{width:120mm;border:1px solid #000;padding:6mm;'
                'margin:6mm auto;page-break-after:always}img{width:70mm;height:70mm}code{word-break:break-all;'
                'font-size:9pt}</style></head><body><div class="card"><h2>Telegram</h2>'
                f'<img class="qr-mtproto" alt="tg://proxy" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                f'<p><code class="mtproto-link">{html.escape(lnk)}</code></p>{steps}</div></body></html>\n')
        # the secret is on the card: owner-only, as relayctl cards writes its cards
        write_private(d / f"card-{i}.html", page)
        buf = io.BytesIO()
        segno.make(lnk, error="m").save(buf, kind="png", scale=10, border=4)
        write_private(d / f"card-{i}.png", buf.getvalue())
        names.append(f"card-{i}")
    index = "".join(f'<iframe src="{n}.html" style="width:100%;height:160mm;border:0"></iframe>' for n in names)
    (d / "index.html").write_text(f'<!doctype html><meta charset="utf-8"><title>Relay cards</title>{index}',
                                  encoding="utf-8")
    return len(names)
