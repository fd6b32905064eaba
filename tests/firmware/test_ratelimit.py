"""ratelimit.py: a burst of connections from one address passes, a flood is held to the rate, others are untouched."""

from relay.proto import ratelimit
from relay.proto.addr import parse_ip
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


def test_ipv6_is_limited_per_64():
    """One subscriber gets a whole /64 and may take a fresh address from it for every connection."""
    lim = AddressLimiter(4, 1)
    passed = sum(lim.allow(parse_ip("2001:db8:1:2::%x" % i), 0) for i in range(1, 100))
    assert passed == 4
    assert lim.allow(parse_ip("2001:db8:1:3::1"), 0)  # the neighbour's /64 has its own
    assert lim.allow(parse_ip("::ffff:10.0.0.1"), 0) and sum(lim.allow(parse_ip("10.0.0.1"), 0) for _ in range(4)) == 3


def test_a_full_table_keeps_a_flooders_limit(monkeypatch):
    """The table filling up (addresses from everywhere) does not give a flooder its burst back: only refilled
    buckets are dropped; while none is, new addresses share one bucket."""
    monkeypatch.setattr(ratelimit, "_MAX_ADDRESSES", 100)
    lim = AddressLimiter(4, 1)
    assert sum(lim.allow(A, 0) for _ in range(10)) == 4  # the flooder's burst is spent
    for i in range(200):  # the table fills with addresses that each opened one connection
        lim.allow((0x0A000000 + i).to_bytes(4, "big"), 10)
    assert len(lim.buckets) <= 100
    assert not lim.allow(A, 20), "the flooder got its burst back when the table filled"
    assert sum(lim.allow((0x0B000000 + i).to_bytes(4, "big"), 20) for i in range(10)) <= 4  # one shared bucket
    # Once they have refilled (4 s at 1 a second), they make room again for new addresses of their own.
    assert all(lim.allow(B, 6000) for _ in range(4)) and not lim.allow(B, 6000)
