"""Run the relay on this computer with the linux-host board's defaults.

The relay is the same firmware/ code a board runs, started under CPython or
under the MicroPython unix port (--runtime micropython). Ctrl-C stops it.
"""

import json
import os
import subprocess
import sys
import tempfile

from relayctl import out, paths
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
    p.add_argument("--dns", metavar="IP[:PORT]", action="append", default=[],
                   help="resolver the relay asks instead of the system's (repeatable)")
    p.add_argument("--log-level", choices=("quiet", "info", "debug"))


def relay_command(runtime, config_path, extra):
    """argv that starts the firmware under the chosen runtime, and its environment."""
    env = dict(os.environ)
    if runtime == "micropython":
        env["MICROPYPATH"] = f"{paths.FIRMWARE}:.frozen"
        # The unix port's default 2 MiB heap is a small board's; a laptop can give more.
        argv = [paths.micropython_binary(), "-X", "heapsize=64M", "-m", "relay"]
    else:
        env["PYTHONPATH"] = str(paths.FIRMWARE) + os.pathsep + env.get("PYTHONPATH", "")
        argv = [sys.executable, "-m", "relay"]
    return argv + ["--config", config_path] + extra, env


def _links(line):
    """From the ready line, the socks listener as (host, port) or None."""
    for part in line.split():
        if part.startswith("socks="):
            host, port = part[6:].rsplit(":", 1)
            return host, int(port)
    return None


def run(args):
    if args.config:
        config_path = args.config
        users = []
    else:
        cfg = run_config(args.board)
        users = cfg.get("socks", {}).get("users", [])
        fd, config_path = tempfile.mkstemp(prefix="relay-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(cfg, f, indent=1)
    extra = []
    for opt in ("socks", "http", "log_level"):
        v = getattr(args, opt)
        if v:
            extra += ["--" + opt.replace("_", "-"), v]
    for cidr in args.allow:
        extra += ["--allow", cidr]
    for d in args.dns:
        extra += ["--dns", d]
    argv, env = relay_command(args.runtime, config_path, extra)
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
        if not args.config:
            os.unlink(config_path)


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
    out.info("  stop:      Ctrl-C")
    out.info("")
