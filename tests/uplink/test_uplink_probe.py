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
