"""The volunteers' table from what relays published: one relay's odd report (another version's fields, or
a board whose login was taken) must not take down the view of the other nineteen. Pure: messages in, rows out."""

import json

import pytest

from relayctl.fleet import view

NOW = 1_800_000_000.0
GOOD = {"time": NOW - 5, "interval_s": 60, "uptime_s": 3600, "place": "Almaly", "people": 3, "tunnels": 9,
        "uplink": {"kind": "cellular", "up": True, "signal": -71}, "today": {"up": 1000, "down": 50000},
        "budget_left": None}

ODD = [
    {"time": "yesterday"},
    {"interval_s": "60", "time": NOW - 500},
    {"uptime_s": "an hour", "time": NOW},
    {"budget_left": "lots"},
    {"place": 7, "people": "three", "tunnels": [1]},
    {"uplink": "up"},
    {"uplink": {"kind": 4, "up": "yes", "via": ["a"], "signal": "strong"}},
    {"today": 5},
    {"today": {"up": "x", "down": None}},
    {"refused": ["limit"]},
    {"fleet": {"commands": "none"}},
    {"fleet": {"commands": {"refused": "many"}}},
    {"stage": 3},
    {"uplink": {"kind": "cellular", "signal_age_s": "old", "last_signal": "x", "registration": 3, "modem_error": 5}},
]


@pytest.mark.parametrize("doc", ODD, ids=[json.dumps(d)[:40] for d in ODD])
def test_an_odd_report_leaves_the_table_whole(doc):
    good, odd = view.Relay("almaty-01"), view.Relay("almaty-02")
    good.take("status", b"online", False, NOW)
    good.take("report", json.dumps(GOOD).encode(), False, NOW)
    odd.take("status", b"online", False, NOW)
    odd.take("report", json.dumps(doc).encode(), False, NOW)
    rows = view.rows({"almaty-01": good, "almaty-02": odd}, NOW)
    text = view.table(rows, NOW)
    json.dumps(rows)  # --json prints them
    assert sorted(r["name"] for r in rows) == ["almaty-01", "almaty-02"]
    line = next(x for x in text.splitlines() if x.startswith("almaty-01"))
    assert "Almaly" in line and "cellular up" in line and "-71 dBm" in line, text
    assert "2 relays" in text.splitlines()[-1]


def test_a_linux_relays_modem_reading_shows_its_age_and_a_dead_or_refused_sim_needs_a_look():
    """Watcher readings (relayctl uplink watch --status-file): live, stale, missing, and a refused SIM."""
    def one(name, uplink):
        r = view.Relay(name)
        r.take("status", b"online", False, NOW)
        r.take("report", json.dumps(dict(GOOD, uplink=dict(uplink, kind="cellular", up=True))).encode(), False, NOW)
        return r

    relays = {"live": one("live", {"signal": -71, "signal_age_s": 20, "last_signal": None, "registration": "home"}),
              "stale": one("stale", {"signal": None, "signal_age_s": 300, "last_signal": -71, "registration": None,
                                     "modem_error": None}),
              "none": one("none", {"signal": None, "signal_age_s": None, "modem_error": "missing"}),
              "denied": one("denied", {"signal": -95, "signal_age_s": 5, "registration": "denied"}),
              "board": one("board", {"signal": None, "signal_age_s": 7200, "last_signal": -80})}  # PPP holds its UART
    rows = {r["name"]: r for r in view.rows(relays, NOW)}
    assert rows["live"]["problems"] == [] and rows["live"]["uplink"]["signal_age_s"] == 20
    assert rows["stale"]["problems"] == ["no modem reading"] and rows["none"]["problems"] == ["no modem reading"]
    assert rows["denied"]["problems"] == ["not registered"] and rows["board"]["problems"] == []
    assert [r["name"] for r in view.rows(relays, NOW)][-1] == "live"  # the ones needing a look first
    text = {x.split()[0]: x for x in view.table(view.rows(relays, NOW), NOW).splitlines()}
    assert "cellular up -71 dBm" in text["live"]
    assert "(-71 dBm, 5 min old)" in text["stale"] and "-71 dBm " not in text["stale"].split("(")[0]
    assert "(no modem reading: missing)" in text["none"] and "(-80 dBm, 2 h old)" in text["board"]
