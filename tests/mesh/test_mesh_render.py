"""The mesh's host side: the plan from a site file, the rendered files (golden), their checks by the real
programs (babeld parses babeld.conf and starts in a namespace; nft -c reads mesh.nft), LAN mode, and
the relayctl verbs. Regenerate golden files after an intended change with RELAY_UPDATE_GOLDEN=1.
"""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from relayctl import boards  # noqa: E402
from relayctl.boards.render import check_config, config_json  # noqa: E402
from relayctl.cli import main  # noqa: E402
from relayctl.cmd_wifi import settings  # noqa: E402
from relayctl.mesh import files_for  # noqa: E402
from relayctl.wifi import check, render_linux, render_openwrt  # noqa: E402
from tests.helpers.golden import golden_dir  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"

SITE = '''\
[wifi]
ssid = "relay"
security = "wpa2"
passphrase = "phones join this"
country = "KZ"
channel = 6

[policy]
preset = "telegram"

[mtproto]
secrets = ["dd0123456789abcdef0123456789abcdef"]

[mesh]
key = "a long shared mesh secret"
radio = "wlan1"
channel = 36

[mesh.relays.roof]
number = 1
uplink = true
board = "rpi-4"

[mesh.relays.stairs]
number = 2
board = "rpi-4"
wired = ["eth1"]

[mesh.relays.hall]
number = 3
board = "gl-mt300n-v2"
radio = "mesh0"

[mesh.relays.porch]
number = 4
board = "esp32-generic"
via = "stairs"
'''

CASES = {"roof": "rpi-4", "stairs": "rpi-4", "hall": "gl-mt300n-v2"}


@pytest.fixture
def site(tmp_path):
    p = tmp_path / "site.toml"
    p.write_text(SITE)
    return p


@pytest.mark.parametrize("relay", sorted(CASES))
def test_golden(site, relay):
    board = CASES[relay]
    r = boards.load_or_fail(board, str(site), relay)
    openwrt = r["linux.service"] == "procd"
    files = dict(files_for(r, openwrt))
    files["config.json"] = json.dumps(config_json(r), indent=1, sort_keys=True) + "\n"
    ap = check(settings(r))
    files.update({"wifi-" + k: v for k, v in (render_openwrt(ap) if openwrt else render_linux(ap)).items()})
    golden_dir(GOLDEN / ("mesh-" + relay), files)
    assert check_config(config_json(r)) == []  # the device's own checker takes it


def test_the_plan_gives_each_relay_its_own_addresses(site):
    seen = set()
    for relay, board in list(CASES.items()) + [("porch", "esp32-generic")]:
        r = boards.load_or_fail(board, str(site), relay)
        cfg = config_json(r)
        rp = r.mesh.this
        assert (cfg["socks"]["host"], cfg["portal"]["address"]) == (rp.client_address, rp.client_address)
        assert rp.client_address not in seen
        seen.add(rp.client_address)
        assert cfg["mesh"]["key"] == "a long shared mesh secret" and cfg["mesh"]["enabled"] is True
    roof = config_json(boards.load_or_fail("rpi-4", str(site), "roof"))
    assert roof["mesh"]["service"] == "10.77.1.1" and roof["status"]["host"] == "10.77.0.1"
    stairs = config_json(boards.load_or_fail("rpi-4", str(site), "stairs"))
    assert "service" not in stairs["mesh"] and stairs["mesh"]["uplinks"] == ["10.77.1.0/24"]
    assert stairs["mesh"]["listen"] == ["10.78.2.1"]  # the satellite "porch" hands its tunnels over here
    porch = config_json(boards.load_or_fail("esp32-generic", str(site), "porch"))
    assert porch["mesh"]["uplinks"] == ["gateway"] and porch["uplink"]["kind"] == "wifi-sta"
    assert porch["uplink"]["ssid"] == "relay" and porch["wifi"]["address"] == "10.78.4.1"
    # stairs' firewall lets its satellite reach the mesh port from the Wi-Fi side; roof's does not
    ap = check(settings(boards.load_or_fail("rpi-4", str(site), "stairs")))
    assert "1082" in render_linux(ap)["relay.nft"]
    assert "1082" not in render_linux(check(settings(boards.load_or_fail("rpi-4", str(site), "roof"))))["relay.nft"]


@pytest.mark.parametrize("old, new, key, message", [
    ("number = 2\n", "number = 1\n", "mesh.relays.stairs.number", "1 is also roof's"),
    ("uplink = true\n", "", "mesh.relays", "no relay has uplink = true"),
    ('via = "stairs"', 'via = "nowhere"', "mesh.relays.porch.via", 'no relay "nowhere"'),
    ('key = "a long shared mesh secret"', 'key = "short"', "mesh.key", "16-63 printable ASCII"),
    ('radio = "mesh0"', 'radio = "mesh0"\ncolour = "red"', "mesh.relays", 'unknown key "colour"'),
    ("number = 3\n", "number = 3000\n", "mesh.relays", "3000 is out of range 1..200"),
])
def test_site_mistakes_are_named_with_file_and_line(tmp_path, old, new, key, message):
    p = tmp_path / "site.toml"
    p.write_text(SITE.replace(old, new, 1))
    r = boards.load("rpi-4", str(p), "roof")
    hit = [str(e) for e in r.errors if message in str(e)]
    assert hit, [str(e) for e in r.errors]
    path, line, rest = hit[0].split(":", 2)
    assert path.endswith("site.toml") and line.isdigit() and rest.startswith(" " + key), hit[0]


