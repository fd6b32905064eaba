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
