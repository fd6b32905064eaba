"""Many relays at a glance: every relay's retained report on the fleet's MQTT broker, problems first.

    relayctl fleet --broker HOST[:PORT] [--user U --password P] [--json] [--once]
    relayctl fleet --site site.toml            broker, TLS and the volunteers' login from its [fleet]
    relayctl fleet key                         a new fleet key for the site file's fleet.key
    relayctl fleet broker-config --site site.toml --out DIR
                                               mosquitto.conf, passwd and acl: one account per relay
    relayctl fleet command NAME restart|report --site site.toml
                                               a command signed for NAME's current boot (retained)

Reports hold counters only: never a client address, a destination or a phone's identity.
"""

import argparse
import json
import os
import time
from pathlib import Path

from relayctl import out
from relayctl.errors import CliError

DEFAULTS = {"fleet.broker": "", "fleet.port": 0, "fleet.tls": False, "fleet.ca_file": "", "fleet.prefix": "relay",
            "fleet.key": "", "fleet.relays": [], "fleet.volunteers": "volunteers"}


def _conn_args(p, inherit=False):
    d = argparse.SUPPRESS if inherit else None  # a subcommand's copy must not overwrite what came before it
    p.add_argument("--site", metavar="FILE", default=d, help="site file whose [fleet] names the broker and the fleet key")
    p.add_argument("--broker", metavar="HOST[:PORT]", default=d, help="the fleet's MQTT broker (default port 1883)")
    p.add_argument("--user", default=d, help="broker account (default: the site's volunteers' account)")
    p.add_argument("--password", default=d, help="its password (or RELAY_FLEET_PASSWORD; default: from fleet.key)")
    p.add_argument("--prefix", default=d, help="topic prefix (default: the site's, or relay)")
    p.add_argument("--ca", metavar="FILE", default=d, help="CA certificate of the broker: talk TLS")


def add_arguments(p):
    _conn_args(p)
    p.add_argument("--json", action="store_true", help="print the relays as JSON (for scripts)")
    p.add_argument("--once", action="store_true", help="print one view and exit")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    p.add_argument("--wait", type=float, default=5.0, help="longest wait for the retained reports (default 5 s)")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("key", help="print a new fleet key (64 hex digits) for the site file's fleet.key")
    b = sub.add_parser("broker-config", help="render mosquitto's config: one account per relay, ACLs")
    b.add_argument("--site", required=True, metavar="FILE", help="site file with [fleet] key and relays")
    b.add_argument("--inventory", metavar="FILE", action="append", default=[],
                   help="inventory.csv of `relayctl flash`: an account for each board's fleet name too (repeatable)")
    b.add_argument("--out", default="fleet-broker", help="directory to write into (default fleet-broker)")
    b.add_argument("--path-on-broker", metavar="DIR", help="where the files will live on the broker (default: --out)")
    b.add_argument("--listen", default="", metavar="ADDR", help="address mosquitto listens on (default: all)")
    b.add_argument("--port", type=int, default=0, help="port (default 1883, or 8883 with TLS)")
    b.add_argument("--cert", metavar="FILE", help="the broker's TLS certificate, path on the broker (fleet.tls)")
    b.add_argument("--key", metavar="FILE", help="its private key, path on the broker")
    c = sub.add_parser("command", help="send a signed command to one relay (restart, report)")
    c.add_argument("name", help="the relay's fleet name")
    c.add_argument("cmd", choices=("restart", "report"))
    _conn_args(c, inherit=True)
    c.add_argument("--fleet-key", metavar="HEX", help="the fleet key (default: the site file's fleet.key)")
    c.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the relay to act (default 30)")


def _site(path):
    """[fleet] of a site file, with the schema's defaults."""
    if not path:
        return dict(DEFAULTS), None
    from relayctl.boards import load_site

    layer = load_site(path)
    if layer.broken or layer.problems:
        raise CliError("\n".join(str(p) for p in layer.problems) or f"{path}: cannot read the site file", 2)
    vals = dict(DEFAULTS)
    vals.update({k: v for k, v in layer.values.items() if k.startswith("fleet.")})
    return vals, Path(path)


def _fleet_key(vals, given=None):
    from relayctl.fleet import keys

    text = given or vals["fleet.key"]
    if not text:
        raise CliError("no fleet key: put fleet.key in the site file (relayctl fleet key makes one) or pass --fleet-key", 2)
    return keys.parse_key(text, "--fleet-key" if given else "fleet.key")


def split_broker(text, default_port):
    """HOST, HOST:PORT, [IPv6] or [IPv6]:PORT -> (host, port), read as the relay reads fleet.broker."""
    from relayctl import hostport

    return hostport.split(text, default_port, "--broker")


def _connect(args, vals, site_path):
    from relayctl.fleet import keys
    from relayctl.fleet.watch import Watch

    broker = getattr(args, "broker", None) or vals["fleet.broker"]
    if not broker:
        raise CliError("which broker? pass --broker HOST[:PORT] or --site with fleet.broker", 2)
    ca = getattr(args, "ca", None)
    if not ca and vals["fleet.tls"] and vals["fleet.ca_file"]:
        ca = str((site_path.parent if site_path else Path(".")) / vals["fleet.ca_file"])
    host, port = split_broker(broker, vals["fleet.port"] or (8883 if ca else 1883))
    user = getattr(args, "user", None) or (vals["fleet.volunteers"] if vals["fleet.key"] else None)
    password = getattr(args, "password", None) or os.environ.get("RELAY_FLEET_PASSWORD")
    if user and not password and vals["fleet.key"]:
        password = keys.password(_fleet_key(vals), user)
    prefix = getattr(args, "prefix", None) or vals["fleet.prefix"]
    w = Watch(host, port, user, password, prefix, ca)
    w.start()
    return w


