"""review-fw: a phone cannot use the relay's engine to reach the far end's own machine.

The relay sends names to an engine unresolved (socks5h: the censor's DNS must not see them), and its
guard can only judge the name (guard.check_name), not what the far end will resolve it to. The far
end `relayctl engine server-config shadowsocks` renders is a bare ss-server: shadowsocks-libev
connects to any address, its own loopback and LAN included (shadowsocks-libev#2265, open; its
acl/server_block_local.acl exists for this, but only with --acl). So any name that resolves to
127.0.0.1, 169.254.169.254 or the far end's LAN (a public DNS name anyone can point there, e.g.
*.nip.io) reaches the volunteer's VPS itself through every phone of the relay: the admin and
status ports of a public relay running beside it, a database on loopback, the cloud's metadata
service with the VPS's credentials. The same holds for the trojan server and the iodine far end's
SOCKS server.

Here the far end runs exactly what server-config renders, as Debian's unit runs it (`ss-server -c`
only: the JSON names the ACL file, here at its place in tmp_path instead of /etc/shadowsocks-libev),
and resolves with a DNS stub on loopback that stands in for the far end's resolver; a web server on
loopback stands in for a service on the VPS's loopback. The nftables table rendered beside it needs
a network namespace: tests/engines/test_far_end_guard_netns.py.
"""

import json
import subprocess

import pytest

from relayctl.engines import engines_of, server, which
from tests.engines.test_engines import load
from tests.helpers.origin import DNSServer, Origin
from tests.helpers.relayproc import RelayProcess, free_port
from tests.integration.test_proxy import curl

SITE = """[[uplink.engine]]
kind = "shadowsocks"
server = "127.0.0.1"
port = %d
password = "a long shared secret"
"""


def test_a_phone_cannot_reach_the_far_ends_loopback_through_the_engine(tmp_path):
    if not (which("ss-server") and which("ss-local")):
        pytest.skip("shadowsocks-libev is installed by make setup")
    far_port, local_port = free_port(), free_port()
    e = engines_of(load(tmp_path, SITE % far_port)["uplink.engine"])[0]
    files = server.render(e, "127.0.0.1")
    dns = DNSServer({"vps-admin.example.org": ["127.0.0.1", "::1"]})  # what a public name pointed at 127.0.0.1 gives
    vps_service = Origin(size=1000)  # a service on the far end's loopback (an admin port, a database)
    cfg = json.loads(files["ss-server.json"])
    cfg["nameserver"] = f"127.0.0.1:{dns.port}"  # the far end's resolver, here a stub on loopback
    argv = [which("ss-server"), "-c", str(tmp_path / "far.json")]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert cfg["acl"] == "/etc/shadowsocks-libev/relay.acl" and "ss-server.acl" in files
    cfg["acl"] = str(tmp_path / "ss-server.acl")
    (tmp_path / "far.json").write_text(json.dumps(cfg))
    client = dict(cfg, local_address="127.0.0.1", local_port=local_port)
    del client["acl"]  # the relay's ss-local has none
    (tmp_path / "ss-local.json").write_text(json.dumps(client))
    procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen([which("ss-local"), "-c", str(tmp_path / "ss-local.json")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    relay = None
    try:
        relay = RelayProcess("cpython", tmp_path, {"guard": {"allow": []},  # the relay's own loopback is guarded
                                                   "upstream": {"proxies": [f"socks5h://127.0.0.1:{local_port}"]}})
        r = curl("--socks5-hostname", f"127.0.0.1:{relay.socks}", f"http://vps-admin.example.org:{vps_service.port}/small",
                 "--max-time", "10")
        assert r.stdout != b"hello relay\n", "a phone reached a service on the far end's loopback through the relay"
    finally:
        if relay is not None:
            relay.stop()
        for p in procs:
            p.terminate()
            p.wait()
        vps_service.close()
        dns.close()
