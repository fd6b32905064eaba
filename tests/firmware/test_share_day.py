"""share.Accounts across days when the day may be unknown (a board's clock before anyone set it)."""

from relay.proto import share


def _used(day):
    a = share.Accounts(quota=1000, budget_day=10000, budget_total=0, slow_at=0.5, small_at=0.9)
    a.new_day(day)
    a.charge("k", 600)
    return a


def test_an_unknown_day_resets_nothing():
    a = _used(7)
    a.new_day(None)
    assert a.day == 7 and a.left("k") == 400 and a.day_used == 600
    a.new_day(8)
    assert a.left("k") == 1000 and a.day_used == 0 and a.total_used == 600


def test_a_reboot_with_the_clock_unset_keeps_the_saved_day():
    a = _used(7)
    totals, phones = share.check_totals(a.totals()), a.phones()
    phones["salt"] = "0123456789abcdef"
    b = share.Accounts(1000, 10000, 0, 0.5, 0.9)
    b.load_totals(totals, None)
    b.load_phones(share.check_phones(phones), None)  # share.phones_file, on a RAM disk
    assert b.day == 7 and b.left("k") == 400 and b.day_used == 600
    b.new_day(7)  # the clock is set: still that day
    assert b.left("k") == 400
    b.new_day(8)
    assert b.left("k") == 1000


def test_the_first_known_day_keeps_what_was_counted_before_it():
    a = _used(None)  # counted since start, day unknown
    a.new_day(9)
    assert a.day == 9 and a.left("k") == 400