def run(args):
    if args.action == "key":
        from relayctl.fleet import keys

        out.info(keys.new_key())
        return 0
    if args.action == "broker-config":
        return _broker_config(args)
    vals, site_path = _site(getattr(args, "site", None))
    if args.action == "command":
        return _command(args, vals, site_path)
    from relayctl.fleet import view

    w = _connect(args, vals, site_path)
    try:
        w.settle(limit=args.wait)
        while True:
            rs = view.rows(w.snapshot(), expected=vals["fleet.relays"])
            text = json.dumps(rs, indent=1) if args.json else view.table(rs)
            if args.once:
                out.info(text)
                return 0
            out.screen(text)
            time.sleep(args.interval)
    finally:
        w.stop()


def inventory_names(paths):
    """The fleet names `relayctl flash` gave boards (inventory.csv's fleet_name column)."""
    from relayctl.flash import inventory

    names = []
    for path in paths:
        if not Path(path).exists():
            raise CliError(f"--inventory {path}: no such file; give the inventory.csv `relayctl flash` wrote", 2)
        names += [r["fleet_name"] for r in inventory.read(path) if r.get("fleet_name")]
    return names


def _broker_config(args):
    from relayctl.fleet import broker

    vals, _ = _site(args.site)
    key = _fleet_key(vals)
    relays = list(vals["fleet.relays"])
    for name in inventory_names(args.inventory):
        if name not in relays:
            relays.append(name)
    if not relays:
        raise CliError(f"{args.site}: fleet.relays is empty: list the relay names to make accounts for, or give "
                       "--inventory inventory.csv of the boards `relayctl flash` named", 2)
    from relayctl.fleet.site import NAME

    bad = [n for n in relays + [vals["fleet.volunteers"]] if not NAME.fullmatch(n)]
    if bad:
        raise CliError(f"{args.site}: fleet.relays: {', '.join(bad)}: use letters, digits, - and _", 2)
    tls = None
    if vals["fleet.tls"]:
        if not (args.cert and args.key):
            raise CliError("fleet.tls is on: pass --cert and --key (the broker's certificate and key, paths on the broker)", 2)
        tls = (args.cert, args.key)
    outdir = Path(args.out)
    where = args.path_on_broker or str(outdir.resolve())
    port = args.port or vals["fleet.port"] or (8883 if tls else 1883)
    files = broker.render(where, key, relays, vals["fleet.volunteers"], vals["fleet.prefix"], args.listen, port, tls)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "data").mkdir(exist_ok=True)
    for name, text in files.items():
        path = outdir / name
        path.write_text(text)
        if name == broker.PASSWD:
            path.chmod(0o600)
    from relayctl.fleet import keys

    out.info(f"wrote {outdir}/: {', '.join(sorted(files))} ({len(relays)} relays + {vals['fleet.volunteers']})")
    out.info(f"run it:  mosquitto -c {where}/{broker.MOSQUITTO_CONF}")
    out.info(f"volunteers log in as {vals['fleet.volunteers']} with password "
             f"{keys.password(key, vals['fleet.volunteers'])} (or use `relayctl fleet --site {args.site}`)")
    return 0


def _command(args, vals, site_path):
    from relayctl.fleet import keys

    key = _fleet_key(vals, args.fleet_key)
    w = _connect(args, vals, site_path)
    try:
        w.settle(limit=5.0)
        r = w.snapshot().get(args.name)
        if r is None or not r.report:
            raise CliError(f"no report from {args.name} on the broker: check the name (relayctl fleet --once lists them)")
        doc = r.report
        boot = doc.get("boot")
        cmds = (doc.get("fleet") or {}).get("commands")
        if cmds is None:
            raise CliError(f"{args.name} takes no commands: its config has no fleet.command_key (build it with fleet.key set)")
        seq = int(cmds.get("last_seq", 0)) + 1
        prefix = getattr(args, "prefix", None) or vals["fleet.prefix"]
        topic = f"{prefix}/{args.name}/command"
        ckey = bytes.fromhex(keys.command_key(key, args.name))
        payload = keys.firmware_fleet().sign_command(ckey, args.name, boot, seq, args.cmd)
        w.publish(topic, payload)
        out.info(f"sent {args.cmd} to {args.name} (boot {boot}, seq {seq}); waiting for it to act")
        done = cmds.get("done", 0)
        end = time.monotonic() + args.timeout
        while time.monotonic() < end:
            d = (w.snapshot()[args.name].report or {})
            now_cmds = (d.get("fleet") or {}).get("commands") or {}
            if d.get("boot") != boot or now_cmds.get("done", 0) > done:
                w.publish(topic, b"")  # clear the retained command: it has been done
                out.info(f"{args.name} did it" + (" (it restarted)" if d.get("boot") != boot else ""))
                return 0
            time.sleep(0.2)
        raise CliError(f"{args.name} did not act in {args.timeout:.0f} s; the command stays retained, so it runs "
                       "when the relay is back (if it is offline), unless its boot changes first")
    finally:
        w.stop()
