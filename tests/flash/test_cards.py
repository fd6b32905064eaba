"""relayctl cards: the QR codes on every card decode back to the exact strings (zbarimg)."""

import base64
import csv
import re
import shutil
import subprocess

import pytest

from tests.flash.flashkit import relayctl

pytestmark = pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (Debian zbar-tools) is missing")

ROWS = [
    {"mac": "24:0a:c4:00:00:01", "board": "esp32-generic", "ssid": "relay-0001", "wifi_password": "kokterek;2022",
     "proxy_host": "192.168.4.1", "proxy_port": "1080", "proxy_user": "relay", "proxy_password": "abcDEF2345"},
    {"mac": "24:0a:c4:00:00:02", "board": "esp32-generic", "ssid": "relay:0002", "wifi_password": "",
     "proxy_host": "192.168.4.1", "proxy_port": "1080", "proxy_user": "relay", "proxy_password": "xyzXYZ6789"},
]


def zbar(path):
    r = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return sorted(r.stdout.strip("\n").split("\n"))


def test_cards_decode_back(tmp_path):
    inv = tmp_path / "inventory.csv"
    with open(inv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(ROWS[0]))
        w.writeheader()
        w.writerows(ROWS)
    r = relayctl("cards", str(inv), "--out", str(tmp_path / "cards"))
    assert r.returncode == 0, r.stderr
    want = {
        "240ac4000001": ["WIFI:T:WPA;S:relay-0001;P:kokterek\\;2022;;",
                         "tg://socks?server=192.168.4.1&port=1080&user=relay&pass=abcDEF2345"],
        "240ac4000002": ["WIFI:T:nopass;S:relay\\:0002;;",
                         "tg://socks?server=192.168.4.1&port=1080&user=relay&pass=xyzXYZ6789"],
    }
    for mac, payloads in want.items():
        png = tmp_path / "cards" / f"card-{mac}.png"
        assert zbar(png) == sorted(payloads)
        page = (tmp_path / "cards" / f"card-{mac}.html").read_text(encoding="utf-8")
        decoded = []
        for i, b64 in enumerate(re.findall(r'src="data:image/png;base64,([^"]+)"', page)):
            (tmp_path / f"{mac}-{i}.png").write_bytes(base64.b64decode(b64))
            decoded += zbar(tmp_path / f"{mac}-{i}.png")
        assert sorted(decoded) == sorted(payloads)
        for text in ("Қазақша", "Русский", "English", "Wi-Fi желісіне", "Подключитесь", "Join the Wi-Fi"):
            assert text in page
        assert payloads[1].replace("&", "&amp;") in page
    assert (tmp_path / "cards" / "index.html").exists()


def test_cards_without_inventory_says_what_to_do(tmp_path):
    r = relayctl("cards", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "c"))
    assert r.returncode == 1 and "flash boards first" in r.stderr


def test_card_with_mtproto_has_a_third_code(tmp_path):
    secret = "ee" + "ab" * 16 + "www.example.com".encode().hex()
    row = dict(ROWS[0], mac="24:0a:c4:00:00:03", mtproto_port="8443", mtproto_secret=secret)
    inv = tmp_path / "inventory.csv"
    with open(inv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerows([row, ROWS[1]])  # a board without MTProto beside it keeps two codes
    r = relayctl("cards", str(inv), "--out", str(tmp_path / "cards"))
    assert r.returncode == 0, r.stderr
    mt = f"tg://proxy?server=192.168.4.1&port=8443&secret={secret}"
    want = ["WIFI:T:WPA;S:relay-0001;P:kokterek\\;2022;;",
            "tg://socks?server=192.168.4.1&port=1080&user=relay&pass=abcDEF2345", mt]
    assert zbar(tmp_path / "cards" / "card-240ac4000003.png") == sorted(want)
    page = (tmp_path / "cards" / "card-240ac4000003.html").read_text(encoding="utf-8")
    decoded = []
    for i, b64 in enumerate(re.findall(r'src="data:image/png;base64,([^"]+)"', page)):
        (tmp_path / f"mt-{i}.png").write_bytes(base64.b64decode(b64))
        decoded += zbar(tmp_path / f"mt-{i}.png")
    assert sorted(decoded) == sorted(want)
    assert mt.replace("&", "&amp;") in page and "MTProto" in page and "үшінші кодты" in page
    other = (tmp_path / "cards" / "card-240ac4000002.html").read_text(encoding="utf-8")
    assert "tg://proxy" not in other and other.count("data:image/png") == 2
