"""Linux relays in the fleet: the uplink the site set up (not "direct") and, for an LTE stick, the modem's
signal from the file `relayctl uplink watch --status-file` keeps, with its age; and `relayctl fleet
--broker HOST:PORT --user --password` (no site file) against a real mosquitto with the rendered accounts.

The modem is tests/sim/modem.py answering AT commands on a pty; the watcher is the real `relayctl uplink
watch`; the relays run the real firmware. Two relays: "lte" on CPython (as a Raspberry Pi runs it) with a
watcher, "lte-mp" on the MicroPython unix port (the same firmware code) whose watcher never ran.
"""

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from relayctl.fleet import keys
from tests.fleet.fleetkit import Listener, Mosquitto, need_mosquitto, report
from tests.fleet.test_fleet import relayctl, wait_for
from tests.helpers.relayproc import RelayProcess, free_port
from tests.sim.modem import ModemSim, PtyModem

KEY = "7a" * 32
NAMES = ["lte", "lte-mp"]
PASSWORD = keys.password(bytes.fromhex(KEY), "volunteers")
WATCH_INTERVAL = 0.5  # the watcher's promise: a reading older than 2 x 0.5 + 2 s is stale


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    need_mosquitto()
    tmp = tmp_path_factory.mktemp("fleet-linux")
    port = free_port()
    site = tmp / "site.toml"
    site.write_text(f'[fleet]\nbroker = "127.0.0.1"\nport = {port}\nkey = "{KEY}"\nrelays = {json.dumps(NAMES)}\n')
    conf_dir = Path(tempfile.mkdtemp(prefix="relay-fleet-linux-"))  # mosquitto (as root: its own user) reads it
    res = relayctl("fleet", "broker-config", "--site", str(site), "--out", str(conf_dir), "--listen", "127.0.0.1",
                   "--port", str(port))
    assert res.returncode == 0, res.stderr
    m = Mosquitto(conf_dir / "mosquitto.conf", port, tmp / "mosquitto.log")
    m.start()
    m.tmp = tmp
    yield m
    m.stop()
    shutil.rmtree(conf_dir, ignore_errors=True)


def start_relay(runtime, broker, name, modem_status):
    key = bytes.fromhex(KEY)
    cfg = {"fleet": {"enabled": True, "broker": "127.0.0.1", "port": broker.port, "name": name,
                     "user": name, "password": keys.password(key, name), "interval": 1, "keepalive": 4,
                     "retry_max": 2},
           "uplink": {"kind": "cellular", "modem_status": str(modem_status)}}
    return RelayProcess(runtime, broker.tmp, cfg, ready_timeout=60)


@pytest.fixture(scope="module")
def fleet(broker):
    """The watcher reads the simulated modem once and exits; then the two relays start."""
    status = broker.tmp / "relay-modem.json"
    with PtyModem(ModemSim("quectel", reg_delay=0)) as modem:
        res = relayctl("uplink", "watch", "--port", modem.port, "--count", "1", "--interval", str(WATCH_INTERVAL),
                       "--status-file", str(status))
        assert res.returncode == 0, res.stderr
    volunteers = Listener(broker.port, "volunteers", PASSWORD, ["relay/#"])
    relays = []
    try:
        relays.append(start_relay("cpython", broker, "lte", status))
        relays.append(start_relay("micropython", broker, "lte-mp", broker.tmp / "no-watcher.json"))
        yield status, volunteers, broker.port
    finally:
        volunteers.close()
        for r in relays:
            r.stop()


def test_an_lte_relay_on_linux_reports_its_modem_signal_and_when_it_goes_stale(fleet):
    status, volunteers, _port = fleet
    reading = json.loads(status.read_text())
    assert reading["signal"]["rssi_dbm"] == -71 and reading["registration"] == "roaming"
    assert "401021234567890" not in status.read_text()  # no IMSI in a file the relay reads

    def fresh():
        rep = report(volunteers, "lte")
        return rep if rep and rep["uplink"].get("signal") is not None else None

    rep = wait_for(fresh, 15)
    assert rep, f"no report with a live signal: {report(volunteers, 'lte')}"
    u = rep["uplink"]
    assert u["kind"] == "cellular" and u["signal"] == -71 and u["registration"] == "roaming"
    assert 0 <= u["signal_age_s"] <= 2 * WATCH_INTERVAL + 2 and u["last_signal"] is None

    # The watcher is gone (the modem unplugged, the service dead): its last reading must not look live.
    def stale():
        r = report(volunteers, "lte")
        return r if r and r["uplink"].get("signal") is None else None

    rep = wait_for(stale, 15)
    assert rep, "the relay kept reporting a dead watcher's signal as live"
    u = rep["uplink"]
    assert u["last_signal"] == -71 and u["signal_age_s"] > 2 * WATCH_INTERVAL + 2 and u["registration"] is None

    mp = wait_for(lambda: report(volunteers, "lte-mp"), 30)
    assert mp, "the MicroPython relay never reported"
    assert mp["uplink"]["kind"] == "cellular" and mp["uplink"]["signal"] is None
    assert mp["uplink"]["modem_error"] == "missing"


def test_relayctl_fleet_by_broker_address_and_login(fleet):
    """relayctl fleet --broker HOST:PORT --user --password --once, no site file: both relays, as JSON and
    as the table (after the test above: the lte relay's signal is stale, and the table says how old)."""
    args = ("fleet", "--broker", f"127.0.0.1:{fleet[2]}", "--user", "volunteers", "--password",
            PASSWORD, "--once", "--wait", "3")
    res = relayctl(*args, "--json")
    assert res.returncode == 0, res.stderr
    rows = {x["name"]: x for x in json.loads(res.stdout)}
    assert set(rows) == set(NAMES)
    assert all(rows[n]["online"] and rows[n]["uplink"]["kind"] == "cellular" for n in NAMES)
    assert rows["lte"]["uplink"]["last_signal"] == -71 and rows["lte-mp"]["uplink"]["modem_error"] == "missing"
    res = relayctl(*args)
    assert res.returncode == 0, res.stderr
    lines = {x.split()[0]: x for x in res.stdout.splitlines() if x.strip()}
    assert "cellular" in lines["lte"] and "-71 dBm" in lines["lte"] and " old)" in lines["lte"], res.stdout
    assert "no modem reading: missing" in lines["lte-mp"], res.stdout
