"""Make MTProto proxy secrets and the tg://proxy links that carry them.

  relayctl mtproto secret                  a dd secret (obfuscated2, padded: every current Telegram app)
  relayctl mtproto secret --tls DOMAIN     an ee secret: fake-TLS that looks like a visit to DOMAIN
  relayctl mtproto secret --plain          a bare secret (old apps; easier to fingerprint)

Put the secret in config.json under mtproto.secrets (one per site or printed card:
each keeps its own counters) and share the link; a phone on the relay's Wi-Fi opens
it in Telegram to set the proxy.
"""

import json
import re
import secrets
from urllib.parse import urlencode

from relayctl import out
from relayctl.errors import CliError

DEFAULT_SERVER = "192.168.4.1"  # wifi.address's default in config.json
DEFAULT_PORT = 8443  # mtproto.port's default
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    s = sub.add_parser("secret", help="generate secrets and print their tg://proxy links",
                       description="Generate MTProto proxy secrets and print their tg://proxy links.")
    kind = s.add_mutually_exclusive_group()
    kind.add_argument("--tls", metavar="DOMAIN", help="fake-TLS (ee) secret imitating DOMAIN, e.g. www.google.com")
    kind.add_argument("--plain", action="store_true", help="a bare secret without the dd/ee prefix")
    s.add_argument("--server", default=DEFAULT_SERVER, help=f"address phones reach the relay at (default {DEFAULT_SERVER})")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the relay's mtproto.port (default {DEFAULT_PORT})")
    s.add_argument("--count", type=int, default=1, help="how many secrets, e.g. one per printed card (default 1)")
    s.add_argument("--json", action="store_true", help="print a JSON list of {secret, link} instead of text")


def check_domain(domain):
    d = domain.strip().lower().rstrip(".")
    labels = d.split(".")
    if len(d) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        raise CliError(f"--tls {domain!r}: not a domain name; give the site fake-TLS imitates, e.g. www.google.com", 2)
    return d


def make_secret(kind, domain=None):
    """kind: 'dd', 'ee' or 'plain' -> the secret as hex, the way links and config.json write it."""
    key = secrets.token_bytes(16).hex()
    if kind == "ee":
        return "ee" + key + domain.encode("ascii").hex()
    return ("dd" if kind == "dd" else "") + key


def link(server, port, secret):
    return "tg://proxy?" + urlencode({"server": server, "port": port, "secret": secret})


def run(args):
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
        made.append({"secret": s, "link": link(args.server, args.port, s)})
    if args.json:
        out.info(json.dumps(made, indent=1))
        return 0
    for m in made:
        out.info(f"secret: {m['secret']}")
        out.info(f"link:   {m['link']}")
    out.info("")
    out.info("config.json: " + json.dumps({"mtproto": {"enabled": True, "port": args.port,
                                                       "secrets": [m["secret"] for m in made]}}))
    return 0
