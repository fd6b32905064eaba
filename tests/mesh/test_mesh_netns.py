"""Five relays sharing two uplinks over babeld, end to end, in network namespaces this test makes.

    internet ns (149.154.167.51: the origin)
      │ up0                                   │ up0
     r1 (uplink) ══ r2 ══ r3 ══ r4            r5 (uplink)
                    ╚═══════ radio-like ══════╝
     a line r1-r2-r3-r4 and a star around r2 (r1, r3, r5); each relay has its phones on a bridge
     ("wl", the radio), r4 two of them; a MicroPython satellite (the ESP32's firmware) joins r3's
     Wi-Fi as a station, with a phone of its own.

Everything each relay runs is rendered from one site file by relayctl: config.json (the rpi-4
profile for the relays, esp32-generic for the satellite), babeld.conf, mesh.nft and relay.nft.
babeld routes; the relays only read the routes. The r2-r5 link is declared a radio link
(babeld's wireless cost), so from r4 the uplink r1 (3 hops, metric 288) is nearer than r5
(metric 448): r4's phones go through r1 until r1 dies, then through r5.

Network safety: every address lives only inside these namespaces; the internet ns has no
default route; the test asserts that before sending anything. Processes are stopped by PID
and namespaces deleted at the end, also on failure. Timing figures are printed, not asserted.
"""

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from relayctl import boards
from relayctl.boards.render import config_json
from relayctl.cmd_wifi import settings
from relayctl.mesh import files_for
from relayctl.wifi import check, render_linux
from tests.helpers.netns import need_netns
from tests.mesh.netkit import Namespaces, blocked, curl, wait_for

TELEGRAM_IP = "149.154.167.51"  # in the telegram preset's ranges; exists only inside the internet ns
NAME = "web.telegram.org"
KEY = "mesh key of the test site, 32 ch"
LINKS = [("r1", "m12", "r2", "m21"), ("r2", "m23", "r3", "m32"), ("r3", "m34", "r4", "m43"),
         ("r2", "w25", "r5", "w52")]
UPLINKS = {"r1": ("198.18.1.1", "198.18.1.2", "e1"), "r5": ("198.18.5.1", "198.18.5.2", "e5")}
PHONES = {"p1": "r1", "p2": "r2", "p3": "r3", "p4": "r4", "p4b": "r4", "p5": "r5"}

SITE = f'''
[wifi]
ssid = "relay"
security = "wpa2"
passphrase = "phones join this"
country = "KZ"
channel = 6

[policy]
preset = "telegram"

[mesh]
key = "{KEY}"
mode = "80211s"

[mesh.relays.r1]
number = 1
uplink = true
wired = ["m12"]

[mesh.relays.r2]
number = 2
wired = ["m21", "m23"]
radio = "w25"

[mesh.relays.r3]
number = 3
wired = ["m32", "m34"]

[mesh.relays.r4]
number = 4
wired = ["m43"]

[mesh.relays.r5]
number = 5
uplink = true
radio = "w52"

[mesh.relays.sat]
number = 6
board = "esp32-generic"
via = "r3"
'''


def plan_of(r):
    return r.mesh.this


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    need_netns("babeld", "nft", "curl")
    tmp = tmp_path_factory.mktemp("mesh")
    net = Namespaces(tmp)
    try:
        yield _build(net, tmp)
    finally:
        net.close()


class Mesh:
    pass


def _render(tmp, relay, board="rpi-4"):
    site = tmp / "site.toml"
    if not site.exists():
        site.write_text(SITE)
    r = boards.load_or_fail(board, str(site), relay)
    return r, config_json(r)


