"""fleet.py, the sans-I/O half of fleet reporting: MQTT framing, the schedule, the backoff, the
document's allow-list and signed commands. Transcripts: bytes and numbers in, decisions out."""

import json

import pytest

from relay.proto import fleet
from relayctl.fleet import keys


def publish_packet(topic, payload):
    body = len(topic).to_bytes(2, "big") + topic + payload
    n, rem = len(body), b""
    while True:
        b = n & 0x7F
        n >>= 7
        rem += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    return b"\x30" + rem + body


@pytest.mark.parametrize("size", [0, 10, 127, 128, 500, 1000])
def test_packet_size_whole_split_and_with_trailing_data(size):
    pkt = publish_packet(b"relay/r1/command", b"x" * size)
    assert fleet.packet_size(pkt) == len(pkt)
    assert fleet.packet_size(pkt + b"\xd0\x00") == len(pkt)
    for i in range(len(pkt)):
        assert fleet.packet_size(pkt[:i]) == 0  # incomplete: wait for more


def test_packet_size_refuses_big_or_broken_packets():
    with pytest.raises(fleet.ProtocolError):
        fleet.packet_size(publish_packet(b"t", b"x" * fleet.MAX_PACKET))
    with pytest.raises(fleet.ProtocolError):
        fleet.packet_size(b"\x30\xff\xff\xff\xff\x01")
    assert fleet.packet_size(b"\xd0\x00") == 2  # PINGRESP


