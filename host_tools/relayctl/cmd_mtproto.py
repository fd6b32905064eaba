"""Make MTProto proxy secrets and the tg://proxy links that carry them; rotate a running relay's secret.

  relayctl mtproto secret                  a dd secret (obfuscated2, padded: every current Telegram app)
  relayctl mtproto secret --tls DOMAIN     an ee secret: fake-TLS that looks like a visit to DOMAIN
  relayctl mtproto secret --plain          a bare secret (old apps; easier to fingerprint)
  relayctl mtproto rotate --config FILE    a new secret (and --port) in FILE; the old one keeps working
                                           for --grace; a running relay takes it without dropping tunnels

Put the secret in config.json under mtproto.secrets (one per site or printed card:
each keeps its own counters) and share the link; a phone on the relay's Wi-Fi opens
it in Telegram to set the proxy.
"""

import ipaddress
import json
import os
import re
import secrets
import time

from relayctl import out
from relayctl.errors import CliError
from relayctl.cmd_run import read_config
from relayctl.links import proxy_link

DEFAULT_SERVER = "192.168.4.1"  # wifi.address's default in config.json
DEFAULT_PORT = 8443  # mtproto.port's default
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_GRACE = re.compile(r"^(\d+)([smhd]?)$")


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    s = sub.add_parser("secret", help="generate secrets and print their tg://proxy links",
                       description="Generate MTProto proxy secrets and print their tg://proxy links.")
    kind = s.add_mutually_exclusive_group()
    kind.add_argument("--tls", metavar="DOMAIN", help="fake-TLS (ee) secret imitating DOMAIN, e.g. www.google.com")
    kind.add_argument("--plain", action="store_true", help="a bare secret without the dd/ee prefix")
    s.add_argument("--server", default=DEFAULT_SERVER, help=f"address phones reach the relay at (default {DEFAULT_SERVER})")
    s.add_argument("--host", help="address the relay listens on, for the config snippet (default: --server when it "
                                  "is an IP address, else 0.0.0.0)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the relay's mtproto.port (default {DEFAULT_PORT})")
    s.add_argument("--count", type=int, default=1, help="how many secrets, e.g. one per printed card (default 1)")
    s.add_argument("--json", action="store_true", help="print a JSON list of {secret, link} instead of text")
    r = sub.add_parser("rotate", help="replace a relay's secret; the old one works on for a grace period",
                       description="Write a new secret (of the same kind) into a relay's config.json, keep the old one "
                       "accepted for --grace, and make the running relay take it (`systemctl reload relay` when an installed "
                       "relay.service copies FILE, else POST /api/reload on its status listener), then check on its "
                       "status listener that it did. Open tunnels are not dropped.")
    r.add_argument("--config", metavar="FILE", required=True, help="the relay's config.json (e.g. /opt/relay/config.json)")
    r.add_argument("--port", type=int, help="move MTProto to this port too (the old port stays open for the grace period)")
    r.add_argument("--grace", default="7d", help="how long old links keep working: 3600, 12h, 7d (default 7d)")
    r.add_argument("--server", help="address or name phones reach the relay at, for the links (default mtproto.server)")
    r.add_argument("--cards", metavar="DIR", help="also write QR cards of the new links into DIR")
    r.add_argument("--no-reload", action="store_true", help="only write the file; reload the relay yourself")


def check_domain(domain):
    d = domain.strip().lower().rstrip(".")
    labels = d.split(".")
    if len(d) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        raise CliError(f"--tls {domain!r}: not a domain name; give the site fake-TLS imitates, e.g. www.google.com", 2)
    return d


def make_secret(kind, domain=None):
    """kind: 'dd', 'ee' or 'plain' -> the secret as hex, the way links and config.json write it."""
    key = secrets.token_bytes(16).hex()
    # A plain key that happens to begin with dd or ee (1 draw in 128) is read as a dd or ee secret
    # by clients that go by the prefix, not the length (Telethon does): they would never connect.
    while kind == "plain" and key[:2] in ("dd", "ee"):
        key = secrets.token_bytes(16).hex()
    if kind == "ee":
        return "ee" + key + domain.encode("ascii").hex()
    return ("dd" if kind == "dd" else "") + key


def secret_kind(secret):
    """-> (kind, domain or None) of a secret as config.json writes it."""
    s = secret.strip().lower()
    if s.startswith("ee") and len(s) > 34:
        try:
            return "ee", bytes.fromhex(s[34:]).decode("ascii", "replace")
        except ValueError:
            raise CliError(f"mtproto.secrets: {secret}: the domain after the 34-character ee secret is not hex; "
                           "make a new one with `relayctl mtproto secret --tls DOMAIN`", 2)
    return ("dd" if s.startswith("dd") and len(s) == 34 else "plain"), None


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def run(args):
    return rotate(args) if args.action == "rotate" else secret(args)


