"""New connections per client address: a burst, then a steady rate. Sans-I/O (the caller passes now_ms).

Telegram opens up to 8 connections at once, in bursts, and phones behind one
carrier NAT share an address (telemt raised its burst from 1 to 24 after
refusing real clients, telemt#876). A token bucket per address lets a burst
of `burst` connections through at once and `rate` a second after that, so
many phones behind one address pass while a flood from one address is held
to that rate.

An IPv6 client is limited per /64: one subscriber (a phone, a home) gets a
whole /64 and can pick a fresh address from it for every connection. The
table is bounded: a bucket is dropped only once it has refilled (it carries
no information then), never a flooder's that is still empty. While the table
is full of such, new addresses share one bucket until some refill.
"""

from relay.proto.addr import unmap_v4

_MAX_ADDRESSES = 65536  # buckets kept at once (~100 bytes each on CPython)
_PRUNE_MS = 1000  # a full table is swept at most this often (a sweep looks at every bucket)


def key_of(addr):
    """The bucket's key: IPv4 (also IPv4-mapped IPv6) by address, IPv6 by its /64."""
    addr = unmap_v4(bytes(addr))
    return addr[:8] if len(addr) == 16 else addr


class AddressLimiter:
    def __init__(self, burst, rate):
        self.burst = burst  # connections at once
        self.rate = rate  # connections a second after the burst
        self.buckets = {}  # key_of(address) -> [tokens in thousandths, ms of the last refill]
        self.refused = 0
        self.pruned_ms = None  # when a full table was last swept
        self.overflow = [burst * 1000, 0]  # the bucket new addresses share while the table is full

    def allow(self, addr, now_ms):
        """True when a new connection from addr may start now (and count it)."""
        if not self.burst:
            return True
        full = self.burst * 1000
        key = key_of(addr)
        b = self.buckets.get(key)
        if b is None:
            if len(self.buckets) >= _MAX_ADDRESSES:
                self._prune(now_ms)
            if len(self.buckets) < _MAX_ADDRESSES:
                b = self.buckets[key] = [full, now_ms]
            else:
                b = self.overflow  # no room: new addresses share one bucket meanwhile
        if b[1] != now_ms:
            el = now_ms - b[1]
            if el < 0 or el * self.rate >= full:  # a wrapped tick counter, or long enough to be full again
                b[0] = full
            else:
                b[0] = min(full, b[0] + el * self.rate)
            b[1] = now_ms
        if b[0] < 1000:
            self.refused += 1
            return False
        b[0] -= 1000
        return True

    def _prune(self, now_ms):
        """Drop the buckets that have refilled; at most once per _PRUNE_MS."""
        if self.pruned_ms is not None and 0 <= now_ms - self.pruned_ms < _PRUNE_MS:
            return
        self.pruned_ms = now_ms
        full = self.burst * 1000
        for k in list(self.buckets):
            tokens, last = self.buckets[k]
            el = now_ms - last
            if el < 0 or tokens + el * self.rate >= full:
                del self.buckets[k]
