"""The access point and the Wi-Fi station uplink, run by the real MicroPython interpreter
against the stand-in of MicroPython's documented `network` API (stub/network.py).
This is the one seam not tested on hardware: the stand-in is only as right as the docs and
driver sources it was written from."""

import json
import subprocess

import pytest

from relayctl import boards
from relayctl.boards.render import config_json

from tests.platform.platkit import config

AP_WPA2 = {"enabled": True, "ssid": "relay", "security": "wpa2", "passphrase": "correct horse",
           "country": "KZ", "channel": 6, "max_clients": 8, "address": "192.168.4.1", "subnet": "192.168.4.0/24"}


def calls(got, name):
    return [c for c in got["calls"] if c[0] == name]


def test_esp32_access_point_config_then_active_then_address(run_scenario):
    got = run_scenario(config(wifi=AP_WPA2), 300)
    names = [c[0] for c in got["calls"]]
    assert names[:4] == ["country", "WLAN.config", "WLAN.active", "WLAN.ifconfig"]
    assert got["calls"][0] == ["country", "KZ"]
    kw = calls(got, "WLAN.config")[0][3]
    assert kw == {"ssid": "relay", "channel": 6, "key": "correct horse", "security": 3, "max_clients": 8}
    assert got["calls"][2] == ["WLAN.active", "AP", True]
    assert got["calls"][3] == ["WLAN.ifconfig", "AP", ["192.168.4.1", "255.255.255.0", "192.168.4.1", "192.168.4.1"]]
    assert got["final"]["ap"]["state"] == "up" and got["final"]["platform"] == "esp32"
    assert got["final"]["uplink"] is None


def test_esp32_1_22_names_ap_if_and_auth_constants(run_scenario):
    got = run_scenario(config(wifi=dict(AP_WPA2, max_clients=30, country="00", security="open", passphrase="")),
                       300, api="old")
    kw = calls(got, "WLAN.config")[0][3]
    assert kw == {"ssid": "relay", "channel": 6, "security": 0, "max_clients": 10}  # ESP-IDF's cap
    assert not calls(got, "country")  # "00" is the driver's own world setting
    assert got["final"]["ap"]["state"] == "up"


def test_cyw43_is_never_given_max_clients(run_scenario):
    got = run_scenario(config(wifi=AP_WPA2), 300, radio="cyw43")
    for c in calls(got, "WLAN.config"):
        assert "max_clients" not in c[2] and "hidden" not in c[2]
    assert calls(got, "WLAN.config")[0][3]["security"] == 0x00400006  # WLAN.SEC_WPA_WPA2
    assert got["final"]["ap"]["state"] == "up" and got["final"]["platform"] == "cyw43"


def test_pico_w_profile_config_never_passes_max_clients(run_scenario, tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[wifi]\nsecurity = "wpa2"\npassphrase = "correct horse"\ncountry = "KZ"\nchannel = 6\n'
                    '[uplink]\nkind = "wifi-sta"\nssid = "neighbour"\npassphrase = "their secret"\n')
    r = boards.load("pico-w", str(site))
    assert not r.errors, r.errors
    cfg = config_json(r)
    assert cfg["wifi"]["max_clients"] > 0  # the profile does ask for a limit ...
    assert cfg["uplink"] == {"kind": "wifi-sta", "ssid": "neighbour", "passphrase": "their secret"}
    for sect in ("socks", "http", "portal", "dns"):
        cfg.get(sect, {}).pop("host", None)
    got = run_scenario(cfg, 1500, radio="cyw43", sim={"networks": {"neighbour": "their secret"}})
    assert [c for c in got["calls"] if c[0] == "WLAN.config" and "max_clients" in c[2]] == []  # ... never passed
    assert got["final"]["ap"]["state"] == "up"
    assert got["final"]["uplink"]["state"] == "up"


