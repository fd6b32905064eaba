"""Where a built relay's admin page answers (site [admin] side, boards/admin_side.py), from a fresh
`relayctl site init`: on a Linux board the status listener on the wired/uplink side (0.0.0.0:8081, the
Wi-Fi refused by the relay and by its firewall) with the site's one admin password; on ESP32 and Pico W
nowhere unless the site asks for the Wi-Fi, and then no password is promised where no page answers.
(The side check itself, over real sockets: tests/integration/test_admin_side.py and test_wifi_netns.py.)"""

import json
import re
import tarfile

import pytest

from relayctl import boards
from relayctl.cmd_site import EXAMPLE
from relayctl.errors import CliError
from relayctl.images import build_board


def site(tmp_path, admin=""):
    p = tmp_path / "site.toml"
    p.write_text(EXAMPLE.replace("# side = \"wired\"\n", admin + "\n"))
    return p


def built(board, site_path, out):
    manifest = build_board(board, site_path, out)
    return manifest, json.loads((out / "config.json").read_text())


def bundle_file(out, manifest, name):
    with tarfile.open(out / manifest["bundle"]) as tar:
        return tar.extractfile(f"relay-{manifest['board']}/{name}").read().decode()


def accepted_tcp_ports(nft):
    """The TCP ports relay.nft's Wi-Fi chain accepts; the chain must end by dropping the rest."""
    chain = nft.split("chain wifi_in {", 1)[1].split("}\n", 1)[0]
    assert chain.rstrip().splitlines()[-1].strip() == "drop"
    ports = set()
    for m in re.finditer(r"tcp dport \{?([\d, ]+)\}? accept", chain):
        ports |= {int(x) for x in m.group(1).split(",")}
    return ports


@pytest.mark.parametrize("board", ["rpi-4", "rpi-zero-2w"])
def test_a_linux_board_from_a_fresh_site_serves_the_admin_page_on_its_wired_side(board, tmp_path):
    s = site(tmp_path)
    manifest, cfg = built(board, s, tmp_path / "out")
    assert cfg["status"] == {"enabled": True, "host": "0.0.0.0", "port": 8081}
    assert cfg["wifi"] == {"side": True, "address": "192.168.4.1", "subnet": "192.168.4.0/24"}  # the side refused
    assert not cfg["portal"].get("admin_on_wifi")
    # One password for the site, made once and written into it: the next build (and every relay) keeps it.
    pw = cfg["portal"]["admin_password"]
    assert len(pw) == 12 and f'password = "{pw}"' in s.read_text()
    assert built(board, s, tmp_path / "again")[1]["portal"]["admin_password"] == pw
    assert manifest["admin"].startswith("http://<the board's wired or uplink address>:8081/admin")
    ports = accepted_tcp_ports(bundle_file(tmp_path / "out", manifest, "wifi/relay.nft"))
    assert 80 in ports and 8081 not in ports, ports  # phones reach the portal, never the status port


def test_openwrt_firewall_keeps_the_status_port_from_the_wifi(tmp_path):
    manifest, cfg = built("gl-mt300n-v2", site(tmp_path), tmp_path / "out")
    assert cfg["status"]["host"] == "0.0.0.0" and cfg["wifi"]["side"] is True
    uci = bundle_file(tmp_path / "out", manifest, "wifi/relay.uci")
    assert "set firewall.relay.input='REJECT'" in uci
    opened = re.findall(r"set firewall\.relay_\w+\.dest_port='([^']*)'", uci)
    assert opened and all("8081" not in p.split() for p in opened), opened


def test_loopback_and_a_site_password(tmp_path):
    s = site(tmp_path, 'side = "loopback"\npassword = "our own admin pw"')
    manifest, cfg = built("rpi-4", s, tmp_path / "out")
    assert cfg["status"] == {"enabled": True, "host": "127.0.0.1", "port": 8081}
    assert cfg["portal"]["admin_password"] == "our own admin pw"
    assert manifest["admin"] == "http://127.0.0.1:8081/admin"


@pytest.mark.parametrize("board", ["esp32-generic", "pico-w"])
def test_a_micropython_board_serves_none_unless_the_site_asks_for_the_wifi(board, tmp_path):
    manifest, cfg = built(board, site(tmp_path), tmp_path / "out")
    assert "status" not in cfg and not cfg["portal"].get("admin_on_wifi") and not cfg["portal"].get("admin_password")
    assert manifest["admin"] is None
    manifest, cfg = built(board, site(tmp_path, 'side = "wifi"'), tmp_path / "wifi")
    assert cfg["portal"]["admin_on_wifi"] is True and "status" not in cfg
    assert "192.168.4.1/admin" in manifest["admin"] and "in the clear" in manifest["admin"]
    assert any("crosses the open air" in n for n in manifest["notes"])  # said when building, too


def test_wrong_keys_and_values_are_named(tmp_path):
    r = boards.load("rpi-4", str(site(tmp_path, 'sid = "wired"')))
    assert any('admin.sid: unknown key (did you mean "side"?)' in str(p) for p in r.problems), r.problems
    r = boards.load("rpi-4", str(site(tmp_path, 'side = "wird"')))
    assert any('did you mean "wired"' in str(p) and "site.toml:" in str(p) for p in r.problems), r.problems
    with pytest.raises(CliError, match="public relay puts the admin page on the internet"):
        build_board("public", site(tmp_path, 'side = "wired"'), tmp_path / "out")


def test_a_board_port_on_the_status_port_is_named(tmp_path):
    prof = tmp_path / "b.toml"
    prof.write_text('extends = "rpi-4"\n[relay]\nhttp_port = 8081\n')
    r = boards.load(str(prof), str(site(tmp_path)))
    assert any("admin.side" in str(p) and "relay.http_port" in str(p) for p in r.problems), r.problems
    assert not boards.load(str(prof), str(site(tmp_path, 'side = "off"'))).problems
