"""The caches age by the runtime's tick arithmetic (runtime.ms_since / ms_diff), so their entries still
expire after a board's millisecond tick counter wraps (MicroPython's ticks_ms: 2**30 ms, ~12.4 days).

The stand-in clock below is MicroPython's tick semantics (time.ticks_ms / ticks_diff) with the counter
set just before the wrap; a cache that compared raw readings would keep an entry stored there for good.
"""

import asyncio

import pytest

from relay.proto.dnsserver import FORWARD
from relay.runtime import api as runtime
from relay.services.dns_resolver import Resolver
from tests.firmware.test_dnsserver import ask, reply, responder, upstream_answer

PERIOD = 1 << 30  # MicroPython's TICKS_PERIOD on 32-bit ports
HALF = PERIOD // 2
START = PERIOD - 1000  # a second before the counter wraps


def ticks_diff(a, b):
    return ((a - b + HALF) & (PERIOD - 1)) - HALF


class WrappingClock:
    def __init__(self, ms):
        self.ms = ms

    def now_ms(self):
        return self.ms % PERIOD

    def ms_since(self, t):
        return ticks_diff(self.now_ms(), t)


def test_dns_responder_cache_expires_across_the_wrap():
    r = responder(ms_diff=ticks_diff)
    _, act = ask(r, "web.telegram.org", now=START)
    assert act[0] == FORWARD
    r.finish(act[1], upstream_answer(act[1].raw, ["149.154.167.99"], ttl=60).to_wire(), START)
    m = reply(r, "web.telegram.org", now=(START + 10000) % PERIOD)  # after the wrap, within the TTL
    assert m.answer[0].ttl == 50 and r.cached == 1
    _, act = ask(r, "web.telegram.org", now=(START + 61000) % PERIOD)  # past the TTL: asked again
    assert act[0] == FORWARD


def test_resolver_cache_expires_across_the_wrap(monkeypatch):
    clock = WrappingClock(START)
    asked = []

    async def system_resolve(name):  # the OS resolver: the far side of this cache
        asked.append(name)
        return [bytes([192, 0, 2, 7])]

    monkeypatch.setattr(runtime, "now_ms", clock.now_ms)
    monkeypatch.setattr(runtime, "ms_since", clock.ms_since)
    monkeypatch.setattr(runtime, "system_resolve", system_resolve)
    res = Resolver([], {}, False, 1000, True, hosts_file=None)
    assert asyncio.run(res.resolve("example.org")) == [bytes([192, 0, 2, 7])]
    clock.ms += 30000  # after the wrap, within the 60 s it keeps system answers
    assert res.known("example.org") == [bytes([192, 0, 2, 7])]
    clock.ms += 31000
    assert res.known("example.org") is None, "a cached answer outlived its TTL once the ticks wrapped"
    asyncio.run(res.resolve("example.org"))
    assert asked == ["example.org", "example.org"]


@pytest.mark.parametrize("ms", [0, 12345, HALF - 1])
def test_the_stand_in_is_ticks_diff(ms):
    assert ticks_diff((START + ms) % PERIOD, START) == ms
