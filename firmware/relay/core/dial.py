"""The one per-address dial loop: each address in turn (the resolver's order: IPv6 or IPv4 first, then
the other family), connect_timeout each, never past the session's deadline, and the refusal of the
last failure when none answered.

Dial holds the loop's decisions; two shells wait on its connects: dial() awaits them (every runtime),
CallbackDial takes loop callbacks (runtime.connect_start, the CPython fast path's handshakes). A
route that goes through an upstream proxy is the upstream's failover loop (services/upstream.py),
not this one. Refusals are stats.Refusal with the reason the protocols turn into their replies.
"""

from relay.proto import stats as S
from relay.proto.stats import Refusal
from relay.runtime import api as runtime


class Dial:
    __slots__ = ("ips", "port", "i", "each_ms", "since", "budget_ms", "ms", "last")

    def __init__(self, ips, port, each_ms, since=None, budget_ms=0):
        """ips: the addresses to try, in order; each_ms: one connect's time; since, budget_ms: no connect
        starts or runs past budget_ms after since (a now_ms() reading), when since is given."""
        self.ips = ips
        self.port = port
        self.i = 0
        self.each_ms = each_ms
        self.since = since
        self.budget_ms = budget_ms
        self.ms = each_ms  # the time the current address's connect may take
        self.last = S.R_FAILED

    def next(self):
        """-> the next address to connect to (self.ms: for how long), or None when none is left."""
        if self.i >= len(self.ips):
            return None
        if self.since is not None:
            left = self.budget_ms - runtime.ms_since(self.since)
            if left <= 0:
                self.last = S.R_TIMEOUT
                return None
            self.ms = min(self.each_ms, left)
        self.i += 1
        return self.ips[self.i - 1]

    def failed(self, reason):
        self.last = reason

    def refusal(self):
        return Refusal(self.last)


async def dial(ips, port, each_ms, since=None, budget_ms=0):
    """A TCP connection to ips[0]:port, else the next address that answers; raises Refusal."""
    d = Dial(ips, port, each_ms, since, budget_ms)
    while True:
        ip = d.next()
        if ip is None:
            raise d.refusal()
        try:
            return await runtime.wait_for_ms(runtime.connect_tcp(ip, port), d.ms)
        except runtime.TimeoutError:
            d.failed(S.R_TIMEOUT)
        except OSError as e:
            d.failed(runtime.connect_error(e))


class CallbackDial:
    """dial() on loop callbacks: done(conn, None) or done(None, refusal reason), once, from the loop.
    The session's deadline follows each connect (s.active, s.timeout_ms), so the sweeper calls expire()
    when one takes too long; beside: a connection of the same loop (finding the loop costs a syscall)."""

    __slots__ = ("d", "s", "done", "handle")

    def __init__(self, d, s, done):
        self.d = d
        self.s = s
        self.done = done
        self.handle = None

    def start(self):
        """Begin (apart from the constructor: done() may come at once, and the caller holds this first)."""
        self._next()

    def _next(self):
        d, s = self.d, self.s
        while True:
            ip = d.next()
            if ip is None:
                return self._finish(None, d.last)
            s.timeout_ms = d.ms
            s.active = runtime.now_ms()
            try:
                self.handle = runtime.connect_start(ip, d.port, self._connected, s.conn)
                return
            except OSError as e:
                d.failed(runtime.connect_error(e))

    def _connected(self, conn, err):
        self.handle = None
        if err is not None:
            self.d.failed(runtime.connect_error(err))
            return self._next()
        self._finish(conn, None)

    def _finish(self, conn, reason):
        done, self.done = self.done, None
        if done is not None:
            done(conn, reason)

    def expire(self):
        """The sweeper: this address took too long (or the deadline passed): the next one, or the refusal."""
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
            self.d.failed(S.R_TIMEOUT)
            self._next()

    def cancel(self):
        self.done = None
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
