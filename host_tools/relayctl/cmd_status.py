"""A live view of a running relay, for volunteers: is it up, how many people, how much data is left.

--host ADDR[:PORT] asks the relay's status listener (GET /api/status; port 8081
by default). --port PORT reads a MicroPython board's serial console, where the
relay prints a `relay status {...}` line every status.console_interval seconds.
"""

import json
import time
import urllib.error
import urllib.request

from relayctl import out
from relayctl.errors import CliError


def add_arguments(p):
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--host", metavar="ADDR[:PORT]", help="the relay's status listener (default port 8081)")
    src.add_argument("--port", metavar="PORT", help="a board's serial port (e.g. /dev/ttyUSB0)")
    p.add_argument("--once", action="store_true", help="print one view and exit")
    p.add_argument("--json", action="store_true", help="print the raw status as JSON")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)")


def _mb(n):
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def _ago(seconds):
    h, m = divmod(int(seconds) // 60, 60)
    return f"{h} h {m} min" if h else f"{m} min"


def render(st):
    """The status as a few plain sentences."""
    lines = [f"Relay {st.get('version', '?')} ({st.get('runtime', '?')})"]
    up = st.get("uplink")
    if up is None:
        lines.append("Link to the outside: not monitored")
    else:
        lines.append(f"Link to the outside: {'UP' if up['up'] else 'DOWN'} for {_ago(up['since_s'])}")
    mesh = st.get("mesh")
    if mesh:
        c = mesh.get("carrier")
        via = "none answers" if c is None else ("this relay" if c.get("self") else f"{c['name']} ({c['address']})")
        who = mesh.get("name") or mesh.get("address")
        lines.append("Mesh: " + (f"relay {who}, " if who else "") + f"{len(mesh.get('relays', []))} other relays "
                     f"routed to; the uplink: {via}")
    ups = st.get("upstreams") or []
    path = st.get("path")
    if path is not None:  # the path finder runs (relay/services/pathfind.py): which upstream carries new tunnels
        cur = next((u for u in ups if u["name"] == path["path"]), None)
        took = f" ({cur['ms']} ms)" if cur and cur.get("ms") is not None else ""
        lines.append(f"Path to the outside: {path['path']}{took}" if path["path"] else
                     "Path to the outside: none works now (every engine and upstream failed its probe)")
    if ups:
        lines.append("Upstream relays: " + ", ".join(f"{u['name']} {'ok' if u['healthy'] else 'DOWN'}" for u in ups))
    lines.append(f"Connections open now: {st.get('tunnels_open', 0)}  (since start: {st.get('tunnels_total', 0)})")
    lines.append(f"Data through the relay: {_mb(st.get('bytes_down', 0))} down, {_mb(st.get('bytes_up', 0))} up")
    sh = st.get("share")
    if sh:
        left = sh.get("budget_left_today")
        lines.append(f"Budget left today: {'no limit' if left is None else _mb(left)}  (stage: {sh['stage']})")
        lines.append(f"Phones that used the relay today: {sh.get('clients_today', 0)}")
    refused = st.get("refused") or {}
    if refused:
        total = sum(refused.values())
        lines.append(f"Refused: {total} (" + ", ".join(f"{k} {v}" for k, v in sorted(refused.items())) + ")")
    mem = st.get("rss_kib")
    heap = st.get("heap_used")
    if mem is not None:
        lines.append(f"Memory: {mem // 1024} MiB")
    elif heap is not None:
        lines.append(f"Memory (heap): {heap // 1024} KiB")
    return "\n".join(lines)


def _fetch_http(host, timeout):
    if ":" not in host or host.count(":") > 1 and not host.startswith("["):
        host = f"{host}:8081"
    url = f"http://{host}/api/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError) as e:
        raise CliError(f"cannot read {url}: {getattr(e, 'reason', e)}; is the relay running with status.enabled, "
                       "and is this computer on its network?")


class SerialStatus:
    def __init__(self, port, timeout):
        import serial

        try:
            self.ser = serial.serial_for_url(port, baudrate=115200, timeout=0.5)
        except (serial.SerialException, OSError) as e:
            raise CliError(f"cannot open {port}: {e}; close other serial monitors, check the cable, "
                           "and that you are in the dialout group")
        self.timeout = timeout
        self.buf = b""

    def next(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            chunk = self.ser.read(4096)
            self.buf += chunk
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.strip()
                if line.startswith(b"relay status "):
                    try:
                        return json.loads(line[13:])
                    except ValueError:
                        continue
        raise CliError(f"no status line from the board in {self.timeout:.0f} s: the relay prints one every "
                       "status.console_interval seconds (set it, e.g. to 10, and rebuild or deploy)")


def run(args):
    source = SerialStatus(args.port, args.timeout) if args.port else None
    while True:
        st = source.next() if source else _fetch_http(args.host, args.timeout)
        text = json.dumps(st, indent=1) if args.json else render(st)
        if args.once:
            out.info(text)
            return 0
        out.screen(text)
        if not source:
            time.sleep(args.interval)