def test_station_uplink_beside_the_ap_comes_back_after_a_drop(run_scenario):
    up = {"kind": "wifi-sta", "ssid": "home", "passphrase": "secretpass1", "retry": 0.5, "connect_timeout": 3}
    # The link check runs every 2 s: keep the network away for longer than that, so that under a loaded
    # machine the drop cannot fall between two checks.
    got = run_scenario(config(wifi=AP_WPA2, uplink=up), 8000, sim={"networks": {"home": "secretpass1"}},
                       events=[[1000, "networks", {}], [4500, "networks", {"home": "secretpass1"}]])
    states = [s[1] for s in got["states"]]
    first_up = states.index("up")
    assert "connecting" in states[first_up:] and states[-1] == "up", got["states"]  # lost, then back
    assert "uplink wifi-sta: link lost" in got["log"]
    assert ["WLAN.connect", "home", "secretpass1"] in got["calls"]
    assert ["WLAN.active", "AP", False] not in got["calls"]  # the AP stays up throughout
    assert got["final"]["uplink"]["ip"] == "10.0.0.23" and got["final"]["uplink"]["changes"] >= 4
    assert got["final"]["uplink"]["gateway"] == "10.0.0.1"  # a mesh satellite chains to its relay there
    assert got["final"]["ap"]["state"] == "up"


def test_wrong_passphrase_is_reported_and_retried_with_backoff(run_scenario):
    up = {"kind": "wifi-sta", "ssid": "home", "passphrase": "wrongpass1", "retry": 0.3, "connect_timeout": 2}
    got = run_scenario(config(uplink=up), 2500, sim={"networks": {"home": "secretpass1"}, "connect_ms": 100})
    assert ["down", "wrong passphrase (uplink.passphrase)"] in [s[1:] for s in got["states"]]
    n = len([c for c in got["calls"] if c[0] == "WLAN.connect"])
    assert 2 <= n <= 5, n  # 0.3 s, 0.6 s, 1.2 s apart: backing off, not hammering
    assert got["final"]["uplink"]["state"] != "up"


def test_unknown_network_times_out_with_its_name(run_scenario):
    up = {"kind": "wifi-sta", "ssid": "nowhere", "retry": 5, "connect_timeout": 1}
    got = run_scenario(config(uplink=up), 1200, sim={"networks": {}})
    assert ["down", "network 'nowhere' not found"] in [s[1:] for s in got["states"]]


def test_cpython_bring_up_does_nothing():
    from relay.platform import board as platform
    from relay.config import load
    from relay.log import Log

    cfg = load(json.dumps(config(wifi=AP_WPA2, uplink={"kind": "wifi-sta", "ssid": "home"})))
    plat = platform.bring_up(cfg, Log("quiet"))
    plat.start()
    assert plat.state() == {"platform": "none", "ap": None, "uplink": None}


def test_unix_port_without_stand_in_does_nothing(tmp_path):
    from relayctl import paths

    c = tmp_path / "c.json"
    c.write_text(json.dumps(config(wifi=AP_WPA2, uplink={"kind": "cellular", "apn": "internet"})))
    code = ("from relay.platform import board as platform; from relay.config import load; from relay.log import Log\n"
            "p = platform.bring_up(load(open('%s').read()), Log('info')); p.start(); import json; print(json.dumps(p.state()))" % c)
    res = subprocess.run([str(paths.micropython_binary()), "-c", code], capture_output=True, text=True, timeout=30,
                         env={"MICROPYPATH": str(paths.FIRMWARE) + ":.frozen"})
    assert json.loads(res.stdout) == {"platform": "none", "ap": None, "uplink": None}, res.stdout + res.stderr


@pytest.mark.parametrize("args,expected", [
    (("relay", "open", "", 6, 4, "esp32", 0, 3), [("ssid", "relay"), ("channel", 6), ("security", 0), ("max_clients", 4)]),
    (("relay", "wpa2", "p" * 8, 1, 0, "esp32", 0, 3), [("ssid", "relay"), ("channel", 1), ("key", "p" * 8), ("security", 3)]),
    (("relay", "wpa2", "p" * 8, 11, 12, "cyw43", 0, None), [("ssid", "relay"), ("channel", 11), ("key", "p" * 8)]),
    (("r", "open", "", 6, 40, "esp32", None, None), [("ssid", "r"), ("channel", 6), ("max_clients", 10)]),
])
def test_ap_settings_pure(args, expected):
    from relay.platform.wifi import ap_settings

    assert ap_settings(*args) == expected


def test_netmask():
    from relay.platform.wifi import netmask

    assert [netmask(c) for c in ("10.0.0.0/8", "192.168.4.0/24", "172.16.0.0/20", "1.2.3.4/32")] == [
        "255.0.0.0", "255.255.255.0", "255.255.240.0", "255.255.255.255"]
