"""share.py without I/O: a simulated clock drives the link; who gets how many bytes."""

import json

import pytest

from relay.proto import share


def run_link(link, demands, ms, chunk=10000):
    """demands: {key: (interactive, bytes wanted or None for endless)}. Returns bytes granted per key."""
    got = {k: 0 for k in demands}
    queued = {}
    now = 0
    while now <= ms:
        for k, (inter, want) in demands.items():
            if k in queued or (want is not None and got[k] >= want):
                continue
            if link.try_take(k, chunk, inter, now):
                got[k] += chunk
            else:
                w = object()
                link.push(k, chunk, inter, w)
                queued[k] = w
        while True:
            w, delay = link.pop_ready(now)
            if w is None:
                break
            k = next(k for k, v in queued.items() if v is w)
            del queued[k]
            got[k] += chunk
        now += 5
    return got


def test_three_bulk_clients_share_equally_and_total_is_the_rate():
    link = share.Link(100000, 20000)
    got = run_link(link, {"a": (False, None), "b": (False, None), "c": (False, None)}, 10000)
    total = sum(got.values())
    assert 0.9 * 1_000_000 < total < 1.1 * 1_000_000
    for v in got.values():
        assert abs(v - total / 3) <= 20000


def test_a_light_client_gets_all_it_asks_and_the_rest_goes_to_the_heavy_one():
    link = share.Link(100000, 20000)
    got = run_link(link, {"light": (False, 100000), "heavy": (False, None)}, 10000)
    assert got["light"] == 100000
    assert got["heavy"] >= 850000  # max-min: what the light one leaves is not wasted


def test_interactive_goes_first():
    link = share.Link(100000, 10000)
    link.try_take("bulk", 10000, False, 0)
    order = []
    link.push("bulk", 10000, False, "b1")
    link.push("chat", 500, True, "c1")
    t = 0
    while len(order) < 2:
        w, delay = link.pop_ready(t)
        if w:
            order.append(w)
        t += 10
    assert order == ["c1", "b1"]


def test_idle_clients_keep_no_credit():
    link = share.Link(100000, 20000)
    run_link(link, {"early": (False, None)}, 5000)
    # "late" arrives after "early" had the link alone: they now split evenly, "early" is not punished.
    got = run_link(link, {"early": (False, None), "late": (False, None)}, 5000)
    assert abs(got["early"] - got["late"]) <= 40000


def test_accounts_stages_and_quota():
    a = share.Accounts(quota=1000, budget_day=10000, budget_total=0, slow_at=0.5, small_at=0.9)
    a.new_day(1)
    assert a.stage() == share.NORMAL
    a.charge("k", 999)
    assert not a.over_quota("k") and a.left("k") == 1
    a.charge("k", 5000)
    assert a.over_quota("k") and a.stage() == share.SLOW_BULK
    a.charge("j", 3100)
    assert a.stage() == share.SMALL_ONLY
    a.charge("j", 1000)
    assert a.stage() == share.EXHAUSTED and a.budget_left() == (0, None)
    d = share.check_totals(json.loads(json.dumps(a.totals())))
    assert "k" not in json.dumps(a.totals())  # nothing per phone in what goes to flash
    b = share.Accounts(1000, 10000, 0, 0.5, 0.9)
    b.load_totals(d, 1)
    assert b.stage() == share.EXHAUSTED and not b.over_quota("k")  # the phone's counter stayed in memory
    b.load_phones(share.check_phones(dict(a.phones(), salt="s" * 32)), 1)
    assert b.over_quota("k")
    c = share.Accounts(1000, 10000, 0, 0.5, 0.9)
    c.load_totals(d, 2)  # a new day: daily counters start again, the total stays
    assert c.stage() == share.NORMAL and not c.over_quota("k") and c.total_used == d["total_used"]


@pytest.mark.parametrize("text,why", [
    ("null", "expected a JSON object"), ("[]", "expected a JSON object"), ('{"total_used": "abc"}', "total_used"),
    ('{"day_used": 1e400}', "day_used"), ('{"total_used": -5}', "total_used"), ('{"day": "x"}', "day"),
    ('{"total_used": true}', "total_used"),
])
def test_damaged_totals_are_a_value_error_saying_what(text, why):
    with pytest.raises(ValueError) as e:
        share.check_totals(json.loads(text))
    assert why in str(e.value)


@pytest.mark.parametrize("doc", [{"used": [], "salt": "s" * 32}, {"used": {"k": "x"}, "salt": "s" * 32},
                                 {"used": {}, "salt": None}, []])
def test_damaged_phone_counters_are_a_value_error(doc):
    with pytest.raises(ValueError):
        share.check_phones(doc)