def test_lan_mode(tmp_path):
    """LAN mode: the relay serves a wire to access points in bridge mode: no hostapd, the same isolation."""
    p = tmp_path / "site.toml"
    p.write_text('[wifi]\nssid = "relay"\n\n[lan]\ninterface = "eth1"\n')
    r = boards.load_or_fail("rpi-4", str(p))
    files = render_linux(check(settings(r)))
    golden_dir(GOLDEN / "lan-linux", files)
    assert "hostapd.conf" not in files and "interface=eth1" in files["dnsmasq.conf"]
    assert 'iifname "eth1" drop' in files["relay.nft"]
    uci = render_openwrt(check(settings(boards.load_or_fail("gl-mt300n-v2", str(p)))))["relay.uci"]
    assert "wireless.relay" not in uci and "set network.relay.device='eth1'" in uci


def _ns(tmp_path):
    from tests.helpers.netns import need_netns
    from tests.mesh.netkit import Namespaces

    need_netns("babeld", "nft")
    net = Namespaces(tmp_path, "relaytest-render")
    net.add("a", "b")
    return net


def test_babeld_and_nft_take_the_rendered_files(site, tmp_path):
    """babeld -c starts with the rendered babeld.conf in a namespace with the relay's interfaces (and a broken
    file makes it exit, so the check can fail); nft -c reads mesh.nft."""
    net = _ns(tmp_path)
    try:
        r = boards.load_or_fail("rpi-4", str(site), "stairs")
        files = files_for(r, False)
        net.link("a", "eth1", "b", "x1")
        net.link("a", "wlan1", "b", "x2")
        for name, text in (("good", files["babeld.conf"]), ("bad", files["babeld.conf"] + "install ip nonsense\n")):
            conf = tmp_path / f"{name}.conf"
            conf.write_text(text)
            p = net.start("babeld-" + name, "a", ["babeld", "-c", str(conf), "-I", str(tmp_path / f"{name}.pid"),
                                                  "-S", str(tmp_path / f"{name}.state")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.5)
            if name == "good":
                assert p.poll() is None, p.stderr.read()
                out = net.run("a", "python3", "-c", "import socket; s=socket.create_connection(('::1', 33123), 2); "
                              "s.settimeout(2); print(s.recv(200).decode())").stdout
                assert out.startswith("BABEL 1.0"), out  # its local interface answers: the relay reads links there
            else:
                assert p.poll() is not None and b"parse" in p.stderr.read()
        (tmp_path / "mesh.nft").write_text(files["mesh.nft"])
        net.run("a", "nft", "-c", "-f", str(tmp_path / "mesh.nft"))
    finally:
        net.close()


@pytest.mark.parametrize("mode", ["80211s", "adhoc"])
def test_wpa_supplicant_reads_the_mesh_block(tmp_path, mode):
    """wpa_supplicant parses the rendered 802.11s (or ad-hoc) block: with its "none" driver (no radio here) it
    reads the file and starts; one wrong field and it refuses the file."""
    if not shutil.which("wpa_supplicant"):
        pytest.skip("wpa_supplicant not installed (make setup installs wpasupplicant)")
    site = tmp_path / "site.toml"
    site.write_text(SITE.replace('channel = 36', f'channel = 36\nmode = "{mode}"'))
    text = files_for(boards.load_or_fail("rpi-4", str(site), "roof"), False)["wpa_supplicant-mesh.conf"]
    assert ("mode=5" in text) == (mode == "80211s") and ("mode=1" in text) == (mode == "adhoc")
    text = text.replace("DIR=/run/wpa_supplicant", "DIR=" + str(tmp_path / "ctrl"))  # nothing outside tmp_path
    net = _ns(tmp_path)
    try:
        net.link("a", "wlan1", "b", "x1")
        for name, conf in (("good", text), ("bad", text.replace("\tfrequency=", "\tfrequencies_typo=1\n\tfrequency="))):
            path = tmp_path / f"{name}.conf"
            path.write_text(conf)
            p = net.start("wpa-" + name, "a", ["wpa_supplicant", "-D", "none", "-i", "wlan1", "-c", str(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            time.sleep(1)
            net.stop("wpa-" + name)
            out = p.stdout.read().decode()
            if name == "good":
                assert "Successfully initialized wpa_supplicant" in out and "failed to parse" not in out, out
            else:
                assert "failed to parse network block" in out, out
    finally:
        net.close()


def test_relayctl_mesh_render(site, tmp_path, capsys):
    assert main(["mesh", "render", "rpi-4", "--site", str(site), "--relay", "roof", "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(
        ["babeld.conf", "mesh-plan.txt", "mesh-up.sh", "mesh.nft", "relay-mesh.service", "wpa_supplicant-mesh.conf"])
    assert main(["mesh", "render", "rpi-4", "--site", str(site), "--out", str(tmp_path / "p")]) == 2
    assert "pass --relay NAME" in capsys.readouterr().err
    assert main(["mesh", "render", "esp32-generic", "--site", str(site), "--relay", "porch", "--out", str(tmp_path / "p")]) == 2
    assert "satellite" in capsys.readouterr().err
    assert main(["mesh", "render", "rpi-4", "--site", str(site), "--relay", "attic", "--out", str(tmp_path / "p")]) == 2
    assert 'no relay "attic"' in capsys.readouterr().err


def test_boards_show_phones_per_uplink(site, capsys):
    assert main(["boards", "show", "rpi-4", "--mesh", "3"]) == 0
    text = capsys.readouterr().out
    assert "a mesh of 3 relays with one uplink: about 24 phones per uplink" in text
    assert main(["boards", "show", "esp32-generic"]) == 0
    assert "satellite: joins a mesh relay's Wi-Fi as a station" in capsys.readouterr().out
    assert main(["boards", "show", "rpi-4", "--site", str(site)]) == 0
    assert "this site: a mesh of 4 relays with one uplink" in capsys.readouterr().out
