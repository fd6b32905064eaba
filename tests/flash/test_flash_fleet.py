"""`relayctl flash` of several boards from one build that reports to a fleet: each board gets its own fleet
name (the build's + its MAC suffix, like its SSID) and its own broker login and command key, recorded in the
inventory; `fleet broker-config --inventory` makes their accounts, and a real mosquitto lets each board in
with its own login. Boards: the simulated ESP32 ROM loader (tests/sim/esp_rom.py)."""

import json
import shutil
import tempfile
from pathlib import Path

from relayctl.cmd_site import EXAMPLE
from relayctl.fleet import keys
from tests.fleet.fleetkit import Listener, Mosquitto, need_mosquitto
from tests.flash.flashkit import relayctl
from tests.flash.test_flash import read_fs, rows
from tests.helpers.relayproc import free_port
from tests.sim.esp_rom import ROMServer, SimChip

KEY = "5e" * 32
MACS = ("240ac4000a01", "240ac4000a02")


def fleet_site(tmp_path, port):
    p = tmp_path / "site.toml"
    block = f'broker = "127.0.0.1"\nport = {port}\nname = "almaty"\nkey = "{KEY}"\nrelays = []\n'
    p.write_text(EXAMPLE.replace("\n[fleet]\n", "\n[fleet]\n" + block))
    return p


def test_boards_of_one_batch_get_their_own_fleet_name_and_login(micropython_esp32, tmp_path):
    need_mosquitto()
    port = free_port()
    site = fleet_site(tmp_path, port)
    chips = [SimChip("esp32", mac=bytes.fromhex(m)) for m in MACS]
    sims = [ROMServer(c) for c in chips]
    inv = tmp_path / "inventory.csv"
    try:
        r = relayctl("flash", "esp32-generic", "--ports", ",".join(s.url for s in sims), "--site", str(site),
                     "--micropython", str(micropython_esp32), "--out", str(tmp_path / "build"), "--no-stub",
                     "--no-boot-check", "--inventory", str(inv), timeout=300)
    finally:
        for s in sims:
            s.close()
    assert r.returncode == 0, r.stdout + r.stderr
    by_mac = {x["mac"]: x for x in rows(inv)}
    names = sorted(x["fleet_name"] for x in by_mac.values())
    assert names == ["almaty-0A01", "almaty-0A02"]
    key = bytes.fromhex(KEY)
    for chip, mac in zip(chips, MACS):
        fs = read_fs(chip.flash)
        with fs.open("config.json", "rb") as f:
            fl = json.loads(f.read())["fleet"]
        name = by_mac[":".join(mac[i:i + 2] for i in range(0, 12, 2))]["fleet_name"]
        assert fl["name"] == fl["user"] == name
        assert fl["password"] == keys.password(key, name)
        assert fl["command_key"] == keys.command_key(key, name)
    # The broker gets an account for each board from the inventory, and lets both in at once.
    # Under /tmp itself: as root mosquitto runs as its own user, who cannot enter pytest's 0700 directory.
    broker_dir = Path(tempfile.mkdtemp(prefix="relay-flash-fleet-"))
    clients = []
    m = None
    try:
        res = relayctl("fleet", "broker-config", "--site", str(site), "--inventory", str(inv), "--out",
                       str(broker_dir), "--listen", "127.0.0.1", "--port", str(port))
        assert res.returncode == 0, res.stdout + res.stderr
        assert "2 relays" in res.stdout
        m = Mosquitto(broker_dir / "mosquitto.conf", port, tmp_path / "mosquitto.log")
        m.start()
        for name in names:
            c = Listener(port, name, keys.password(key, name), [], client_id=name)
            clients.append(c)
            assert not c.rc.is_failure, (name, c.rc)
    finally:
        for c in clients:
            c.close()
        if m is not None:
            m.stop()
        shutil.rmtree(broker_dir, ignore_errors=True)


def test_a_fleet_build_without_the_site_file_is_refused_before_writing(micropython_esp32, tmp_path):
    site = fleet_site(tmp_path, 1883)
    build = tmp_path / "build"
    assert relayctl("build", "esp32-generic", "--site", str(site), "--micropython", str(micropython_esp32),
                    "--out", str(build), timeout=300).returncode == 0
    chip = SimChip("esp32", mac=bytes.fromhex(MACS[0]))
    with ROMServer(chip) as sim:
        r = relayctl("flash", "esp32-generic", "--port", sim.url, "--image", str(build), "--no-stub",
                     "--no-boot-check", "--inventory", str(tmp_path / "inv.csv"))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "own fleet name and broker login" in r.stderr and "--site" in r.stderr
    assert chip.flash == b"\xff" * len(chip.flash)
