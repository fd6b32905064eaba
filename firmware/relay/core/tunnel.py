"""The one place that picks how a tunnel's bytes move, and the session task that runs a tunnel.

Tunnels.serve(s, handshake) is every session's task: the protocol's handshake (a coroutine of
sessions/) decides, and returns None when done or what to tunnel: (upstream, head) or (upstream,
head, tap). Then, once per tunnel:
  - head (what the client sent along with its handshake) goes first, charged like any other byte;
  - CPython's fast path: runtime.start_fast_pump takes the tunnel on loop callbacks (detach()) and this
    task ends: an idle tunnel costs no task and no coroutine frame;
  - MicroPython without fair sharing: runtime.pipe both ways, one called right here (no frame between);
  - otherwise the task pumps (copy()), which apply fair sharing and a tap's transforms.
When the client's side ends cleanly its end (FIN) is passed on where the connection can half-close,
and the other direction finishes on its own; otherwise the tunnel ends. A socket is closed only after
the task reading it has stopped: an event loop still watching a closed descriptor hands its number's
next owner an error (ENOENT from epoll_ctl inside a connect).

A Tap says how one tunnel's bytes are counted, paced and transformed: the fast pump and the task
pumps call the same hooks. Tunnels.plain (the relay's counters, fair sharing) serves plain tunnels;
a protocol with counters or ciphers of its own (MTProto) hands one of its own.
"""

import errno

from relay.proto.stats import Refusal
from relay.runtime import api as runtime

EOF = 0  # how a direction ended: its source's end of data (a FIN)
RESET = 1  # its source reset (RST)
FAILED = 2  # another error, a refusal (quota, budget), or a transform that refused the bytes


class Tap:
    """The relay's counters and, when given, fair sharing; override for a protocol of its own."""

    __slots__ = ("stats", "sharing")
    half_close = True  # False: either side's end of data ends the whole tunnel (MTProto)

    def __init__(self, stats, sharing=None):
        self.stats = stats
        self.sharing = sharing  # services.share_service.Sharing, or None: not paced, not charged

    def moved(self, s, n, down):
        """n bytes went one way through session s."""
        t = s.active = runtime.now_ms()
        if down:
            s.heard = t  # the far end answers: the path works (services/pathfind.py)
            self.stats.bytes_down += n
        else:
            self.stats.bytes_up += n

    def admit(self, s, n, down, waiter=None):
        """Fair sharing: None when the n bytes just read may go on now, else a waiter to wait for
        (the fast pump passes its own with a set() method). Raises Refusal (quota, budget), counted."""
        try:
            return self.sharing.admit(s, n, down, waiter)
        except Refusal as r:
            self.stats.refuse(r.reason)
            raise

    def transforms(self, shared):
        """(up, down): bytes-like -> bytes-like on the way (a cipher), or None. shared: the fast pump's
        kind, which may answer in buffers of its own that the next chunk reuses."""
        return None

    def refused(self, exc, down):
        """A transform raised exc on the bytes (broken framing): the tunnel ends; count it here."""

    def ended(self, s):
        """The tunnel is over (both ways)."""


