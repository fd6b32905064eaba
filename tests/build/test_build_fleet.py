"""relayctl build with a site's [fleet]: umqtt.simple goes into the image, the relay's own broker
password and command key into config.json (the fleet key never), the broker's CA beside it (DER on
MicroPython, whose mbedtls reads no PEM); the ESP32 image still fits its filesystem, and the built
image reports to a real mosquitto when the unix port boots it."""

import datetime
import json
import subprocess
import tarfile
import time

from relayctl import boards, paths
from relayctl.images import build_board, fsimage
from relayctl.cmd_site import EXAMPLE
from relayctl.fleet import keys
from tests.build.test_build import HERE, free_port
from tests.fleet.fleetkit import Listener, Mosquitto, need_mosquitto

KEY = "a1" * 32


def ca_pem():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    k = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fleet CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(k, hashes.SHA256()))
    return cert, cert.public_bytes(serialization.Encoding.PEM)


def site_with_fleet(tmp_path, fleet):
    p = tmp_path / "site.toml"
    assert "\n[fleet]\n" in EXAMPLE  # `relayctl site init` shows the block; these tests fill it in
    p.write_text(EXAMPLE.replace('# secrets = ["dd', 'secrets = ["dd').replace("\n[fleet]\n", "\n[fleet]\n" + fleet))
    return p


def test_esp32_image_carries_umqtt_and_its_own_credentials_and_still_fits(tmp_path, esp32_firmware):
    from cryptography.hazmat.primitives.serialization import Encoding

    cert, pem = ca_pem()
    (tmp_path / "fleet-ca.pem").write_bytes(pem)
    site = site_with_fleet(tmp_path, f'broker = "fleet.example.org"\ntls = true\nca_file = "fleet-ca.pem"\n'
                                     f'name = "almaty-01"\nplace = "Almaly"\nkey = "{KEY}"\n')
    m = build_board("esp32-generic", site, tmp_path / "out", micropython=esp32_firmware)
    assert m["merged_image"]
    r = boards.load("esp32-generic")
    geo = fsimage.Geometry.of(r)
    img = (tmp_path / "out" / m["filesystem"]["image"]).read_bytes()
    files = fsimage.read_image(img, geo)
    assert files["umqtt/simple.mpy"][:2] == b"M\x06"
    assert files["fleet-ca.der"] == cert.public_bytes(Encoding.DER)
    cfg = json.loads(files["config.json"])["fleet"]
    key = bytes.fromhex(KEY)
    assert cfg == {"enabled": True, "broker": "fleet.example.org", "port": 8883, "tls": True, "ca_file": "fleet-ca.der",
                   "prefix": "relay", "name": "almaty-01", "place": "Almaly", "interval": 60, "keepalive": 60,
                   "user": "almaty-01", "password": keys.password(key, "almaty-01"),
                   "command_key": keys.command_key(key, "almaty-01")}
    assert not any(KEY.encode() in data for data in files.values())  # the fleet key stays on the laptop
    fs = geo.mount(bytearray(img))
    used = fs.used_block_count
    fs.unmount()
    print(f"\nesp32-generic filesystem with fleet: {used} of {geo.block_count} blocks used "
          f"({used * geo.block_size // 1024} KiB of {geo.block_count * geo.block_size // 1024} KiB); "
          f"umqtt/simple.mpy {len(files['umqtt/simple.mpy'])} bytes")
    assert used < geo.block_count


def test_linux_bundle_carries_umqtt_and_the_pem_ca(tmp_path):
    _, pem = ca_pem()
    (tmp_path / "ca.pem").write_bytes(pem)
    site = site_with_fleet(tmp_path, f'broker = "10.9.0.1"\ntls = true\nca_file = "ca.pem"\nname = "pi-1"\nkey = "{KEY}"\n')
    m = build_board("rpi-4", site, tmp_path / "out")
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())["fleet"]
    assert cfg["ca_file"] == "/opt/relay/firmware/fleet-ca.pem" and cfg["port"] == 8883
    with tarfile.open(tmp_path / "out" / m["bundle"]) as tar:
        top = "relay-rpi-4/firmware/"
        assert tar.extractfile(top + "fleet-ca.pem").read() == pem
        assert tar.extractfile(top + "umqtt/simple.py").read() == (paths.FIRMWARE / "umqtt/simple.py").read_bytes()


def test_a_fleet_mistake_in_the_site_file_names_the_key(tmp_path):
    site = site_with_fleet(tmp_path, 'broker = "fleet.example.org"\ntls = true\nname = "a/b"\nkey = "xyz"\n')
    r = boards.load("esp32-generic", site)
    text = "\n".join(str(p) for p in r.errors)
    assert "fleet.name" in text and "fleet.ca_file" in text and "fleet.key" in text


def test_the_built_image_reports_to_a_real_broker(tmp_path):
    """The ESP32 image's compiled relay and umqtt, booted by the unix port, publish to mosquitto."""
    need_mosquitto()
    port = free_port()
    conf = tmp_path / "broker"
    conf.mkdir()
    (conf / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = Mosquitto(conf / "m.conf", port, tmp_path / "m.log")
    broker.start()
    site = site_with_fleet(tmp_path, f'broker = "127.0.0.1"\nport = {port}\nname = "booted"\ninterval = 5\n')
    m = build_board("esp32-generic", site, tmp_path / "out")
    r = boards.load("esp32-generic")
    geo = fsimage.Geometry.of(r)
    fs = geo.mount(bytearray((tmp_path / "out" / m["filesystem"]["image"]).read_bytes()))
    with fs.open("config.json", "r") as f:
        cfg = json.loads(f.read())
    for sect in ("socks", "http"):
        cfg[sect].update(host="127.0.0.1", port=free_port())
    for sect in ("wifi", "portal", "mtproto"):
        cfg.get(sect, {})["enabled"] = False
    cfg.get("dns", {})["listen_enabled"] = False
    with fs.open("config.json", "w") as f:
        f.write(json.dumps(cfg))
    fs.unmount()
    (tmp_path / "boot.img").write_bytes(bytes(fs.context.buffer))
    watch = Listener(port, None, None, ["relay/#"])
    relay = subprocess.Popen([paths.micropython_binary(), str(HERE / "mp_boot.py"), str(tmp_path / "boot.img"),
                              str(geo.block_size), str(geo.prog_size)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        end = time.monotonic() + 20
        got = None
        while time.monotonic() < end and not got:
            got = watch.retained().get("relay/booted/report")
            time.sleep(0.2)
        assert got, relay.poll()
        doc = json.loads(got)
        assert doc["runtime"] == "micropython" and doc["name"] == "booted"
        assert watch.retained()["relay/booted/status"] == b"online"
    finally:
        relay.terminate()
        relay.wait(5)
        watch.close()
        broker.stop()
