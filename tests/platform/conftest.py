import json
import os
import subprocess
import sys

import pytest

from relayctl import paths

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = str(paths.ROOT)
sys.path.insert(0, str(paths.FIRMWARE))


def micropython():
    return str(paths.micropython_binary())


def mp_path(radio):
    port = "port_rp2" if radio == "cyw43" else "port_esp32"
    return ":".join([os.path.join(HERE, "stub"), os.path.join(HERE, port), str(paths.FIRMWARE), ".frozen"])


@pytest.fixture
def run_scenario(tmp_path):
    def run(cfg, duration_ms, radio="esp32", api="new", sim=None, events=(), uarts=None):
        c = tmp_path / "config.json"
        c.write_text(json.dumps(cfg))
        s = tmp_path / "scenario.json"
        s.write_text(json.dumps({"sim": sim or {}, "events": list(events)}))
        env = dict(os.environ, MICROPYPATH=mp_path(radio), NETSTUB_RADIO=radio, NETSTUB_API=api)
        for uid, addr in (uarts or {}).items():
            env["NETSTUB_UART%d" % uid] = addr
        res = subprocess.run([micropython(), os.path.join(HERE, "mp_scenario.py"), str(c), str(s), str(duration_ms)],
                             capture_output=True, text=True, timeout=duration_ms / 1000 + 30, env=env, cwd=str(tmp_path))
        out = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
        assert res.returncode == 0 and out, res.stdout + res.stderr
        got = json.loads(out[0][7:])
        got["log"] = res.stdout + res.stderr
        return got

    return run
