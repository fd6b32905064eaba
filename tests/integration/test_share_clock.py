"""Today's usage on a board's clock: the ESP32's 2000 epoch, and a reboot before anyone set the clock.

The relay runs under the MicroPython unix port with a board's `time` module (tests/sim/board_clock):
time.time() counts from 2000-01-01 and the RTC reads 2000-01-01 00:00 after a reboot until something
sets it. The budget's day must be the Unix day (what the state file and the host agree on), and a
board that reboots before its clock is set must keep today's usage instead of starting a new day.
"""

import json
import socket
import time
from pathlib import Path

import pytest

from tests.helpers import relayproc
from tests.integration.test_proxy import connect_req

BOARD_CLOCK = Path(__file__).resolve().parents[1] / "sim" / "board_clock"
BUDGET = 50_000_000
MOVED = 300_000


@pytest.fixture
def on_board(monkeypatch):
    """Start relays under MicroPython with the board's clock reading `setting` at start."""
    plain = relayproc.relay_command
    clock = {"setting": "unset"}

    def command(runtime, config_path, extra):
        argv, env = plain(runtime, config_path, extra)
        env["MICROPYPATH"] = "%s:%s" % (BOARD_CLOCK, env["MICROPYPATH"])
        env["BOARD_CLOCK"] = clock["setting"]
        return argv, env

    monkeypatch.setattr(relayproc, "relay_command", command)
    return clock


def _move(relay, echo, n):
    with socket.create_connection(("127.0.0.1", relay.socks), timeout=10) as s:
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        s.sendall(connect_req("127.0.0.1", echo.port))
        assert s.recv(10)[1] == 0
        s.sendall(b"\x33" * n)
        got = 0
        while got < n:
            d = s.recv(65536)
            assert d, "tunnel closed early"
            got += len(d)


def _saved(state, want_used, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            d = json.loads(state.read_text())
            if d.get("day_used", 0) >= want_used:
                return d
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError("state file not written: %r" % (state.read_text() if state.exists() else None))


def test_budget_day_survives_a_reboot_with_the_clock_unset(on_board, start_relay, tmp_path, echo):
    state = tmp_path / "share.json"
    cfg = {"share": {"budget_day": BUDGET, "state_file": str(state), "persist_interval": 0.2}}
    now = int(time.time())
    on_board["setting"] = str(now)  # the clock was set (NTP, the modem): the 2000 epoch must not show
    relay = start_relay("micropython", cfg)
    _move(relay, echo, MOVED)
    saved = _saved(state, MOVED)
    assert saved["day"] == now // 86400, "the day is counted from 1970, whatever epoch the board's clock has"
    left = relay.status_json()["share"]["budget_left_today"]
    assert left <= BUDGET - MOVED
    relay.stop()

    on_board["setting"] = "unset"  # a reboot, and nobody has set the clock yet
    relay = start_relay("micropython", cfg)
    assert relay.status_json()["share"]["budget_left_today"] == left, "today's usage was reset"
    _move(relay, echo, MOVED)
    again = _saved(state, saved["day_used"] + MOVED)
    assert again["day"] == saved["day"]  # counting on as the same day
    relay.stop()

    on_board["setting"] = str(now + 86400)  # the clock is set, and it is the next day
    relay = start_relay("micropython", cfg)
    assert relay.status_json()["share"]["budget_left_today"] == BUDGET
    relay.stop()
