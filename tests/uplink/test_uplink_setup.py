"""`relayctl uplink setup` end to end: PIN rules, roaming, operator choice, resets, site file."""

import json

import pytest
from tests.uplink.uplinkkit import FAMILIES, golden, relayctl

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


def pin_commands(m):
    return [c for c in m.sim.commands if c.upper().startswith(("AT+CPIN=", "AT^CPIN="))]


@pytest.mark.parametrize("family", FAMILIES)
def test_setup_with_pin_registers_roaming(modem, family):
    m = modem(family, pin="1234", urcs=True)
    r = relayctl("setup", "--port", m.port, "--pin", "1234", "--apn", "internet.kcell.kz", "--roaming",
                 "--rat", "lte", "--timeout", "10", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["sim"]["pin_entered"] is True
    assert got["registration"]["state"] == "roaming"
    assert got["operator"]["plmn"] == "25001"
    assert pin_commands(m) == ['AT+CPIN="1234"']
    assert m.sim.settings["apn"] == "internet.kcell.kz"
    want = {"quectel": ("nwscanmode", 3), "simcom": ("cnmp", 38), "huawei": ("acqorder", "03")}[family]
    assert m.sim.settings[want[0]] == want[1]
    if family == "quectel":
        assert m.sim.settings["roamservice"] == 2
    if family == "huawei":
        assert m.sim.settings["roam"] == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_wrong_pin_is_tried_exactly_once(modem, family):
    m = modem(family, pin="1234")
    r = relayctl("setup", "--port", m.port, "--pin", "4321", "--apn", "internet", "--timeout", "5")
    assert r.returncode == 3
    assert "SIM rejected the PIN: wrong PIN (2 tries left" in r.stderr
    assert m.sim.pin_attempts == 1
    assert pin_commands(m) == ['AT+CPIN="4321"']
    assert m.sim.pin_tries == 2
    assert not any(c.startswith("AT+CGDCONT") for c in m.sim.commands)  # stopped at once


def test_sim_asks_for_pin_but_none_given(modem):
    m = modem("quectel", pin="1234")
    r = relayctl("setup", "--port", m.port, "--apn", "internet", "--timeout", "5")
    assert r.returncode == 3
    assert "SIM asks for its PIN: none given; 3 tries left; run again with --pin" in r.stderr
    assert m.sim.pin_attempts == 0


def test_pin_given_but_not_asked_is_not_sent(modem):
    m = modem("simcom", reg_delay=0)
    r = relayctl("setup", "--port", m.port, "--pin", "1234", "--apn", "internet", "--roaming", "--timeout", "5")
    assert r.returncode == 0, r.stderr
    assert m.sim.pin_attempts == 0
    assert "SIM: ready (no PIN asked)" in r.stdout


def test_last_pin_try_needs_force(modem):
    m = modem("huawei", pin="1234", pin_tries=1)
    r = relayctl("setup", "--port", m.port, "--pin", "1111", "--apn", "internet", "--timeout", "5")
    assert r.returncode == 3
    assert "1 PIN try left" in r.stderr and "--force" in r.stderr
    assert m.sim.pin_attempts == 0
    r = relayctl("setup", "--port", m.port, "--pin", "1111", "--apn", "internet", "--timeout", "5", "--force")
    assert r.returncode == 3
    assert "locked behind its PUK" in r.stderr
    assert m.sim.pin_attempts == 1


def test_puk_locked_sim(modem):
    m = modem("quectel", pin="1234", pin_tries=0)
    r = relayctl("setup", "--port", m.port, "--pin", "1234", "--apn", "internet", "--timeout", "5")
    assert r.returncode == 3
    assert "locked behind its PUK (10 PUK tries left)" in r.stderr
    assert m.sim.pin_attempts == 0


@pytest.mark.parametrize("family", ["quectel", "huawei"])
def test_roaming_denied_then_allowed(modem, family):
    m = modem(family, roaming_denied=True)
    r = relayctl("setup", "--port", m.port, "--apn", "internet", "--timeout", "2")
    assert r.returncode == 5
    assert "network denied registration" in r.stderr and "--roaming" in r.stderr
    r = relayctl("setup", "--port", m.port, "--apn", "internet", "--roaming", "--timeout", "10", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["registration"]["state"] == "roaming"


def test_no_signal_times_out_with_advice(modem):
    m = modem("simcom", no_signal=True)
    r = relayctl("setup", "--port", m.port, "--apn", "internet", "--roaming", "--timeout", "2")
    assert r.returncode == 5
    assert "not registered after 2 s (searching, no signal)" in r.stderr
    assert "relayctl uplink watch" in r.stderr


@pytest.mark.parametrize("family", ["quectel", "simcom"])
def test_reset_mid_setup_starts_over(modem, family):
    m = modem(family, pin="1234", reset_on="AT+CGDCONT")
    r = relayctl("setup", "--port", m.port, "--pin", "1234", "--apn", "internet", "--roaming", "--timeout", "10")
    assert r.returncode == 0, r.stderr
    assert m.sim.resets == 1
    assert "modem restarted during setup" in r.stderr
    # The SIM asked again after the restart; the PIN it had accepted went once more, costing no try.
    assert pin_commands(m) == ['AT+CPIN="1234"', 'AT+CPIN="1234"']
    assert m.sim.pin_tries == 3
    assert m.sim.settings["apn"] == "internet"


def test_manual_operator(modem):
    m = modem("quectel")
    r = relayctl("setup", "--port", m.port, "--apn", "internet", "--roaming", "--operator", "25002",
                 "--rat", "lte", "--timeout", "10", "--json")
    assert r.returncode == 0, r.stderr
    assert 'AT+COPS=1,2,"25002",7' in m.sim.commands
    got = json.loads(r.stdout)
    assert got["operator"]["plmn"] == "25002" and got["operator"]["mode"] == "manual"


def test_forbidden_operator_error_is_a_sentence(modem):
    m = modem("quectel")
    r = relayctl("setup", "--port", m.port, "--apn", "internet", "--roaming", "--operator", "25099", "--timeout", "5")
    assert r.returncode == 5
    assert "cannot select operator 25099 (Beeline, Russia): PLMN not allowed" in r.stderr
    assert "relayctl uplink scan" in r.stderr


SITE = """\
# Relay site file for the border village (comments must survive setup)
[wifi]
ssid = "relay"  # what phones see

[uplink]
kind = "ethernet"   # was: satellite terminal
"""


def test_setup_writes_site_file_and_renders(modem, tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    m = modem("quectel", pin="1234")
    r = relayctl("setup", "--port", m.port, "--pin", "1234", "--apn", "internet.beeline.kz", "--roaming",
                 "--operator", "25001", "--site", site, "--render-dir", tmp_path / "out", "--timeout", "10")
    assert r.returncode == 0, r.stderr
    text = site.read_text()
    assert "# Relay site file for the border village" in text and "# what phones see" in text
    doc = tomllib.loads(text)
    assert doc["wifi"] == {"ssid": "relay"}
    assert doc["uplink"] == {"kind": "cellular", "apn": "internet.beeline.kz", "pin": "1234", "roaming": True,
                             "operator": "25001", "rat": "auto"}
    golden("setup-networkmanager.nmconnection", (tmp_path / "out" / "relay-uplink.nmconnection").read_text())
    golden("setup-openwrt-network.uci", (tmp_path / "out" / "network-lte.uci").read_text())
    assert (tmp_path / "out" / "relay-uplink.nmconnection").stat().st_mode & 0o077 == 0
    assert site.stat().st_mode & 0o077 == 0  # the site file holds the PIN now
    # render reads the same table back
    r = relayctl("render", "--site", site, "--format", "openwrt")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (tmp_path / "out" / "network-lte.uci").read_text()


# -- a rejected PIN is remembered per SIM, across runs --------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_a_rejected_pin_is_never_sent_to_that_sim_again(modem, family, pin_log_dir):
    m = modem(family, pin="1234")
    for run, extra in enumerate(([], [], ["--force"])):
        r = relayctl("setup", "--port", m.port, "--pin", "9999", "--apn", "internet", "--timeout", "5", *extra)
        assert r.returncode == 3, r.stderr
        if run:
            assert "rejected this PIN on" in r.stderr and "nothing was sent" in r.stderr, r.stderr
    assert pin_commands(m) == ['AT+CPIN="9999"'] and m.sim.pin_tries == 2  # one try spent, not three
    log = pin_log_dir / "sim-pins.json"
    assert log.stat().st_mode & 0o077 == 0 and "9999" not in log.read_text()
    r = relayctl("setup", "--port", m.port, "--pin", "1234", "--apn", "internet", "--roaming", "--timeout", "10")
    assert r.returncode == 0, r.stderr  # the right PIN still goes (the SIM says 2 tries are left)
    assert pin_commands(m) == ['AT+CPIN="9999"', 'AT+CPIN="1234"']


def test_another_sim_is_not_held_to_the_first_ones_record(modem):
    first = modem("quectel", pin="1234")
    assert relayctl("setup", "--port", first.port, "--pin", "9999", "--apn", "i", "--timeout", "5").returncode == 3
    other = modem("quectel", pin="9999", iccid="89701019999999999999")
    r = relayctl("setup", "--port", other.port, "--pin", "9999", "--apn", "i", "--roaming", "--timeout", "10")
    assert r.returncode == 0, r.stderr
    assert pin_commands(other) == ['AT+CPIN="9999"']


def test_unknown_tries_after_a_rejection_need_their_own_flag(modem):
    """The modem cannot say how many tries are left: after one rejected PIN, no other is sent (not even with
    --force) until --pin-retry-unknown-tries says so."""
    m = modem("simcom", pin="1234", hide_pin_tries=True)
    r = relayctl("setup", "--port", m.port, "--pin", "9999", "--apn", "i", "--timeout", "5")
    assert r.returncode == 3 and "tries left unknown" in r.stderr, r.stderr
    for extra in ([], ["--force"]):
        r = relayctl("setup", "--port", m.port, "--pin", "1111", "--apn", "i", "--timeout", "5", *extra)
        assert r.returncode == 3 and "--pin-retry-unknown-tries" in r.stderr, r.stderr
        assert "does not say how many tries are left" in r.stderr
    assert pin_commands(m) == ['AT+CPIN="9999"']
    r = relayctl("setup", "--port", m.port, "--pin", "1234", "--apn", "i", "--roaming", "--timeout", "10",
                 "--pin-retry-unknown-tries")
    assert r.returncode == 0, r.stderr
    assert pin_commands(m) == ['AT+CPIN="9999"', 'AT+CPIN="1234"'] and m.sim.pin_tries == 3
