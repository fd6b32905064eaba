"""Relaying an established tunnel: the fast path's hand-off, MicroPython's lean copy, the task pumps.

Tunnels is a part of server.Relay (a mixin): it uses the relay's sharing,
stats, idle timeout and session bookkeeping (_end, _cancel). Which copy
runs is decided here, once per tunnel:
  - CPython fast path: runtime.start_fast_pump hands the tunnel to loop callbacks (_detach);
  - MicroPython without sharing: runtime.pipe for both directions (_lean);
  - otherwise the portable task pumps _up/_down, which also apply fair sharing.
"""

from relay import runtime
from relay.proto.stats import Refusal


class Tunnels:
    def _lean(self, s, up):
        """Start the upstream->client copy as its own task when runtime.pipe can run both directions
        (MicroPython without fair sharing, which has no half-close: either EOF ends the tunnel)."""
        if self.sharing is not None or runtime.pipe is None or runtime.HAS_HALF_CLOSE or type(up) is not type(s.conn):
            return False
        s.timeout_ms = self.idle_ms
        s.active = runtime.now_ms()
        s.peer_task = runtime.create_task(runtime.pipe(up, s.conn, 0, self.moved, s, True, self._down_done))
        return True

    def _detached_done(self, pump, clean):
        pump.conns[1].close()
        pump.s.peer_task = None  # over already: nothing for _end to cancel
        self._end(pump.s)

    def _detach(self, s, up, tap=None, up_xform=None, down_xform=None, half_close=True, on_done=None):
        """Hand the tunnel to the fast path's loop callbacks and let this task end: an idle tunnel
        then costs no task and no coroutine frames. False where the runtime cannot.
        tap: the accounting (default the relay); up_xform, down_xform, half_close: as runtime.fast_pump's;
        on_done(pump, clean): called at the end instead of the default (which closes up and ends s)."""
        if not self.fast or runtime.start_fast_pump is None:
            return False
        sh = self.sharing
        p = runtime.start_fast_pump(s.conn, up, tap or self, s, sh.quantum if sh is not None else 0,
                                    on_done or self._detached_done, up_xform, down_xform, half_close)
        if p is None:
            return False
        s.timeout_ms = self.idle_ms
        s.active = runtime.now_ms()
        s.peer_task = p  # the sweeper's cancel() ends it
        s.task = None
        return True

    def moved(self, s, n, down):
        """The fast path's accounting hook: n bytes went one way through session s."""
        s.active = runtime.now_ms()
        if down:
            self.stats.bytes_down += n
        else:
            self.stats.bytes_up += n

    def admit(self, s, n, down, waiter):
        """The fast path's fair-share hook (see shaper.Sharing.admit)."""
        try:
            return self.sharing.admit(s, n, down, waiter)
        except Refusal as r:
            self.stats.refuse(r.reason)
            raise

    async def tunnel(self, s, upstream, head=b""):
        """Relay both ways until both sides are done. head: client bytes already read."""
        s.timeout_ms = self.idle_ms
        s.active = runtime.now_ms()
        if head:
            await upstream.send(head)
            self.stats.bytes_up += len(head)
        if self.fast:
            sh = self.sharing
            done = await runtime.fast_pump(s.conn, upstream, self, s, sh.quantum if sh is not None else 0)
            if done is not None:
                return
        lean = self.sharing is None and runtime.pipe is not None and type(upstream) is type(s.conn)
        if lean:  # no wrapper frames between the tasks and the copy loops: an idle tunnel costs less
            s.peer_task = runtime.create_task(runtime.pipe(upstream, s.conn, 0, self.moved, s, True, self._down_done))
        else:
            s.peer_task = runtime.create_task(self._down(s, upstream))
        try:
            if lean:
                try:
                    await runtime.pipe(s.conn, upstream, 0, self.moved, s, False)
                    clean = True
                except OSError:
                    clean = False
            else:
                clean = await self._copy(s, s.conn, upstream, False)
            if clean and runtime.HAS_HALF_CLOSE:
                upstream.shutdown_write()
                t = s.peer_task
                if t is not None:
                    await t  # the other direction finishes on its own (or the sweeper ends it)
        finally:
            upstream.close()

    async def _copy(self, s, src, dst, down):
        """The portable pump, one direction: True at EOF, False on an error or a refusal (quota, budget)."""
        sh = self.sharing
        limit = sh.quantum if sh is not None else 0
        try:
            while True:
                data = await src.recv(limit)
                n = len(data)
                if not n:
                    return True
                if sh is not None:
                    ev = sh.admit(s, n, down)
                    if ev is not None:
                        data = bytes(data)  # the shared read buffer is reused while we wait
                        await sh.wait(ev, down)
                await dst.send(data)
                self.moved(s, n, down)
        except OSError:
            return False
        except Refusal as r:
            self.stats.refuse(r.reason)
            return False

    def _down_done(self, s, clean):
        """The upstream->client copy ended (also runtime.pipe's ended callback)."""
        s.peer_task = None
        if clean and runtime.HAS_HALF_CLOSE:
            s.conn.shutdown_write()  # the client reads EOF and closes its side
        else:
            self._cancel(s)  # no half-close here: end the whole tunnel

    async def _down(self, s, upstream):
        try:
            clean = await self._copy(s, upstream, s.conn, True)
        except runtime.CancelledError:
            return
        self._down_done(s, clean)
