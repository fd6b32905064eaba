"""What the path finder's probes cost a scarce uplink per day (services/pathfind.py), on 127.0.0.1 only.

A relay with three upstreams (other relays standing in for uplink engines) and upstream.probe set
runs for --seconds with its intervals --scale times shorter than the defaults (check_interval 5 s,
standby_interval 300 s); a probe target answers each probe like a web server's redirect (~340 B) and
counts the bytes of each exchange. Probes and bytes are scaled back to a day at the default
intervals, per path. Payload bytes only: the TCP handshake and an engine's own overhead (a Trojan
TLS handshake, Tor's cells, iodine's DNS framing) come on top. Idle relay: no phone's tunnel makes
the current path's probes wait (a busy path is probed less).

    .venv/bin/python bench/probe_cost.py [--seconds 120] [--scale 10] [--before]

--before: the config the relay had before upstream.standby_interval (every path every check_interval).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.origin import ThreadedTCP, read_head  # noqa: E402
from tests.helpers.relayproc import RelayProcess  # noqa: E402

BODY = (b"<html>\r\n<head><title>301 Moved Permanently</title></head>\r\n<body>\r\n<center><h1>301 Moved "
        b"Permanently</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
ANSWER = (b"HTTP/1.1 301 Moved Permanently\r\nServer: nginx\r\nDate: Sun, 06 Dec 2026 09:00:00 GMT\r\n"
          b"Content-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\nLocation: https://example.org/\r\n"
          b"\r\n" % len(BODY)) + BODY


class Target(ThreadedTCP):
    """The web server abroad: answers each probe and counts what crossed (request and answer)."""

    def __init__(self):
        ThreadedTCP.__init__(self)
        self.probes = 0
        self.bytes = 0
        self.lock = threading.Lock()
        self.start()

    def serve(self, c):
        c.settimeout(5)
        try:
            got = read_head(c)
            if got is None:
                return
            c.sendall(ANSWER)
            with self.lock:
                self.probes += 1
                self.bytes += len(got) + len(ANSWER)
        except OSError:
            pass
        finally:
            c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--scale", type=float, default=10)
    ap.add_argument("--before", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="probe-cost-"))
    target = Target()
    relays = []
    try:
        ups = [RelayProcess("cpython", tmp) for _ in range(3)]
        relays += ups
        upstream = {"proxies": [f"socks5://127.0.0.1:{r.socks}" for r in ups], "names": ["a", "b", "c"],
                    "probe": f"127.0.0.1:{target.port}", "check_interval": 5 / a.scale}
        if not a.before:
            upstream["standby_interval"] = 300 / a.scale
        relay = RelayProcess("cpython", tmp, {"upstream": upstream, "uplink": {"timeout": 2}})
        relays.append(relay)
        time.sleep(2 / a.scale + 2)  # the first round (every path while none works yet)
        p0, b0 = target.probes, target.bytes
        s0 = relay.status_json()
        time.sleep(a.seconds)
        p1, b1 = target.probes, target.bytes
        s1 = relay.status_json()
    finally:
        for r in relays:
            r.stop()
        target.close()
        shutil.rmtree(tmp, ignore_errors=True)
    per_day = 86400 / (a.seconds * a.scale)  # this run's window is a.seconds * a.scale at the defaults
    probes, nbytes = p1 - p0, b1 - b0
    per_probe = nbytes / probes if probes else 0
    out = {"config": "before (every path every check_interval)" if a.before else "after (standby_interval)",
           "probes_per_day_all_paths": round(probes * per_day), "bytes_per_probe": round(per_probe),
           "bytes_per_day_all_paths": round(nbytes * per_day), "path": s1.get("path")}
    per_path = {}
    by0 = {u["name"]: u.get("probes") for u in s0["upstreams"]}
    for u in s1["upstreams"]:
        if u.get("probes") is not None and by0.get(u["name"]) is not None:
            n = u["probes"] - by0[u["name"]]
            per_path[u["name"]] = {"probes_per_day": round(n * per_day), "bytes_per_day": round(n * per_day * per_probe)}
    if per_path:
        out["per_path"] = per_path
    else:
        out["per_path_each"] = {"probes_per_day": round(probes * per_day / 3), "bytes_per_day": round(nbytes * per_day / 3)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    os.nice(5)
    main()
