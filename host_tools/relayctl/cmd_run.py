"""Run the relay on this computer with the linux-host board's defaults.

The relay is the same firmware/ code a board runs, started under CPython or
under the MicroPython unix port (--runtime micropython). Ctrl-C stops it.
"""

import json
import os
import subprocess
import sys
import tempfile
from urllib.parse import quote

from relayctl import out, paths
from relayctl.links import mtproto_link, write_qr_svg
from relayctl.errors import CliError
from relayctl.profile import run_config


def add_arguments(p):
    p.add_argument("--runtime", choices=("cpython", "micropython"), default="cpython",
                   help="which Python runs the firmware (default: cpython)")
    p.add_argument("--board", default="linux-host", help="board profile whose defaults apply (default: linux-host)")
    p.add_argument("--config", metavar="FILE", help="a device config.json to run instead of the board's defaults")
    p.add_argument("--socks", metavar="HOST:PORT", help="SOCKS listener, or 'off'")
    p.add_argument("--http", metavar="HOST:PORT", help="HTTP proxy listener, or 'off'")
    p.add_argument("--allow", metavar="CIDR", action="append", default=[],
                   help="open an exception in the destination guard, e.g. 127.0.0.0/8 (repeatable)")
    p.add_argument("--dns", "--upstream-dns", metavar="IP[:PORT]", action="append", default=[], dest="dns",
                   help="resolver the relay asks instead of the system's (repeatable)")
    p.add_argument("--portal", metavar="HOST:PORT", help="onboarding portal listener (HTTP), or 'off'")
    p.add_argument("--dns-listen", metavar="HOST:PORT",
                   help="DNS responder for Wi-Fi clients (UDP), or 'off'; captive-portal answers, Telegram forwarded")
    p.add_argument("--log-level", choices=("quiet", "info", "debug"))


def relay_command(runtime, config_path, extra, firmware=None):
    """argv that starts the firmware (firmware/, or another copy of it) under the chosen runtime, and its environment."""
    env = dict(os.environ)
    firmware = firmware or paths.FIRMWARE
    if runtime == "micropython":
        env["MICROPYPATH"] = f"{firmware}:.frozen"
        # The unix port's default 2 MiB heap is a small board's; a laptop can give more.
        argv = [paths.micropython_binary(), "-X", "heapsize=64M", "-m", "relay"]
    else:
        env["PYTHONPATH"] = str(firmware) + os.pathsep + env.get("PYTHONPATH", "")
        argv = [sys.executable, "-m", "relay"]
    return argv + ["--config", config_path] + extra, env


def _links(line):
    """From the ready line, the socks listener as (host, port) or None."""
    for part in line.split():
        if part.startswith("socks="):
            host, port = part[6:].rsplit(":", 1)
            return host, int(port)
    return None


def _read_config(path):
    try:
        with open(path) as f:
            cfg = json.load(f)
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror}; check the path", 2)
    except ValueError as e:
        raise CliError(f"{path}: not valid JSON: {e}; fix the file", 2)
    if not isinstance(cfg, dict):
        raise CliError(f"{path}: expected a JSON object at the top", 2)
    return cfg


def portal_link(cfg, args):
    """The tg://socks link the portal will offer, or None when no portal runs."""
    portal = dict(cfg.get("portal") or {})
    if args.portal:
        if args.portal == "off":
            return None
        portal["enabled"] = True
        portal["host"] = args.portal.rsplit(":", 1)[0].strip("[]")
    if not portal.get("enabled"):
        return None
    socks = cfg.get("socks") or {}
    if args.socks == "off" or socks.get("enabled") is False and not args.socks:
        return None
    port = int(args.socks.rsplit(":", 1)[1]) if args.socks else socks.get("port", 1080)
    server = portal.get("address") or portal.get("host", "127.0.0.1")
    link = f"tg://socks?server={quote(server, safe='')}&port={port}"
    users = socks.get("users") or []
    if socks.get("auth") == "password" and users:
        link += f"&user={quote(users[0]['user'], safe='')}&pass={quote(users[0]['pass'], safe='')}"
    return link


def run(args):
    temps = []
    if args.config:
        cfg = _read_config(args.config)
        users = (cfg.get("socks") or {}).get("users", [])
    else:
        cfg = run_config(args.board)
        users = cfg.get("socks", {}).get("users", [])
    link = portal_link(cfg, args)
    if link and not (cfg.get("portal") or {}).get("qr_svg"):
        fd, qr_path = tempfile.mkstemp(prefix="relay-qr-", suffix=".svg")
        os.close(fd)
        temps.append(qr_path)
        write_qr_svg(link, qr_path)
        cfg.setdefault("portal", {})["qr_svg"] = qr_path
    mt_link = mtproto_link(cfg)
    if mt_link and not cfg["portal"].get("qr_mtproto_svg"):
        fd, qr_path = tempfile.mkstemp(prefix="relay-qr-mtproto-", suffix=".svg")
        os.close(fd)
        temps.append(qr_path)
        write_qr_svg(mt_link, qr_path)
        cfg["portal"]["qr_mtproto_svg"] = qr_path
    if args.config and not temps:
        config_path = args.config
    else:
        fd, config_path = tempfile.mkstemp(prefix="relay-", suffix=".json")
        temps.append(config_path)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f, indent=1)
    extra = []
    for opt in ("socks", "http", "portal", "dns_listen", "log_level"):
        v = getattr(args, opt)
        if v:
            extra += ["--" + opt.replace("_", "-"), v]
    for cidr in args.allow:
        extra += ["--allow", cidr]
    for d in args.dns:
        extra += ["--dns", d]
    argv, env = relay_command(args.runtime, config_path, extra)
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt  # a service manager's SIGTERM stops the relay like Ctrl-C does

    signal.signal(signal.SIGTERM, stop)
    try:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True, bufsize=1)
    except OSError as e:
        raise CliError(f"cannot start {argv[0]}: {e}")
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if line.startswith("relay ready"):
                _explain(line, users)
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            rest = proc.communicate(timeout=5)[0]
            if rest:
                sys.stdout.write(rest)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0
    finally:
        for path in temps:
            os.unlink(path)


def _explain(line, users):
    socks = _links(line)
    if not socks:
        return
    host, port = socks
    auth = ""
    link = f"tg://socks?server={host}&port={port}"
    if users:
        u = users[0]
        auth = f"{u['user']}:{u['pass']}@"
        link += f"&user={u['user']}&pass={u['pass']}"
    out.info("")
    out.info(f"  try it:    curl --socks5-hostname {auth}{host}:{port} http://example.com/")
    out.info(f"  Telegram:  {link}")
    for part in line.split():
        if part.startswith("portal="):
            out.info(f"  portal:    http://{part[7:]}/")
    out.info("  stop:      Ctrl-C")
    out.info("")
