"""MTProto in builds and flashing: the board profile offers it (relay.mtproto_port), the site carries
secrets or the build makes one, the build writes the clock floor and the portal's tg://proxy QR
code, and `relayctl flash`'s stamp gives each board its own secret, QR and flash-time floor.
QR codes are read back with zbarimg (tests/mtproto/qrsvg.py)."""

import json
import tarfile
import time

import pytest

from relayctl import boards
from relayctl.boards.render import config_json
from relayctl.images import build_board, clock_hint, fsimage
from relayctl.cmd_site import EXAMPLE
from relayctl.flash import manifest as flash_manifest, stamp
from tests.flash.flashkit import micropython_esp32  # noqa: F401  (fixture)
from tests.mtproto.qrsvg import decode_svg

SECRET = "dd" + "42" * 16


def site(tmp_path, secrets=None, extra=""):
    text = EXAMPLE
    if secrets is not None:
        text = text.replace('# secrets = ["dd0123456789abcdef0123456789abcdef"]', "secrets = " + json.dumps(secrets))
    p = tmp_path / "site.toml"
    p.write_text(text + extra)
    return p


def test_profiles_say_whether_mtproto_is_offered():
    offered = {name: boards.load(name)["relay.mtproto_port"] for name in
               ("esp32-generic", "esp32-s3", "pico-w", "rpi-4", "rpi-zero-2w", "openwrt", "gl-mt300n-v2", "linux-host")}
    assert offered == {"esp32-generic": 0, "esp32-s3": 0, "pico-w": 0, "rpi-4": 8443, "rpi-zero-2w": 8443,
                       "openwrt": 8443, "gl-mt300n-v2": 8443, "linux-host": 0}
    assert "python3-cryptography" in boards.load("rpi-4")["linux.packages"]
    assert "mtproto" not in config_json(boards.load("esp32-generic"))


def test_site_secret_is_checked(tmp_path):
    r = boards.load("rpi-4", str(site(tmp_path, ["dd1234"])))
    assert any("mtproto.secrets" in str(e) and "relayctl mtproto secret" in str(e) for e in r.errors), r.errors


