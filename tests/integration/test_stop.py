"""Stopping and persisting under load, on every I/O path (issue 13 "Also"): a stop asked for with bulk
tunnels open ends at once, with the "relay stopped" line and the counters saved; the persist timer keeps
its interval while tunnels are busy."""

import json
import os
import time

from tests.helpers.relayproc import stop_signal
from tests.integration.test_share import Fountain, Phone


def _bulk(runtime, start_relay, tmp_path, persist_interval, n):
    """A relay saving its counters to counters.json every persist_interval s, and n phones each pulling a
    megabyte or more from a fountain through it -> (relay, the counters' file, fountain, phones)."""
    fountain = Fountain(cap=60)
    state = tmp_path / "counters.json"
    relay = start_relay(runtime, {"share": {"budget_day": 1 << 40, "state_file": str(state),
                                            "persist_interval": persist_interval},
                                  "limits": {"buffer": 65536}})
    phones = [Phone(relay.socks, "127.0.0.%d" % (20 + i), fountain.port) for i in range(n)]
    assert all(p.reply[1] == 0 for p in phones)
    deadline = time.monotonic() + 10
    while min(p.got for p in phones) < 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    return relay, state, fountain, phones


def test_stop_with_bulk_tunnels_open_is_prompt_and_saves(runtime, start_relay, tmp_path):
    relay, state, fountain, phones = _bulk(runtime, start_relay, tmp_path, 600, 6)
    try:
        t = time.monotonic()
        relay.proc.send_signal(stop_signal(runtime))
        relay.proc.wait(30)
        took = time.monotonic() - t
        out, err = relay.stop()
        # Once in a clean-clone CI run MicroPython's relay ended with neither "relay stopped" nor a word on
        # stderr (not reproduced in 12 loops): say how it ended (a negative code is the signal that killed it).
        assert "relay stopped" in out, (f"exit code {relay.proc.returncode} after {took:.1f} s", out, err)
        assert "Traceback" not in err, err
        assert took < 2, f"{took:.1f} s to stop"  # the fast path takes ~0.06 s; 2 s is far above a loaded machine's jitter
        saved = json.loads(state.read_text())
        assert saved["day_used"] >= 6_000_000, saved  # what the tunnels moved, saved at the stop (the interval is 10 min)
    finally:
        for p in phones:
            p.close()
        fountain.close()


def test_persist_interval_holds_under_bulk_traffic(runtime, start_relay, tmp_path):
    relay, state, fountain, phones = _bulk(runtime, start_relay, tmp_path, 0.2, 4)
    try:
        seen = set()
        end = time.monotonic() + 3
        while time.monotonic() < end:
            try:
                seen.add(os.stat(state).st_mtime_ns)
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        # 15 writes are due in 3 s; before the fix the portable path managed 1-3 (MicroPython 0-1).
        assert len(seen) >= 7, f"{len(seen)} writes in 3 s at a 0.2 s interval"
    finally:
        for p in phones:
            p.close()
        fountain.close()
