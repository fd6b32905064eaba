"""LAN mode end to end: phones behind an access point in bridge mode, the relay on the wire, in namespaces.

    phone1 ─┐  ap ns: bridge "br0"      relay ns: lan0 192.168.4.1, the relay (CPython),     internet ns
            ├─ (no address: a plain    ── dnsmasq (rendered dnsmasq.conf), relay.nft   ── up0 ── 198.18.0.2,
    phone2 ─┘   AP in bridge mode)        rendered for LAN mode (site [lan])                  149.154.167.51

Phones get their addresses from the rendered DHCP config (busybox udhcpc), and reach the internet
namespace only through the relay's proxy: before relay.nft is loaded a phone reaches it directly
(the relay forwards, the internet ns routes back), afterwards it cannot.

Network safety: every address lives only inside these namespaces; the internet ns has no default
route. Processes stopped by PID, namespaces deleted at the end, also on failure.
"""

import json
import os
import subprocess
import sys

from relayctl import boards
from relayctl.boards.render import config_json
from relayctl.cmd_wifi import settings
from relayctl.wifi import check, render_linux
from tests.integration.test_wifi_netns import UDHCPC_SCRIPT
from tests.helpers.netns import need_netns
from tests.mesh.netkit import Namespaces, curl, wait_for

TELEGRAM_IP = "149.154.167.51"
SITE = '[wifi]\nssid = "relay"\ncountry = "KZ"\n\n[policy]\npreset = "telegram"\n\n[lan]\ninterface = "lan0"\n'


def test_lan_mode_end_to_end(tmp_path):
    need_netns("nft", "dnsmasq", "busybox", "curl")
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    r = boards.load_or_fail("rpi-4", str(site))
    files = render_linux(check(settings(r)))
    assert "hostapd.conf" not in files  # the access points are the radio
    cfg = config_json(r)
    cfg.pop("mtproto", None)
    cfg["dns"]["hosts"] = {"web.telegram.org": [TELEGRAM_IP]}
    cfg["status"] = {"enabled": True, "host": "127.0.0.1", "port": 8081}  # inside the relay ns only
    net = Namespaces(tmp_path, "relaylan")
    try:
        net.add("relay", "ap", "internet", "phone1", "phone2")
        net.link("relay", "lan0", "ap", "wire")
        net.bridge("ap", "br0")
        net.ip("ap", "link", "set", "wire", "master", "br0")
        for n in (1, 2):
            net.port("ap", "br0", f"sta{n}", f"phone{n}", "eth0")
        net.ip("relay", "addr", "add", "192.168.4.1/24", "dev", "lan0")
        net.link("relay", "up0", "internet", "eth0")
        net.ip("relay", "addr", "add", "198.18.0.1/24", "dev", "up0")
        net.ip("internet", "addr", "add", "198.18.0.2/24", "dev", "eth0")
        net.ip("internet", "addr", "add", TELEGRAM_IP + "/32", "dev", "lo")
        net.ip("relay", "route", "add", "default", "via", "198.18.0.2")
        net.ip("internet", "route", "add", "192.168.4.0/24", "via", "198.18.0.1")  # only the rules stop phones
        net.run("relay", "sysctl", "-qw", "net.ipv4.ip_forward=1")
        assert "default" not in net.ip("internet", "-j", "route", "show").stdout

        # DHCP from the rendered dnsmasq.conf, across the access point's bridge
        conf = tmp_path / "dnsmasq.conf"
        conf.write_text(files["dnsmasq.conf"].replace("/run/relay-dnsmasq.leases", str(tmp_path / "leases")))
        net.start("dnsmasq", "relay", ["dnsmasq", "-k", "--conf-file=" + str(conf), "--pid-file=" + str(tmp_path / "dm.pid"),
                                       "-u", "root", "--log-facility=" + str(tmp_path / "dnsmasq.log")])
        script = tmp_path / "udhcpc.sh"
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
        leases = tmp_path / "got"
        leases.mkdir()
        ip = {}
        for n in (1, 2):
            res = net.run(f"phone{n}", "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "8", "-T", "1",
                          "-s", str(script), env=dict(os.environ, LEASES=str(leases)), timeout=30)
            assert res.returncode == 0, res.stderr
            lease = dict(x.split("=", 1) for x in (leases / "eth0-bound.env").read_text().splitlines() if "=" in x)
            assert lease["router"] == "192.168.4.1" and lease["dns"] == "192.168.4.1"
            ip[n] = lease["ip"]
        assert ip[1] != ip[2]

        web = tmp_path / "web"
        web.mkdir()
        (web / "hello.txt").write_bytes(b"through the relay\n")
        net.start("web", "internet", [sys.executable, "-m", "http.server", "80", "--bind", "0.0.0.0", "-d", str(web)],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: curl(net, "internet", f"http://{TELEGRAM_IP}/hello.txt", timeout=1)[0] == 0, 15)
        # before the rules: the relay would forward a phone straight to the internet
        assert curl(net, "phone1", "http://198.18.0.2/hello.txt", timeout=3) == (0, b"through the relay\n")

        rules = tmp_path / "relay.nft"
        rules.write_text(files["relay.nft"])
        net.run("relay", "nft", "-f", str(rules))
        ready = net.start_relay("relay", "relay", cfg)
        assert "socks=192.168.4.1:1080" in ready and "portal=192.168.4.1:80" in ready

        for n in (1, 2):
            code, body = curl(net, f"phone{n}", "--socks5-hostname", "192.168.4.1:1080", "http://web.telegram.org/hello.txt")
            assert (code, body) == (0, b"through the relay\n")
            assert curl(net, f"phone{n}", "http://198.18.0.2/hello.txt", timeout=2)[0] in (7, 28)
            code, page = curl(net, f"phone{n}", "http://192.168.4.1/")
            assert code == 0 and b"tg://socks?server=192.168.4.1" in page
        q = ("import dns.message, dns.query; m = dns.query.udp(dns.message.make_query('captive.apple.com', 'A'), "
             "'192.168.4.1', timeout=3); print(' '.join(str(rd) for rr in m.answer for rd in rr))")
        assert net.run("phone2", sys.executable, "-c", q).stdout.split() == ["192.168.4.1"]
        st = json.loads(curl(net, "relay", "http://127.0.0.1:8081/api/status")[1])
        assert st["tunnels_total"] == 2
    finally:
        net.close()
