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
    b, img, man = make_board(esp32_build, tmp_path)
    yield b, img, man
    b.close()


def make_board(esp32_build, tmp_path, edit=None):
    """The board's image as the fixture describes it, edit(fs) applied, then the board started on it."""
    man = json.loads((esp32_build / "manifest.json").read_text())
    img = tmp_path / "board.img"
    shutil.copy(esp32_build / man["filesystem"]["image"], img)
    fs = lfs(img, man["filesystem"])
    cfg = json.loads(read(fs, "config.json"))
    cfg["wifi"]["ssid"] = "relay-B2C3"
    cfg["wifi"]["security"] = "wpa2"  # flashed from a site with a passphrase; this build's site has none
    cfg["wifi"]["passphrase"] = "cardPASS2345"
    cfg["portal"]["admin_password"] = "adminADMIN23"
    cfg["socks"]["auth"] = "password"
    cfg["socks"]["users"] = [{"user": "relay", "pass": "proxyPASS2"}]
    with fs.open("config.json", "wb") as f:
        f.write((json.dumps(cfg, indent=1, sort_keys=True) + "\n").encode())
    with fs.open("relay/proto/stats.mpy", "wb") as f:
        f.write(b"M\x06\x00\x1f old build")
    with fs.open("relay/stale.py", "wb") as f:
        f.write(b"raise ImportError('stale')\n")
    if edit is not None:
        edit(fs)
    fs.unmount()
    img.write_bytes(bytes(fs.context.buffer))
    return MPBoard(img, paths.micropython_binary()), img, man


def test_deploy_sends_only_what_changed_and_waits_for_ready(board, esp32_build):
    b, img, man = board
    r = relayctl("deploy", "esp32-generic", "--port", b.path, "--image", str(esp32_build), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("keeping this board's own wifi.ssid, wifi.security, wifi.passphrase, portal.admin_password, socks.auth, "
            "socks.users (its card stays true)") in r.stdout
    sent = sorted(line.split()[1] for line in r.stdout.splitlines() if line.startswith("sending "))
    assert sent == ["relay/proto/stats.mpy"]
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
    # Every value the printed card shows is the board's still: the Wi-Fi it opens, and how.
    assert (cfg["wifi"]["security"], cfg["wifi"]["passphrase"]) == ("wpa2", "cardPASS2345")
    assert not [n for n in fs.listdir("/") if n.endswith(".new")] and "stats.mpy.new" not in fs.listdir("relay/proto")
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


def test_a_build_that_moves_what_the_card_shows_is_refused(esp32_build, tmp_path):
    """A build whose proxy address differs would leave the board's card pointing nowhere: nothing is sent."""
    def flashed_elsewhere(fs):
        cfg = json.loads(read(fs, "config.json"))
        cfg["wifi"]["address"], cfg["wifi"]["subnet"] = "10.4.0.1", "10.4.0.0/24"  # what it was flashed with
        with fs.open("config.json", "wb") as f:
            f.write((json.dumps(cfg, indent=1, sort_keys=True) + "\n").encode())

    b, img, man = make_board(esp32_build, tmp_path, flashed_elsewhere)
    try:
        before = img.read_bytes()
        r = relayctl("deploy", "esp32-generic", "--port", b.path, "--image", str(esp32_build), "--no-boot-check",
                     timeout=120)
    finally:
        b.close()
    assert r.returncode == 1, r.stdout
    assert "changes what the board's printed card shows (proxy_host 10.4.0.1 -> 192.168.4.1)" in r.stderr
    assert "nothing was sent" in r.stderr and r.stderr.strip().count("\n") == 0
    assert img.read_bytes() == before


def test_a_silent_port_fails_within_seconds(esp32_build):
    """A port nothing answers on (a modem's diag port, a board in download mode) is given up on quickly."""
    import os
    import time
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        t0 = time.monotonic()
        r = relayctl("deploy", "esp32-generic", "--port", os.ttyname(slave), "--image", str(esp32_build), timeout=60)
        took = time.monotonic() - t0
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 1 and "REPL does not answer" in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert took < 30, took


def test_a_board_that_vanishes_mid_deploy_gets_one_line_and_keeps_what_it_ran(esp32_build, tmp_path):
    import os
    import subprocess
    import sys

    old = {}

    def older_relay(fs):
        for name in sorted(fs.listdir("relay/proto"))[:12]:  # many files to send
            path = "relay/proto/" + name
            old[path] = b"# old build of " + path.encode() + b"\n"
            with fs.open(path, "wb") as f:
                f.write(old[path])

    b, img, man = make_board(esp32_build, tmp_path, older_relay)
    env = dict(os.environ, PYTHONPATH=str(paths.ROOT / "host_tools"), NO_COLOR="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "relayctl.cli", "deploy", "esp32-generic", "--port", b.path,
                             "--image", str(esp32_build)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    sent = 0
    for line in proc.stdout:
        if line.startswith(b"sending "):
            sent += 1
            if sent == 3:
                b.close()  # unplugged while the third file goes over
                break
    else:
        b.close()
    rest, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 1, err
    assert err.strip().count("\n") == 0, err  # one line, no traceback
    assert "the board went away while sending relay/" in err and "nothing half-written is active" in err
    assert "run deploy again" in err
    fs = lfs(img, man["filesystem"])
    for path, data in old.items():  # every file it ran is there, whole and unchanged
        assert read(fs, path) == data, path
    fs.unmount()
    # Plugged in again: deploy finishes, and what the cut-off run left under .new names is gone.
    b2 = MPBoard(img, paths.micropython_binary())
    try:
        r = relayctl("deploy", "esp32-generic", "--port", b2.path, "--image", str(esp32_build), "--no-boot-check",
                     timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        b2.close()
    fs = lfs(img, man["filesystem"])
    assert not [n for n in fs.listdir("relay") if n.endswith(".new")]
    for name, digest in man["filesystem"]["files"].items():
        if name.startswith("relay/"):
            assert hashlib.sha256(read(fs, name)).hexdigest() == digest, name


def test_a_board_flashed_without_an_admin_page_takes_the_sites_password_when_the_build_serves_one():
    """An ESP32 flashed when its build served no admin page has none; a build whose site now opens the page on
    the Wi-Fi brings the site's password, or the page would answer "off" to everyone."""
    from relayctl.cmd_deploy import keep_board_values

    new = json.dumps({"portal": {"admin_password": "site-admin-pw", "admin_on_wifi": True}, "wifi": {"ssid": "relay"}})
    got, kept, _ = keep_board_values(new, json.dumps({"portal": {"admin_password": ""}, "wifi": {"ssid": "relay-B2C3"}}))
    assert json.loads(got)["portal"]["admin_password"] == "site-admin-pw" and kept == ["wifi.ssid"]
    got, kept, _ = keep_board_values(new, json.dumps({"portal": {"admin_password": "boardADMIN23"}}))
    assert json.loads(got)["portal"]["admin_password"] == "boardADMIN23"  # a board's own stays, as its card's
