"""The proxies `make bench` measures: one table, TARGETS.

A target says how to start one proxy listening on 127.0.0.1:PORT (and, for
the relay, a status page on another port), which protocol the load speaks
to it, and why it cannot run here when it cannot. To add a target (the
relay's fast path, danted, shaping on/off, ...) add a row.

A target also says which scenarios it runs (the relay with shaping on runs
only bulk and churn: it measures what the feature costs), which table it is
reported in (group: compare, feature, shaped) and options for the load
(the shaped-link scenario's link rate and source pacing).

Each start function gets (port, status_port, workdir) and returns
(argv, env or None, status_port or None). The process it starts is the
proxy itself (no shell in between), so its pid roots the measured tree.
"""

import ast
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "host_tools"))

from relayctl import paths  # noqa: E402
from relayctl.cmd_run import relay_command  # noqa: E402

import mtproto_load  # noqa: E402
import phones  # noqa: E402

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


def relay(runtime, sections=None, firmware=None, **limits):
    """Start the relay of firmware/ (or of another copy of it: bench/baseline.py) with this config."""

    def start(port, status_port, workdir):
        path = os.path.join(workdir, "relay-%s-%d.json" % (runtime, port))
        with open(path, "w") as f:
            json.dump(relay_config(port, status_port, sections, **limits), f, indent=1)
        argv, env = relay_command(runtime, path, [], firmware)
        return argv, env, status_port

    start.recipe = (runtime, sections, limits)  # to start the same relay from another commit's firmware
    return start


