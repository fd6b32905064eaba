"""Rendered uplink configs against golden files (tests/uplink/golden/), through the real CLI."""

import shutil
import subprocess

import pytest
from tests.uplink.uplinkkit import golden, relayctl

from relayctl.modem import render

CASES = [
    ("cellular-networkmanager.nmconnection", "networkmanager",
     ["--kind", "cellular", "--apn", "internet.kcell.kz", "--user", "kcell", "--password", "p@ss word",
      "--pin", "0000", "--roaming", "--operator", "25001", "--rat", "lte"]),
    ("cellular-home-only.nmconnection", "networkmanager", ["--kind", "cellular", "--apn", "internet"]),
    ("cellular-openwrt.uci", "openwrt",
     ["--kind", "cellular", "--apn", "internet.kcell.kz", "--user", "kcell", "--password", "it's",
      "--pin", "0000", "--roaming", "--operator", "25001", "--rat", "lte",
      "--modem-device", "/sys/devices/platform/ehci-platform/usb1/1-1"]),
    ("ethernet-networkd.network", "networkd", ["--kind", "ethernet", "--interface", "eth1"]),
    ("ethernet-openwrt.uci", "openwrt", ["--kind", "ethernet", "--interface", "eth0.2"]),
    ("wifi-wpa_supplicant.conf", "wpa_supplicant",
     ["--kind", "wifi-sta", "--ssid", "Neighbour 5G", "--passphrase", "correct horse", "--country", "kz"]),
    ("wifi-wpa3-hidden.conf", "wpa_supplicant",
     ["--kind", "wifi-sta", "--ssid", 'Сосед "wifi"', "--passphrase", "correct horse", "--security", "wpa3",
      "--hidden"]),
    ("wifi-open.conf", "wpa_supplicant", ["--kind", "wifi-sta", "--ssid", "cafe"]),
    # A Pi's wlan0 is the phones' access point: the uplink radio's file and unit carry its own name (T14).
    ("wifi-wlan1.conf", "wpa_supplicant", ["--kind", "wifi-sta", "--interface", "wlan1", "--ssid", "cafe"]),
    ("wifi-openwrt.uci", "openwrt", ["--kind", "wifi-sta", "--ssid", "Neighbour 5G", "--passphrase", "correct horse"]),
]


@pytest.mark.parametrize("name,fmt,flags", CASES, ids=[c[0] for c in CASES])
def test_render_golden(name, fmt, flags):
    r = relayctl("render", "--format", fmt, *flags)
    assert r.returncode == 0, r.stderr
    golden(name, r.stdout)


def test_render_to_file_is_private(tmp_path):
    out = tmp_path / "lte.uci"
    r = relayctl("render", "--format", "openwrt", "--apn", "internet", "--pin", "1234", "-o", out)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_mode & 0o077 == 0
    assert "option pincode '1234'" in out.read_text()


@pytest.mark.parametrize("flags,message", [
    (["--kind", "cellular"], "apn is missing"),
    (["--kind", "ethernet", "--format", "networkmanager"], "no 'networkmanager' format for the ethernet uplink"),
    (["--kind", "wifi-sta", "--ssid", "x", "--passphrase", "short"], "8 to 63 printable ASCII"),
    (["--kind", "wifi-sta", "--ssid", "x" * 33, "--passphrase", "longenough"], "at most 32 bytes"),
])
def test_render_errors(flags, message):
    if "--format" not in flags:
        flags = flags + ["--format", "openwrt"]
    r = relayctl("render", *flags)
    assert r.returncode == 2
    assert message in r.stderr


def test_wpa_psk_known_vector():
    # IEEE 802.11i-2004 annex H.4 test vector
    assert render.wpa_psk("IEEE", "password") == "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"


@pytest.mark.skipif(not shutil.which("wpa_passphrase"), reason="wpa_passphrase (wpasupplicant) not installed")
def test_wpa_psk_matches_wpa_passphrase():
    got = subprocess.run(["wpa_passphrase", "Neighbour 5G", "correct horse"], capture_output=True, text=True).stdout
    assert f"\tpsk={render.wpa_psk('Neighbour 5G', 'correct horse')}" in got
