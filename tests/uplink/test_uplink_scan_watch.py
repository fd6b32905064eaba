"""`relayctl uplink scan` (slow AT+COPS=? with progress) and `watch` against the simulator."""

import json
import os
import select
import subprocess
import sys
import time

import pytest
from tests.uplink.uplinkkit import FAMILIES, ROOT, relayctl


@pytest.mark.parametrize("family", FAMILIES)
def test_scan_json(modem, family):
    m = modem(family, urcs=True, reg_delay=0)
    r = relayctl("scan", "--port", m.port, "--json")
    assert r.returncode == 0, r.stderr
    got = {n["plmn"]: n for n in json.loads(r.stdout)}
    assert got["25001"]["status"] == "current" and got["25001"]["rat"] == "LTE"
    assert got["25002"]["status"] == "available" and got["25002"]["operator"] == "MegaFon"
    assert got["25099"]["status"] == "forbidden" and got["25099"]["rat"] == "UMTS"
    assert all(n["country"] == "Russia" for n in got.values())


def test_slow_scan_shows_progress_on_a_terminal(modem):
    m = modem("quectel", slow_scan=2.5, urcs=True, reg_delay=0)
    master, slave = os.openpty()  # relayctl's stdout is a terminal, so progress redraws
    try:
        proc = subprocess.Popen([sys.executable, "-m", "relayctl.cli", "uplink", "scan", "--port", m.port],
                                stdout=slave, stderr=subprocess.PIPE, cwd=ROOT, env=dict(os.environ, NO_COLOR="1"))
        os.close(slave)
        chunks = []
        end = time.monotonic() + 30
        while time.monotonic() < end:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        assert proc.wait(10) == 0, proc.stderr.read()
    finally:
        os.close(master)
    text = b"".join(chunks).decode()
    assert "\r\x1b[Kscanning ... 1 s" in text and "scanning ... 2 s" in text
    assert "current    25001   LTE    MTS" in text
    assert "forbidden  25099   UMTS   Beeline" in text


def test_watch_prints_readings(modem):
    m = modem("huawei", reg_delay=0)
    r = relayctl("watch", "--port", m.port, "--count", "3", "--interval", "0.1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3
    assert "[###..] RSRP -96 dBm, RSRQ -10.0 dB, SINR 12.0 dB, RSSI -71 dBm | 25001 MTS LTE" in lines[0]
    assert lines[1].endswith("| 25001 MTS LTE")  # the operator stays named between its readings


def test_watch_keeps_the_name_when_the_modem_gives_no_digits(modem):
    m = modem("quectel", reg_delay=0, cops_numeric=False)
    r = relayctl("watch", "--port", m.port, "--count", "2", "--interval", "0.1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].endswith("| roaming on MTS RUS LTE") and lines[1].endswith("| roaming on MTS RUS LTE"), lines
