"""Twenty relays (CPython and the MicroPython unix port) report to a real mosquitto that runs the
config `relayctl fleet broker-config` rendered; volunteers read them with `relayctl fleet`.

One broker and one fleet serve the module; the tests run in order and each leaves the fleet as the next
expects (the broker outage and the SIGKILL come late, the privacy check last).
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from relayctl.fleet import keys
from tests.fleet.fleetkit import (CLIENT_IP, DEST_IP, DEST_NAME, Listener, Mosquitto, need_mosquitto, report,
                                  socks_fetch, socks_round_trip)
from tests.helpers.origin import EchoServer, Origin
from tests.helpers.relayproc import ROOT, RelayProcess, free_port

N = 20
NAMES = [f"r{i:02d}" for i in range(N)]
MICRO = set(NAMES[N // 2:])  # half the fleet on the MicroPython unix port
KEEPALIVE = 4
INTERVAL = 2
RETRY_MAX = 3
KEY = "5e" * 32


def relayctl(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "relayctl.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT / "host_tools")))


def fleet_json(site):
    r = relayctl("fleet", "--site", str(site), "--json", "--once", "--wait", "3")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


class Fleet:
    pass


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    need_mosquitto()
    tmp = tmp_path_factory.mktemp("fleet")
    f = Fleet()
    f.tmp = tmp
    f.port = free_port()
    f.site = tmp / "site.toml"
    f.site.write_text(f'[fleet]\nbroker = "127.0.0.1"\nport = {f.port}\nkey = "{KEY}"\nrelays = {json.dumps(NAMES)}\n')
    # Under /tmp itself: as root mosquitto runs as its own user, who cannot enter pytest's 0700 directory.
    f.broker_dir = Path(tempfile.mkdtemp(prefix="relay-fleet-broker-"))
    res = relayctl("fleet", "broker-config", "--site", str(f.site), "--out", str(f.broker_dir),
                   "--listen", "127.0.0.1", "--port", str(f.port))
    assert res.returncode == 0, res.stderr
    f.volunteer_password = keys.password(bytes.fromhex(KEY), "volunteers")
    assert f.volunteer_password in res.stdout
    f.broker = Mosquitto(f.broker_dir / "mosquitto.conf", f.port, tmp / "mosquitto.log")
    f.broker.start()
    f.origin = Origin(size=200 * 1024, host=DEST_IP)
    f.echo = EchoServer(host=DEST_IP)
    key = bytes.fromhex(KEY)

    def start(name):
        cfg = {
            "fleet": {"enabled": True, "broker": "127.0.0.1", "port": f.port, "name": name, "place": "district " + name[-1],
                      "user": name, "password": keys.password(key, name), "command_key": keys.command_key(key, name),
                      "interval": INTERVAL, "keepalive": KEEPALIVE, "retry_max": RETRY_MAX},
            "dns": {"hosts": {DEST_NAME: [DEST_IP]}},
            "limits": {"tunnels": 16, "sessions": 32, "buffer": 16384},
        }
        # Twenty interpreters starting at once on two shared cores: give each time to get ready.
        return RelayProcess("micropython" if name in MICRO else "cpython", tmp, cfg, ready_timeout=90)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(start, name) for name in NAMES]
    started = [fu.result() for fu in futures if fu.exception() is None]
    failed = [fu.exception() for fu in futures if fu.exception() is not None]
    if failed:  # stop the ones that did start: a failed setup must not leave relays running
        for r in started:
            r.stop()
        f.broker.stop()
        raise failed[0]
    f.relays = dict(zip(NAMES, started))
    f.volunteers = Listener(f.port, "volunteers", f.volunteer_password, ["relay/#"])
    yield f
    f.volunteers.close()
    for r in f.relays.values():
        r.stop()
    f.broker.stop()
    shutil.rmtree(f.broker_dir, ignore_errors=True)
    f.origin.close()
    f.echo.close()


def wait_for(cond, timeout, step=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def test_all_twenty_listed_with_the_right_counters(fleet):
    busy = ["r00", "r10"]  # one CPython, one MicroPython
    for name in busy:
        body = socks_fetch(fleet.relays[name].socks, fleet.origin.port)
        assert len(body) == 200 * 1024
        socks_round_trip(fleet.relays[name].socks, dest_port=fleet.echo.port)

    def settled():
        rows = {x["name"]: x for x in fleet_json(fleet.site)}
        if set(rows) != set(NAMES):
            return None
        for name in NAMES:
            st = fleet.relays[name].status_json()
            rep = rows[name]["report"]
            if (rep["tunnels_total"], rep["today"]["down"], rep["today"]["up"]) != (
                    st["tunnels_total"], st["bytes_down"], st["bytes_up"]):
                return None
        return rows

    rows = wait_for(settled, 20, step=0.5)
    assert rows, "the fleet view never matched the relays' own counters"
    for name in NAMES:
        x = rows[name]
        assert x["online"] and x["problems"] == [] and x["place"] == "district " + name[-1]
        rep = x["report"]
        assert rep["runtime"] == ("micropython" if name in MICRO else "cpython")
        assert rep["people"] == 0 and rep["tunnels"] == 0 and rep["refused"] == {}
        if name in busy:
            assert rep["tunnels_total"] == 2 and rep["today"]["down"] > 200 * 1024 and rep["today"]["up"] >= 64
        else:
            assert rep["tunnels_total"] == 0 and rep["today"] == {"down": 0, "up": 0}
        assert rep["config"] and rep["version"] and rep["uplink"]["kind"] == "direct"
        assert rep["mem"]["free" if name in MICRO else "rss_kib"] > 0
    # the table a volunteer reads
    res = relayctl("fleet", "--site", str(fleet.site), "--once", "--wait", "3")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0].split()[:3] == ["relay", "place", "state"]
    assert "20 relays, 0 need a look" in res.stdout


def test_a_relays_login_cannot_write_another_relays_topic_or_read_the_fleet(fleet):
    pw = keys.password(bytes.fromhex(KEY), "r01")
    spy = Listener(fleet.port, "r01", pw, ["relay/#", "relay/r02/report"], client_id="spy-r01")
    try:
        before = report(fleet.volunteers, "r02")
        spy.publish("relay/r02/report", json.dumps({"name": "r02", "people": 999}).encode())
        spy.publish("relay/r02/status", b"offline")
        time.sleep(INTERVAL + 1)
        got = {t for t, *_ in spy.take()}
        assert not {t for t in got if not t.startswith("relay/r01/")}, got  # nothing of the others arrives
        after = report(fleet.volunteers, "r02")
        assert after["people"] != 999 and after["boot"] == before["boot"]
        assert fleet.volunteers.retained()["relay/r02/status"] == b"online"
    finally:
        spy.close()
    bad = Listener(fleet.port, "r01", "wrong password", [], client_id="bad-r01")
    assert bad.rc.is_failure
    bad.close()


def test_unsigned_or_badly_signed_commands_are_ignored_and_counted(fleet):
    v = fleet.volunteers
    boot = report(v, "r03")["boot"]
    v.publish("relay/r03/command", json.dumps({"cmd": "restart", "boot": boot, "seq": 1}).encode())
    v.publish("relay/r03/command", json.dumps({"cmd": "restart", "boot": boot, "seq": 1, "sig": "00" * 32}).encode())
    other = bytes.fromhex(keys.command_key(bytes.fromhex("77" * 32), "r03"))  # another fleet's key
    v.publish("relay/r03/command", keys.firmware_fleet().sign_command(other, "r03", boot, 2, "restart"))
    v.publish("relay/r03/command", b"")

    def counted():
        c = fleet.relays["r03"].status_json()["fleet"]["commands"]
        return c if sum(c["refused"].values()) >= 3 else None

    c = wait_for(counted, 10)
    assert c == {"done": 0, "last_seq": 0, "refused": {"malformed": 1, "signature": 2}}
    assert fleet.relays["r03"].alive()
    # a signed one, sent the way a volunteer does: done once, then cleared from the broker
    res = relayctl("fleet", "command", "r13", "report", "--site", str(fleet.site), "--timeout", "15")
    assert res.returncode == 0, res.stderr + res.stdout
    c = fleet.relays["r13"].status_json()["fleet"]["commands"]
    assert c["done"] == 1 and c["last_seq"] == 1
    assert wait_for(lambda: v.retained().get("relay/r13/command") == b"", 5)


def test_a_broker_outage_leaves_tunnels_alone_and_relays_come_back(fleet):
    """The broker is down for 10 s: the backoff reaches its 3 s cap after two tries and a report falls due
    every 2 s, so every path of the outage (failed connects, capped waits, dropped reports) runs several
    times; a minute would only repeat them."""
    names = [n for n in NAMES if fleet.relays[n].alive()]
    probes = ["r00", "r10"]
    echo = fleet.echo.port

    def rtts(name, n):
        return [socks_round_trip(fleet.relays[name].socks, dest_port=echo) for _ in range(n)]

    before = {p: statistics.median(rtts(p, 15)) for p in probes}
    mem_before = {"r00": fleet.relays["r00"].status_json()["rss_kib"],
                  "r10": fleet.relays["r10"].status_json(gc=True)["heap_used"]}
    connects = {n: fleet.relays[n].status_json()["fleet"]["connects"] for n in names}
    fleet.broker.stop()
    during = {p: [] for p in probes}
    end = time.monotonic() + 10
    while time.monotonic() < end:
        for p in probes:
            during[p] += rtts(p, 1)
        time.sleep(0.1)
    for p in probes:
        med = statistics.median(during[p])
        assert med < before[p] * 3 + 0.05, f"{p}: round trip {med * 1000:.1f} ms during the outage, " \
                                          f"{before[p] * 1000:.1f} ms before"
    st = {n: fleet.relays[n].status_json()["fleet"] for n in names}
    assert all(s["state"] in ("waiting", "connecting") and s["dropped"] >= 2 for s in st.values()), st
    assert fleet.relays["r00"].status_json()["rss_kib"] < mem_before["r00"] + 2048
    assert fleet.relays["r10"].status_json(gc=True)["heap_used"] < mem_before["r10"] + 16384
    fleet.broker.start()
    t0 = time.monotonic()
    back = wait_for(lambda: all(fleet.relays[n].status_json()["fleet"]["connects"] > connects[n] for n in names),
                    RETRY_MAX + 5)
    took = time.monotonic() - t0
    assert back, {n: fleet.relays[n].status_json()["fleet"] for n in names}
    meds = ", ".join(f"{p} {before[p] * 1000:.1f}/{statistics.median(during[p]) * 1000:.1f} ms" for p in probes)
    print(f"\noutage: round trip median before/during: {meds}; all {len(names)} relays back in {took:.1f} s")
    assert took < RETRY_MAX + 3, f"{took:.1f} s to reconnect; the backoff's bound is {RETRY_MAX} s"


def test_sigkill_marks_a_relay_offline_by_its_last_will_and_it_comes_first(fleet):
    victim = "r17"
    assert victim in MICRO
    live = Listener(fleet.port, "volunteers", fleet.volunteer_password, [f"relay/{victim}/status"],
                    client_id="watch-will")
    try:
        time.sleep(0.5)
        os.kill(fleet.relays[victim].proc.pid, signal.SIGKILL)
        t0 = time.monotonic()
        got = wait_for(lambda: [m for m in live.take() if m[1] == b"offline" and not m[2]], 1.5 * KEEPALIVE, 0.05)
        assert got, "no offline from the broker"
        took = got[0][3] - t0
        assert took <= 1.5 * KEEPALIVE
        print(f"\nSIGKILL -> offline on the broker in {took * 1000:.0f} ms")
    finally:
        live.close()
    rows = fleet_json(fleet.site)
    assert rows[0]["name"] == victim and rows[0]["state"] == "offline" and rows[0]["problems"][0] == "offline"
    table = relayctl("fleet", "--site", str(fleet.site), "--once", "--wait", "3").stdout.splitlines()
    assert table[1].startswith(victim) and "OFFLINE" in table[1]


def test_a_signed_restart_stops_the_relay_for_its_supervisor(fleet):
    name = "r04"
    res = relayctl("fleet", "command", name, "restart", "--site", str(fleet.site), "--timeout", "3")
    proc = fleet.relays[name].proc
    proc.wait(10)
    assert proc.returncode == 75  # EX_TEMPFAIL: systemd/procd start it again, a board resets
    assert "did not act" in res.stderr  # nobody restarts it here, so no new boot reports back


def test_nothing_on_the_broker_names_a_client_or_a_destination(fleet):
    retained = fleet.volunteers.retained()
    assert len([t for t in retained if t.endswith("/report")]) == N
    blob = b"\n".join(retained.values())
    fleet.broker.stop()  # mosquitto writes its persistence file on the way out
    db = (fleet.broker_dir / "data" / "mosquitto.db").read_bytes()
    assert b"relay/r00/report" in db  # the file holds the reports: the grep below looks at them
    log = (fleet.tmp / "mosquitto.log").read_bytes()
    for needle in (CLIENT_IP, DEST_IP, DEST_NAME):
        n = needle.encode()
        assert n not in blob, needle
        assert n not in db, needle
        assert n not in log, needle
    fleet.broker.start()  # the fixture's teardown expects it running
    assert Path(fleet.broker.conf).exists()
