"""Uplink engines: the far end of each one, for a volunteer's machine abroad.

  relayctl engine server-config KIND --site site.toml [--name NAME] [--listen ADDR] [--out DIR]
  relayctl engine list --site site.toml

server-config renders the server side of the site's [[uplink.engine]] of that kind: ss-server's
config, the trojan server with its fallback web site, iodined with the SOCKS server on its tunnel,
a private obfs4 bridge's torrc. A password the entry lacks is made here, once, and written into
the site file (comments and layout kept), so the relay and its far end always share it.
"""

import secrets
from pathlib import Path

from relayctl import boards, out
from relayctl.engines import KINDS, engines_of, missing, server
from relayctl.errors import CliError


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    sc = sub.add_parser("server-config", help="render an engine's far end (ss-server, trojan, iodined, tor bridge)")
    sc.add_argument("kind", choices=tuple(KINDS))
    sc.add_argument("--site", required=True, type=Path, help="the site file with the [[uplink.engine]] entries")
    sc.add_argument("--name", help="which entry, when the site has several of this kind")
    sc.add_argument("--listen", default="0.0.0.0", help="address the server listens on (default 0.0.0.0)")
    sc.add_argument("--out", type=Path, help="write the files into this directory (default: print them)")
    ls = sub.add_parser("list", help="the site's engines, where the relay reaches them, and whether they are installed")
    ls.add_argument("--site", required=True, type=Path)


def load_engines(site):
    """The site's checked engines; a broken site file stops here with every problem listed."""
    r = boards.load("linux-host", str(site))
    errors = [p for p in r.errors if str(p.path) == str(site) or Path(p.path).resolve() == Path(site).resolve()]
    if errors:
        raise CliError("\n".join(str(p) for p in errors) + f"\n{len(errors)} problem(s) in {site}", 2)
    return r, engines_of(r["uplink.engine"], site)


def _pick(engines, kind, name):
    cands = [e for e in engines if e.kind == kind and (name is None or e.name == name)]
    if not cands:
        have = ", ".join(f"{e.name} ({e.kind})" for e in engines) or "none"
        raise CliError(f"no {kind} engine{' named ' + name if name else ''} in the site file (it has: {have}); "
                       "add an [[uplink.engine]] table with kind = \"" + kind + "\"", 2)
    if len(cands) > 1:
        raise CliError(f"the site has {len(cands)} {kind} engines ({', '.join(e.name for e in cands)}); pick one with --name", 2)
    return cands[0]


def make_secret(kind):
    # iodine keeps at most 32 characters; URL-safe text survives TOML, JSON, shells and systemd units
    return secrets.token_urlsafe(24)[:32]


def keep_secret(site, index, key, value):
    """Write key = value into the site's index-th [[uplink.engine]] table, keeping everything else."""
    import tomlkit

    from relayctl import sitefile

    path = Path(site)
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    doc["uplink"]["engine"][index][key] = value
    sitefile.write(path, tomlkit.dumps(doc))  # whole or not at all, and private: it holds the site's secrets


def run(args):
    if args.action == "list":
        return do_list(args)
    r, engines = load_engines(args.site)
    e = _pick(engines, args.kind, args.name)
    if "password" in e.spec.fields and not e.password:
        e.password = make_secret(e.kind)
        keep_secret(args.site, engines.index(e), "password", e.password)
        out.info(f"made a password for {e.name} and kept it in {args.site} (the relay uses the same one)")
    files = server.render(e, args.listen)
    if args.out:
        from relayctl.files import write_private

        for name, text in files.items():
            write_private(args.out / name, text)  # they hold the engine's secret: never readable by others
        out.info(f"wrote {', '.join(files)} to {args.out}")
    else:
        for name, text in files.items():
            out.info(f"==> {name} <==\n{text}")
    return 0


def do_list(args):
    r, engines = load_engines(args.site)
    if not engines:
        out.info(f"{args.site} lists no [[uplink.engine]]")
        return 0
    for e in engines:
        host, port = e.socks_endpoint()
        gone = missing(e)
        out.info(f"{e.name:12} {e.kind:11} SOCKS {host}:{port}  " + (gone.split(': ', 1)[1] if gone else "installed"))
    return 0
