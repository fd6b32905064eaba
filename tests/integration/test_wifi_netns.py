"""The Wi-Fi relay end to end across real network stacks, in network namespaces this test makes.

    phone1 ─┐                        ┌──────────── relay ns ────────────┐         internet ns
            ├─ veths ── bridge "wlr" │ 192.168.4.1: relay (CPython),     │ uplink  198.18.0.2 (+ 149.154.167.51,
    phone2 ─┘  (the "radio")         │ dnsmasq, nft rules; forwarding on │ ──────  a Telegram address that exists
                                     └───────────────────────────────────┘          only in here): origin HTTP

The relay ns runs what a Raspberry Pi would: config.json rendered from the rpi-4 profile
(boards/render.py), dnsmasq with the rendered dnsmasq.conf, and the rendered relay.nft loaded
with `nft -f`; only the Wi-Fi interface is renamed (a software bridge stands in for the radio,
so the bridge-family isolation rule is what keeps phones apart). Phones get their address from
busybox udhcpc. Each blocking rule is first shown to matter: before relay.nft is loaded the
phone reaches the internet ns directly and the other phone; afterwards it cannot.

Network safety: every address lives only inside these namespaces; nothing is added to the
root namespace (veths are created from inside the relay ns), the internet ns has no default
route, and the test asserts both before it sends anything. Namespaces and the processes the
test started (by PID) are removed in the fixture's teardown.
"""

import json
import os
import secrets
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relayctl import boards
from relayctl.boards.render import config_json
from relayctl.cmd_run import relay_command
from relayctl.cmd_site import EXAMPLE
from relayctl.cmd_wifi import settings
from relayctl.wifi import check, render_linux
from tests.helpers import netns

BRIDGE = "wlr"
RELAY_IP, SUBNET = "192.168.4.1", "192.168.4.0/24"
UPLINK_RELAY, UPLINK_NET, INTERNET_IP = "198.18.0.1", "198.18.0.0/24", "198.18.0.2"
TELEGRAM_IP = "149.154.167.51"  # inside Telegram's 149.154.160.0/20: the zero-tap rules redirect it
BODY = b"hello from the internet namespace\n" * 64
ADMIN_PW = "wired-side-pw"

UDHCPC_SCRIPT = """#!/bin/sh
# busybox udhcpc calls this with the lease in its environment; keep it and configure the interface.
env > "$LEASES/$interface-$1.env"
if [ "$1" = bound ]; then
  ip addr add "$ip/$mask" dev "$interface"
  ip route add default via "$router" dev "$interface"
fi
"""


def sh(*argv, check=True, timeout=20):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


