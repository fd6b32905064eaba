"""relayctl build: every shipped profile builds, manifests match files, images hold exactly the
firmware, builds are reproducible, and a built image boots the relay in the MicroPython unix port."""

import hashlib
import json
import socket
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from relayctl import boards, paths
from relayctl.images import build_board, fsimage
from relayctl.images.mpy import sources
from relayctl.cmd_site import EXAMPLE
from relayctl.errors import CliError

SHIPPED = sorted(p.stem for p in paths.BOARDS.glob("*.toml"))
HERE = Path(__file__).parent


def sha(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture
def site(tmp_path):
    p = tmp_path / "site.toml"
    p.write_text(EXAMPLE.replace('ssid = "relay"', 'ssid = "relay-test"')
                 .replace('# user = "relay"', 'user = "relay"')
                 .replace('# password = "choose a long one"', 'password = "secret-pass"')
                 .replace('# secrets = ["dd', 'secrets = ["dd')  # a secret made per build would differ
                 .replace('# password = "..."', 'password = "admin-pass"')  # [admin]: the same
                 .replace('# domain = "www.your-domain.org"', 'domain = "relay.example.org"')  # board public
                 .replace('# mask = "127.0.0.1:8443"', 'mask = "127.0.0.1:8443"'))
    return p


def expected_image_files():
    names = {"config.json"}
    for rel in sources(paths.FIRMWARE):
        names.add(rel[:-3] + ".mpy" if rel != "main.py" and rel.endswith(".py") else rel)
    return names


def check_manifest(out):
    m = json.loads((out / "manifest.json").read_text())
    on_disk = sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    assert sorted(m["files"]) == on_disk
    for name, f in m["files"].items():
        assert sha(out / name) == f["sha256"], name
        assert (out / name).stat().st_size == f["size"]
    return m


@pytest.mark.parametrize("board", SHIPPED)
def test_every_profile_builds_and_manifest_matches(board, site, tmp_path):
    out = tmp_path / "out"
    manifest = build_board(board, site, out)
    assert check_manifest(out) == manifest
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["socks"]["users"] == [{"user": "relay", "pass": "secret-pass"}]
    r = boards.load(board)
    if r["runtime"] == "micropython":
        geo = fsimage.Geometry.of(r)
        img = (out / manifest["filesystem"]["image"]).read_bytes()
        assert len(img) == r["flash.fs_size"]
        files = fsimage.read_image(img, geo)
        assert set(files) == expected_image_files()
        assert not any("_mtpump" in k for k in files)  # the native pump is for the machine that built it
        assert files["config.json"] == (out / "config.json").read_bytes()
        assert files["main.py"] == (paths.FIRMWARE / "main.py").read_bytes()
        assert all(files[k][:2] == b"M\x06" for k in files if k.endswith(".mpy"))
        assert cfg["wifi"]["ssid"] == "relay-test" and cfg["wifi"]["enabled"] is True
    else:
        with tarfile.open(out / manifest["bundle"]) as tar:
            names = set(tar.getnames())
            top = f"relay-{board}"
            assert {f"{top}/config.json", f"{top}/install.sh", f"{top}/firmware/main.py",
                    f"{top}/firmware/relay/server.py"} <= names
            assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
            # No module built here (it would not load on the board's Python): the source, built by install.sh
            assert not any("_mtpump" in n for n in names if n.startswith(f"{top}/firmware/"))
            assert {f"{top}/native/_mtpump.c", f"{top}/native/build.sh"} <= names
            if r["linux.service"] == "systemd":
                unit = tar.extractfile(f"{top}/relay.service").read().decode()
                assert "Restart=always" in unit and "--config /var/lib/relay/config.json" in unit
            if r["linux.service"] == "procd":
                init = tar.extractfile(f"{top}/relay.init").read().decode()
                assert "procd_set_param respawn" in init and "USE_PROCD=1" in init
            wifi = sorted(n[len(top) + 6:] for n in names if n.startswith(f"{top}/wifi/"))
            if not r["wifi.interface"]:
                assert wifi == []
            elif r["linux.service"] == "procd":
                assert wifi == ["address-plan.txt", "relay.uci"]
                assert "ssid='relay-test'" in tar.extractfile(f"{top}/wifi/relay.uci").read().decode()
            else:
                assert wifi == ["address-plan.txt", "dnsmasq.conf", "hostapd.conf", "relay.nft"]
                assert "ssid2=" + b"relay-test".hex() in tar.extractfile(f"{top}/wifi/hostapd.conf").read().decode()
                assert "redirect to :1081" in tar.extractfile(f"{top}/wifi/relay.nft").read().decode()
                assert cfg["transparent"] == {"enabled": True, "host": cfg["socks"]["host"]}


def test_builds_are_reproducible(site, tmp_path, esp32_firmware):
    for board, fw in (("esp32-generic", esp32_firmware), ("pico-w", None), ("rpi-4", None)):
        a = build_board(board, site, tmp_path / f"{board}-a", fw)
        b = build_board(board, site, tmp_path / f"{board}-b", fw)
        assert a == b
        assert (tmp_path / f"{board}-a" / "manifest.json").read_bytes() == (tmp_path / f"{board}-b" / "manifest.json").read_bytes()


def test_esp32_merged_image_from_real_firmware(site, tmp_path, esp32_firmware):
    out = tmp_path / "out"
    m = build_board("esp32-generic", site, out, esp32_firmware)
    fw = esp32_firmware.read_bytes()
    merged = (out / m["merged_image"]).read_bytes()
    img = (out / m["filesystem"]["image"]).read_bytes()
    assert len(merged) == 4 * 1024 * 1024
    assert merged[:0x1000] == b"\xff" * 0x1000
    assert merged[0x1000:0x1000 + len(fw)] == fw
    assert merged[0x200000:] == img
    assert m["flash_offsets"] == {m["merged_image"]: 0, m["filesystem"]["image"]: 0x200000}
    assert m["micropython"]["version"] == "1.16" and m["micropython"]["sha256"] == sha(esp32_firmware)
    assert any("older than 1.22" in n for n in m["notes"])
    # esptool reads the merged file back as a valid ESP32 image at the bootloader offset
    res = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32", "image-info", str(esp32_firmware)],
                         capture_output=True, text=True, timeout=60)
    assert "Chip ID: 0 (ESP32)" in res.stdout
    # remembered: the next build without --micropython uses the cached file
    m2 = build_board("esp32-generic", site, tmp_path / "again")
    assert m2["micropython"]["sha256"] == m["micropython"]["sha256"]
    assert (tmp_path / "again" / m2["merged_image"]).read_bytes() == merged


