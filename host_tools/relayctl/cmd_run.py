"""Run the relay on this computer with the linux-host board's defaults.

The relay is the same firmware/ code a board runs, started under CPython or
under the MicroPython unix port (--runtime micropython). Ctrl-C stops it.
--public runs it as a public relay (public_relay.py prepares its config and links).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote

from relayctl import out, paths
from relayctl.children import die_with_parent
from relayctl.links import mtproto_link, write_qr_svg
from relayctl.public_relay import add_run_arguments as add_public_arguments
from relayctl.errors import CliError
from relayctl.profile import run_config

RESTART = 75  # the relay's exit status when it asks to be started again (firmware/relay/server.py: restart())


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
    p.add_argument("--mtproto", metavar="HOST:PORT", help="MTProto listener, or 'off' (secrets come from the config)")
    add_public_arguments(p)
    p.add_argument("--log-level", choices=("quiet", "info", "debug"))
    p.add_argument("--site", metavar="FILE",
                   help="start the site's uplink engines ([[uplink.engine]]) and chain the relay through them")


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


def stop_signal(runtime):
    """The signal that stops the relay cleanly (counters saved, "relay stopped" printed). The MicroPython
    unix port has no signal module: SIGTERM kills it outright, SIGINT is the one signal it turns into an
    exception the relay can act on. CPython handles both."""
    import signal

    return signal.SIGINT if runtime == "micropython" else signal.SIGTERM


def _links(line):
    """From the ready line, the socks listener as (host, port) or None."""
    for part in line.split():
        if part.startswith("socks="):
            host, port = part[6:].rsplit(":", 1)
            return host, int(port)
    return None


def read_config(path):
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
    users = socks.get("users") or []
    return socks_link(server, port, users[0] if socks.get("auth") == "password" and users else None)


def socks_link(server, port, user=None):
    """tg://socks?server=..&port=..[&user=..&pass=..], every value percent-encoded (as the portal does)."""
    link = f"tg://socks?server={quote(server, safe='')}&port={port}"
    if user:
        link += f"&user={quote(user['user'], safe='')}&pass={quote(user['pass'], safe='')}"
    return link


def curl_line(host, port, user=None):
    """A curl command through the SOCKS listener; curl URL-decodes the proxy's user and password."""
    import shlex

    auth = f"{quote(user['user'], safe='')}:{quote(user['pass'], safe='')}@" if user else ""
    where = f"[{host}]" if ":" in host else host
    return f"curl --socks5-hostname {shlex.quote(auth + where + ':' + str(port))} http://example.com/"


def run(args):
    temps = []
    if args.public:  # the state directory's config: the relay reads (and `mtproto rotate` rewrites) that very file
        from relayctl.public_relay import prepare

        args.config = prepare(args)
    if args.config:
        cfg = read_config(args.config)
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
    engines = None
    if args.site:
        from relayctl.engines import hook

        workdir = tempfile.mkdtemp(prefix="relay-engines-")
        temps.append(workdir)
        engines = hook.start(args.site, cfg, workdir)
    if args.config and not temps:
        config_path = args.config
    else:
        fd, config_path = tempfile.mkstemp(prefix="relay-", suffix=".json")
        temps.append(config_path)
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f, indent=1)
    extra = []
    for opt in ("socks", "http", "portal", "dns_listen", "mtproto", "log_level"):
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
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (a script's & job)
    proc = None
    try:
        explained = False
        while True:
            # In a session of its own, a terminal's Ctrl-C reaches only relayctl, which passes on one stop signal:
            # a second SIGINT would cut the MicroPython relay's clean stop short.
            try:
                proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True, bufsize=1,
                                        start_new_session=True, preexec_fn=die_with_parent(stop_signal(args.runtime)))
            except OSError as e:
                raise CliError(f"cannot start {argv[0]}: {e}")
            for line in _lines(proc):
                sys.stdout.write(line)
                sys.stdout.flush()
                if line.startswith("relay ready") and not explained:
                    _explain(line, users)
                    explained = True
            status = proc.wait()
            if status != RESTART:
                return status
            # The relay asked to be started again (the admin page's or a fleet command's restart): systemd
            # (Restart=always) and procd (respawn) do so; so does relayctl run.
            out.info("relayctl: the relay asked for a restart (exit 75); starting it again")
            time.sleep(1)
    except KeyboardInterrupt:
        if proc is None:
            return 130
        proc.send_signal(stop_signal(args.runtime))
        try:
            rest = proc.communicate(timeout=5)[0]
            if rest:
                sys.stdout.write(rest)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0
    except BrokenPipeError:  # `relayctl run | head -1`: the reader is gone; the relay must not run on orphaned
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python exits
        return 0
    finally:
        if proc is not None and proc.poll() is None:  # whatever ended relayctl, the relay it started ends too
            proc.send_signal(stop_signal(args.runtime))
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if engines is not None:
            engines.stop()  # each engine by its own process id
        for path in temps:
            if os.path.isdir(path):
                import shutil

                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)


def _lines(proc):
    """The relay's output line by line, until it ends. Raises BrokenPipeError as soon as relayctl's own stdout is
    a pipe whose reader has gone (`relayctl run | head -1`), even while the relay prints nothing: a pipe's write
    end reports POLLERR then, so the relay is stopped instead of running on unseen."""
    import select
    import stat

    src = proc.stdout.fileno()
    poller = select.poll()
    poller.register(src, select.POLLIN)
    try:
        dst = sys.stdout.fileno()
        watch = stat.S_ISFIFO(os.fstat(dst).st_mode)
    except (AttributeError, OSError, ValueError):
        dst, watch = None, False
    if watch:
        poller.register(dst, 0)  # no events asked for: POLLERR/POLLHUP are reported anyway
    buf = b""
    while True:
        for fd, _ev in poller.poll():
            if fd == dst:
                raise BrokenPipeError("the reader of relayctl's output has gone")
            data = os.read(src, 65536)
            if not data:
                if buf:
                    yield buf.decode(errors="replace")
                return
            buf += data
            *whole, buf = buf.split(b"\n")
            for line in whole:
                yield line.decode(errors="replace") + "\n"


def _explain(line, users):
    socks = _links(line)
    if not socks:
        return
    host, port = socks
    user = users[0] if users else None
    out.info("")
    out.info(f"  try it:    {curl_line(host, port, user)}")
    out.info(f"  Telegram:  {socks_link(host, port, user)}")
    for part in line.split():
        if part.startswith("portal="):
            out.info(f"  portal:    http://{part[7:]}/")
    out.info("  stop:      Ctrl-C")
    out.info("")