class Net:
    def __init__(self, tmp):
        self.tmp = tmp
        tag = f"{os.getpid() % 100000}-{secrets.token_hex(3)}"
        self.ns = {k: f"relaytest-{tag}-{k}" for k in ("phone1", "phone2", "relay", "internet")}
        self.procs = []  # Popen objects this test started; stopped by PID in close()
        self.made = []

    def run(self, who, *argv, check=True, timeout=20):
        return sh("ip", "netns", "exec", self.ns[who], *argv, check=check, timeout=timeout)

    def ip(self, who, *args):
        return sh("ip", "-n", self.ns[who], *args)

    def start(self, who, argv, env=None, **kw):
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[who], *argv], env=env, **kw)
        self.procs.append(p)  # `ip netns exec` execs the command: this PID is the program itself
        return p

    def build(self):
        for name in self.ns.values():
            sh("ip", "netns", "add", name)
            self.made.append(name)
        for who in self.ns:
            self.ip(who, "link", "set", "lo", "up")
        # The "radio": a bridge in the relay ns, one veth port per phone; each pair is created from
        # inside the relay ns with its far end moved straight into the phone's ns.
        self.ip("relay", "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0")
        for n in (1, 2):
            self.ip("relay", "link", "add", f"p{n}", "type", "veth", "peer", "name", "eth0",
                    "netns", self.ns[f"phone{n}"])
            self.ip("relay", "link", "set", f"p{n}", "master", BRIDGE)
            self.ip("relay", "link", "set", f"p{n}", "up")
            self.ip(f"phone{n}", "link", "set", "eth0", "up")
        self.ip("relay", "addr", "add", f"{RELAY_IP}/24", "dev", BRIDGE)
        self.ip("relay", "link", "set", BRIDGE, "up")
        # The uplink, and behind it the internet ns with a Telegram address on its loopback.
        self.ip("relay", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", self.ns["internet"])
        self.ip("relay", "addr", "add", f"{UPLINK_RELAY}/24", "dev", "up0")
        self.ip("relay", "link", "set", "up0", "up")
        self.ip("internet", "addr", "add", f"{INTERNET_IP}/24", "dev", "eth0")
        self.ip("internet", "addr", "add", f"{TELEGRAM_IP}/32", "dev", "lo")
        self.ip("internet", "link", "set", "eth0", "up")
        self.ip("relay", "route", "add", "default", "via", INTERNET_IP)
        # A route back to the phones, so that only the relay's rules (not a missing route) stop them.
        self.ip("internet", "route", "add", SUBNET, "via", UPLINK_RELAY)
        self.run("relay", "sysctl", "-qw", "net.ipv4.ip_forward=1")  # a router forwards; relay.nft must stop it

    def links(self, who):
        out = json.loads(self.ip(who, "-j", "link", "show").stdout)
        return sorted(x["ifname"] for x in out)

    def close(self):
        netns.stop(self.procs)
        netns.delete(self.made)


def wait_port(net, who, host, port, timeout=30):
    deadline = time.monotonic() + timeout
    code = f"import socket; socket.create_connection(({host!r}, {port}), timeout=1).close()"
    while time.monotonic() < deadline:
        if net.run(who, sys.executable, "-c", code, check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{host}:{port} in {who} never answered")


def curl(net, who, *args, timeout=4):
    """-> (exit code, body bytes). Exit 28 is a timeout, 7 a refused/unreachable connect."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # only the proxies a test names
    r = subprocess.run(["ip", "netns", "exec", net.ns[who], "curl", "-sS", "--max-time", str(timeout), *args],
                       capture_output=True, timeout=timeout + 10, env=env)
    return r.returncode, r.stdout


def status(net):
    code, body = curl(net, "relay", "http://127.0.0.1:8081/api/status")
    assert code == 0, body
    return json.loads(body)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    netns.need_netns("nft", "dnsmasq", "busybox", "curl")
    n = Net(tmp_path_factory.mktemp("netns"))
    try:
        n.build()
        yield n
    finally:
        n.close()


@pytest.fixture(scope="module")
def rendered(net):
    """The rpi-4 profile's config.json and Wi-Fi files (interface renamed to the test's bridge)."""
    site = net.tmp / "site.toml"
    site.write_text(EXAMPLE.replace('# password = "..."', f'password = "{ADMIN_PW}"'))  # [admin]
    r = boards.load_or_fail("rpi-4", str(site))
    ap = settings(r)
    ap["interface"] = BRIDGE
    files = render_linux(check(ap))
    cfg = config_json(r)
    if not cfg.get("mtproto", {}).get("secrets"):
        cfg.pop("mtproto", None)  # the build makes a secret per board; this test is not about MTProto
    return cfg, files


def test_end_to_end(net, rendered):
    cfg, files = rendered
    tmp = net.tmp

    # -- containment, before anything is sent --------------------------------
    assert net.links("phone1") == ["eth0", "lo"] and net.links("phone2") == ["eth0", "lo"]
    assert net.links("relay") == sorted(["lo", BRIDGE, "p1", "p2", "up0"])
    assert net.links("internet") == ["eth0", "lo"]
    routes = net.ip("internet", "-j", "route", "show").stdout
    assert "default" not in routes, routes  # the internet ns leads nowhere: nothing can leave the machine
    assert net.run("internet", "ip", "route", "get", "1.1.1.1", check=False).returncode != 0

    # -- DHCP from the rendered dnsmasq.conf ---------------------------------
    conf = files["dnsmasq.conf"]
    assert "interface=" + BRIDGE in conf and "port=0" in conf
    leases = tmp / "leases"
    leases.mkdir()
    (tmp / "dnsmasq.conf").write_text(conf.replace("/run/relay-dnsmasq.leases", str(tmp / "dnsmasq.leases")))
    net.start("relay", ["dnsmasq", "-k", "--conf-file=" + str(tmp / "dnsmasq.conf"), "--pid-file=" + str(tmp / "dm.pid"),
                        "-u", "root", "--log-facility=" + str(tmp / "dnsmasq.log"), "--log-dhcp"])
    script = tmp / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    env = dict(os.environ, LEASES=str(leases))
    phone = {}
    for n in (1, 2):
        r = subprocess.run(["ip", "netns", "exec", net.ns[f"phone{n}"], "busybox", "udhcpc", "-i", "eth0", "-f", "-q",
                            "-n", "-t", "8", "-T", "1", "-O", "114", "-s", str(script)],
                           capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0, r.stderr
        lease = dict(line.split("=", 1) for line in (leases / "eth0-bound.env").read_text().splitlines() if "=" in line)
        phone[n] = lease["ip"]
        assert lease["router"] == RELAY_IP and lease["dns"] == RELAY_IP and lease["mask"] == "24"
        # RFC 8908 wants an https:// API URI and clients ignore an http:// one: none is offered (-O 114 asked)
        assert "opt114" not in lease, lease
        print(f"phone{n}: DHCP lease {lease['ip']}/24 router {lease['router']} dns {lease['dns']}")
    assert phone[1] != phone[2]

    # -- peers: the origin in the internet ns, a web server on phone2 --------
    web = tmp / "web"
    web.mkdir()
    (web / "hello.txt").write_bytes(BODY)
    net.start("internet", [sys.executable, "-m", "http.server", "80", "--bind", "0.0.0.0", "-d", str(web)],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    net.start("phone2", [sys.executable, "-m", "http.server", "8000", "--bind", phone[2], "-d", str(web)],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(net, "internet", TELEGRAM_IP, 80)
    wait_port(net, "phone2", phone[2], 8000)

    # -- before relay.nft: the blocked paths really are open -----------------
    code, body = curl(net, "phone1", f"http://{INTERNET_IP}/hello.txt")
    assert code == 0 and body == BODY, "sanity: with forwarding on and no rules, the phone reaches the internet ns"
    code, body = curl(net, "phone1", f"http://{phone[2]}:8000/hello.txt")
    assert code == 0 and body == BODY, "sanity: without rules phone1 reaches phone2 over the bridge"

    # -- the rendered rules, and the relay from the rendered config.json ------
    rules = tmp / "relay.nft"
    rules.write_text(files["relay.nft"])
    net.run("relay", "nft", "-f", str(rules))
    assert "redirect to :1081" in net.run("relay", "nft", "list", "table", "inet", "relay").stdout
    cfg = json.loads(json.dumps(cfg))
    assert cfg["transparent"] == {"enabled": True, "host": RELAY_IP} and cfg["policy"]["preset"] == "telegram"
    # The admin page's listener as built (site admin.side default "wired"): every address, the Wi-Fi's refused.
    assert cfg["status"] == {"enabled": True, "host": "0.0.0.0", "port": 8081}
    assert cfg["wifi"] == {"side": True, "address": RELAY_IP, "subnet": SUBNET}
    cfg["dns"]["hosts"] = {"web.telegram.org": [TELEGRAM_IP], "example.com": [INTERNET_IP]}
    cfg["limits"]["connect_timeout"] = 3
    (tmp / "config.json").write_text(json.dumps(cfg))
    argv, env = relay_command("cpython", str(tmp / "config.json"), [])
    relay = net.start("relay", argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = ""
    if select.select([relay.stdout], [], [], 20)[0]:
        ready = relay.stdout.readline()
    assert "relay ready" in ready, relay.stderr.read() if relay.poll() is not None else ready
    assert f"transparent={RELAY_IP}:1081" in ready and f"socks={RELAY_IP}:1080" in ready
    print(ready.strip())
    s0 = status(net)

    # -- DNS: a connectivity-check name leads to the relay --------------------
    q = ("import dns.message, dns.query; m = dns.query.udp(dns.message.make_query(%r, 'A'), %r, timeout=3); "
         "print(' '.join(str(rd) for rr in m.answer for rd in rr))")
    for name in ("connectivitycheck.gstatic.com", "captive.apple.com"):
        r = net.run("phone1", sys.executable, "-c", q % (name, RELAY_IP))
        assert r.stdout.split() == [RELAY_IP], (name, r.stdout)

    # -- the portal, and the click-through ------------------------------------
    check_url = ["-H", "Host: connectivitycheck.gstatic.com", "-o", "/dev/null", "-w", "%{http_code}",
                 f"http://{RELAY_IP}/generate_204"]
    assert curl(net, "phone1", *check_url) == (0, b"302")  # captive: the phone shows its sign-in window
    code, page = curl(net, "phone1", "-H", "Accept-Language: ru", f"http://{RELAY_IP}/")
    assert code == 0 and b"tg://socks?server=192.168.4.1" in page and b"port=1080" in page
    assert curl(net, "phone1", "-o", "/dev/null", "-w", "%{http_code}", f"http://{RELAY_IP}/continue")[1] == b"200"
    assert curl(net, "phone1", *check_url) == (0, b"204")  # online from now on, for this phone only
    assert curl(net, "phone2", *check_url) == (0, b"302")

    # -- through the SOCKS port -----------------------------------------------
    t0 = time.monotonic()
    code, body = curl(net, "phone1", "--socks5-hostname", f"{RELAY_IP}:1080", "http://web.telegram.org/hello.txt")
    socks_ms = (time.monotonic() - t0) * 1000
    assert code == 0 and body == BODY
    s1 = status(net)
    assert s1["tunnels_total"] == s0["tunnels_total"] + 1 and s1["bytes_down"] - s0["bytes_down"] >= len(BODY)
    # the policy: a non-Telegram destination is refused by the relay, even through the proxy
    code, _ = curl(net, "phone1", "--socks5-hostname", f"{RELAY_IP}:1080", "http://example.com/hello.txt")
    assert code != 0

    # -- blocked: direct routing, and phone to phone --------------------------
    assert curl(net, "phone1", f"http://{INTERNET_IP}/hello.txt", timeout=2)[0] in (7, 28)
    assert curl(net, "phone1", f"http://{phone[2]}:8000/hello.txt", timeout=2)[0] in (7, 28)
    assert curl(net, "phone2", f"http://{phone[1]}:9/", timeout=2)[0] in (7, 28)

    # -- zero-tap: no proxy settings, an allowed address ----------------------
    s2 = status(net)
    t0 = time.monotonic()
    code, body = curl(net, "phone1", f"http://{TELEGRAM_IP}/hello.txt")
    zero_tap_ms = (time.monotonic() - t0) * 1000
    assert code == 0 and body == BODY
    s3 = status(net)
    assert s3["tunnels_total"] == s2["tunnels_total"] + 1, (s2, s3)
    assert s3["bytes_down"] - s2["bytes_down"] >= len(BODY) and s3["bytes_up"] > s2["bytes_up"]
    # a disallowed address (outside Telegram's ranges) is not redirected: it gets nothing at all
    code, _ = curl(net, "phone1", f"http://{INTERNET_IP}/hello.txt", timeout=2)
    assert code in (7, 28)
    s4 = status(net)
    assert s4["tunnels_total"] == s3["tunnels_total"]
    print(f"measured: SOCKS fetch {socks_ms:.0f} ms, zero-tap fetch {zero_tap_ms:.0f} ms, "
          f"{len(BODY)} bytes each; counters {s0['tunnels_total']}->{s4['tunnels_total']} tunnels, "
          f"bytes_down {s0['bytes_down']}->{s4['bytes_down']}, refused {s4['refused']}")

    # -- the admin page: on the uplink side, never to a phone -----------------
    admin = ["-u", "admin:" + ADMIN_PW, "-o", "/dev/null", "-w", "%{http_code}"]
    assert curl(net, "internet", *admin, f"http://{UPLINK_RELAY}:8081/admin") == (0, b"200")
    for url in (f"http://{RELAY_IP}:8081/admin", f"http://{UPLINK_RELAY}:8081/admin"):
        assert curl(net, "phone1", *admin, url, timeout=2)[0] in (7, 28), url  # relay.nft: the port is not open
    # Without relay.nft (rules not applied yet, or flushed), the relay refuses the Wi-Fi side itself.
    net.run("relay", "nft", "delete", "table", "inet", "relay")
    assert curl(net, "phone1", *admin, f"http://{RELAY_IP}:8081/admin") == (0, b"404")
    assert curl(net, "phone1", "-o", "/dev/null", "-w", "%{http_code}", f"http://{RELAY_IP}:8081/api/status") == (0, b"403")
    relay.terminate()
    out, err = relay.communicate(timeout=10)
    assert "relay stopped" in out, err


ORIGINAL_DST = r"""
import socket, sys
sys.path.insert(0, sys.argv[1])
from relay.runtime.cpython import Conn
port = int(sys.argv[2])
out = []
for fam, any_, dst in ((socket.AF_INET, "0.0.0.0", "149.154.167.51"), (socket.AF_INET6, "::", "2001:67c:4e8:f002::a")):
    lst = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET6:
        lst.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    lst.bind((any_, port))
    lst.listen(4)
    for target in ((dst, 443), ("::1" if fam == socket.AF_INET6 else "127.0.0.1", port)):
        c = socket.create_connection(target, timeout=3)
        s, _ = lst.accept()
        conn = Conn(s, None, None)
        got = conn.original_dst()
        out.append("%s -> %s" % (target[0], "%s %d" % (socket.inet_ntop(fam, got[0]), got[1]) if got and got != conn.local()
                                  else "not redirected"))
        s.close(); c.close()
    lst.close()
print("\n".join(out))
"""


def test_original_destination_ipv4_and_ipv6(net, tmp_path):
    """The runtime's SO_ORIGINAL_DST read, both families, against nftables' own redirect (output hook)."""
    who = "internet"  # any of the test's namespaces; the rule and addresses here are scoped to it
    port = 41081
    net.ip(who, "-6", "addr", "add", "2001:67c:4e8:f002::a/128", "dev", "lo")
    rules = tmp_path / "redir.nft"
    rules.write_text("table inet relaytest {\n\tchain out {\n\t\ttype nat hook output priority -100; policy accept;\n"
                     f"\t\tip daddr {TELEGRAM_IP} tcp dport 443 redirect to :{port}\n"
                     f"\t\tip6 daddr 2001:67c:4e8:f002::a tcp dport 443 redirect to :{port}\n\t}}\n}}\n")
    net.run(who, "nft", "-f", str(rules))
    try:
        script = tmp_path / "odst.py"
        script.write_text(ORIGINAL_DST)
        from relayctl import paths

        r = net.run(who, sys.executable, str(script), str(paths.FIRMWARE), str(port))
    finally:
        net.run(who, "nft", "delete", "table", "inet", "relaytest", check=False)
    assert r.stdout.split("\n")[:4] == [
        f"{TELEGRAM_IP} -> {TELEGRAM_IP} 443",
        "127.0.0.1 -> not redirected",  # dialled directly: the transparent listener refuses it
        "2001:67c:4e8:f002::a -> 2001:67c:4e8:f002::a 443",
        "::1 -> not redirected",
    ], r.stdout


def test_parse_sockaddr():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "firmware"))
    from relay.runtime.cpython import parse_sockaddr

    v4 = socket.AF_INET.to_bytes(2, sys.byteorder) + (443).to_bytes(2, "big") + bytes([149, 154, 167, 51]) + bytes(8)
    assert parse_sockaddr(v4) == (bytes([149, 154, 167, 51]), 443)
    ip6 = socket.inet_pton(socket.AF_INET6, "2001:67c:4e8:f002::a")
    v6 = socket.AF_INET6.to_bytes(2, sys.byteorder) + (5222).to_bytes(2, "big") + bytes(4) + ip6 + bytes(4)
    assert parse_sockaddr(v6) == (ip6, 5222)
    with pytest.raises(ValueError):
        parse_sockaddr(bytes(16))


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_transparent_port_dialled_directly(start_relay, runtime):
    """No namespace needed: on loopback, a connection that was not redirected is closed and counted
    (CPython); MicroPython cannot read an original destination, says so and opens no listener."""
    from tests.helpers.relayproc import free_port

    port = free_port()
    r = start_relay(runtime, {"transparent": {"enabled": True, "host": "127.0.0.1", "port": port}})
    if runtime == "micropython":
        assert "transparent=" not in r.ready_line
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        _, err = r.stop()
        assert "cannot read a redirected connection's destination" in err
        return
    assert f"transparent=127.0.0.1:{port}" in r.ready_line
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.settimeout(5)
    assert c.recv(1) == b""  # closed at once, nothing sent
    c.close()
    st = r.status_json()
    assert st["refused"].get("not-redirected") == 1 and st["tunnels_total"] == 0