def test_wrong_chip_firmware_is_refused_and_nothing_written(site, tmp_path, esp32_firmware):
    out = tmp_path / "out"
    with pytest.raises(CliError) as e:
        build_board("esp32-s3", site, out, esp32_firmware)
    assert e.value.status == 2
    assert "firmware is for ESP32, but board esp32-s3 is esp32s3" in str(e.value)
    assert not out.exists()


def test_firmware_whose_layout_differs_is_refused(site, tmp_path, esp32_firmware):
    fw = bytearray(esp32_firmware.read_bytes())
    i = fw.index(b"vfs\0", 0x7000) - 12  # the vfs entry of the partition table at 0x8000
    struct.pack_into("<I", fw, i + 4, 0x310000)
    bad = tmp_path / "moved.bin"
    bad.write_bytes(fw)
    with pytest.raises(CliError) as e:
        build_board("esp32-generic", site, tmp_path / "out", bad)
    assert "puts the filesystem at 0x310000" in str(e.value)


def test_pico_uf2_holds_the_filesystem_at_its_address(site, tmp_path):
    m = build_board("pico-w", site, tmp_path)
    uf2 = (tmp_path / m["uf2"]["file"]).read_bytes()
    img = (tmp_path / m["filesystem"]["image"]).read_bytes()
    assert len(uf2) % 512 == 0 and len(uf2) // 512 == len(img) // 256
    data = bytearray()
    for i in range(0, len(uf2), 512):
        m0, m1, flags, addr, size, no, total, fam = struct.unpack_from("<8I", uf2, i)
        assert (m0, m1, flags, size, no, total, fam) == (0x0A324655, 0x9E5D5157, 0x2000, 256, i // 512,
                                                         len(uf2) // 512, 0xE48BFF56)
        assert addr == 0x1012C000 + (i // 512) * 256
        data += uf2[i + 32:i + 32 + size]
    assert bytes(data) == img
    assert "0x1012C000" in (tmp_path / "FLASHING.txt").read_text()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("board", ["esp32-generic", "pico-w"])
def test_built_image_boots_the_relay_in_the_unix_port(board, site, tmp_path):
    """Mount the built littlefs image in MicroPython, run its main.py, fetch a file through SOCKS with curl."""
    m = build_board(board, site, tmp_path / "out")
    r = boards.load(board)
    geo = fsimage.Geometry.of(r)
    # Test config inside a copy of the image: loopback listeners on free ports, guard open for 127.0.0.0/8,
    # no access point (the unix port has no radio). main.py and the compiled relay stay as built.
    fs = geo.mount(bytearray((tmp_path / "out" / m["filesystem"]["image"]).read_bytes()))
    with fs.open("config.json", "r") as f:
        cfg = json.loads(f.read())
    socks_port, http_port = free_port(), free_port()
    cfg["socks"].update(host="127.0.0.1", port=socks_port)
    cfg["http"].update(host="127.0.0.1", port=http_port)
    for sect in ("wifi", "portal"):
        cfg.get(sect, {})["enabled"] = False
    cfg.get("dns", {})["listen_enabled"] = False
    cfg["guard"] = {"allow": ["127.0.0.0/8"]}
    cfg.get("policy", {})["preset"] = "open"  # the site's "telegram" preset would refuse the local web server
    with fs.open("config.json", "w") as f:
        f.write(json.dumps(cfg))
    fs.unmount()
    image = tmp_path / "boot.img"
    image.write_bytes(bytes(fs.context.buffer))

    web = tmp_path / "web"
    web.mkdir()
    (web / "hello.txt").write_bytes(b"hello through the relay\n" * 100)
    http = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", str(web)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    relay = subprocess.Popen([paths.micropython_binary(), str(HERE / "mp_boot.py"), str(image),
                              str(geo.block_size), str(geo.prog_size)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        line = http.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N ..."
        web_port = int(line.split(" port ")[1].split()[0])
        seen = []
        for line in relay.stdout:
            seen.append(line)
            if line.startswith("relay ready"):
                break
        assert seen and seen[-1].startswith("relay ready"), "".join(seen)
        assert seen[0].startswith("mounted ['config.json', 'main.py', 'relay', 'umqtt']")
        assert "runtime=micropython" in seen[-1] and f"socks=127.0.0.1:{socks_port}" in seen[-1]
        res = subprocess.run(["curl", "-sS", "--max-time", "20", "--proxy-user", "relay:secret-pass",
                              "--socks5-hostname", f"127.0.0.1:{socks_port}",
                              f"http://127.0.0.1:{web_port}/hello.txt"], capture_output=True, timeout=30)
        assert res.returncode == 0, res.stderr
        assert res.stdout == b"hello through the relay\n" * 100
    finally:
        for p in (relay, http):
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# -- issue 15: what the build says, and where it writes ------------------------------------------------------

def cli(*args, cwd, env=None):
    import os

    e = dict(os.environ, PYTHONPATH=str(paths.ROOT / "host_tools"), NO_COLOR="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "relayctl.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=e, timeout=120)


def test_build_points_at_relayctl_flash_and_defaults_to_the_current_directory(site, tmp_path, esp32_firmware):
    r = cli("build", "esp32-generic", "--site", site, "--micropython", esp32_firmware, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "flash it: relayctl flash esp32-generic --port PORT --image build/esp32-generic" in r.stdout
    assert "esptool" not in r.stdout
    assert (tmp_path / "build" / "esp32-generic" / "manifest.json").exists()


def repo_build_state(board):
    m = paths.ROOT / "build" / board / "manifest.json"
    return m.stat().st_mtime_ns if m.exists() else None


def test_install_builds_under_the_current_directory(site, tmp_path):
    """--site without --out: the build goes to ./build/BOARD where the command runs, not into the repository."""
    before = repo_build_state("rpi-4")
    (tmp_path / "root").mkdir()
    r = cli("install", "rpi-4", "--site", site, "--root", tmp_path / "root", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "build" / "rpi-4" / "manifest.json").exists()
    assert repo_build_state("rpi-4") == before


def test_esp32_build_without_firmware_says_it_cannot_be_flashed(site, tmp_path):
    home = tmp_path / "home"  # no firmware remembered from other runs
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    r = cli("build", "esp32-generic", "--site", site, "--out", tmp_path / "out", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "`relayctl flash` cannot write" in r.stderr and "--micropython FILE" in r.stderr
    assert "flash it:" not in r.stdout and "relayctl deploy esp32-generic" in r.stdout
    r = cli("flash", "esp32-generic", "--port", "/dev/ttyRELAYTEST0", "--image", tmp_path / "out", cwd=tmp_path,
            env=env)
    assert r.returncode == 1
    assert "built without MicroPython firmware" in r.stderr and "--micropython FILE" in r.stderr
    assert "not an ESP32 build" not in r.stderr


def test_bundle_readme_names_the_archive_it_ships_in(site, tmp_path):
    m = build_board("rpi-4", site, tmp_path / "out")
    with tarfile.open(tmp_path / "out" / m["bundle"]) as tar:
        readme = tar.extractfile("relay-rpi-4/README.txt").read().decode()
    assert f"tar xzf {m['bundle']} && sh relay-rpi-4/install.sh" in readme


def _runtime_kind(firmware):
    """aes_ctr_kind() of the relay in this firmware tree, under this Python."""
    code = "from relay.runtime import cpython; print(cpython.aes_ctr_kind())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(firmware), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_install_builds_the_native_pump_on_the_board_or_says_why_not(site, tmp_path):
    """A public relay's bundle carries the pump's C source; install.sh builds it for the board's own Python
    (here: this Python, with gcc and libssl-dev as `make setup` installs them), and the relay uses it. Without
    a compiler it says so in one line, succeeds, and removes a module an earlier install built."""
    pytest.importorskip("relay.runtime._mtpump", reason="`make setup` could not build the pump here either (gcc, libssl-dev, Python's headers)")
    m = build_board("public", site, tmp_path / "out")
    with tarfile.open(tmp_path / "out" / m["bundle"]) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    top = tmp_path / "x" / "relay-public"
    assert f"sh native/build.sh /opt/relay/firmware/relay/runtime {boards.load('public')['linux.python']} || true" \
        in (top / "install.sh").read_text()
    runtime = top / "firmware" / "relay" / "runtime"
    build = ["sh", str(top / "native" / "build.sh"), str(runtime), sys.executable]
    r = subprocess.run(build, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "relay: native MTProto pump built", r.stdout + r.stderr
    assert len(list(runtime.glob("_mtpump*.so"))) == 1
    assert _runtime_kind(top / "firmware") == "native"
    r = subprocess.run(build, capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "CC": "/nonexistent/cc"})
    assert r.returncode == 0 and r.stdout.strip() == ("relay: native MTProto pump not built: no C compiler "
                                                      "(Debian: apt install gcc python3-dev libssl-dev); MTProto "
                                                      "runs on the Python path"), r.stdout + r.stderr
    assert not list(runtime.glob("_mtpump*"))  # the earlier install's module is gone with its source
    assert _runtime_kind(top / "firmware") == "cryptography"
