"""relayctl flash against a simulated ESP32 ROM loader (tests/sim/esp_rom.py) speaking
esptool's serial protocol, with a real MicroPython firmware in the image."""

import csv
import hashlib
import json

import pytest
from tests.flash.flashkit import make_build, relayctl
from littlefs import LittleFS
from tests.sim.esp_rom import PtyROM, ROMServer, SimChip

FS_OFFSET, FS_SIZE, IMG_OFFSET, FW_OFFSET = 0x200000, 0x200000, 0x0, 0x1000


def read_fs(flash):
    fs = LittleFS(block_size=4096, block_count=FS_SIZE // 4096, read_size=32, prog_size=32, lookahead_size=32,
                  mount=False)
    fs.context.buffer[:] = flash[FS_OFFSET:FS_OFFSET + FS_SIZE]
    fs.mount()
    return fs


def rows(path):
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def flash(port, build, inv, *extra):
    return relayctl("flash", "esp32-generic", "--port", port, "--image", str(build), "--no-stub",
                    "--no-boot-check", "--inventory", str(inv), *extra)


def test_flash_writes_the_image_and_records_the_board(esp32_build, micropython_esp32, tmp_path):
    chip = SimChip("esp32", "4MB", mac=bytes.fromhex("240ac4a1b2c3"))
    inv = tmp_path / "inventory.csv"
    with ROMServer(chip) as sim:
        r = flash(sim.url, esp32_build, inv)
    assert r.returncode == 0, r.stderr
    assert "ESP32-D0WDQ6" in r.stdout and "verified" in r.stdout
    merged = (esp32_build / "relay-esp32-generic-flash.bin").read_bytes()
    # Bootloader, partition table and app: the real firmware, byte for byte, at the profile's offsets.
    fw = micropython_esp32.read_bytes()
    assert chip.flash[FW_OFFSET:FW_OFFSET + len(fw)] == fw
    assert chip.flash[:FW_OFFSET] == b"\xff" * FW_OFFSET
    assert chip.flash[:FS_OFFSET] == merged[:FS_OFFSET]
    (row,) = rows(inv)
    assert row["mac"] == "24:0a:c4:a1:b2:c3" and row["board"] == "esp32-generic" and row["chip"] == "esp32"
    assert row["ssid"] == "relay-B2C3"
    assert len(row["proxy_password"]) == 10
    # An ESP32 has no wired side: this build serves no admin page, so no password promises one; said plainly.
    assert row["admin_password"] == ""
    assert "admin page: none on this build (esp32-generic has no wired side)" in r.stdout + r.stderr
    assert 'side = "wifi"' in r.stdout + r.stderr and "in the clear" in r.stdout + r.stderr
    # The row's hashes are what the board holds.
    assert hashlib.sha256(chip.flash[IMG_OFFSET:IMG_OFFSET + len(merged)]).hexdigest() == row["firmware_sha256"]
    fs = read_fs(chip.flash)
    with fs.open("config.json", "rb") as f:
        text = f.read()
    assert hashlib.sha256(text).hexdigest() == row["config_sha256"]
    cfg = json.loads(text)
    assert cfg["wifi"]["ssid"] == "relay-B2C3"
    assert cfg["socks"]["auth"] == "password"
    assert cfg["socks"]["users"] == [{"user": "relay", "pass": row["proxy_password"]}]
    assert cfg["portal"].get("admin_password", "") == ""
    assert sorted(fs.listdir("/")) == ["config.json", "main.py", "relay", "umqtt"]
    # Everything but config.json is the build's filesystem, file for file.
    man = json.loads((esp32_build / "manifest.json").read_text())
    for name, digest in man["filesystem"]["files"].items():
        if name != "config.json":
            with fs.open(name, "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == digest, name


def test_flash_over_a_pty(esp32_build, tmp_path):
    chip = SimChip("esp32", "4MB")
    sim = PtyROM(chip)
    try:
        r = flash(sim.path, esp32_build, tmp_path / "inv.csv")
    finally:
        sim.close()
    assert r.returncode == 0, r.stderr
    assert len(rows(tmp_path / "inv.csv")) == 1


def test_wrong_chip_is_refused_and_nothing_written(esp32_build, tmp_path):
    chip = SimChip("esp32c3", "4MB")
    inv = tmp_path / "inventory.csv"
    with ROMServer(chip) as sim:
        r = flash(sim.url, esp32_build, inv)
    assert r.returncode == 1
    assert "the chip is ESP32C3 but profile esp32-generic is for ESP32" in r.stderr
    assert "--force" in r.stderr
    assert chip.flash == b"\xff" * len(chip.flash)
    assert not inv.exists()


def test_wrong_flash_size_is_refused(esp32_build, tmp_path):
    chip = SimChip("esp32", "2MB")
    with ROMServer(chip) as sim:
        r = flash(sim.url, esp32_build, tmp_path / "inv.csv")
    assert r.returncode == 1
    assert "the flash is 2MB but profile esp32-generic expects 4MB" in r.stderr
    assert chip.flash == b"\xff" * len(chip.flash)


def test_without_no_stub_the_message_says_what_to_do(esp32_build, tmp_path):
    with ROMServer(SimChip("esp32")) as sim:
        r = relayctl("flash", "esp32-generic", "--port", sim.url, "--image", str(esp32_build), "--no-boot-check",
                     "--inventory", str(tmp_path / "inv.csv"))
    assert r.returncode == 1
    assert "flasher stub" in r.stderr and "retry with --no-stub" in r.stderr


def test_link_dropping_mid_write_gives_a_clear_error_and_no_row(esp32_build, tmp_path):
    chip = SimChip("esp32", drop_after_blocks=20)
    inv = tmp_path / "inventory.csv"
    with ROMServer(chip) as sim:
        r = flash(sim.url, esp32_build, inv)
    assert r.returncode == 1
    assert "the link to the board broke while writing" in r.stderr
    assert "flash it again" in r.stderr
    assert chip.blocks_written == 20
    assert not inv.exists()


def test_bad_md5_is_caught(esp32_build, tmp_path):
    inv = tmp_path / "inventory.csv"
    with ROMServer(SimChip("esp32", corrupt_md5=True)) as sim:
        r = flash(sim.url, esp32_build, inv)
    assert r.returncode == 1
    assert "verification failed" in r.stderr
    assert not inv.exists()


def test_boot_check_without_a_ready_line_records_nothing(esp32_build, tmp_path):
    """The simulator has no CPU: with the boot check on, the write verifies but no relay answers."""
    inv = tmp_path / "inventory.csv"
    with ROMServer(SimChip("esp32")) as sim:
        r = relayctl("flash", "esp32-generic", "--port", sim.url, "--image", str(esp32_build), "--no-stub",
                     "--boot-timeout", "1", "--inventory", str(inv))
    assert r.returncode == 1
    assert "written and verified" in r.stdout
    assert "no output from the board" in r.stderr and "--no-boot-check" in r.stderr
    assert not inv.exists()


def test_batch_three_boards_one_failing(esp32_build, tmp_path):
    chips = [SimChip("esp32", mac=bytes.fromhex("240ac4000001")),
             SimChip("esp32", mac=bytes.fromhex("240ac4000002"), drop_after_blocks=5),
             SimChip("esp32", mac=bytes.fromhex("240ac4000003"))]
    sims = [ROMServer(c) for c in chips]
    inv = tmp_path / "inventory.csv"
    try:
        r = relayctl("flash", "esp32-generic", "--ports", ",".join(s.url for s in sims), "--image", str(esp32_build),
                     "--no-stub", "--no-boot-check", "--inventory", str(inv))
    finally:
        for s in sims:
            s.close()
    assert r.returncode == 1
    got = rows(inv)
    assert sorted(x["mac"] for x in got) == ["24:0a:c4:00:00:01", "24:0a:c4:00:00:03"]
    assert sorted(x["ssid"] for x in got) == ["relay-0001", "relay-0003"]
    assert got[0]["proxy_password"] != got[1]["proxy_password"]
    assert r.stderr.count("relayctl: ") == 1 and sims[1].url in r.stderr and "link to the board broke" in r.stderr
    assert "2 of 3 boards flashed; failed: " + sims[1].url in r.stdout
    by_mac = {x["mac"]: x for x in got}  # boards finish in any order: pair rows with chips by MAC
    for c, mac in ((chips[0], "24:0a:c4:00:00:01"), (chips[2], "24:0a:c4:00:00:03")):
        fs = read_fs(c.flash)
        with fs.open("config.json", "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == by_mac[mac]["config_sha256"]


def test_reflashing_a_board_replaces_its_row(esp32_build, tmp_path):
    chip = SimChip("esp32")
    inv = tmp_path / "inventory.csv"
    with ROMServer(chip) as sim:
        assert flash(sim.url, esp32_build, inv).returncode == 0
        first = rows(inv)[0]
        assert flash(sim.url, esp32_build, inv).returncode == 0
    (second,) = rows(inv)
    assert second["proxy_password"] != first["proxy_password"]
    assert (inv.stat().st_mode & 0o777) == 0o600


def test_a_damaged_build_is_refused_before_connecting(tmp_path, micropython_esp32):
    build = make_build(tmp_path / "b", micropython_esp32)
    merged = build / "relay-esp32-generic-flash.bin"
    data = bytearray(merged.read_bytes())
    data[0x1010] ^= 1
    merged.write_bytes(data)
    r = relayctl("flash", "esp32-generic", "--port", "socket://127.0.0.1:9", "--image", str(build), "--no-stub")
    assert r.returncode == 1
    assert "sha256 does not match manifest.json" in r.stderr


@pytest.mark.parametrize("port,needle", [("/dev/ttyRELAYTEST0", "no such port"),
                                         ("socket://127.0.0.1:1", "connection refused")])
def test_port_errors_say_what_to_do(esp32_build, port, needle):
    r = relayctl("flash", "esp32-generic", "--port", port, "--image", str(esp32_build), "--no-stub")
    assert r.returncode == 1
    assert needle in r.stderr


def test_flash_builds_from_the_site_file(micropython_esp32, tmp_path):
    site = tmp_path / "site.toml"
    assert relayctl("site", "init", str(site)).returncode == 0
    text = site.read_text().replace('ssid = "relay" ', 'ssid = "almaty"', 1)
    site.write_text(text)
    chip = SimChip("esp32", mac=bytes.fromhex("240ac4beef01"))
    inv = tmp_path / "inventory.csv"
    with ROMServer(chip) as sim:
        r = relayctl("flash", "esp32-generic", "--port", sim.url, "--site", str(site), "--micropython",
                     str(micropython_esp32), "--out", str(tmp_path / "build"), "--no-stub", "--no-boot-check",
                     "--inventory", str(inv))
    assert r.returncode == 0, r.stdout + r.stderr
    (row,) = rows(inv)
    assert row["ssid"] == "almaty-EF01"
    fs = read_fs(chip.flash)
    with fs.open("config.json", "rb") as f:
        assert json.loads(f.read())["wifi"]["ssid"] == "almaty-EF01"


def test_another_boards_image_is_refused_before_connecting(esp32_build, tmp_path):
    chip = SimChip("esp32s3")
    inv = tmp_path / "inventory.csv"
    with ROMServer(chip) as sim:
        r = relayctl("flash", "esp32-s3", "--port", sim.url, "--image", str(esp32_build), "--no-stub",
                     "--no-boot-check", "--inventory", str(inv))
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "is a build of esp32-generic, not esp32-s3" in r.stderr
    assert chip.flash == b"\xff" * len(chip.flash) and not inv.exists()


def test_check_only_needs_no_stub_and_does_not_send_you_to_itself(tmp_path):
    """--check-only writes nothing: it works where the flasher stub cannot run, and its advice is not
    "run --check-only"."""
    chip = SimChip("esp32")
    with ROMServer(chip) as sim:
        r = relayctl("flash", "esp32-generic", "--port", sim.url, "--check-only", "--boot-timeout", "1")
    assert r.returncode == 1
    assert "flasher stub" not in r.stderr and "--no-stub" not in r.stderr, r.stderr
    assert "no output from the board within 1 s" in r.stderr
    assert "--check-only" not in r.stderr and "--no-boot-check" not in r.stderr
    assert chip.flash == b"\xff" * len(chip.flash)


def test_a_build_that_serves_the_admin_page_on_the_wifi_gets_a_password_per_board(micropython_esp32, tmp_path):
    from relayctl.cmd_site import EXAMPLE
    from relayctl.images import build_board

    site = tmp_path / "site.toml"
    site.write_text(EXAMPLE.replace('# side = "wired"', 'side = "wifi"'))
    build = tmp_path / "build"
    build_board("esp32-generic", site, build, micropython_esp32)
    inv = tmp_path / "inventory.csv"
    for mac in ("240ac4a1b2c3", "240ac4a1b2c4"):
        chip = SimChip("esp32", "4MB", mac=bytes.fromhex(mac))
        with ROMServer(chip) as sim:
            r = flash(sim.url, build, inv)
        assert r.returncode == 0, r.stderr
        assert "admin page: http://192.168.4.1/admin (over the Wi-Fi: the password crosses the air in the clear)" \
            in r.stdout + r.stderr
        fs = read_fs(chip.flash)  # kept while its file is open: littlefs-python frees its buffer with it
        with fs.open("config.json", "rb") as f:
            cfg = json.loads(f.read())
        assert cfg["portal"]["admin_on_wifi"] is True
        assert cfg["portal"]["admin_password"] == rows(inv)[-1]["admin_password"]
    a, b = rows(inv)
    assert len(a["admin_password"]) == 12 and a["admin_password"] != b["admin_password"]
