"""Files that hold secrets are their owner's alone (issue 13 "Also"): the build's outputs and the Linux
bundle's config.json (installed 0600, handed to systemd's dynamic user as a credential), the Wi-Fi configs
in it, the site file, printed cards. flashing.md lists them."""

import csv
import shutil
import stat
import subprocess
import tarfile

import pytest

from relayctl.images import build_board
from relayctl.cmd_site import EXAMPLE
from tests.flash.flashkit import relayctl


def private(path):
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


@pytest.fixture
def site(tmp_path):
    p = tmp_path / "site.toml"
    p.write_text(EXAMPLE.replace('# user = "relay"', 'user = "relay"')
                 .replace('# password = "choose a long one"', 'password = "secret-pass"'))
    return p


@pytest.mark.parametrize("board", ["rpi-4", "esp32-generic"])
def test_build_outputs_are_private(board, site, tmp_path):
    out = tmp_path / "out"
    m = build_board(board, site, out)
    for name in m["files"]:
        assert private(out / name), name
    if board != "rpi-4":
        return
    with tarfile.open(out / m["bundle"]) as tar:
        modes = {t.name.split("/", 1)[1]: t.mode for t in tar.getmembers() if "/" in t.name}
        assert modes["config.json"] == 0o600
        assert modes["wifi/hostapd.conf"] == 0o600
        unit = tar.extractfile("relay-rpi-4/relay.service").read().decode()
        install = tar.extractfile("relay-rpi-4/install.sh").read().decode()
        tar.extractall(tmp_path / "x", filter="data")
    assert "install -m 0600" in unit and "/opt/relay/config.json /var/lib/relay/config.json" in unit
    assert "--config /var/lib/relay/config.json" in unit and "DynamicUser=yes" in unit
    assert "chmod 600 /opt/relay/config.json" in install
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "x/relay-rpi-4/relay.service")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "relay.service" not in r.stderr, r.stderr


def test_install_makes_an_older_world_readable_config_private(tmp_path):
    root = tmp_path / "sdcard"
    (root / "opt/relay").mkdir(parents=True)
    old = root / "opt/relay/config.json"
    old.write_text("{}")
    old.chmod(0o644)  # what an older version installed
    out = tmp_path / "out"
    build_board("rpi-4", None, out)
    r = relayctl("install", "rpi-4", "--root", str(root), "--image", str(out))
    assert r.returncode == 0, r.stderr
    assert private(old) and old.read_bytes() == (out / "config.json").read_bytes()


def test_site_init_and_cards_are_private(tmp_path):
    r = relayctl("site", "init", str(tmp_path / "site.toml"))
    assert r.returncode == 0, r.stderr
    assert private(tmp_path / "site.toml")
    inv = tmp_path / "inventory.csv"
    with open(inv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["mac", "board", "ssid", "wifi_password", "proxy_host", "proxy_port",
                                          "proxy_user", "proxy_password"])
        w.writeheader()
        w.writerow({"mac": "24:0a:c4:00:00:01", "board": "esp32-generic", "ssid": "relay-1",
                    "wifi_password": "kokterek2022", "proxy_host": "192.168.4.1", "proxy_port": "1080",
                    "proxy_user": "relay", "proxy_password": "abcDEF2345"})
    r = relayctl("cards", str(inv), "--out", str(tmp_path / "cards"))
    assert r.returncode == 0, r.stderr
    cards = list((tmp_path / "cards").glob("card-*"))
    assert cards and all(private(p) for p in cards), [(p.name, oct(p.stat().st_mode)) for p in cards]
