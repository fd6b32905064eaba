"""Set up the board's uplink: an LTE modem with a (foreign) SIM over AT commands, and
the data-connection configs for Linux boards (cellular, ethernet DHCP, Wi-Fi station).

  relayctl uplink probe --port /dev/ttyUSB2 [--json]
  relayctl uplink setup --port /dev/ttyUSB2 --apn internet [--pin 1234] [--roaming] [--site site.toml]
  relayctl uplink scan  --port /dev/ttyUSB2
  relayctl uplink watch --port /dev/ttyUSB2
  relayctl uplink render --format openwrt [--site site.toml] [--apn ...] [-o FILE]
  relayctl uplink paths --site site.toml      which uplink engine passes a censor now (uplink.md)

The modem is never sent a PIN it did not ask for, and never a second PIN after a wrong one; a PIN a
SIM rejected is remembered on this computer (modem/pinlog.py) and never sent to that SIM again.
"""

import json
import sys
import time
from pathlib import Path

from relayctl import mccmnc, out
from relayctl.errors import CliError
from relayctl.modem import render as rnd
from relayctl.modem import signal as sig
from relayctl.files import write_private

RATS = ("auto", "lte", "umts", "gsm")


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    def port_args(sp):
        sp.add_argument("--port", required=True, help="the modem's AT port: /dev/ttyUSB2, /dev/ttyACM0, socket://...")
        sp.add_argument("--baud", type=int, default=115200, help="serial speed (USB modems ignore it)")
        sp.add_argument("--debug", action="store_true", help="print the AT conversation to stderr")

    sp = sub.add_parser("probe", help="what modem, SIM, network and signal are there")
    port_args(sp)
    sp.add_argument("--json", action="store_true", help="print JSON")

    sp = sub.add_parser("setup", help="PIN, APN, roaming, operator; wait for the network; write the site file")
    port_args(sp)
    sp.add_argument("--pin", help="SIM PIN; sent only if the SIM asks, and only once")
    sp.add_argument("--force", action="store_true", help="allow using the SIM's last PIN try")
    sp.add_argument("--pin-retry-unknown-tries", action="store_true",
                    help="send a PIN although this SIM rejected one on an earlier run and the modem does not say "
                         "how many tries are left")
    sp.add_argument("--apn", required=True, help="APN of the SIM's home operator (roaming data is routed home)")
    sp.add_argument("--user", help="APN user name, if the operator wants one")
    sp.add_argument("--password", help="APN password")
    sp.add_argument("--roaming", action="store_true", help="allow roaming (needed for a foreign SIM)")
    sp.add_argument("--operator", metavar="MCCMNC|auto", help="register on this network only (e.g. 25001), or auto")
    sp.add_argument("--rat", choices=RATS, help="radio technology: auto, lte, umts or gsm")
    sp.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for registration (default 180)")
    sp.add_argument("--site", type=Path, help="site file whose [uplink] table gets the result")
    sp.add_argument("--render-dir", type=Path, help="also write the Linux data-connection configs here")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = sub.add_parser("scan", help="the networks in range (takes up to 3 minutes)")
    port_args(sp)
    sp.add_argument("--json", action="store_true", help="print JSON")

    sp = sub.add_parser("watch", help="live signal meter for aiming an antenna")
    port_args(sp)
    sp.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    sp.add_argument("--count", type=int, default=0, help="stop after this many readings (0: until Ctrl-C)")
    sp.add_argument("--status-file", type=Path, metavar="FILE",
                    help="after every reading rewrite FILE (JSON: signal, registration, time) for the relay's "
                         "fleet report (uplink.modem_status; relayctl build names /run/relay-modem.json)")

    sp = sub.add_parser("render", help="data-connection config for a Linux board, from the site file and flags")
    sp.add_argument("--format", required=True,
                    choices=sorted({f for fs in rnd.FORMATS.values() for f in fs}),
                    help="networkmanager|openwrt (cellular), networkd|openwrt (ethernet), "
                         "wpa_supplicant|openwrt (wifi-sta)")
    sp.add_argument("--site", type=Path, help="site file with an [uplink] table")
    sp.add_argument("--kind", choices=tuple(rnd.FORMATS), help="uplink kind (default: the site's, else cellular)")
    for flag in ("apn", "user", "password", "pin", "operator", "modem-device", "interface", "ssid",
                 "passphrase", "country", "radio"):
        sp.add_argument(f"--{flag}")
    sp.add_argument("--rat", choices=RATS)
    sp.add_argument("--security", choices=("wpa2", "wpa3", "open"))
    sp.add_argument("--roaming", action="store_true", default=None)
    sp.add_argument("--hidden", action="store_true", default=None)
    sp.add_argument("-o", "--out", type=Path, help="write here instead of stdout")

    from relayctl.engines import pathcmd

    pathcmd.add_arguments(sub.add_parser("paths", help="through a censor: which engine or path passes now, and how fast"))


