"""The mesh key reaches wpa_supplicant exactly as the site file has it (OpenWrt's uci takes it literally, so a
key wpa_supplicant read differently would keep Linux and OpenWrt relays of one mesh apart), and a key
wpa_supplicant cannot carry is refused in the site check. wpa_supplicant's "none" driver in a namespace this
test makes: nothing is sent anywhere."""

import re
import shutil
import subprocess
import time

import pytest

from relayctl import boards
from relayctl.mesh import files_for
from tests.mesh.test_mesh_render import SITE, _ns

KEY = "mesh key \\ with # and ' in it"  # a backslash, a hash, a single quote: all fine in uci's quoting too


def _site(tmp_path, key, mode="80211s"):
    site = tmp_path / "site.toml"
    toml_key = key.replace("\\", "\\\\").replace('"', '\\"')
    site.write_text(SITE.replace('key = "a long shared mesh secret"', f'key = "{toml_key}"')
                    .replace("channel = 36", f'channel = 36\nmode = "{mode}"'))
    return site


@pytest.mark.parametrize("mode,field", [("80211s", "sae_password"), ("adhoc", "PSK (ASCII passphrase)")])
def test_wpa_supplicant_reads_the_key_the_site_file_has(tmp_path, mode, field):
    if not shutil.which("wpa_supplicant"):
        pytest.skip("wpa_supplicant not installed (make setup installs wpasupplicant)")
    site = _site(tmp_path, KEY, mode)
    text = files_for(boards.load_or_fail("rpi-4", str(site), "roof"), False)["wpa_supplicant-mesh.conf"]
    text = text.replace("DIR=/run/wpa_supplicant", "DIR=" + str(tmp_path / "ctrl"))
    conf = tmp_path / "mesh.conf"
    conf.write_text(text)
    net = _ns(tmp_path)
    try:
        net.link("a", "wlan1", "b", "x1")
        # -ddd -K: the parsed key in the debug output, as hex bytes
        p = net.start("wpa", "a", ["wpa_supplicant", "-D", "none", "-i", "wlan1", "-c", str(conf), "-ddd", "-K"],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1)
        net.stop("wpa")
        out = p.stdout.read().decode(errors="replace")
    finally:
        net.close()
    m = re.search(re.escape(field) + r" - hexdump_ascii\(len=(\d+)\):\n((?:\s+(?:[0-9a-f]{2} )+.*\n)+)", out)
    assert m, out[-3000:]
    got = bytes.fromhex("".join(re.findall(r"^\s+((?:[0-9a-f]{2} )+)", m.group(2), re.M)).replace(" ", ""))
    assert got.decode() == KEY


def test_a_key_with_a_double_quote_is_refused_in_the_site_check(tmp_path):
    """wpa_supplicant ends a quoted value at its last quote and takes no escapes: a key with " cannot be
    written so that it reads it back."""
    r = boards.load("rpi-4", str(_site(tmp_path, 'a long mesh "key" here')), "roof")
    msgs = [str(p) for p in r.errors]
    assert any("mesh.key" in m and '"' in m for m in msgs), msgs
