"""The status listener bound to 0.0.0.0 (the admin page on a Linux board's wired or uplink side, whose
address DHCP may change) refuses the Wi-Fi side itself: counters, reload and /admin (unless
portal.admin_on_wifi), on every runtime. In a network namespace: one veth pair stands for the access
point (192.168.4.1, a phone at .50), another for the uplink (198.51.100.7, the volunteer's laptop at .50).

Network safety: the namespace has no link to the root namespace; everything stays inside it and it is
deleted at the end, also on failure.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import netns

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=20)


@pytest.fixture(scope="module")
def ns():
    netns.need_netns()
    ns = f"relayadm-{os.getpid() % 100000}-{secrets.token_hex(3)}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        for a, b, mine, peer in (("ap0", "ap1", "192.168.4.1/24", "192.168.4.50/24"),
                                 ("up0", "up1", "198.51.100.7/24", "198.51.100.50/24")):
            sh("ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b)  # both ends in here
            sh("ip", "-n", ns, "addr", "add", mine, "dev", a)
            sh("ip", "-n", ns, "addr", "add", peer, "dev", b)
            sh("ip", "-n", ns, "link", "set", a, "up")
            sh("ip", "-n", ns, "link", "set", b, "up")
        yield ns
    finally:
        netns.delete([ns])


def ask(ns, runtime, tmp_path, on_wifi):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(HERE / "admin_side_ns.py"), runtime,
                        str(tmp_path), "1" if on_wifi else "0"],
                       capture_output=True, text=True, timeout=60, env=env, cwd=str(ROOT))
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_the_wired_side_is_served_and_the_wifi_side_refused(runtime, ns, tmp_path):
    got = ask(ns, runtime, tmp_path, on_wifi=False)
    for who in ("uplink", "loopback"):
        assert got[who + " status"] == 200 and got[who + " admin"] == 200, got
    for who in ("wifi", "wifi to the uplink address"):  # a phone, whichever of our addresses it asks
        assert (got[who + " status"], got[who + " admin"], got[who + " reload"]) == (403, 404, 403), got
    if runtime != "micropython":
        # Where the runtime can tell our end (getsockname; MicroPython has none), arriving at the AP
        # address is the Wi-Fi side too: a phone that picked an address outside the subnet.
        w = "uplink to the AP address"
        assert (got[w + " status"], got[w + " admin"], got[w + " reload"]) == (403, 404, 403), got


def test_admin_on_wifi_opens_only_the_admin_page_there(ns, tmp_path):
    got = ask(ns, "cpython", tmp_path, on_wifi=True)
    assert got["wifi admin"] == 200 and got["uplink admin"] == 200, got
    assert got["wifi status"] == 403 and got["wifi reload"] == 403, got  # counters and reload stay wired
