"""`relayctl run --public`: the public relay's config in a state directory, its links and cards.

add_run_arguments(parser) adds the --public options to `relayctl run`;
prepare(args) writes (first run) or updates the state directory's config.json,
checks that the port can be bound, prints the tg://proxy links and returns the
file's path, which the relay then reads itself (so `relayctl mtproto rotate`
and a reload change what it serves).
"""

import os
import socket
from pathlib import Path

from relayctl import out
from relayctl.errors import CliError


def add_run_arguments(p):
    pub = p.add_argument_group("public relay (--public)", "a relay that faces the internet: MTProto fake-TLS, every "
                               "failed handshake passed to a mask site, no portal or DNS, SOCKS/HTTP off (README: "
                               "Running a public relay)")
    pub.add_argument("--public", action="store_true", help="run as a public relay (board profile `public`)")
    pub.add_argument("--domain", help="the domain fake-TLS imitates; its A record should point at this machine")
    pub.add_argument("--mask", metavar="HOST:PORT", help="the web server for --domain that probes are passed to")
    pub.add_argument("--server", help="address or name phones reach this machine at (for the links)")
    pub.add_argument("--port", type=int, help="MTProto port (default 443)")
    pub.add_argument("--listen", metavar="IP", help="listen address (default 0.0.0.0)")
    pub.add_argument("--state", metavar="DIR", help="where the config (with its secret) and the replay filter live "
                     "(default /var/lib/relay as root, else ~/.local/state/relay)")
    pub.add_argument("--status-port", type=int, help="loopback port of the status listener (default 8081)")
    pub.add_argument("--cards", metavar="DIR", help="also write QR cards of the links into DIR")


def default_state():
    """Where `relayctl run --public` keeps its config.json (with the secrets) and the replay filter."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/relay")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "relay"


def prepare(args):
    """The public relay's config.json in the state directory: written on the first run (a new ee secret for
    --domain; a site file's [mtproto] when --site names one), reused after (the same secret, so links stay
    valid); --mask/--server/--port/--listen update it. Prints the links (and writes cards). -> its path."""
    from relayctl import boards
    from relayctl.boards.render import config_json
    from relayctl.images import clock_hint
    from relayctl.cmd_mtproto import make_secret, read_config, secret_kind, write_config

    state = Path(args.state) if args.state else default_state()
    try:
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise CliError(f"cannot make the state directory {state}: {e.strerror}; pass --state DIR you can write")
    path = state / "config.json"
    if path.exists():
        cfg = read_config(str(path))
        mt = cfg.setdefault("mtproto", {})
        made = False
    else:
        r = boards.load_or_fail(args.board if args.board != "linux-host" else "public", getattr(args, "site", None))
        if not r["relay.public"]:
            raise CliError(f"--public: board {r.name} is not a public relay's profile; use --board public", 2)
        cfg = config_json(r)
        mt = cfg.setdefault("mtproto", {})
        mt["replay_file"] = str(state / "mtproto-replay")
        mt["clock_hint"] = clock_hint()
        made = True
    if args.domain:
        mt["tls_domain"] = args.domain.strip().lower().rstrip(".")
    if args.mask:
        mt["mask"] = args.mask
    if args.server:
        mt["server"] = args.server
    if args.port:
        mt["port"] = args.port
    if args.listen:
        for sect in ("mtproto", "socks", "http"):
            cfg.setdefault(sect, {})["host"] = args.listen
    if args.status_port:
        cfg.setdefault("status", {}).update({"enabled": True, "host": "127.0.0.1", "port": args.status_port})
    domain = mt.get("tls_domain")
    if not domain:
        raise CliError("--public needs the domain fake-TLS imitates: --domain www.your-domain.org (a domain whose A "
                       "record points at this machine; README: Running a public relay)", 2)
    if not mt.get("mask"):
        raise CliError("--public needs a mask site: --mask HOST:PORT of a web server with a certificate for "
                       f"{domain} (e.g. nginx on 127.0.0.1:8443)", 2)
    from relayctl.boards.checks import masks_itself

    if masks_itself(mt["mask"], mt.get("port", 443), mt.get("host", ""), (domain, mt.get("server"))):
        raise CliError(f"--mask {mt['mask']} is this relay's own MTProto port {mt.get('port', 443)}: every probe would be "
                       "passed back to the relay itself; give the web server's own port (e.g. nginx on "
                       "127.0.0.1:8443) or another --port", 2)
    if not mt.get("secrets"):
        mt["secrets"] = [make_secret("ee", domain)]
    for s in mt["secrets"]:
        kind, dom = secret_kind(s)
        if kind == "ee" and dom and dom != domain:
            raise CliError(f"{path}: the secret imitates {dom}, not --domain {domain}: old links would break; "
                           f"`relayctl mtproto rotate --config {path}` makes a new one (after setting tls_domain)", 2)
    write_config(str(path), cfg)
    if made:
        out.info(f"public relay: config and secret written to {path} (keep it: the links depend on it)")
    _check_bind(mt.get("host", "0.0.0.0"), mt.get("port", 443))
    from relayctl.cmd_mtproto import links_of
    from relayctl.cmd_public import write_cards

    links = [lnk for _, lnk, until in links_of(cfg) if until is None]
    for lnk in links:
        out.info(f"  Telegram:  {lnk}")
    if not mt.get("server"):
        out.warn("  no --server given: the links carry the listen address; pass --server YOUR.PUBLIC.ADDRESS")
    if args.cards:
        out.info("  " + out.cards_written(write_cards(links, args.cards), args.cards))
    out.info(f"  check it:  relayctl public check --config {path}")
    out.info(f"  rotate:    relayctl mtproto rotate --config {path}")
    return str(path)


def _check_bind(host, port):
    """Fail early, with a way out, where the relay could not listen."""
    import errno

    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
    except PermissionError:
        raise CliError(f"cannot listen on port {port}: ports below 1024 need root; run with sudo, install the "
                       f"systemd unit (`relayctl build public`), or --port 8443 (links then carry 8443)")
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise CliError(f"port {port} is in use (a web server on 443?): move that server to 127.0.0.1:8443 and make "
                           "it the mask (--mask 127.0.0.1:8443), or pick another --port")
        raise CliError(f"cannot listen on {host}:{port}: {e.strerror}; check --listen")
    finally:
        s.close()