def _build(net, tmp):
    m = Mesh()
    m.net = net
    m.tmp = tmp
    relays = ["r1", "r2", "r3", "r4", "r5"]
    net.add(*relays, "internet", "sat", "satphone", *PHONES)
    m.plan = {}
    m.cfg = {}
    m.files = {}
    for name in relays:
        r, cfg = _render(tmp, name)
        rp = plan_of(r)
        m.plan[name] = rp
        ap = settings(r)
        ap["interface"] = "wl"  # a software bridge stands in for the radio
        m.files[name] = dict(render_linux(check(ap)), **files_for(r, False))
        cfg.pop("mtproto", None)  # the build makes a secret per board; not what this test is about
        if rp.uplink:  # the uplink relays resolve names for the whole mesh; the others ask them
            cfg["dns"]["hosts"] = {NAME: [TELEGRAM_IP]}
        cfg["limits"]["connect_timeout"] = 3
        cfg["portal"]["admin_password"] = "admin of " + name
        m.cfg[name] = cfg
    # -- links: the mesh, the phones' side, the uplinks ------------------------------------------
    for a, na, b, nb in LINKS:
        net.link(a, na, b, nb)
    for name in relays:
        rp = m.plan[name]
        net.ip(name, "addr", "add", rp.address + "/32", "dev", "lo")
        if rp.service:
            net.ip(name, "addr", "add", rp.service + "/32", "dev", "lo")
        net.bridge(name, "wl")
        net.ip(name, "addr", "add", rp.client_address + "/24", "dev", "wl")
        net.run(name, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0")
    m.phone_ip = {}
    for i, (phone, relay) in enumerate(sorted(PHONES.items())):
        rp = m.plan[relay]
        net.port(relay, "wl", f"v{phone}", phone, "eth0")
        ip = rp.subnet.rsplit(".", 1)[0] + f".{20 + i}"
        net.ip(phone, "addr", "add", ip + "/24", "dev", "eth0")
        net.ip(phone, "route", "add", "default", "via", rp.client_address)
        m.phone_ip[phone] = ip
    for relay, (mine, theirs, dev) in UPLINKS.items():
        net.link(relay, "up0", "internet", dev)
        net.ip(relay, "addr", "add", mine + "/24", "dev", "up0")
        net.ip("internet", "addr", "add", theirs + "/24", "dev", dev)
        net.ip(relay, "route", "add", "default", "via", theirs)
    net.ip("internet", "addr", "add", TELEGRAM_IP + "/32", "dev", "lo")
    # Routes back into the mesh and the phones' side, so that only the relays' rules (not a missing
    # route) keep the internet ns and the phones apart.
    net.ip("internet", "route", "add", "10.78.0.0/16", "via", UPLINKS["r1"][0])
    net.ip("internet", "route", "add", "10.77.0.0/16", "via", UPLINKS["r1"][0])
    # -- the satellite: a station on r3's Wi-Fi, its own phone behind it --------------------------
    sat_r, sat_cfg = _render(tmp, "sat", "esp32-generic")
    m.sat = plan_of(sat_r)
    net.port("r3", "wl", "vsat", "sat", "sta0")
    m.sat_sta = m.plan["r3"].subnet.rsplit(".", 1)[0] + ".50"
    net.ip("sat", "addr", "add", m.sat_sta + "/24", "dev", "sta0")
    net.ip("sat", "route", "add", "default", "via", m.plan["r3"].client_address)  # what DHCP would give it
    net.link("sat", "ap0", "satphone", "eth0")
    net.ip("sat", "addr", "add", m.sat.client_address + "/24", "dev", "ap0")
    m.satphone_ip = m.sat.subnet.rsplit(".", 1)[0] + ".20"
    net.ip("satphone", "addr", "add", m.satphone_ip + "/24", "dev", "eth0")
    net.ip("satphone", "route", "add", "default", "via", m.sat.client_address)
    # MicroPython unix port: no radio to bring up; the namespace is its network
    sat_cfg.pop("wifi", None)
    sat_cfg["uplink"] = {}
    sat_cfg["dns"] = {"hosts": {NAME: [TELEGRAM_IP]}}
    m.sat_cfg = sat_cfg

    # -- containment, before anything is sent ------------------------------------------------------
    assert "default" not in net.ip("internet", "-j", "route", "show").stdout
    assert net.run("internet", "ip", "route", "get", "1.1.1.1", check=False).returncode != 0

    # -- babeld with the rendered babeld.conf, in every relay ----------------------------------------
    for name in relays:
        conf = tmp / f"babeld-{name}.conf"
        conf.write_text(m.files[name]["babeld.conf"])
        log = open(tmp / f"babeld-{name}.log", "w")
        net.start("babeld-" + name, name, ["babeld", "-c", str(conf), "-I", str(tmp / f"babeld-{name}.pid"),
                                           "-S", str(tmp / f"babel-state-{name}")], stdout=log, stderr=log)
    # -- the origin ---------------------------------------------------------------------------------
    web = tmp / "web"
    web.mkdir()
    m.blob = os.urandom(1 << 20)
    m.blob_sha = hashlib.sha256(m.blob).hexdigest()
    (web / "blob").write_bytes(m.blob)
    (web / "small").write_bytes(b"x" * 100)
    net.start("web", "internet", [sys.executable, "-m", "http.server", "80", "--bind", "0.0.0.0", "-d", str(web)],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    net.start("trickle", "internet", [sys.executable, "-c", TRICKLE, "8000"])
    net.start("echo", "internet", [sys.executable, "-c", ECHO, "7"])

    # -- babeld converged: r4 routes to both uplink relays, r1 nearer ----------------------------------
    took = wait_for(lambda: set(_routes(net, "r4")) >= {"10.77.1.1", "10.77.1.5", "10.77.0.1", "10.77.0.5"}, 40)
    assert took is not None, net.run("r4", "ip", "route").stdout
    m.converge_s = took
    routes = _routes(net, "r4")
    assert routes["10.77.1.1"] < routes["10.77.1.5"], routes  # 3 wired hops beat 2 wired + 1 radio hop

    # -- sanity: without mesh.nft a relay could use an uplink relay as a router around the relays --------
    net.ip("r2", "route", "add", "198.18.1.0/24", "via", "10.77.0.1", "dev", "m21", "onlink")
    code, _ = curl(net, "r2", f"http://{UPLINKS['r1'][1]}/small", timeout=3)
    assert code == 0, "sanity: with forwarding on and no rules, r1 forwards a mesh packet to its uplink"
    # -- the rendered rules, then the relays -------------------------------------------------------------
    for name in relays:
        for f in ("relay.nft", "mesh.nft"):
            path = tmp / f"{name}-{f}"
            path.write_text(m.files[name][f])
            net.run(name, "nft", "-f", str(path))
    m.ready = {}
    for name in relays:
        m.ready[name] = net.start_relay(name, name, m.cfg[name])
    m.ready["sat"] = net.start_relay("sat", "sat", sat_cfg, runtime="micropython")
    assert wait_for(lambda: all(_carrier(m, r) == "r1" for r in ("r2", "r3", "r4")), 20) is not None, _status(m, "r4")
    return m


TRICKLE = r"""
import socket, sys, threading, time
def serve(c):
    c.recv(1024)
    try:
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        for i in range(600):  # a long download: one line every 100 ms for a minute
            c.sendall(b"tick %d\n" % i)
            time.sleep(0.1)
    except OSError:
        pass
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""

ECHO = r"""
import socketserver, sys
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(65536)
            if not d:
                return
            self.request.sendall(d)
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("0.0.0.0", int(sys.argv[1])), Echo).serve_forever()
"""


def _routes(net, who):
    """{destination: metric} of the host routes babeld installed in who."""
    out = json.loads(net.ip(who, "-j", "route", "show", "proto", "babel").stdout or "[]")
    return {r["dst"]: r.get("metric", 0) for r in out}


def _status(m, relay):
    rp = m.plan[relay]
    code, body = curl(m.net, relay, f"http://{rp.address}:8081/api/status")
    return json.loads(body) if code == 0 else None


def _carrier(m, relay):
    st = _status(m, relay)
    c = st and st["mesh"]["carrier"]
    return c["name"] if c else None


def _socks_fetch(m, phone, path="/blob", timeout=20):
    relay = PHONES.get(phone)
    proxy = m.plan[relay].client_address if relay else m.sat.client_address
    return curl(m.net, phone, "--socks5-hostname", f"{proxy}:1080", f"http://{NAME}{path}", timeout=timeout)


# -- the tests share the topology; the failover test runs last (it stops r1) ----------------------------


def test_a_phone_three_hops_away_fetches_through_its_own_relay(mesh):
    t0 = time.monotonic()
    code, body = _socks_fetch(mesh, "p4")
    took = time.monotonic() - t0
    assert code == 0 and hashlib.sha256(body).hexdigest() == mesh.blob_sha
    st1 = _status(mesh, "r1")
    assert st1["tunnels_total"] >= 1 and st1["bytes_down"] >= len(mesh.blob)
    assert _status(mesh, "r5")["tunnels_total"] == 0  # the nearer uplink relay carried it
    m4 = _status(mesh, "r4")["mesh"]
    assert m4["carrier"]["name"] == "r1" and m4["carrier"]["metric"] == 3 * 96  # three wired hops
    print(f"measured: babeld converged in {mesh.converge_s:.1f} s; 1 MiB from 3 hops away in {took * 1000:.0f} ms")


def test_the_satellite_chains_to_its_relay(mesh):
    """The MicroPython satellite (ESP32 firmware) takes its phone's tunnel to r3's mesh port, r3 to r1."""
    assert f"socks={mesh.sat.client_address}:1080" in mesh.ready["sat"] and "runtime=micropython" in mesh.ready["sat"]
    assert f"mesh={mesh.plan['r3'].client_address}:1082" in mesh.ready["r3"]
    before = _status(mesh, "r1")["tunnels_total"]
    code, body = _socks_fetch(mesh, "satphone")
    assert code == 0 and hashlib.sha256(body).hexdigest() == mesh.blob_sha
    assert _status(mesh, "r1")["tunnels_total"] == before + 1


def test_portal_and_dns_answer_on_every_relay(mesh):
    import dns.message
    import dns.query

    q = ("import dns.message, dns.query; m = dns.query.udp(dns.message.make_query(%r, 'A'), %r, timeout=3); "
         "print(' '.join(str(rd) for rr in m.answer for rd in rr))")
    for phone, relay in sorted(PHONES.items()):
        addr = mesh.plan[relay].client_address
        r = mesh.net.run(phone, sys.executable, "-c", q % ("connectivitycheck.gstatic.com", addr))
        assert r.stdout.split() == [addr], (phone, r.stdout)
        # a name the policy allows: answered by the uplink relay, whatever relay the phone asked
        r = mesh.net.run(phone, sys.executable, "-c", q % (NAME, addr))
        assert r.stdout.split() == [TELEGRAM_IP], (phone, r.stdout, r.stderr, json.dumps(_status(mesh, relay)["mesh"]),
                                                   (mesh.tmp / f"{relay}.err").read_text())
        code, page = curl(mesh.net, phone, "-H", "Accept-Language: en", f"http://{addr}/")
        assert code == 0 and f"tg://socks?server={addr}".encode() in page, (phone, page[:200])
        code, page = curl(mesh.net, phone, "-H", "Accept-Language: en", f"http://{addr}/status")
        via = "this device" if relay in ("r1", "r5") else "r1"
        assert code == 0 and f"<b id=via>{via}</b>".encode() in page, (phone, page)
    del dns


def test_isolation(mesh):
    net = mesh.net
    inet = UPLINKS["r1"][1]
    # a phone reaches no other phone, on its relay or another
    probes = [("p4", f"http://{mesh.phone_ip[target]}:9/") for target in ("p4b", "p3")]
    # nor another relay's admin page or status listener, nor its own relay's mesh side
    probes += [("p4", url) for url in (
        f"http://{mesh.plan['r3'].client_address}/admin", f"http://{mesh.plan['r1'].client_address}/admin",
        f"http://{mesh.plan['r3'].address}:8081/api/status", f"http://{mesh.plan['r4'].address}:8081/api/status",
        f"http://{mesh.plan['r1'].service}:1082/")]
    # nor the internet directly, though the internet ns routes back to it
    probes += [("p4", f"http://{inet}/small"), ("p1", f"http://{inet}/small")]
    # a relay that routes around (r2 was given a route to r1's uplink) is stopped at r1 by mesh.nft
    probes += [("r2", f"http://{inet}/small")]
    assert blocked(net, probes) == []  # all at once: a blocked one waits out its 2 s
    # the mesh links carried only relay-to-relay traffic: count what crossed r2 and r3 otherwise
    for relay in ("r2", "r3"):
        out = net.run(relay, "nft", "-j", "list", "table", "inet", "relay_mesh").stdout
        assert '"relays"' in out
    watch = ("table inet mesh_watch {\n chain seen {\n  type filter hook forward priority -10; policy accept;\n"
             "  counter\n  ip saddr != 10.77.0.0/23 counter\n  ip daddr != 10.77.0.0/23 counter\n }\n}\n")
    for relay in ("r2", "r3"):
        nft(mesh, relay, watch)
    assert _socks_fetch(mesh, "p4", "/small")[0] == 0
    assert curl(net, "p4", f"http://{inet}/small", timeout=2)[0] in (7, 28)
    for relay in ("r2", "r3"):
        every, not_from_relay, not_to_relay = [c["counter"]["packets"] for c in _counters(net, relay)]
        assert every > 0 and not_from_relay == 0 and not_to_relay == 0, (relay, every, not_from_relay, not_to_relay)
        net.run(relay, "nft", "delete", "table", "inet", "mesh_watch")


def nft(m, who, text):
    path = m.tmp / f"nft-{who}-{time.monotonic_ns()}.nft"
    path.write_text(text)
    m.net.run(who, "nft", "-f", str(path))


def _counters(net, relay):
    out = json.loads(net.run(relay, "nft", "-j", "list", "table", "inet", "mesh_watch").stdout)
    return [e for item in out["nftables"] if "rule" in item for e in item["rule"]["expr"] if "counter" in e]


def test_the_uplink_counts_phones_not_relays(mesh):
    """Two phones on r4 hold a tunnel each: r1 sees two phones carried, not one relay."""
    held = []
    for phone in ("p4", "p4b"):
        held.append(subprocess.Popen(["ip", "netns", "exec", mesh.net.ns[phone], "curl", "-sS", "--max-time", "15",
                                      "--socks5-hostname", f"{mesh.plan['r4'].client_address}:1080",
                                      f"http://{TELEGRAM_IP}:8000/"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL))
    try:
        got = wait_for(lambda: (_status(mesh, "r1")["mesh"]["phones_carried"]) == 2, 10)
        assert got is not None, _status(mesh, "r1")["mesh"]
        assert _status(mesh, "r4")["mesh"]["phones"] == 2
    finally:
        for p in held:
            p.kill()
            p.wait()


def test_mesh_status_walks_the_mesh(mesh):
    from relayctl import paths

    tool = [sys.executable, "-c", "import sys; from relayctl.cli import main; sys.exit(main(sys.argv[1:]))"]
    env = dict(os.environ, PYTHONPATH=str(paths.ROOT / "host_tools"))

    def table():
        text = mesh.net.run("r4", *tool, "mesh", "status", "--host", mesh.plan["r4"].address, env=env).stdout
        return text, {ln.split()[0]: ln for ln in text.splitlines()
                      if ln.split() and ln.split()[0] in ("r1", "r2", "r3", "r4", "r5")}

    # Each end lists a link once its babeld counts it (hellos and IHUs both ways: a radio link's first
    # seconds) and its relay read babeld since: one mesh.check_interval (2 s). Both ends, every link.
    ends = [("r1", "r2"), ("r2", "r1"), ("r2", "r3"), ("r3", "r2"), ("r3", "r4"), ("r4", "r3"), ("r2", "r5"), ("r5", "r2")]
    shown = []

    def both_ends():
        text, lines = table()
        shown[:] = [text, lines]
        return set(lines) == {"r1", "r2", "r3", "r4", "r5"} and all(f"{b} (" in lines[a] for a, b in ends)

    assert wait_for(both_ends, 12, step=0.5) is not None, shown[0]
    text, lines = shown
    print(text)
    assert set(lines) == {"r1", "r2", "r3", "r4", "r5"}, text
    assert "own UP" not in lines["r4"] and "via r1 (3 hops)" in lines["r4"]
    assert lines["r1"].split()[2] == "3" and lines["r4"].split()[2] == "0"  # hops from r4
    assert "own" in lines["r1"] and "own" in lines["r5"]
    assert "r3 (96)" in lines["r4"] and "r5 (" in lines["r2"] and "r2 (" in lines["r5"]
    assert "5 relays (0 not answering), 2 with an uplink" in text


PROBE = r"""
import socket, statistics, sys, time
proxy, port, dest, dport, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
setup, rtt = [], []
for i in range(n):
    t0 = time.perf_counter()
    s = socket.create_connection((proxy, port), timeout=5)
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(dest) + dport.to_bytes(2, "big"))
    assert s.recv(10)[1] == 0
    setup.append(time.perf_counter() - t0)
    for j in range(20):
        t1 = time.perf_counter()
        s.sendall(b"x" * 64)
        got = b""
        while len(got) < 64:
            got += s.recv(64 - len(got))
        rtt.append(time.perf_counter() - t1)
    s.close()
