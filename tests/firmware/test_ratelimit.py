"""ratelimit.py: a burst of connections from one address passes, a flood is held to the rate, others are untouched."""

from relay.proto.ratelimit import AddressLimiter

A, B = b"\x7f\x00\x00\x02", b"\x7f\x00\x00\x03"


def test_burst_then_rate():
    lim = AddressLimiter(24, 8)
    assert all(lim.allow(A, 1000) for _ in range(24))  # a Telegram app's burst, three phones behind one NAT
    assert not lim.allow(A, 1000) and lim.refused == 1
    assert lim.allow(B, 1000)  # another address has its own bucket
    assert sum(lim.allow(A, 2000) for _ in range(20)) == 8  # one second later: eight more
    assert sum(lim.allow(A, 2000 + 60000) for _ in range(30)) == 24  # a quiet minute: the whole burst again


def test_flood_bounded():
    lim = AddressLimiter(64, 10)
    passed = sum(lim.allow(A, t) for t in range(0, 10000, 1) for _ in range(1))  # 1000 a second for 10 s
    assert passed <= 64 + 10 * 10 + 1


def test_table_bounded_and_off():
    lim = AddressLimiter(4, 1)
    for i in range(70000):
        lim.allow(i.to_bytes(4, "big"), 0)
    assert len(lim.buckets) <= 65536
    assert all(AddressLimiter(0, 1).allow(A, 0) for _ in range(1000))
