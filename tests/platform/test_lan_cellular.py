"""Ethernet (network.LAN) and cellular (AT over machine.UART, then network.PPP) uplinks under the
real MicroPython interpreter, against the stand-ins in stub/ and the modem simulator of
tests/sim/modem.py on a loopback TCP port. Not tested on hardware (see test_wifi.py)."""

import threading

import pytest

from tests.platform.modem_link import PPPModemSim, TcpModem
from tests.platform.platkit import config

LAN = {"kind": "ethernet", "lan_phy": "lan8720", "lan_addr": 1, "lan_mdc": 23, "lan_mdio": 18, "lan_power": 16,
       "lan_clock": "gpio0-in", "retry": 0.5, "connect_timeout": 2}


def test_lan_from_config_then_cable_pulled_and_back(run_scenario):
    got = run_scenario(config(uplink=LAN), 5000, events=[[1000, "lan_link", False], [2600, "lan_link", True]])
    lan = [c for c in got["calls"] if c[0] == "LAN"][0][1]
    assert lan == {"mdc": 23, "mdio": 18, "power": 16, "phy_addr": 1, "phy_type": 1, "ref_clk_mode": 1, "ref_clk": 0}
    states = [s[1] for s in got["states"]]
    assert states[states.index("up"):].count("up") >= 2, got["states"]
    assert "uplink ethernet: link lost" in got["log"]
    assert got["final"]["uplink"]["state"] == "up" and got["final"]["uplink"]["ip"] == "192.168.100.23"


def test_lan_no_dhcp_says_so(run_scenario):
    got = run_scenario(config(uplink=dict(LAN, connect_timeout=0.5, retry=5)), 1200, sim={"lan_dhcp": False})
    assert ["down", "cable has link but no DHCP answer within 0 s"] in [s[1:] for s in got["states"]]


def test_cyw43_has_no_lan(run_scenario):
    got = run_scenario(config(uplink=LAN), 300, radio="cyw43")
    assert got["final"]["uplink"]["state"] == "failed"
    assert "no driver for the lan8720 PHY" in got["final"]["uplink"]["detail"]


CELL = {"kind": "cellular", "uart": 1, "tx": 27, "rx": 26, "baud": 115200, "apn": "internet", "pin": "1234",
        "roaming": True, "retry": 0.5, "connect_timeout": 5, "register_timeout": 5}


@pytest.fixture
def modem():
    made = []

    def make(**kw):
        m = TcpModem(PPPModemSim(**kw))
        m._thread.start()
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()


@pytest.mark.parametrize("api", ["new", "old"])
def test_cellular_foreign_sim_with_pin_roams_dials_and_survives_a_lost_carrier(run_scenario, modem, api):
    m = modem(family="quectel", pin="1234", roaming_denied=True, reg_delay=0.2)
    timer = threading.Timer(3.0, m.drop_carrier)
    timer.start()
    try:
        up = dict(CELL, user="gprs", password="gprs") if api == "old" else CELL
        got = run_scenario(config(uplink=up), 9000, api=api, uarts={1: m.address})
    finally:
        timer.cancel()
    sim = m.sim
    assert sim.pin_attempts == 1
    assert 'AT+QCFG="roamservice",2,1' in sim.commands  # roaming switched on: the SIM is foreign
    assert 'AT+CGDCONT=1,"IP","internet"' in sim.commands
    assert sim.dials == 2, sim.commands  # dialled, lost the carrier, dialled again
    assert ["UART", 1, 115200, 27, 26] in got["machine"]
    ppp = [c for c in got["calls"] if c[0] == "PPP.connect"]
    if api == "new":
        assert ppp[0][1] == {"security": 0, "user": None, "key": None}
        assert ["UART.irq", True, 4096] in got["machine"]  # PPP is fed by the UART's RXIDLE interrupt
    else:
        assert ["PPP.active", True] in got["calls"]
        assert ppp[0][1] == {"authmode": 1, "username": "gprs", "password": "gprs"}
    assert "uplink cellular: link lost" in got["log"]
    fin = got["final"]["uplink"]
    assert fin["state"] == "up" and fin["registration"] == "roaming" and fin["modem"] == "quectel", fin
    assert fin["signal_dbm"] == -71 and fin["ip"] == "10.64.12.34"
    assert 0 <= fin["signal_age_s"] <= 9  # read at registration (PPP then holds the UART): its age, for the fleet
    assert fin["network_time"] == 1714548896  # +CCLK "24/05/01,12:34:56+20": 07:34:56 UTC, for relay.clock


def test_wrong_pin_is_sent_once_and_never_again(run_scenario, modem):
    m = modem(family="simcom", pin="1234")
    got = run_scenario(config(uplink=dict(CELL, pin="0000")), 3000, uarts={1: m.address})
    assert m.sim.pin_attempts == 1 and m.sim.pin_tries == 2
    fin = got["final"]["uplink"]
    assert fin["state"] == "failed" and "not retried" in fin["detail"], fin


def test_roaming_off_on_a_foreign_sim_says_what_to_change(run_scenario, modem):
    m = modem(family="quectel", roaming_denied=True, reg_delay=0.1)
    got = run_scenario(config(uplink=dict(CELL, pin="", roaming=False, register_timeout=1, retry=10)), 6000,
                       uarts={1: m.address})
    assert 'AT+QCFG="roamservice",1,1' in m.sim.commands and m.sim.dials == 0
    assert any("uplink.roaming = true" in s[2] for s in got["states"]), got["states"] + [got["log"], m.sim.commands]


def test_no_modem_answer_is_retried(run_scenario):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)  # accepts, never answers: a modem that is off
    try:
        got = run_scenario(config(uplink=dict(CELL, retry=0.2)), 10000, uarts={1: "127.0.0.1:%d" % s.getsockname()[1]})
    finally:
        s.close()
    assert got["final"]["uplink"]["state"] in ("down", "connecting")
    assert "no answer to AT" in got["log"]
