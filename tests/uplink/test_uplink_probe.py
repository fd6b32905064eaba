"""`relayctl uplink probe` end to end against the simulated modem families."""

import json

import pytest
from tests.uplink.uplinkkit import FAMILIES, relayctl


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("echo,urcs", [(True, False), (False, True)])
def test_probe_json(modem, family, echo, urcs):
    m = modem(family, echo=echo, urcs=urcs, reg_delay=0)
    r = relayctl("probe", "--port", m.port, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["modem"]["family"] == family
    assert got["modem"]["imei"] == "867698041234567"
    assert got["modem"]["firmware"].startswith(("EC25", "LE20B04", "22.323"))  # SIMCom's "+CGMR: " prefix dropped
    assert got["sim"]["state"] == "READY"
    assert got["sim"]["home"] == {"mcc": "401", "mnc": "02", "plmn": "40102", "country": "Kazakhstan",
                                  "operator": "Kcell"}
    assert got["registration"]["state"] == "roaming" and got["registration"]["data"] is True
    assert got["operator"]["plmn"] == "25001" and got["operator"]["country"] == "Russia"
    assert got["operator"]["rat"] == "LTE"
    assert got["signal"]["rssi_dbm"] == -71  # +CSQ: 21 -> -113 + 2*21
    assert got["signal"]["rsrp_dbm"] == -96  # +CESQ rsrp 45 -> -141 + 45
    assert got["signal"]["rsrq_db"] == -10
    if family != "simcom":  # SINR only through the vendor commands (+QCSQ, ^HCSQ)
        assert got["signal"]["sinr_db"] == {"quectel": 10.0, "huawei": 12.0}[family]
    assert got["network_time"] == "2024-05-01T12:34:56+05:00"
    assert m.sim.pin_attempts == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_probe_pin_locked_sim_reports_tries_and_sends_no_pin(modem, family):
    m = modem(family, pin="1234", pin_tries=2)
    r = relayctl("probe", "--port", m.port)
    assert r.returncode == 0, r.stderr
    assert "SIM       SIM PIN, 2 PIN tries left" in r.stdout
    assert m.sim.pin_attempts == 0
    assert not any(c.upper().startswith(("AT+CPIN=", "AT^CPIN=")) for c in m.sim.commands)


def test_probe_no_signal(modem):
    m = modem("quectel", no_signal=True)
    r = relayctl("probe", "--port", m.port)
    assert r.returncode == 0, r.stderr
    assert "network   searching" in r.stdout
    assert "signal    no signal  [.....]" in r.stdout


def test_probe_wrong_port_says_what_to_do(tmp_path):
    r = relayctl("probe", "--port", tmp_path / "ttyUSB9")
    assert r.returncode == 2
    assert "cannot open" in r.stderr and "ls /dev/ttyUSB*" in r.stderr


def test_probe_silent_port_times_out_with_advice():
    import os
    import tty

    master, slave = os.openpty()  # a port nobody answers on: a modem's GPS/diag port
    tty.setraw(slave)
    try:
        r = relayctl("probe", "--port", os.ttyname(slave))
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 4
    assert "no answer" in r.stderr and "ttyUSB2" in r.stderr


@pytest.mark.parametrize("family,via", [("quectel", ("ati",)), ("simcom", ("g",)), ("huawei", ("ati",))])
def test_identity_falls_back_to_gmi_gmm_and_ati(modem, family, via):
    """A modem that refuses AT+CGMI/CGMM/CGMR is still known, with its family's PIN-tries command."""
    m = modem(family, ident_via=via, pin="1234", pin_tries=2)
    r = relayctl("probe", "--port", m.port, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    want = {"quectel": ("Quectel", "EC25", "EC25EFAR06A06M4G"),
            "simcom": ("SIMCOM INCORPORATED", "SIMCOM_SIM7600G-H", "LE20B04SIM7600G22"),
            "huawei": ("huawei", "E3372", "22.323.62.00.143")}[family]
    assert (got["modem"]["manufacturer"], got["modem"]["model"], got["modem"]["firmware"]) == want
    assert got["modem"]["family"] == family
    assert got["sim"]["pin_tries_left"] == 2  # through the family's own command (+QPINC, +SPIC, ^CPIN)


def test_operator_name_and_radio_kept_when_the_modem_gives_no_digits(modem):
    m = modem("quectel", reg_delay=0, cops_numeric=False)
    r = relayctl("probe", "--port", m.port)
    assert r.returncode == 0, r.stderr
    assert "network   roaming on MTS RUS, LTE, auto selection" in r.stdout, r.stdout
    got = json.loads(relayctl("probe", "--port", m.port, "--json").stdout)["operator"]
    assert got["name"] == "MTS RUS" and got["rat"] == "LTE" and got["plmn"] is None