def test_backoff_doubles_to_its_cap_with_jitter_inside_each_step():
    b = fleet.Backoff(1000, 8000)
    steps = [1000, 2000, 4000, 8000, 8000]
    for d in steps:
        lo, hi = fleet.Backoff(d, d).next(0), fleet.Backoff(d, d).next(65535)
        assert (lo, hi) == (d // 2, d)
        assert d // 2 <= b.next(32768) <= d
    b.reset()
    assert b.next(65535) == 1000


def test_schedule_reports_every_interval_and_a_change_after_the_gap():
    s = fleet.Schedule(60000)
    assert s.due(1 << 30, ("k",))  # nothing sent yet
    s.sent(0, ("k",))
    assert not s.due(30000, ("k",))
    assert s.due(60000, ("k",))
    assert not s.due(fleet.MIN_GAP_MS - 1, ("other",))  # a flapping state waits for the gap
    assert s.due(fleet.MIN_GAP_MS, ("other",))
    assert s.wait_ms(45000) == 15000


def test_today_counts_from_the_day_start_once_the_clock_is_known():
    t = fleet.Today()
    assert t.counts(100, 200, None) == (100, 200)  # no clock: since start
    assert t.counts(150, 250, 86400 * 10 + 5) == (150, 250)  # clock learnt: nothing lost
    assert t.counts(180, 300, 86400 * 11 + 1) == (0, 0)  # a new day
    assert t.counts(200, 310, 86400 * 11 + 9) == (20, 10)


SNAP = {
    "version": "0.1.0", "runtime": "micropython", "tunnels_open": 2, "tunnels_total": 9, "bytes_up": 10,
    "bytes_down": 20, "refused": {"guard": 3}, "heap_used": 1000, "rss_kib": None, "mem_free": 5000,
    "uplink": {"up": False, "since_s": 3, "changes": 1},
    "upstreams": [{"name": "upstream0", "healthy": False}, {"name": "upstream1", "healthy": True}],
    "share": {"stage": "slow", "budget_left_today": 12345, "clients_today": 4},
    "platform": {"platform": "esp32", "uplink": {"kind": "cellular", "state": "up", "signal_dbm": -71,
                                                 "ip": "10.1.2.3", "modem": "SIM7600"}},
    # what must never leave the relay, wherever a later change might put it in the snapshot
    "clients": ["192.168.4.23"], "destinations": ["web.telegram.org"], "your_left_today": 5,
}
IDENT = {"name": "almaty-01", "place": "Almaly", "config": "abc123", "boot": "0a0b0c0d", "interval_s": 60}


def test_document_takes_counters_only():
    doc = fleet.document(SNAP, IDENT, 3600, 1700000000, (7, 8), 3, {"sent": 1})
    text = fleet.encode(doc)
    assert json.loads(text) == doc
    for secret in (b"192.168.4.23", b"web.telegram.org", b"10.1.2.3", b"your_left", b"SIM7600"):
        assert secret not in text
    assert doc["uplink"] == {"kind": "cellular", "up": False, "via": "upstream1", "signal": -71}
    assert (doc["people"], doc["tunnels"], doc["today"], doc["budget_left"]) == (3, 2, {"up": 7, "down": 8}, 12345)
    assert doc["refused"] == {"guard": 3} and doc["mem"]["free"] == 5000
    assert len(text) < 1024  # one MQTT packet well inside the broker's and the relay's limits


def test_uplink_reads_a_path_or_engine_when_another_part_reports_one():
    snap = dict(SNAP, path={"engine": "shadowsocks", "server": "203.0.113.9"})
    assert fleet.uplink(snap)["via"] == "shadowsocks"
    assert fleet.uplink({})["up"] is None and fleet.uplink({})["kind"] == "direct"


KEY = bytes(range(32))


def make(name="r1", boot="b00t"):
    ck = fleet.command_key(KEY, name)
    return fleet.Commands(ck, name, boot), ck


def test_command_key_is_what_relayctl_derives():
    assert fleet.command_key(KEY, "r1").hex() == keys.command_key(KEY, "r1")
    assert fleet.command_key(KEY, "r1") != fleet.command_key(KEY, "r2")


def test_a_signed_command_runs_once_for_its_boot():
    c, ck = make()
    assert c.check(fleet.sign_command(ck, "r1", "b00t", 1, "restart")) == "restart"
    assert c.check(fleet.sign_command(ck, "r1", "b00t", 1, "restart")) is None  # replay
    assert c.check(fleet.sign_command(ck, "r1", "0ther", 2, "restart")) is None  # the boot it restarted
    assert c.check(fleet.sign_command(ck, "r1", "b00t", 2, "report")) == "report"
    assert c.as_dict() == {"done": 2, "last_seq": 2, "refused": {"replay": 1, "other-boot": 1}}


@pytest.mark.parametrize("payload,reason", [
    (b"not json", "malformed"),
    (b'{"cmd": "restart", "boot": "b00t", "seq": 1}', "malformed"),
    (b'{"cmd": "restart", "boot": "b00t", "seq": "1", "sig": "00"}', "malformed"),
    (json.dumps({"cmd": "restart", "boot": "b00t", "seq": 1, "sig": "00" * 32}).encode(), "signature"),
])
def test_unsigned_or_broken_commands_are_counted(payload, reason):
    c, _ = make()
    assert c.check(payload) is None
    assert c.refused == {reason: 1} and c.done == 0


def test_a_command_signed_for_another_relay_or_fleet_is_refused():
    c, ck = make("r1")
    _, other = make("r2")
    assert c.check(fleet.sign_command(other, "r1", "b00t", 1, "restart")) is None
    assert c.check(fleet.sign_command(ck, "r2", "b00t", 1, "restart")) is None  # r1's key, r2's name
    assert c.check(fleet.sign_command(ck, "r1", "b00t", 1, "format-disk")) is None
    assert c.refused == {"signature": 2, "unknown": 1}
    assert c.check(b"") is None and c.refused == {"signature": 2, "unknown": 1}  # a cleared topic


READING = {"v": 1, "time": 1700000000, "interval_s": 30, "signal": {"rssi_dbm": -71, "rsrp_dbm": -96},
           "registration": "roaming"}


def test_a_linux_relay_names_the_uplink_its_site_set_up_and_its_modem_reading_with_its_age():
    snap = {"uplink_kind": "cellular", "modem": READING}
    u = fleet.uplink(snap, 1700000010)
    assert u["kind"] == "cellular" and u["signal"] == -71 and u["signal_age_s"] == 10
    assert u["registration"] == "roaming" and u["last_signal"] is None and u["modem_error"] is None
    rsrp_only = dict(READING, signal={"rsrp_dbm": -96})
    assert fleet.uplink({"uplink_kind": "cellular", "modem": rsrp_only}, 1700000010)["signal"] == -96


def test_a_modem_reading_that_is_old_or_of_unknown_age_never_looks_live():
    for wall in (1700000000 + 63, None, 1700000000 - 60):  # two intervals + 2 s late; no clock; from the future
        u = fleet.uplink({"uplink_kind": "cellular", "modem": READING}, wall)
        assert u["signal"] is None and u["registration"] is None and u["last_signal"] == -71, wall
    assert fleet.uplink({"uplink_kind": "cellular", "modem": READING}, 1700000000 + 62)["signal"] == -71
    u = fleet.uplink({"uplink_kind": "cellular", "modem": {"error": "missing"}}, 1700000000)
    assert u["signal"] is None and u["modem_error"] == "missing"
    assert fleet.uplink({"uplink_kind": "cellular", "modem": ["not", "a", "reading"]}, 1)["modem_error"] == "unreadable"


def test_uplink_kind_precedence_board_link_then_site_then_mesh_then_upstream():
    assert fleet.uplink(dict(SNAP, uplink_kind="ethernet", modem=READING), 1)["kind"] == "cellular"  # the board's own
    assert "modem_error" not in fleet.uplink(dict(SNAP, modem=READING), 1)  # a board's own modem, not a watcher's
    assert fleet.uplink({"uplink_kind": "none", "upstreams": [{"name": "upstream0", "healthy": True}]})["kind"] == "upstream"
    carried = {"carrier": {"address": "10.0.0.2", "self": False}}
    assert fleet.uplink({"uplink_kind": "none", "mesh": carried})["kind"] == "mesh"
    assert fleet.uplink({"mesh": {"carrier": {"self": True}}})["kind"] == "direct"


def test_a_boards_own_modem_reading_ages_and_an_old_one_is_only_the_last_signal():
    """A MicroPython board reads +CSQ when it registers; PPP then holds the UART, so the reading ages."""
    link = dict(SNAP["platform"]["uplink"], signal_age_s=30)
    u = fleet.uplink(dict(SNAP, platform={"platform": "esp32", "uplink": link}))
    assert u["signal"] == -71 and u["signal_age_s"] == 30 and "last_signal" not in u
    link["signal_age_s"] = fleet.BOARD_SIGNAL_FRESH_S + 1
    u = fleet.uplink(dict(SNAP, platform={"platform": "esp32", "uplink": link}))
    assert u["signal"] is None and u["last_signal"] == -71