def run(args):
    if args.action == "render":
        return do_render(args)
    if args.action == "paths":
        from relayctl.engines import pathcmd

        return pathcmd.run(args)
    from relayctl.modem.transport import SerialTransport

    transport = SerialTransport(args.port, args.baud)
    try:
        return {"probe": do_probe, "setup": do_setup, "scan": do_scan, "watch": do_watch}[args.action](args, transport)
    finally:
        transport.close()


def _log(args):
    if not args.debug:
        return None
    return lambda direction, text: print(f"{direction} {text}", file=sys.stderr, flush=True)


# ---- probe ----

def do_probe(args, transport):
    from relayctl.modem.modem import Modem
    from relayctl.modem.session import probe

    result = probe(Modem(transport, log=_log(args)))
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        show(result)
    return 0


def _home(home):
    return f"{home['plmn']} {home['operator']}, {home['country']}" if home else "unknown"


def show(r):
    m = r["modem"]
    out.info(f"modem     {m['manufacturer']} {m['model']} ({m['family']}), firmware {m['firmware'] or '?'}, "
             f"IMEI {m['imei'] or '?'}")
    s = r["sim"]
    line = f"SIM       {s.get('state', 'ready')}"
    if s.get("pin_tries_left") is not None:
        line += f", {s['pin_tries_left']} PIN tries left"
    if s.get("imsi"):
        line += f", IMSI {s['imsi']}, home network {_home(s.get('home'))}"
    out.info(line)
    reg, op = r["registration"], r.get("operator") or {}
    out.info(f"network   {reg['state']}{where_registered(op)}")
    out.info(f"signal    {sig.describe(r['signal'])}  {meter(r['signal'])}")
    out.info(f"time      {r['network_time'] or 'not received from the network'}")


def where_registered(op):
    """' on 25001 MTS (Russia), LTE, auto selection', or with only the network's name (a modem that will not
    give the digits) ' on MTS RUS, LTE, auto selection'; '' when not registered."""
    if op.get("plmn"):
        text = f" on {op['plmn']} {op['operator']} ({op['country']})"
    elif op.get("name"):
        text = f" on {op['name']}"
    else:
        return ""
    if op.get("rat"):
        text += f", {op['rat']}"
    return text + (f", {op['mode']} selection" if op.get("mode") else "")


def meter(s):
    n = s.get("bars", sig.bars(s))
    return "[" + "#" * n + "." * (5 - n) + "]"


# ---- setup ----

def do_setup(args, transport):
    from relayctl.modem.session import setup

    if args.operator and args.operator != "auto" and not (args.operator.isdigit() and len(args.operator) in (5, 6)):
        raise CliError(f"--operator {args.operator!r}: give the network as 5 or 6 digits (MCC+MNC, e.g. 25001) "
                       "or auto; `relayctl uplink scan` lists them", 2)
    if bool(args.user) != bool(args.password) and args.password:
        raise CliError("--password without --user: give both, or neither", 2)
    from relayctl.modem.pinlog import PinLog

    opts = {k: getattr(args, k) for k in ("pin", "force", "pin_retry_unknown_tries", "apn", "user", "password",
                                          "roaming", "operator", "rat", "timeout")}
    opts["pin_log"] = PinLog()  # rejected PINs per SIM, across runs
    if not args.json:
        out.info(f"setting up the modem on {args.port} ...")
    result = setup(transport, opts, progress=None if args.json else out.progress, log=_log(args))
    out.progress_done()
    uplink = uplink_table(args)
    if args.site:
        write_site(args.site, uplink)
        result["site"] = str(args.site)
    if args.render_dir:
        result["rendered"] = render_all(uplink, args.render_dir)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    for step in result["steps"]:
        out.info(f"  {step}")
    reg, op = result["registration"], result.get("operator") or {}
    out.info(f"registered: {reg['state']}{where_registered(op)}; signal {sig.describe(result['signal'])}")
    if args.site:
        out.info(f"wrote the [uplink] table of {args.site}")
    for path in result.get("rendered", []):
        out.info(f"wrote {path}")
    return 0


def uplink_table(args):
    up = {"kind": "cellular", "apn": args.apn}
    if args.pin:
        up["pin"] = args.pin
    if args.user:
        up["user"] = args.user
    if args.password:
        up["password"] = args.password
    up["roaming"] = bool(args.roaming)
    up["operator"] = args.operator or "auto"
    up["rat"] = args.rat or "auto"
    return up


