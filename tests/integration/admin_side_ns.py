"""Run inside the network namespace test_admin_side.py made: a relay whose status listener (and admin
page) is bound to 0.0.0.0, as `relayctl build` makes it on a Linux board whose uplink address DHCP
may change, asked from the "uplink" side and from the "Wi-Fi" side.

usage: python admin_side_ns.py RUNTIME TMPDIR ADMIN_ON_WIFI(0|1) -> one line of JSON on stdout:
  {what: HTTP status}
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers.admin_page import request  # noqa: E402
from tests.helpers.relayproc import RelayProcess  # noqa: E402

AP, PHONE = "192.168.4.1", "192.168.4.50"  # the Wi-Fi side: the relay's AP address, a phone on it
UPLINK, NEIGHBOUR = "198.51.100.7", "198.51.100.50"  # the uplink side: the relay's address, the volunteer's laptop
PW = "wired pw"


def main():
    runtime, tmp, on_wifi = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "1"
    # The Wi-Fi is known from config alone (wifi.side, as relayctl writes it for Linux boards running hostapd):
    # neither wifi.enabled nor the portal is on here.
    relay = RelayProcess(runtime, tmp, {
        "status": {"host": "0.0.0.0"},
        "wifi": {"side": True, "address": AP, "subnet": "192.168.4.0/24"},
        "portal": {"admin_password": PW, "admin_on_wifi": on_wifi}})
    out = {}
    try:
        for who, src, dst in (("uplink", NEIGHBOUR, UPLINK), ("loopback", "127.0.0.1", "127.0.0.1"),
                              ("wifi", PHONE, AP), ("wifi to the uplink address", PHONE, UPLINK),
                              ("uplink to the AP address", NEIGHBOUR, AP)):
            out[who + " status"] = request(relay.status, "/api/status", src=src, dst=dst)[0]
            out[who + " admin"] = request(relay.status, "/admin", pw=PW, src=src, dst=dst)[0]
            out[who + " reload"] = request(relay.status, "/api/reload", "POST", src=src, dst=dst)[0]
    finally:
        relay.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
