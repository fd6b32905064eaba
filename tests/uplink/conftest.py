"""Fixtures for the uplink tests: a simulated modem on a pty (tests/sim/modem.py)."""

import pytest

from tests.sim.modem import ModemSim, PtyModem


@pytest.fixture
def modem():
    """modem(family, **scenario) -> a running PtyModem; stopped after the test."""
    started = []

    def start(family="quectel", **kw):
        m = PtyModem(ModemSim(family, **kw)).__enter__()
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


@pytest.fixture(autouse=True)
def pin_log_dir(tmp_path, monkeypatch):
    """Each test has its own record of rejected PINs (relayctl keeps it in RELAY_STATE_DIR)."""
    d = tmp_path / "state"
    monkeypatch.setenv("RELAY_STATE_DIR", str(d))
    return d
