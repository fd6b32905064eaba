"""Access-point renderers (relayctl.wifi): golden files, checks, and `relayctl wifi render`.

Regenerate the golden files after an intended change with RELAY_UPDATE_GOLDEN=1.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from relayctl.wifi import WifiError, check, render_linux, render_openwrt  # noqa: E402
from tests.helpers.golden import golden_dir  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "wifi"
CASES = {
    "linux-open": (render_linux, {}),
    "linux-wpa2-kz": (render_linux, {"ssid": "relay Алматы", "security": "wpa2", "passphrase": "change me please",
                                     "country": "KZ", "channel": 11, "max_clients": 8, "interface": "wlan1",
                                     "address": "10.44.0.1", "subnet": "10.44.0.0/24"}),
    "openwrt-wpa2": (render_openwrt, {"ssid": "relay", "security": "wpa2", "passphrase": "it's a long one",
                                      "country": "RU", "channel": 1, "max_clients": 16}),
    "openwrt-open-5ghz": (render_openwrt, {"country": "US", "channel": 149, "portal_port": 8000}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case):
    render, raw = CASES[case]
    files = render(check(raw))
    golden_dir(GOLDEN / case, files)


def test_the_rules_say_what_matters():
    ap = check({"security": "wpa2", "passphrase": "12345678"})
    files = render_linux(ap)
    assert "ap_isolate=1" in files["hostapd.conf"].splitlines()
    dnsmasq = files["dnsmasq.conf"].splitlines()
    assert "port=0" in dnsmasq and not [x for x in dnsmasq if x.startswith("dhcp-option=114")]  # RFC 8908: https only
    nft = files["relay.nft"]
    assert 'iifname "wlan0" drop' in nft and "tcp dport { 53, 80, 1080, 1081, 8080 } accept" in nft
    # zero-tap: Telegram's IPv4 ranges (the site's default preset) go to the transparent listener
    assert "type nat hook prerouting priority dstnat" in nft
    assert 'iifname "wlan0" ip daddr @zero_tap meta l4proto tcp redirect to :1081' in nft
    assert "149.154.160.0/20" in nft and "91.108.56.0/22" in nft and "2001:" not in nft
    # a software bridge: phone-to-phone frames dropped in the bridge family too
    assert "table bridge relay" in nft and "ip saddr 192.168.4.0/24 ip daddr 192.168.4.0/24 drop" in nft
    assert "redirect" not in render_linux(check({"transparent_port": 0}))["relay.nft"]
    assert "ssid2=72656c6179" in files["hostapd.conf"]


@pytest.mark.parametrize("raw,message", [
    ({"ssid": ""}, "wifi.ssid: expected 1-32 bytes"),
    ({"ssid": "ж" * 17}, "(34 bytes in UTF-8)"),
    ({"security": "wpa2", "passphrase": "short"}, "wifi.passphrase: WPA2 needs 8-63 printable ASCII"),
    ({"security": "wpa2", "passphrase": "пароль-пароль"}, "wifi.passphrase"),
    ({"security": "wep"}, 'wifi.security: expected "open" or "wpa2"'),
    ({"country": "US", "channel": 13}, 'wifi.channel: 13 not allowed for country "US" (1-11, 36, 40, 44, 48, 149'),
    ({"country": "KZ", "channel": 14}, 'wifi.channel: 14 not allowed for country "KZ" (1-13, 36, 40, 44, 48)'),
    ({"country": "DE", "channel": 100}, "DFS channel"),
    ({"country": "kz"}, "wifi.country: expected a two-letter code"),
    ({"subnet": "192.168.4.0/30"}, "wifi.subnet"),
    ({"address": "192.168.5.1"}, "wifi.address: 192.168.5.1 is not a host address in wifi.subnet"),
    ({"chanel": 6}, "wifi.chanel: unknown key"),
])
def test_checks(raw, message):
    with pytest.raises(WifiError) as e:
        check(raw)
    assert any(message in p for p in e.value.problems), e.value.problems


def test_subnet_collision_with_the_uplink():
    with pytest.raises(WifiError) as e:
        check({}, ["192.168.0.0/16"])
    assert "overlaps the uplink's 192.168.0.0/16" in str(e.value)
    assert check({"subnet": "10.44.0.0/24", "address": "10.44.0.1"}, ["192.168.0.0/16"])["subnet"] == "10.44.0.0/24"


def test_every_problem_at_once():
    with pytest.raises(WifiError) as e:
        check({"ssid": "", "channel": 99, "security": "wpa2"})
    assert len(e.value.problems) == 3


def relayctl(*args, cwd):
    return subprocess.run([str(Path(sys.executable).parent / "relayctl"), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


def test_cli_render(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[wifi]\nssid = "relay-test"\nsecurity = "wpa2"\npassphrase = "relay test pass"\n'
                    'country = "KZ"\nchannel = 1\n')
    r = relayctl("wifi", "render", "rpi-4", "--site", str(site), "--out", "linux", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "linux").iterdir()) == [
        "address-plan.txt", "dnsmasq.conf", "hostapd.conf", "relay.nft"]
    hostapd = (tmp_path / "linux/hostapd.conf").read_text()
    assert "ssid2=" + b"relay-test".hex() in hostapd and "wpa_passphrase=relay test pass" in hostapd
    r = relayctl("wifi", "render", "gl-mt300n-v2", "--site", str(site), "--out", "owrt", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "owrt/relay.uci").exists()
    r = relayctl("wifi", "render", "rpi-4", "--out", "x", "--uplink-subnet", "192.168.4.0/23", cwd=tmp_path)
    assert r.returncode == 2 and "overlaps the uplink's" in r.stderr and not (tmp_path / "x").exists()
    r = relayctl("wifi", "render", "esp32-generic", "--out", "y", cwd=tmp_path)
    assert r.returncode == 2 and "not a Linux board" in r.stderr


@pytest.mark.skipif(not shutil.which("dnsmasq"), reason="dnsmasq not installed (apt-get install dnsmasq-base)")
def test_dnsmasq_accepts_the_rendered_config(tmp_path):
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(render_linux(check({}))["dnsmasq.conf"])
    r = subprocess.run(["dnsmasq", "--test", "--conf-file=" + str(conf)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and "syntax check OK" in r.stderr, r.stderr


@pytest.mark.skipif(not shutil.which("nft"), reason="nft not installed (apt-get install nftables)")
@pytest.mark.parametrize("case", ["linux-open", "linux-wpa2-kz"])
def test_nft_accepts_the_rendered_rules(case, tmp_path):
    rules = tmp_path / "relay.nft"
    rules.write_text(render_linux(check(CASES[case][1]))["relay.nft"])
    r = subprocess.run(["nft", "-c", "-f", str(rules)], capture_output=True, text=True, timeout=20)  # -c: check only
    if r.returncode != 0 and "Operation not permitted" in r.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN here")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("case", ["linux-open", "linux-wpa2-kz"])
def test_hostapd_reads_the_rendered_config(case, tmp_path):
    """hostapd parses its whole config before it looks for a radio: with none here it stops at the
    driver, so every line of ours was accepted. A broken line shows that the check can fail."""
    hostapd = shutil.which("hostapd") or "/usr/sbin/hostapd"
    if not os.path.exists(hostapd):
        pytest.skip("hostapd is not installed (make test installs it)")
    conf = GOLDEN / case / "hostapd.conf"
    r = subprocess.run([hostapd, str(conf)], capture_output=True, text=True, timeout=20)
    out = r.stdout + r.stderr
    assert "errors found in configuration file" not in out and "Line " not in out, out
    assert "Failed to initialize driver" in out or "nl80211" in out, out  # got past the parser to the radio
    bad = tmp_path / "bad.conf"
    bad.write_text(conf.read_text() + "wpa_passphrase=short\n")
    r = subprocess.run([hostapd, str(bad)], capture_output=True, text=True, timeout=20)
    assert "invalid WPA passphrase length" in r.stdout + r.stderr
