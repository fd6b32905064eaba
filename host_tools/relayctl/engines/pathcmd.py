"""`relayctl uplink paths --site site.toml`: probe what passes now and print `path  works  time  note`.

Engines whose SOCKS endpoint already answers (started by `relayctl run` or by the board's
systemd/procd units) are probed as they are; the others are started for the probe, given
--wait seconds to come up, and stopped afterwards by their process ids.
"""

import json
import socket
import tempfile
import time

from relayctl import out
from relayctl.engines import paths
from relayctl.engines.supervise import Supervisor


def add_arguments(sp):
    sp.add_argument("--site", required=True, help="site file with [[uplink.engine]] tables and [uplink] probe")
    sp.add_argument("--probe", help="HOST:PORT of a web server abroad (default: the site's uplink.probe)")
    sp.add_argument("--timeout", type=float, default=5.0, help="seconds each probe may take (default 5)")
    sp.add_argument("--wait", type=float, default=20.0, help="seconds engines started here get to come up (default 20)")
    sp.add_argument("--json", action="store_true", help="print the rows as JSON")


def answers(host, port, timeout=1.0):
    """Does a SOCKS5 server answer a greeting there?"""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"\x05\x01\x00")
            return s.recv(2)[:1] == b"\x05"
    except OSError:
        return False


def run(args):
    from relayctl.cmd_engine import load_engines

    r, engines = load_engines(args.site)
    probe = args.probe or r["uplink.probe"]
    idle = [e for e in engines if not answers(*e.socks_endpoint())]
    sup = None
    with tempfile.TemporaryDirectory(prefix="relay-paths-") as work:
        try:
            if idle:
                out.info("starting " + ", ".join(e.name for e in idle) + " for the probe")
                sup = Supervisor(idle, work, say=lambda text: None).start()
                deadline = time.monotonic() + args.wait
                waiting = list(idle)
                failed = set()
                while waiting and time.monotonic() < deadline:
                    failed |= {c.engine.name for c in sup.children if c.restarts}  # exited: no use waiting
                    waiting = [e for e in waiting if e.name not in failed and not answers(*e.socks_endpoint(), timeout=0.5)]
                    time.sleep(0.2)
            notes = {}
            if sup is not None:
                for c in sup.children:
                    if c.restarts or c.bootstrap is not None:
                        notes[c.engine.name] = (c.note, c.restarts > 0)
            rows = paths.find(engines, probe, r["uplink.upstream"], args.timeout, notes)
        finally:
            if sup is not None:
                sup.stop()
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        out.info(paths.table(rows))
    return 0 if any(row.get("rank") for row in rows) else 1
