"""What the relay keeps on disk, on every I/O path (issue 13 items 8 and 10).

Item 8: nothing on flash ties a phone to what it used: share.state_file holds the budget's totals only;
per-phone counters stay in memory, or in share.phones_file only when that is on a RAM disk (tmpfs).
Item 10: a damaged state file does not stop the relay: it starts with one line saying what was wrong and
what it kept, falling back to the copy before it (state_file.prev).
"""

import json
import os
import time
import uuid

import pytest

from tests.integration.test_share import Fountain, Phone, _drain

TODAY = int(time.time() // 86400)
BUDGET = 10**9


def _cfg(state, **share):
    return {"share": dict({"budget_day": BUDGET, "state_file": str(state), "persist_interval": 600}, **share)}


DAMAGED = {
    "null": b"null",
    "list": b"[]",
    "text count": b'{"total_used": "abc"}',
    "1e400": b'{"v": 2, "day_used": 1e400}',
    "list for a map": b'{"day": 1, "used": [], "salt": "x"}',  # what an older version wrote, damaged
    "empty": b"",
    "cut short": b'{"v": 2, "day": 19000, "day_u',
}


@pytest.mark.parametrize("damage", DAMAGED, ids=list(DAMAGED))
def test_damaged_state_file_starts_with_one_line(runtime, start_relay, tmp_path, damage):
    state = tmp_path / "counters.json"
    state.write_bytes(DAMAGED[damage])
    relay = start_relay(runtime, _cfg(state))
    assert relay.status_json()["share"]["budget_left_today"] == BUDGET
    out, err = relay.stop()
    assert "Traceback" not in err, err
    said = [line for line in err.splitlines() if "share.state_file: " + str(state) in line]
    if damage == "list for a map":  # the totals were fine; the per-phone part is dropped, and said so
        said = [line for line in err.splitlines() if "per-phone counters an older version kept" in line]
    assert len(said) == 1, out + err
    assert "starting from zero" in said[0] or damage == "list for a map", said
    assert json.loads(state.read_text())["day_used"] == 0  # written anew at once


def test_falls_back_to_the_copy_before_and_keeps_it(runtime, start_relay, tmp_path):
    state = tmp_path / "counters.json"
    state.write_bytes(b'{"v": 2, "day": %d, "day_u' % TODAY)  # cut short by a power cut
    good = {"v": 2, "day": TODAY, "day_used": 123456, "total_used": 7654321}
    (tmp_path / "counters.json.prev").write_text(json.dumps(good))
    relay = start_relay(runtime, _cfg(state))
    st = relay.status_json()["share"]
    assert st["budget_left_today"] == BUDGET - 123456, st
    out, err = relay.stop()
    assert "kept the copy before it" in out + err and "123456 bytes used today" in out + err, out + err
    # The damaged file did not push the good copy out: .prev is still the good one, the file is good again.
    assert json.loads((tmp_path / "counters.json.prev").read_text())["day_used"] == 123456
    assert json.loads(state.read_text())["day_used"] == 123456


def test_no_per_phone_counters_on_flash(runtime, start_relay, tmp_path):
    fountain = Fountain()
    state = tmp_path / "counters.json"
    # What an older version wrote: per-phone keys and their salt beside them (sha256(salt+ip)[:16]).
    (tmp_path / "counters.json.prev").write_text(json.dumps({"day": TODAY, "salt": "ab" * 16,
                                                             "used": {"0123456789abcdef": 5}, "day_used": 5}))
    cfg = _cfg(state, client_quota=300_000, persist_interval=0.2)
    relay = start_relay(runtime, cfg)
    try:
        p = Phone(relay.socks, "127.0.0.9", fountain.port)
        _drain(p, 300_000)
        deadline = time.monotonic() + 5
        while not p.closed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert p.closed  # the quota ended the tunnel
        again = Phone(relay.socks, "127.0.0.9", fountain.port)
        assert again.reply[1] != 0  # and refuses this phone a new one, today, in this run
        time.sleep(0.5)
        out, err = relay.stop()
        for path in (state, tmp_path / "counters.json.prev"):
            if path.exists():
                saved = json.loads(path.read_text())
                assert set(saved) <= {"v", "day", "day_used", "total_used"}, (path, saved)
        assert json.loads(state.read_text())["day_used"] >= 300_000
        assert "per-phone counters an older version kept" in err
        # Per-phone counters were in memory only: after a restart the phone starts its day afresh.
        relay = start_relay(runtime, cfg)
        p2 = Phone(relay.socks, "127.0.0.9", fountain.port)
        assert p2.reply[1] == 0
        p2.close()
    finally:
        fountain.close()


def _tmpfs_dir():
    try:
        mounts = open("/proc/self/mounts").read().split("\n")
    except OSError:
        return None
    for line in mounts:
        f = line.split(" ")
        if len(f) > 2 and f[1] == "/dev/shm" and f[2] == "tmpfs" and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    return None


def test_phones_file_only_on_a_ram_disk(runtime, start_relay, tmp_path, echo):
    shm = _tmpfs_dir()
    if shm is None:
        pytest.skip("no writable tmpfs at /dev/shm")
    ram = os.path.join(shm, "relay-test-%s.json" % uuid.uuid4().hex[:12])
    try:
        for where, kept in ((str(tmp_path / "phones.json"), False), (ram, True)):
            cfg = _cfg(tmp_path / "counters.json", client_quota=10**9, persist_interval=0.2, phones_file=where)
            relay = start_relay(runtime, cfg)
            p = Phone(relay.socks, "127.0.0.11", echo.port)
            p.s.sendall(b"x" * 1000)
            _drain(p, 1000)
            p.close()
            time.sleep(0.6)
            out, err = relay.stop()
            assert os.path.exists(where) == kept, (where, out, err)
            if not kept:
                assert "is not on a RAM disk" in out + err
        relay = start_relay(runtime, cfg)
        left = relay.status_json()  # the status page has no per-phone view; ask the portal's view below
        assert left["share"]["clients_today"] == 1  # the phone's counter came back from the RAM disk
    finally:
        for suffix in ("", ".tmp", ".prev"):
            if os.path.exists(ram + suffix):
                os.remove(ram + suffix)
