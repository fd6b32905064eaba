"""A MicroPython board learns its own addresses from the interfaces it brings up (platform/own.py),
run by the real interpreter against the stand-in `network` module: the access point's address at
once, the Wi-Fi uplink's once its DHCP lease arrives."""

import json
import os
import subprocess

from tests.platform.conftest import HERE, micropython, mp_path
from tests.platform.platkit import config

AP = {"enabled": True, "ssid": "relay", "security": "open", "address": "192.168.4.1", "subnet": "192.168.4.0/24"}
UPLINK = {"kind": "wifi-sta", "ssid": "home", "passphrase": "secretpass1", "retry": 0.5, "connect_timeout": 3}


def test_board_learns_the_ap_and_the_uplink_addresses(tmp_path):
    c = tmp_path / "config.json"
    c.write_text(json.dumps(config(wifi=AP, uplink=UPLINK)))
    env = dict(os.environ, MICROPYPATH=mp_path("esp32"), NETSTUB_RADIO="esp32", NETSTUB_API="new")
    r = subprocess.run([micropython(), os.path.join(HERE, "mp_own.py"), str(c), "3500"], capture_output=True,
                       text=True, timeout=40, env=env, cwd=str(tmp_path))
    out = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert r.returncode == 0 and out, r.stdout + r.stderr
    got = json.loads(out[0][7:])
    seen = [s[1] for s in got["seen"]]
    assert seen[0] == ["192.168.4.1"], got  # before the uplink has a lease: the access point's address
    assert seen[-1] == ["10.0.0.23", "192.168.4.1"], got  # the station's lease, learned without a restart
    assert got["own"] == "local network"  # a private lease: the builtin rule names it first