def test_linux_build_makes_a_secret_when_the_site_has_none(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    s = site(tmp_path)
    m = build_board("rpi-4", s, tmp_path / "out")
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    mt = cfg["mtproto"]
    made = mt["secrets"]
    assert len(made) == 1 and made[0].startswith("dd") and len(made[0]) == 34
    assert m["mtproto"]["secrets_made"] == []  # written into the site file: the site's own secret from now on
    assert any(made[0] in n and "wrote it into" in n for n in m["notes"])
    assert f'secrets = ["{made[0]}"]' in s.read_text()
    assert mt["enabled"] and mt["port"] == 8443 and mt["host"] == "192.168.4.1"
    assert mt["clock_hint"] == clock_hint() and mt["clock_hint"] % 86400 == 0
    assert time.time() - 86400 < mt["clock_hint"] <= time.time()
    assert cfg["portal"]["qr_mtproto_svg"] == "/opt/relay/firmware/qr-mtproto.svg"
    with tarfile.open(tmp_path / "out" / m["bundle"]) as tar:
        svg = tar.extractfile("relay-rpi-4/firmware/qr-mtproto.svg").read()
    link = f"tg://proxy?server=192.168.4.1&port=8443&secret={made[0]}"
    decoded = decode_svg(svg)
    assert decoded is None or decoded == link


def test_linux_build_with_site_secrets_and_ntp_is_reproducible(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    s = site(tmp_path, [SECRET])
    s.write_text(s.read_text().replace('# servers = ["pool.ntp.org"]', 'servers = ["127.0.0.1:12300"]')
                 .replace('# password = "..."', 'password = "admin-pass"'))  # [admin]: nothing made by the build
    a = build_board("openwrt", s, tmp_path / "a")
    b = build_board("openwrt", s, tmp_path / "b")
    assert a == b and (tmp_path / "a" / "config.json").read_bytes() == (tmp_path / "b" / "config.json").read_bytes()
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["mtproto"]["secrets"] == [SECRET] and cfg["mtproto"]["clock_hint"] == 1767225600
    assert cfg["ntp"]["servers"] == ["127.0.0.1:12300"] and a["mtproto"]["secrets_made"] == []


@pytest.fixture
def esp32_mtproto_profile(tmp_path):
    """A tinkerer's ESP32 whose firmware has cryptolib's CTR mode: it turns MTProto on."""
    p = tmp_path / "esp32-ctr.toml"
    p.write_text('extends = "esp32-generic"\ndescription = "ESP32 with a CTR-enabled firmware"\n\n'
                 "[relay]\nmtproto_port = 8443\n")
    return p


def test_flash_stamps_each_board_its_own_secret(tmp_path, esp32_mtproto_profile, micropython_esp32):  # noqa: F811
    out = tmp_path / "out"
    m = build_board(str(esp32_mtproto_profile), None, out, micropython_esp32)  # no site: a secret per build
    made = m["mtproto"]["secrets_made"]
    r = boards.load(str(esp32_mtproto_profile))
    built = fsimage.read_image((out / m["filesystem"]["image"]).read_bytes(), fsimage.Geometry.of(r))
    assert json.loads(built["config.json"])["portal"]["qr_mtproto_svg"] == "qr-mtproto.svg"
    assert decode_svg(built["qr-mtproto.svg"]) in (None, f"tg://proxy?server=192.168.4.1&port=8443&secret={made[0]}")
    image = flash_manifest.load(out)
    seen = set()
    for mac in (b"\x24\x0a\xc4\x00\x00\x01", b"\x24\x0a\xc4\x00\x00\x02"):
        t0 = int(time.time())
        new, values, missing = stamp.stamp(image, mac)
        cfg = json.loads(stamp.read_config(new))
        own = values["mtproto_secret"]
        assert cfg["mtproto"]["secrets"] == [own] and own not in made and own not in seen  # the build's is gone
        seen.add(own)
        assert values["mtproto_port"] == "8443" and t0 <= cfg["mtproto"]["clock_hint"] <= time.time()
        start = new.fs_offset - new.offset
        files = fsimage.read_image(new.data[start:start + new.fs_size], fsimage.Geometry.of(r))
        link = f"tg://proxy?server=192.168.4.1&port=8443&secret={own}"
        assert decode_svg(files["qr-mtproto.svg"]) in (None, link)


def test_stamp_keeps_the_sites_shared_secrets_and_kind(tmp_path, esp32_mtproto_profile, micropython_esp32):  # noqa: F811
    ee = "ee" + "07" * 16 + "www.example.com".encode().hex()
    out = tmp_path / "out"
    build_board(str(esp32_mtproto_profile), site(tmp_path, [ee, SECRET]), out, micropython_esp32)
    new, values, _ = stamp.stamp(flash_manifest.load(out), b"\x24\x0a\xc4\x00\x00\x09")
    secrets = json.loads(stamp.read_config(new))["mtproto"]["secrets"]
    own = values["mtproto_secret"]
    assert secrets == [own, ee, SECRET]
    assert own.startswith("ee") and own.endswith("www.example.com".encode().hex()) and own != ee



def test_same_site_same_bytes_when_the_site_has_no_secret(tmp_path, monkeypatch):
    """A site offering MTProto without a secret: the first build makes one and writes it back into the site
    file (comments kept, and says so); every build after gives the very same bytes."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    s = site(tmp_path)
    a = build_board("rpi-4", s, tmp_path / "a")
    after_first = s.read_text()
    b = build_board("rpi-4", s, tmp_path / "b")
    assert s.read_text() == after_first  # written once
    assert a["files"] == b["files"] and a["inputs"] == b["inputs"]
    for name in a["files"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert "# Telegram's own proxy, on boards that offer it" in after_first  # the person's comments stay
    assert "made by relayctl build" in after_first
    assert b["notes"] == [n for n in b["notes"] if "wrote it into" not in n]  # said once, when it happened
    assert any("wrote it into" in n for n in a["notes"])
