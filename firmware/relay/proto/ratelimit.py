"""New connections per client address: a burst, then a steady rate. Sans-I/O (the caller passes now_ms).

Telegram opens up to 8 connections at once, in bursts, and phones behind one
carrier NAT share an address (telemt raised its burst from 1 to 24 after
refusing real clients, telemt#876). A token bucket per address lets a burst
of `burst` connections through at once and `rate` a second after that, so
many phones behind one address pass while a flood from one address is held
to that rate. The table is bounded: buckets that have refilled carry no
information and are dropped first.
"""

_MAX_ADDRESSES = 65536  # buckets kept at once (~100 bytes each on CPython)


class AddressLimiter:
    def __init__(self, burst, rate):
        self.burst = burst  # connections at once
        self.rate = rate  # connections a second after the burst
        self.buckets = {}  # address -> [tokens in thousandths, ms of the last refill]
        self.refused = 0

    def allow(self, addr, now_ms):
        """True when a new connection from addr may start now (and count it)."""
        if not self.burst:
            return True
        full = self.burst * 1000
        b = self.buckets.get(addr)
        if b is None:
            if len(self.buckets) >= _MAX_ADDRESSES:
                self._prune(now_ms)
            b = self.buckets[addr] = [full, now_ms]
        else:
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
        full = self.burst * 1000
        for addr in list(self.buckets):
            tokens, last = self.buckets[addr]
            el = now_ms - last
            if el < 0 or tokens + el * self.rate >= full:
                del self.buckets[addr]
        if len(self.buckets) >= _MAX_ADDRESSES:
            self.buckets.clear()  # a flood from everywhere at once: start over rather than grow