class Tunnels:
    def __init__(self, sessions, stats, sharing, idle_ms, fast, lean):
        """sharing: services.share_service.Sharing when fair sharing runs; fast: the CPython fast path's callback
        pump runs tunnels; lean: runtime.pipe does (MicroPython)."""
        self.sessions = sessions
        self.stats = stats
        self.idle_ms = idle_ms
        self.fast = fast
        self.lean = lean
        self.plain = Tap(stats, sharing)  # a plain tunnel's: the relay's counters, fair sharing

    async def serve(self, s, handshake=None, then=None):
        """Session s's one task: its handshake, then its tunnel, then its end. handshake: a coroutine ->
        None when done, or (upstream, head[, tap]) to tunnel; then: such a tunnel, when there is no
        handshake left to run. The handshake's frames are gone before the tunnel runs: an idle tunnel
        keeps this frame and its copy's, nothing else."""
        up = None
        tap = self.plain
        try:
            if handshake is not None:
                then = await handshake
                handshake = None
            if then is None:
                return
            up = then[0]
            if len(then) > 2:
                tap = then[2]
            if then[1]:
                await self._head(s, up, then[1], tap)
            then = None
            if self.fast and self.detach(s, up, tap):
                up = None  # the fast pump has it; its end ends the session
                return
            s.timeout_ms = self.idle_ms
            s.active = runtime.now_ms()
            xf = tap.transforms(False)
            if self.lean and xf is None and tap.sharing is None and type(up) is type(s.conn):
                # runtime.pipe both ways, this direction right here: one frame less per idle tunnel
                s.peer_task = runtime.create_task(runtime.pipe(up, s.conn, 0, tap.moved, s, True, self._down_ended))
                try:
                    await runtime.pipe(s.conn, up, 0, tap.moved, s, False)
                    how = EOF
                except OSError:
                    how = FAILED
            else:
                s.peer_task = runtime.create_task(self._down(s, up, tap, xf[1] if xf else None))
                how = await self.copy(s, s.conn, up, False, tap, xf[0] if xf else None)
            t = s.peer_task
            if how == EOF and tap.half_close and t is not None and up.shutdown_write():
                await t  # the other way finishes on its own (or the sweeper ends it)
        except OSError:
            pass
        except Refusal:
            pass  # the head was over the quota or the budget (counted)
        except runtime.CancelledError:
            pass
        finally:
            if up is not None:
                if s.peer_task is not None:
                    await self._stop_peer(s)
                up.close()
                tap.ended(s)
            if s.task is not None:  # a tunnel handed to the fast pump ends in its own callback
                self.sessions.end(s)

    async def _head(self, s, up, head, tap):
        """What the client sent along with its handshake goes first, admitted and counted like any read."""
        n = len(head)
        sh = tap.sharing
        if sh is not None:
            ev = tap.admit(s, n, False)
            if ev is not None:
                await sh.wait(ev, False)
        await up.send(head)
        tap.moved(s, n, False)

    def detach(self, s, up, tap=None):
        """Hand the tunnel to the fast path's loop callbacks: s.task may end, and an idle tunnel then
        costs no task and no coroutine frames. False where the runtime cannot (or a side is not a plain
        connection): the caller pumps it in its task."""
        if not self.fast:
            return False
        tap = tap or self.plain
        sh = tap.sharing
        xf = tap.transforms(True) or (None, None)
        p = runtime.start_fast_pump(s.conn, up, tap, s, sh.quantum if sh is not None else 0, self._detached_done,
                                    xf[0], xf[1], tap.half_close)
        if p is None:
            return False
        s.timeout_ms = self.idle_ms
        s.active = runtime.now_ms()
        s.peer_task = p  # the sweeper's cancel() ends it
        s.task = None
        return True

    def _detached_done(self, pump, clean):
        s = pump.s
        pump.conns[1].close()
        s.peer_task = None  # over already: nothing for end() to cancel
        pump.tap.ended(s)
        self.sessions.end(s)

    async def copy(self, s, src, dst, down, tap=None, xform=None):
        """The task pump, one direction, until src ends: -> EOF, RESET or FAILED (see above)."""
        tap = tap or self.plain
        sh = tap.sharing
        limit = sh.quantum if sh is not None else 0
        try:
            while True:
                data = await src.recv(limit)
                n = len(data)
                if not n:
                    return EOF
                if sh is not None:
                    ev = tap.admit(s, n, down)
                    if ev is not None:
                        data = bytes(data)  # the shared read buffer is reused while we wait
                        await sh.wait(ev, down)
                if xform is not None:
                    try:
                        data = xform(data)
                    except Exception as e:  # noqa: BLE001 -- the transform refused the bytes
                        tap.refused(e, down)
                        return FAILED
                if data:
                    await dst.send(data)
                tap.moved(s, n, down)
        except OSError as e:
            return RESET if e.args and e.args[0] == errno.ECONNRESET else FAILED
        except Refusal:
            return FAILED

    async def _down(self, s, up, tap, xform):
        try:
            how = await self.copy(s, up, s.conn, True, tap, xform)
        except runtime.CancelledError:
            return
        self._down_ended(s, how == EOF, tap.half_close)

    def _down_ended(self, s, clean, half_close=True):
        """The upstream->client direction ended (also runtime.pipe's ended callback)."""
        s.peer_task = None
        if clean and half_close and s.conn.shutdown_write():
            return  # the client reads the end of data and closes its side
        s.cancel()  # no half-close here: end the whole tunnel

    async def _stop_peer(self, s):
        """End the upstream->client task and wait until it has stopped reading the upstream socket."""
        t = s.peer_task
        s.peer_task = None
        await stop(t)


async def stop(t):
    """Cancel task t (None: nothing) and wait until it has stopped: only then may a socket it waits on be
    closed. An event loop still watching a closed descriptor hands its number's next owner an error."""
    if t is None:
        return
    try:
        t.cancel()
        await t
    except runtime.CancelledError:
        pass
    except RuntimeError:
        pass  # MicroPython: the task ended between the check and the cancel