print("%.3f %.3f" % (statistics.median(setup) * 1000, statistics.median(rtt) * 1000))
"""


def test_hop_latency(mesh):
    """What each hop adds, from phones 0..3 hops from the uplink relay (medians; printed, not asserted):
    a new tunnel's setup (connect, SOCKS, the chain to the uplink relay, its connect) and the round trip
    of 64 bytes through an open tunnel to an echo server in the internet ns."""
    fig = {}
    for phone, hops in (("p1", 0), ("p2", 1), ("p3", 2), ("p4", 3)):
        relay = PHONES[phone]
        r = mesh.net.run(phone, sys.executable, "-c", PROBE, mesh.plan[relay].client_address, "1080", TELEGRAM_IP,
                         "7", "20", timeout=60)
        fig[hops] = [float(x) for x in r.stdout.split()]
    setup = {h: fig[h][0] for h in fig}
    rtt = {h: fig[h][1] for h in fig}
    print("measured: new tunnel setup " + ", ".join(f"{h} hops {setup[h]:.2f} ms" for h in sorted(fig))
          + "; 64-byte round trip " + ", ".join(f"{h} hops {rtt[h]:.3f} ms" for h in sorted(fig))
          + f"; chaining to the uplink relay adds {rtt[1] - rtt[0]:.3f} ms a round trip "
          f"({setup[1] - setup[0]:.2f} ms a setup), each routed hop {(rtt[3] - rtt[1]) / 2:.3f} ms "
          f"({(setup[3] - setup[1]) / 2:.2f} ms a setup)")


def _probe_loop(m, t0, results, stop):
    """New tunnels from p4 every 0.5 s: (start s, took s, ok) each, until stop is set."""
    while not stop.is_set():
        t = time.monotonic()
        code, body = _socks_fetch(m, "p4", "/small", timeout=10)
        results.append((t - t0, time.monotonic() - t, code == 0 and body == b"x" * 100))
        stop.wait(0.5)


def test_failover_when_the_uplink_relay_dies(mesh):
    """r1 loses power (processes killed, nothing in or out, links stay up as a radio's would): open tunnels
    through it end with a close, new tunnels go through r5 once the health check gives up on r1 (or babeld
    withdraws its route, whichever comes first)."""
    import threading

    net = mesh.net
    streams = {}
    for phone in ("p4", "p4b"):
        streams[phone] = subprocess.Popen(
            ["ip", "netns", "exec", net.ns[phone], "curl", "-sS", "-N", "--max-time", "50", "--socks5-hostname",
             f"{mesh.plan['r4'].client_address}:1080", f"http://{TELEGRAM_IP}:8000/"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for p in streams.values():
        assert p.stdout.readline().startswith(b"tick"), "the long download runs through r1"
    assert wait_for(lambda: _status(mesh, "r1")["mesh"]["phones_carried"] >= 2, 10) is not None
    # power cut: nothing in, nothing out, processes gone
    t0 = time.monotonic()
    nft(mesh, "r1", "table inet cut {\n chain cut_in { type filter hook input priority -300; policy drop; }\n"
                    " chain cut_out { type filter hook output priority -300; policy drop; }\n"
                    " chain cut_fwd { type filter hook forward priority -300; policy drop; }\n}\n")
    net.stop("r1", "kill")
    net.stop("babeld-r1", "kill")
    probes, stop = [], threading.Event()
    prober = threading.Thread(target=_probe_loop, args=(mesh, t0, probes, stop))
    prober.start()
    try:
        # open tunnels end (curl exits with an error) instead of hanging for the idle timeout
        ended = {}
        for phone, p in streams.items():
            p.stdout.read()  # until the relay closes it
            p.wait(60)
            ended[phone] = time.monotonic() - t0
            # closed by the relay (a body without a length simply ends; curl exits 0, or 18/56 on a reset), not
            # by curl's own --max-time (28), which is what a hang would end in
            assert p.returncode != 28, (phone, p.returncode, p.stderr.read())
        assert wait_for(lambda: any(ok for _, _, ok in probes), 60) is not None, probes
    finally:
        stop.set()
        prober.join()
    first_ok = min(start + took for start, took, ok in probes if ok)
    # stated: within two health checks and a hop timeout (2 s each by default) and some slack for this machine
    assert first_ok < 15, probes
    worst = max(took for _, took, _ in probes)
    failed = [round(start, 1) for start, _, ok in probes if not ok]
    # babeld's own convergence (r1's route withdrawn at r4) takes tens of seconds: waited for only when asked
    wait = 90 if os.environ.get("RELAY_MESH_MEASURE") else 0
    route_gone = wait_for(lambda: "10.77.1.1" not in _routes(net, "r4"), wait) if wait else None
    route_gone = None if route_gone is None else time.monotonic() - t0
    assert _status(mesh, "r5")["tunnels_total"] >= 1
    assert _status(mesh, "r4")["mesh"]["carrier"]["name"] == "r5"
    code, page = curl(net, "p4", "-H", "Accept-Language: en", f"http://{mesh.plan['r4'].client_address}/status")
    assert b"<b id=via>r5</b>" in page
    code, body = _socks_fetch(mesh, "p4")
    assert code == 0 and hashlib.sha256(body).hexdigest() == mesh.blob_sha
    print(f"measured: failover after the uplink relay died at t=0: open tunnels closed at "
          f"{', '.join(f'{v:.1f}' for v in ended.values())} s; new tunnels: first through r5 done at {first_ok:.1f} s, "
          f"{len(probes)} tried every 0.5 s, failed: {failed or 'none'}, slowest took {worst:.1f} s; "
          "babeld withdrew r1's route from r4 at " + ("%.1f s" % route_gone if route_gone else
                                                       "(not waited for; RELAY_MESH_MEASURE=1 waits up to 90 s)"))
