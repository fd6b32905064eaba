"""The record of rejected PINs fails closed: when it is there but cannot be read, no PIN is sent (the SIM
would lock behind its PUK after three wrong ones), and the message says which file and what to do."""

from tests.uplink.test_uplink_setup import pin_commands
from tests.uplink.uplinkkit import relayctl


def test_an_unreadable_pin_record_sends_no_pin(modem, pin_log_dir):
    m = modem("quectel", pin="1234")
    r = relayctl("setup", "--port", m.port, "--pin", "9999", "--apn", "internet", "--timeout", "5")
    assert r.returncode == 3, r.stderr  # rejected, and written down
    log = pin_log_dir / "sim-pins.json"
    log.write_text(log.read_text()[:40])  # damaged (a disk that failed, an editor): the rejection is unreadable
    r = relayctl("setup", "--port", m.port, "--pin", "9999", "--apn", "internet", "--timeout", "5", "--force")
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert str(log) in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert pin_commands(m) == ['AT+CPIN="9999"'] and m.sim.pin_tries == 2  # the wrong PIN was not sent again