def secret(args):
    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: not a TCP port; give 1..65535 (the relay's mtproto.port)", 2)
    if not 0 < args.count <= 1000:
        raise CliError(f"--count {args.count}: expected 1..1000", 2)
    if args.tls:
        kind, domain = "ee", check_domain(args.tls)
    else:
        kind, domain = ("plain" if args.plain else "dd"), None
    made = []
    for _ in range(args.count):
        s = make_secret(kind, domain)
        made.append({"secret": s, "link": proxy_link(args.server, args.port, s)})
    if args.json:
        out.info(json.dumps(made, indent=1))
        return 0
    for m in made:
        out.info(f"secret: {m['secret']}")
        out.info(f"link:   {m['link']}")
    out.info("")
    host = args.host or (args.server if _is_ip(args.server) else "0.0.0.0")
    snippet = {"enabled": True, "host": host, "port": args.port, "secrets": [m["secret"] for m in made]}
    if not _is_ip(args.server):
        snippet["server"] = args.server
    out.info("config.json: " + json.dumps({"mtproto": snippet}))
    return 0


# -- rotate ------------------------------------------------------------------------


def parse_grace(text):
    m = _GRACE.match(text.strip().lower())
    if not m:
        raise CliError(f"--grace {text!r}: expected seconds or a number with s, m, h or d (e.g. 7d)", 2)
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def write_config(path, cfg):
    """Check cfg with the relay's own checker, then replace path atomically (same mode)."""
    from relayctl.boards.render import check_config

    problems = check_config(cfg)
    if problems:
        raise CliError(f"{path}: the new config fails the relay's own check:\n" + "\n".join(problems), 2)
    from relayctl import files

    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        mode = files.PRIVATE
    try:
        files.replace(path, json.dumps(cfg, indent=1, sort_keys=True) + "\n", mode)  # the old one stays if cut off
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror}; run as the user that owns it (root for /opt/relay)")


def server_of(mt, given=None):
    """The address phones reach MTProto at: --server, mtproto.server, else its listen address."""
    s = given or mt.get("server") or mt.get("host") or "127.0.0.1"
    return DEFAULT_SERVER if s in ("0.0.0.0", "::") else s


def links_of(cfg, server=None):
    """[(secret, link, until or None)] for every secret the relay accepts, current first."""
    mt = cfg.get("mtproto") or {}
    srv = server_of(mt, server)
    port = mt.get("port", DEFAULT_PORT)
    dom = mt.get("tls_domain", "")
    out_ = []
    for s in mt.get("secrets") or []:
        s = s.strip().lower()
        if s.startswith("ee") and len(s) == 34 and dom:
            s += dom.encode().hex()  # the domain the relay fills in, as the phone needs it
        out_.append((s, proxy_link(srv, port, s), None))
    for r in mt.get("retired") or []:
        out_.append((r["secret"], proxy_link(srv, r.get("port", port), r["secret"]), r["until"]))
    return out_


def _check_port(mt, port, own):
    """Refuse, before anything is written, a port the relay could not take: the mask site's own (probes would be
    passed back to the relay itself) or one another program holds (the relay would log it and stay put)."""
    import errno
    import socket

    from relayctl.boards.checks import masks_itself

    if mt.get("mask") and masks_itself(mt["mask"], port, mt.get("host", ""), (mt.get("tls_domain"), mt.get("server"))):
        raise CliError(f"--port {port}: that is the mask site's port ({mt['mask']}): every probe would be passed "
                       "back to the relay itself; pick another port (nothing was written)", 2)
    if port in own:
        return  # the relay listens there already
    host = mt.get("host") or "0.0.0.0"
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise CliError(f"--port {port}: another program listens there on this machine (`ss -ltnp 'sport = "
                               f":{port}'` names it): the relay could not take it; pick another port (nothing was "
                               "written)", 2)


def rotate(args):
    path = args.config
    cfg = read_config(path)
    mt = cfg.get("mtproto")
    current = [s.strip().lower() for s in (mt or {}).get("secrets") or []]
    if not current:
        raise CliError(f"{path}: no mtproto.secrets: nothing to rotate; `relayctl mtproto secret` makes a first one", 2)
    grace = parse_grace(args.grace)
    now = int(time.time())
    old_port = mt.get("port", DEFAULT_PORT)
    new_port = args.port or old_port
    if not 0 < new_port < 65536:
        raise CliError(f"--port {new_port}: not a TCP port; give 1..65535", 2)
    retired = [r for r in mt.get("retired") or [] if r.get("until", 0) > now]
    _check_port(mt, new_port, {old_port} | {r.get("port", old_port) for r in retired})
    fresh = []
    for s in current:
        kind, domain = secret_kind(s)
        if kind == "ee" and len(s) == 34:
            domain = mt.get("tls_domain")
        fresh.append(make_secret(kind, domain))
        r = {"secret": s, "until": now + grace}
        if new_port != old_port:
            r["port"] = old_port
        if grace:
            retired.append(r)
    mt["secrets"] = fresh
    mt["retired"] = retired
    mt["port"] = new_port
    write_config(path, cfg)
    out.info(f"{path}: new secret{'s' if len(fresh) > 1 else ''} written; the old "
             + (f"ones work until {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(now + grace))}" if grace else
                "ones stop now"))
    if not args.no_reload:
        from relayctl.relay_reload import reload_and_check

        out.info(reload_and_check(path, cfg))
    for _, lnk, until in links_of(cfg, args.server):
        if until is None:
            out.info(f"link:   {lnk}")
    if args.cards:
        from relayctl.cmd_public import write_cards

        n = write_cards([lnk for _, lnk, until in links_of(cfg, args.server) if until is None], args.cards)
        out.info(out.cards_written(n, args.cards))
    return 0
