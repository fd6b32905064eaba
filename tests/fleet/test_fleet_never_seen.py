"""`relayctl fleet --once` lists a relay the site names (fleet.relays) that never reported, as "never seen",
problems first (T11): a relay that never came up is not invisible. A real mosquitto with the rendered config,
a real relay reporting, one listed relay that never starts."""

import json
import shutil
import tempfile
import time
from pathlib import Path

from relayctl.fleet import keys
from tests.fleet.fleetkit import Mosquitto, need_mosquitto
from tests.flash.flashkit import relayctl
from tests.helpers.relayproc import RelayProcess, free_port

KEY = "7a" * 32


def test_a_listed_relay_that_never_reported_is_shown_first(tmp_path):
    need_mosquitto()
    port = free_port()
    site = tmp_path / "site.toml"
    site.write_text(f'[fleet]\nbroker = "127.0.0.1"\nport = {port}\nkey = "{KEY}"\nrelays = ["up-1", "never-2"]\n')
    broker_dir = Path(tempfile.mkdtemp(prefix="relay-fleet-never-"))  # mosquitto's user must enter it
    m = relay = None
    try:
        assert relayctl("fleet", "broker-config", "--site", str(site), "--out", str(broker_dir), "--listen",
                        "127.0.0.1", "--port", str(port)).returncode == 0
        m = Mosquitto(broker_dir / "mosquitto.conf", port, tmp_path / "mosquitto.log")
        m.start()
        key = bytes.fromhex(KEY)
        relay = RelayProcess("cpython", tmp_path, {"fleet": {
            "enabled": True, "broker": "127.0.0.1", "port": port, "name": "up-1", "user": "up-1",
            "password": keys.password(key, "up-1"), "interval": 2, "keepalive": 10}})
        deadline = time.monotonic() + 20
        while True:
            r = relayctl("fleet", "--site", str(site), "--json", "--once", "--wait", "3")
            assert r.returncode == 0, r.stderr
            rows = json.loads(r.stdout)
            if any(x["name"] == "up-1" and x["report"] for x in rows) or time.monotonic() > deadline:
                break
        assert [x["name"] for x in rows] == ["never-2", "up-1"], rows
        assert rows[0]["problems"] == ["never seen"] and rows[0]["state"] == "never seen"
        text = relayctl("fleet", "--site", str(site), "--once", "--wait", "3").stdout
        assert "never-2" in text and "NEVER SEEN" in text and "1 needs a look" in text, text
    finally:
        if relay is not None:
            relay.stop()
        if m is not None:
            m.stop()
        shutil.rmtree(broker_dir, ignore_errors=True)