def write_site(path, uplink):
    """Set the [uplink] keys in the site file, keeping everything else (comments too)."""
    from relayctl import sitefile

    sitefile.write(path, sitefile.with_values(path, "uplink", uplink))  # it holds the SIM PIN now


def render_all(uplink, directory):
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, name in (("networkmanager", "relay-uplink.nmconnection"), ("openwrt", "network-lte.uci")):
        path = directory / name
        write_private(path, rnd.render(uplink, fmt))  # holds the PIN and APN password
        written.append(str(path))
    return written


# ---- scan ----

def do_scan(args, transport):
    from relayctl.modem.modem import Modem

    modem = Modem(transport, log=_log(args))
    modem.start()
    if not args.json:
        out.info("scanning for networks (AT+COPS=?): this takes from 30 s to 3 minutes ...")
    found = modem.scan(tick=None if args.json else lambda s: out.progress(f"scanning ... {s:.0f} s"))
    out.progress_done()
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return 0
    if not found:
        out.info("no networks found: check the antenna, or move the board (try `relayctl uplink watch`)")
        return 0
    out.info(f"{'status':<10} {'MCCMNC':<7} {'RAT':<6} {'name':<22} country")
    for n in found:
        name = n["name"] if n["operator"] == "unknown" else n["operator"]
        out.info(f"{n['status']:<10} {n['plmn']:<7} {(n['rat'] or '?'):<6} {name:<22} {n['country']}")
    return 0


# ---- watch ----

def do_watch(args, transport):
    from relayctl.modem.modem import Modem

    modem = Modem(transport, log=_log(args))
    modem.start()
    tty = sys.stdout.isatty()
    if tty:
        out.info("signal meter: turn the antenna slowly, a few seconds per position; Ctrl-C to stop")
    n = 0
    op = None
    try:
        while True:
            s = modem.signal()
            reg = modem.registration()
            op = modem.operator() if n % 10 == 0 else op  # the operator changes rarely: ask every 10th reading
            if op and op.get("plmn"):
                where = f"{op['plmn']} {op['operator']} {op.get('rat') or ''}".strip()
            elif op and op.get("name"):
                where = f"{reg['state']} on {op['name']} {op.get('rat') or ''}".strip()
            else:
                where = reg["state"]
            line = f"{meter(s)} {sig.describe(s)} | {where}"
            if args.status_file:
                write_status(args.status_file, s, reg, op, args.interval)
            if tty:
                out.progress(line)
            else:
                out.info(f"{time.strftime('%H:%M:%S')} {line}")
            n += 1
            if args.count and n >= args.count:
                break
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    out.progress_done()
    return 0


def write_status(path, signal, reg, op, interval):
    """The reading for the relay (firmware/relay/services/modem_status.py), written whole then renamed, so
    the relay never reads half a file. Counters of the radio only: no IMSI, IMEI or cell, and the network's
    name stays out too (with a coarse place label it would say more than the volunteers chose)."""
    doc = {"v": 1, "time": round(time.time(), 1), "interval_s": interval,
           "signal": {k: v for k, v in signal.items() if k.endswith(("_dbm", "_db"))},
           "registration": reg.get("state"), "rat": (op or {}).get("rat")}
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(doc))
        tmp.chmod(0o644)  # the relay runs as its own user (systemd DynamicUser)
        tmp.replace(path)
    except OSError as e:
        raise CliError(f"cannot write the modem's status to {path}: {e.strerror}; check the directory exists "
                       "and is writable", 1)


# ---- render ----

def do_render(args):
    up = {}
    if args.site:
        up = dict(read_site_uplink(args.site))
    for key in ("apn", "user", "password", "pin", "operator", "interface", "ssid", "passphrase", "country",
                "radio", "rat", "security", "roaming", "hidden", "kind"):
        val = getattr(args, key)
        if val is not None:
            up[key] = val
    if args.modem_device:
        up["modem_device"] = args.modem_device
    up.setdefault("kind", "cellular")
    if up.get("operator") and up["operator"] != "auto" and not mccmnc.lookup(up["operator"])["mcc"].isdigit():
        raise CliError(f"operator {up['operator']!r}: give MCC+MNC digits, e.g. 25001", 2)
    text = rnd.render(up, args.format)
    if args.out:
        write_private(args.out, text)
        out.info(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def read_site_uplink(path):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise CliError(f"no site file {path}: give the path of your site.toml", 2)
    except tomllib.TOMLDecodeError as e:
        raise CliError(f"{path}: {e}", 2)
    up = doc.get("uplink")
    if not isinstance(up, dict):
        raise CliError(f"{path} has no [uplink] table: run `relayctl uplink setup --site {path} ...` first, "
                       "or give the values as flags", 2)
    return up
