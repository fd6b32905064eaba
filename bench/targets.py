"""The proxies `make bench` measures: one table, TARGETS.

A target says how to start one proxy listening on 127.0.0.1:PORT (and, for
the relay, a status page on another port), which protocol the load speaks
to it, and why it cannot run here when it cannot. To add a target (the
relay's fast path, danted, shaping on/off, ...) add a row.

Each start function gets (port, status_port, workdir) and returns
(argv, env or None, status_port or None). The process it starts is the
proxy itself (no shell in between), so its pid roots the measured tree.
"""

import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "host_tools"))

from relayctl import paths  # noqa: E402
from relayctl.cmd_run import relay_command  # noqa: E402

# pproxy 2.7.9 imports uvloop whenever it can and then crashes at start with
# uvloop 0.23 ("There is no current event loop"): keep it on stock asyncio,
# as the yardstick does.
PPROXY_NO_UVLOOP = ('import sys; sys.modules["uvloop"] = None; '
                    'from pproxy.server import main; sys.argv[0] = "pproxy"; main()')


def relay_config(port, status_port, sections=None, **limits):
    """A config.json for the relay under load: loopback only, limits raised so
    the scenarios (2000 idle tunnels, 64-way churn) measure cost, not refusals.
    sections: more config sections, e.g. {"io": {"backend": "portable"}}."""
    lim = {"tunnels": 4096, "tunnels_per_client": 4096, "sessions": 8192, "buffer": 262144}
    lim.update(limits)
    cfg = {
        "socks": {"enabled": True, "host": "127.0.0.1", "port": port},
        "http": {"enabled": False},
        "status": {"enabled": True, "host": "127.0.0.1", "port": status_port},
        "guard": {"allow": ["127.0.0.0/8"]},
        "limits": lim,
    }
    for name, values in (sections or {}).items():
        cfg.setdefault(name, {}).update(values)
    return cfg


def relay(runtime, sections=None, **limits):
    def start(port, status_port, workdir):
        path = os.path.join(workdir, "relay-%s-%d.json" % (runtime, port))
        with open(path, "w") as f:
            json.dump(relay_config(port, status_port, sections, **limits), f, indent=1)
        argv, env = relay_command(runtime, path, [])
        return argv, env, status_port

    return start


def _schema_keys():
    sys.path.insert(0, str(paths.FIRMWARE))
    try:
        from relay.config import SCHEMA
    finally:
        sys.path.remove(str(paths.FIRMWARE))
    return {row[0] for row in SCHEMA}


def relay_missing(runtime, needs=()):
    """needs: config keys the target sets; a firmware without them cannot run it."""

    def check():
        if runtime == "micropython":
            try:
                paths.micropython_binary()
            except Exception as e:  # noqa: BLE001 -- report why, skip the target
                return str(e)
        absent = [k for k in needs if k not in _schema_keys()]
        if absent:
            return "this firmware has no config key " + ", ".join(absent)
        return None

    return check


def microsocks(port, status_port, workdir):
    return ["microsocks", "-i", "127.0.0.1", "-p", str(port), "-b", "127.0.0.1"], None, None


def microsocks_missing():
    return None if shutil.which("microsocks") else "microsocks is not installed (apt-get install microsocks)"


def pproxy(port, status_port, workdir):
    return [sys.executable, "-c", PPROXY_NO_UVLOOP, "-l", "socks5://127.0.0.1:%d" % port], None, None


def pproxy_missing():
    try:
        import pproxy  # noqa: F401
    except ImportError:
        return "pproxy is not installed (pip install -e '.[bench]')"
    return None


class Target:
    def __init__(self, name, what, proto, start, missing, relay_runtime=None):
        self.name = name
        self.what = what  # one line for the table
        self.proto = proto  # what the load speaks to it: socks5 or http (CONNECT)
        self.start = start
        self.missing = missing  # () -> None, or why it cannot run here
        self.relay_runtime = relay_runtime  # cpython / micropython for our relay, None for peers


TARGETS = (
    Target("relay-cpython", "Relay on CPython, default io backend (the fast path where there is one)", "socks5", relay("cpython"), relay_missing("cpython"), "cpython"),
    Target("relay-cpython-portable", "Relay on CPython, portable task pumps (io.backend portable)", "socks5",
           relay("cpython", {"io": {"backend": "portable"}}), relay_missing("cpython", ("io.backend",)), "cpython"),
    Target("relay-micropython", "Relay on the MicroPython unix port", "socks5", relay("micropython"),
           relay_missing("micropython"), "micropython"),
    Target("microsocks", "microsocks (C, a thread per connection; Debian)", "socks5", microsocks, microsocks_missing),
    Target("pproxy", "pproxy (Python asyncio streams; PyPI, uvloop blocked)", "socks5", pproxy, pproxy_missing),
)

BY_NAME = {t.name: t for t in TARGETS}