def _schema_keys(firmware=None):
    """The config keys a firmware knows, read from its config.py's SCHEMA without importing it."""
    path = os.path.join(str(firmware or paths.FIRMWARE), "relay", "config.py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "SCHEMA" for t in targets):
                for row in ast.walk(node.value):
                    if isinstance(row, ast.Tuple) and row.elts and isinstance(row.elts[0], ast.Constant) \
                            and isinstance(row.elts[0].value, str):
                        keys.add(row.elts[0].value)
    return keys


def relay_missing(runtime, needs=(), firmware=None):
    """needs: config keys the target sets; a firmware without them cannot run it."""

    def check():
        if runtime == "micropython":
            try:
                paths.micropython_binary()
            except Exception as e:  # noqa: BLE001 -- report why, skip the target
                return str(e)
        absent = [k for k in needs if k not in _schema_keys(firmware)]
        if absent:
            return "this firmware has no config key " + ", ".join(absent)
        return None

    check.needs = needs
    return check


def danted(port, status_port, workdir):
    with open(os.path.join(HERE, "peers", "danted.conf")) as f:
        conf = f.read().replace("@PORT@", str(port))
    path = os.path.join(workdir, "danted-%d.conf" % port)
    with open(path, "w") as f:
        f.write(conf)
    # foreground (no -D): the pid Popen returns is danted's main process, the root of its tree
    return ["danted", "-f", path, "-p", os.path.join(workdir, "danted-%d.pid" % port)], None, None


def danted_missing():
    return None if shutil.which("danted") else "danted is not installed (apt-get install dante-server)"


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


STANDARD = ("bulk", "churn", "idle", "fanin")
COST = ("bulk", "churn")  # a feature's cost on the fast path
SHAPED = ("shaped",)

LINK = 2_000_000  # the shaped link of issue 7: bytes/s each way (16 Mbit/s)
SHAPING = {"share": {"rate_down": LINK, "rate_up": LINK}}
# pacing on, but never the limit: what fair sharing's bookkeeping costs the fast path
SHAPING_FREE = {"share": {"rate_down": 10**12, "rate_up": 10**12}}
# destination names would be checked against the preset; loopback addresses admitted
POLICY = {"policy": {"preset": "messengers", "allow_cidrs": ["127.0.0.0/8"]}}
PORTABLE = {"io": {"backend": "portable"}}


def _with(*dicts):
    out = {}
    for d in dicts:
        for k, v in d.items():
            out.setdefault(k, {}).update(v)
    return out


class Target:
    def __init__(self, name, what, proto, start, missing, relay_runtime=None, scenarios=STANDARD,
                 group="compare", load=None, once=False):
        self.name = name
        self.what = what  # one line for the table
        self.proto = proto  # what the load speaks to it: socks5 or http (CONNECT)
        self.start = start
        self.missing = missing  # () -> None, or why it cannot run here
        self.relay_runtime = relay_runtime  # cpython / micropython for our relay, None for peers
        self.scenarios = scenarios  # the scenarios it runs (others are left out for it)
        self.group = group  # the table it is reported in
        self.load = load or {}  # options for the load: link_rate (the relay's), source_rate (the sink's pacing)
        self.once = once  # run in the first round only (a long load whose figures need no median)


TARGETS = (
    Target("relay-cpython", "Relay on CPython, default io backend (the fast path where there is one)", "socks5", relay("cpython"), relay_missing("cpython"), "cpython"),
    Target("relay-cpython-portable", "Relay on CPython, portable task pumps (io.backend portable)", "socks5",
           relay("cpython", PORTABLE), relay_missing("cpython", ("io.backend",)), "cpython"),
    Target("relay-micropython", "Relay on the MicroPython unix port", "socks5", relay("micropython"),
           relay_missing("micropython"), "micropython"),
    Target("microsocks", "microsocks (C, a thread per connection; Debian)", "socks5", microsocks, microsocks_missing),
    Target("danted", "Dante 1.4 danted (C, preforked processes; Debian dante-server)", "socks5", danted, danted_missing),
    Target("pproxy", "pproxy (Python asyncio streams; PyPI, uvloop blocked)", "socks5", pproxy, pproxy_missing),
    # the cost of each feature on the fast path: relay-cpython plus one feature, bulk and churn only
    Target("relay-cpython+shaping", "relay-cpython with share.rate_down/up 10**12 (pacing on, never limiting)", "socks5",
           relay("cpython", SHAPING_FREE), relay_missing("cpython", ("share.rate_down",)), "cpython", COST, "feature"),
    Target("relay-cpython+policy", "relay-cpython with policy preset messengers, allow_cidrs 127.0.0.0/8", "socks5",
           relay("cpython", POLICY), relay_missing("cpython", ("policy.preset",)), "cpython", COST, "feature"),
    Target("relay-cpython+asyncio", "relay-cpython on the stock asyncio loop (io.uvloop false: a box without uvloop)",
           "socks5", relay("cpython", {"io": {"uvloop": False}}), relay_missing("cpython", ("io.uvloop",)), "cpython",
           COST, "feature"),
    # issue 7: 1 bulk + 9 interactive clients over a 2 MB/s link, each from its own 127.0.0.x
    Target("shaped-cpython", "relay-cpython, share.rate_down/up 2 MB/s", "socks5", relay("cpython", SHAPING),
           relay_missing("cpython", ("share.rate_down",)), "cpython", SHAPED, "shaped", {"link_rate": LINK}),
    Target("shaped-cpython-portable", "relay-cpython-portable, share.rate_down/up 2 MB/s", "socks5",
           relay("cpython", _with(PORTABLE, SHAPING)), relay_missing("cpython", ("share.rate_down", "io.backend")),
           "cpython", SHAPED, "shaped", {"link_rate": LINK}),
    Target("shaped-micropython", "relay-micropython, share.rate_down/up 2 MB/s", "socks5",
           relay("micropython", SHAPING), relay_missing("micropython", ("share.rate_down",)), "micropython",
           SHAPED, "shaped", {"link_rate": LINK}),
    # the same load with shaping off: the sink paces the bulk download at the link rate itself,
    # so the relay moves the same bytes and the difference is what shaping costs
    Target("unshaped-micropython", "relay-micropython, shaping off, the sink paced at 2 MB/s", "socks5",
           relay("micropython"), relay_missing("micropython"), "micropython", SHAPED, "shaped",
           {"link_rate": LINK, "source_rate": LINK}),
    # issue 8: MTProto bulk to a stand-in DC on loopback (mtproto_load.py); beside relay-cpython's SOCKS5 bulk
    Target("relay-mtproto-cpython", "Relay's MTProto listener on CPython, plain secret", "mtproto",
           mtproto_load.relay("cpython", "mtproto"), relay_missing("cpython", ("mtproto.enabled",)), "cpython",
           ("bulk",), "mtproto"),
    Target("relay-mtproto-dd-cpython", "Relay's MTProto listener on CPython, dd secret", "mtproto-dd",
           mtproto_load.relay("cpython", "mtproto-dd"), relay_missing("cpython", ("mtproto.enabled",)), "cpython",
           ("bulk",), "mtproto"),
    Target("relay-mtproto-micropython", "Relay's MTProto listener on the MicroPython unix port, plain secret",
           "mtproto", mtproto_load.relay("micropython", "mtproto"), relay_missing("micropython", ("mtproto.enabled",)),
           "micropython", ("bulk",), "mtproto"),
    Target("mtprotoproxy", "mtprotoproxy 1.0.6 (alexbers; PyPI), plain secret, DCs on loopback", "mtproto",
           mtproto_load.mtprotoproxy(), mtproto_load.mtprotoproxy_missing, None, ("bulk",), "mtproto"),
    Target("mtprotoproxy-dd", "mtprotoproxy 1.0.6, dd secret", "mtproto-dd",
           mtproto_load.mtprotoproxy(), mtproto_load.mtprotoproxy_missing, None, ("bulk",), "mtproto"),
    Target("mtprotoproxy-nofast", "mtprotoproxy 1.0.6, plain secret, FAST_MODE off (AES both ways, as the relay)",
           "mtproto", mtproto_load.mtprotoproxy(False), mtproto_load.mtprotoproxy_missing, None, ("bulk",), "mtproto"),
    # issue 16: the Telegram-like load model (phones.py), the same load and secret kind through each
    Target("phones-direct", "the phones straight to the stand-in DC, no proxy: the baseline round trips", "phones",
           None, lambda: None, None, ("phones",), "phones", once=True),
    Target("phones-relay-cpython", "Relay's MTProto listener on CPython", "phones",
           phones.relay("cpython"), relay_missing("cpython", ("mtproto.enabled",)), "cpython", ("phones",), "phones",
           once=True),
    Target("phones-mtprotoproxy", "mtprotoproxy 1.0.6 with its defaults (FAST_MODE on), the same secret kind",
           "phones", phones.mtprotoproxy(), mtproto_load.mtprotoproxy_missing, None, ("phones",), "phones", once=True),
    Target("phones-relay-micropython", "Relay's MTProto listener on the MicroPython unix port (--phones-mp phones)", "phones",
           phones.relay("micropython"), relay_missing("micropython", ("mtproto.enabled",)), "micropython",
           ("phones",), "phones", {"phones_param": "phones_mp"}, once=True),
)

BY_NAME = {t.name: t for t in TARGETS}
