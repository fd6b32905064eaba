"""What fleet reporting costs a relay: bytes per report and the MicroPython heap the fleet client takes.

    .venv/bin/python bench/fleet_cost.py [--seconds 12]

Starts a mosquitto on 127.0.0.1 and, under each runtime, one relay with fleet reporting (interval 1 s)
and one without; after the run it prints the retained report's size, the MQTT bytes each report costs
(the relay's own bytes_out counter over reports sent) and, on MicroPython, the difference in heap in use
after a collection (status ?gc=1) between the two relays: the fleet modules, umqtt and their objects.
Loopback only; every process is stopped by its PID.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "host_tools")]

from tests.fleet.fleetkit import Listener, Mosquitto  # noqa: E402
from tests.helpers.relayproc import RelayProcess, free_port  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=12.0, help="how long the relays report (default 12)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="relay-fleet-cost-"))
    port = free_port()
    (tmp / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = Mosquitto(tmp / "m.conf", port, tmp / "m.log")
    broker.start()
    watch = Listener(port, None, None, ["relay/+/report"])
    relays = {}
    try:
        for rt in ("cpython", "micropython"):
            fleet = {"enabled": True, "broker": "127.0.0.1", "port": port, "name": "cost-" + rt, "place": "district",
                     "interval": 1, "command_key": "00" * 32}
            relays[rt, True] = RelayProcess(rt, tmp, {"fleet": fleet})
            relays[rt, False] = RelayProcess(rt, tmp, {})
        time.sleep(args.seconds)
        sizes = {}
        for topic, payload, _retain, _t in watch.take():
            sizes.setdefault(topic.split("/")[1], []).append(len(payload))
        for rt in ("cpython", "micropython"):
            f = relays[rt, True].status_json()["fleet"]
            size = sizes.get("cost-" + rt) or [0]
            print(f"{rt}: report JSON {statistics.median(size):.0f} bytes (min {min(size)}, max {max(size)}), "
                  f"{f['bytes_out'] / max(1, f['sent']):.0f} MQTT bytes per report over {f['sent']} reports "
                  "(CONNECT, the online marker and pings included)")
        on = relays["micropython", True].status_json(gc=True)["heap_used"]
        off = relays["micropython", False].status_json(gc=True)["heap_used"]
        print(f"micropython: heap in use after gc {on} bytes with fleet reporting, {off} without: "
              f"the fleet client costs {on - off} bytes")
        print(json.dumps({"report_bytes": {k: statistics.median(v) for k, v in sizes.items()}, "heap_cost": on - off}))
    finally:
        for r in relays.values():
            r.stop()
        watch.close()
        broker.stop()


if __name__ == "__main__":
    main()
