"""relayctl deploy through mpremote against the MicroPython unix port on a pty,
with a real build's filesystem image mounted as the board's /flash."""

import hashlib
import json
import shutil

import pytest
from littlefs import LittleFS

from relayctl import paths
from tests.flash.flashkit import relayctl
from tests.sim.mp_board import MPBoard


def lfs(path, geometry):
    fs = LittleFS(block_size=4096, block_count=geometry["block_count"], read_size=32, prog_size=32,
                  lookahead_size=32, mount=False)
    fs.context.buffer[:] = path.read_bytes()
    fs.mount()
    return fs


def read(fs, name):
    with fs.open(name, "rb") as f:
        return f.read()


@pytest.fixture
def board(esp32_build, tmp_path):
    """A board that runs an older relay: one file differs, one stale file, its own SSID and passwords."""
    man = json.loads((esp32_build / "manifest.json").read_text())
    img = tmp_path / "board.img"
    shutil.copy(esp32_build / man["filesystem"]["image"], img)
    fs = lfs(img, man["filesystem"])
    cfg = json.loads(read(fs, "config.json"))
    cfg["wifi"]["ssid"] = "relay-B2C3"
    cfg["portal"]["admin_password"] = "adminADMIN23"
    cfg["socks"]["auth"] = "password"
    cfg["socks"]["users"] = [{"user": "relay", "pass": "proxyPASS2"}]
    with fs.open("config.json", "wb") as f:
        f.write((json.dumps(cfg, indent=1, sort_keys=True) + "\n").encode())
    with fs.open("relay/stats.mpy", "wb") as f:
        f.write(b"M\x06\x00\x1f old build")
    with fs.open("relay/stale.py", "wb") as f:
        f.write(b"raise ImportError('stale')\n")
    fs.unmount()
    img.write_bytes(bytes(fs.context.buffer))
    b = MPBoard(img, paths.micropython_binary())
    yield b, img, man
    b.close()


def test_deploy_sends_only_what_changed_and_waits_for_ready(board, esp32_build):
    b, img, man = board
    r = relayctl("deploy", "esp32-generic", "--port", b.path, "--image", str(esp32_build), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "keeping this board's own wifi.ssid, portal.admin_password, socks.auth, socks.users" in r.stdout
    sent = sorted(line.split()[1] for line in r.stdout.splitlines() if line.startswith("sending "))
    assert sent == ["relay/stats.mpy"]
    assert "removing relay/stale.py" in r.stdout
    fs = lfs(img, man["filesystem"])
    cfg_bytes = read(fs, "config.json")
    assert f"relay ready version=0.1.0 config={hashlib.sha256(cfg_bytes).hexdigest()[:12]}" in r.stdout
    for name, digest in man["filesystem"]["files"].items():
        if name != "config.json":
            assert hashlib.sha256(read(fs, name)).hexdigest() == digest, name
    assert "stale.py" not in fs.listdir("relay")
    cfg = json.loads(cfg_bytes)
    assert cfg["wifi"]["ssid"] == "relay-B2C3" and cfg["socks"]["users"][0]["pass"] == "proxyPASS2"
    # Again: nothing left to send; the relay (running since the reset) is interrupted and restarted.
    r = relayctl("deploy", "esp32-generic", "--port", b.path, "--image", str(esp32_build), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 file(s) sent, 0 removed" in r.stdout


def test_deploy_to_a_missing_port_says_what_to_do(esp32_build):
    r = relayctl("deploy", "esp32-generic", "--port", "/dev/ttyRELAYTEST9", "--image", str(esp32_build))
    assert r.returncode == 1 and "cannot open /dev/ttyRELAYTEST9" in r.stderr and "dialout" in r.stderr


def test_deploy_refuses_another_boards_build(esp32_build):
    r = relayctl("deploy", "esp32-s3", "--port", "/dev/ttyRELAYTEST9", "--image", str(esp32_build))
    assert r.returncode == 1 and "is a build of esp32-generic, not esp32-s3" in r.stderr
