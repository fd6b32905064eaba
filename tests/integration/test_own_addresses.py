"""The relay refuses its own addresses, learned by itself, on each runtime: in a network namespace.

The namespace this test makes holds only a loopback and a veth pair (both ends inside it) as the "uplink" interface with
198.51.100.7 and 2001:db8:7::7 (documentation ranges, standing in for the uplink's address), and
a service listening on `::`. Clients of every kind try to reach that service through the relay by
the device's own addresses: SOCKS5 by address, by name, as ::ffff:, ::a.b.c.d, NAT64 and 6to4
forms, by IPv6, SOCKS4, HTTP GET and CONNECT, names that resolve to it (DNS and dns.hosts), UDP
datagrams. Then addresses are added while the relay runs: refused too, once the kernel announced
them. Nothing in the config names any of these addresses.

Network safety: the namespace has no link to the root namespace; everything stays inside it and
it is deleted at the end, also on failure.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=20)


@pytest.fixture
def netns():
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("needs root on Linux for a network namespace")
    ns = f"relayown-{os.getpid() % 100000}-{secrets.token_hex(3)}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "add", "up0", "type", "veth", "peer", "name", "up1")  # both ends in here
        sh("ip", "-n", ns, "addr", "add", "198.51.100.7/24", "dev", "up0")
        sh("ip", "-n", ns, "-6", "addr", "add", "2001:db8:7::7/64", "dev", "up0", "nodad")
        sh("ip", "-n", ns, "link", "set", "up0", "up")
        sh("ip", "-n", ns, "link", "set", "up1", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_own_addresses_are_refused(runtime, netns, tmp_path):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    r = subprocess.run(["ip", "netns", "exec", netns, sys.executable, str(HERE / "own_addresses_ns.py"), runtime,
                        str(tmp_path)], capture_output=True, text=True, timeout=90, env=env, cwd=str(ROOT))
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    answers = got["answers"]
    socks5 = {k: v for k, v in answers.items() if k.startswith(("socks5", "later"))}
    assert socks5 == dict.fromkeys(socks5, 2), answers  # 0x02: not allowed by the ruleset
    assert answers["socks4"] == 91, answers
    assert answers["http get"].startswith("HTTP/1.1 403") and answers["http connect"].startswith("HTTP/1.1 403"), answers
    assert answers["udp association"] == 0, answers  # the association opens; its datagrams go nowhere
    assert got["tcp_hits"] == 0 and got["udp_hits"] == 0, got
