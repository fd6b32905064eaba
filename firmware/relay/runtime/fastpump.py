"""CPython fast path: relay a tunnel with loop callbacks on raw sockets, no tasks, no per-read futures.

Each socket stays registered with the event loop while it is read (one
epoll_ctl per tunnel, not two per read), reads are large (the relay's buffer
size, 256 KiB on linux-host), and on Linux a direction switches to
os.splice through a pipe once a read fills the buffer: bulk bytes then never
enter Python. Short and idle tunnels never make pipes.

Backpressure: a direction whose destination will not take more stops reading
its source until the destination drains. Accounting goes through the tap
(core/tunnel.py's Tap): tap.moved(session, n, down) after every chunk, and
tap.admit(session, n, down, waiter) when fair sharing is on (tap.sharing), which
may hand back a waiter: the direction then pauses until waiter.set() is called;
tap.refused(exc, down) when a transform raised exc, and the tunnel ends.

A native MTProto way (runtime/_mtpump.c) without fair sharing is handed to
the poller's native table, which relays its chunks with no Python call: the
tap hears of those bytes at settle() (the sweeper, the status page and the
path finder call it first) and at the tunnel's end, not per chunk.

Only runtime/cpython.py imports this module.
"""

import os
import socket

from relay.runtime.epoll import poller, pollers

_SPLICE = hasattr(os, "splice")
_SPLICE_FLAGS = (getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)) if _SPLICE else 0
_PIPE_SIZE = 1 << 20  # a 1 MiB pipe moves bulk in fewer, larger steps (research/perf-notes.md)
_F_SETPIPE_SZ = 1031
_SPLICE_MIN_QUANTUM = 65536
_rbuf = memoryview(bytearray(0))  # the read buffer of every direction with a transform (one loop, one chunk at a time)


class _Turns:
    """How much a direction may move per service, from how many want service right now.

    Under contention every ready direction is served once per loop turn, least-served first,
    with an equal share of a per-turn budget: 500 tunnels pulling at once each move a small
    share per turn and finish together, instead of the first ones racing ahead. A lone bulk
    tunnel keeps big reads (cheap per GiB).
    """

    BUDGET = 4 << 20  # bytes all ready directions may move per turn together
    # smallest share: below this, per-call overhead dominates (500 tunnels pulling at once: 16 KiB
    # shares cost 1.08 CPU s/GiB, 64 KiB 0.68, with the same min/median)
    FLOOR = 64 << 10
    ALONE = 2  # with this many tunnels or fewer there is nothing to arbitrate

    def __init__(self):
        self.pumps = 0
        self.share = 1 << 30


_turns = _Turns()


class _Ready:
    """Under contention, serve the ready directions least-served first, a budget per loop turn.

    A direction that already moved more than the others waits a turn or two while the laggards
    catch up, so tunnels that start together finish together (the fan-in figure), and a short
    flow (a message) is always among the least served, so it goes ahead of bulk. Work-conserving:
    only directions that are ready compete; a slow phone never holds the others back.
    """

    def __init__(self):
        self.batch = []
        self.scheduled = False

    def want(self, pump, d):
        if not d.queued:
            d.queued = True
            self.batch.append((d.moved, id(d), pump, d))
            if not self.scheduled:
                self.scheduled = True
                pump.poller.loop.call_soon(self.run)

    def run(self):
        self.scheduled = False
        batch, self.batch = self.batch, []
        batch.sort()
        budget = _turns.BUDGET
        _turns.share = max(_turns.FLOOR, budget // len(batch))
        for _, _, pump, d in batch:
            d.queued = False  # served or not, its next readiness callback queues it again
            if budget > 0 and not pump.closed:
                before = d.moved
                try:
                    pump._readable(d)
                except Exception as e:  # noqa: BLE001 -- a bug in one tunnel must not stall the others
                    pump.poller.report(e)
                    pump.cancel()
                budget -= d.moved - before


_ready = _Ready()


class _Dir:
    __slots__ = ("pump", "src", "dst", "sfd", "dfd", "down", "pending", "eof", "done", "pr", "pw", "inpipe", "paused",
                 "moved", "queued", "xform", "calm", "relay")

    def __init__(self, pump, src, dst, sfd, dfd, down, xform=None):
        self.pump = pump  # so the poller can be handed one shared function, not a bound method per socket
        self.src = src
        self.dst = dst
        self.sfd = sfd  # descriptor numbers: the two directions share their int objects
        self.dfd = dfd
        self.down = down
        self.pending = None  # bytes read but not yet taken by dst
        self.eof = False
        self.done = False
        self.pr = self.pw = -1  # the splice pipe, once this direction turns out to be bulk
        self.inpipe = 0
        self.paused = False  # waiting for its fair share
        self.moved = 0  # bytes so far: the least-served ready direction goes first under contention
        self.queued = False
        # bytes-like -> bytes-like on the way (MTProto's ciphers), or None: bytes pass as they are. It is
        # given a view of a shared buffer and may answer in one: both are reused for the next chunk.
        self.xform = xform
        # A transform that also reads and sends (the native MTProto pump's way.relay): one call per chunk.
        self.relay = getattr(xform, "relay", None)
        self.calm = False  # its last read emptied its socket (took less than it asked for)


def _readable(d):
    """The poller's read callback for every direction (d.pump's): one function object for all tunnels,
    where a bound method per socket would cost 64 bytes each of 100,000 sockets."""
    t = _turns
    p = d.pump
    if t.pumps <= t.ALONE:
        t.share = 1 << 30
        return p._readable(d)  # nothing to arbitrate
    if d.calm or d.moved < t.FLOOR:
        # Least served of all, or its last read emptied its socket (a message, a paced download): it is not
        # pulling against the others, and the scheduler would serve it first anyway; a read of at most
        # FLOOR keeps it so. Only directions that fill their reads queue for the turn.
        if d.xform is not None:  # every chunk of every MTProto tunnel: straight to it
            return p._convert(d, min(p.bufsize, t.FLOOR))
        return p._readable(d, t.FLOOR)
    _ready.want(p, d)


class _Resume:
    """A waiter for share.Link: set() resumes one paused direction from the loop."""

    __slots__ = ("pump", "d")

    def __init__(self, pump, d):
        self.pump = pump
        self.d = d

    def set(self):
        self.pump.poller.loop.call_soon(self.pump._resume, self.d)


class FastPump:
    __slots__ = ("poller", "tap", "s", "bufsize", "splice", "most", "up", "dn", "closed", "on_done", "conns",
                 "half_close")

    def __init__(self, poller, client, upstream, tap, session, bufsize, splice, limit, xforms=(None, None),
                 half_close=True):
        self.poller = poller
        self.tap = tap
        self.s = session
        self.bufsize = limit or bufsize
        # Under fair sharing a read is at most one quantum (a few ms of link time), then admitted;
        # splice pays off only where a quantum is large (a fast link), not 8 KiB pieces of a slow one.
        self.splice = splice and _SPLICE and (not limit or limit >= _SPLICE_MIN_QUANTUM) and xforms == (None, None)
        self.most = min(_PIPE_SIZE, limit or _PIPE_SIZE)  # bytes per splice
        self.on_done = None  # on_done(pump, clean) once, when both directions are done or one failed
        self.conns = None
        cfd = client.fileno()
        ufd = upstream.fileno()
        self.up = _Dir(self, client, upstream, cfd, ufd, False, xforms[0])
        self.dn = _Dir(self, upstream, client, ufd, cfd, True, xforms[1])
        self.closed = False
        self.half_close = half_close  # False: the first EOF (with its bytes passed on) ends the tunnel
        self._want_read(self.up)
        self._want_read(self.dn)
        _turns.pumps += 1

    def _want_read(self, d):
        """Read d's source again: a native way without fair sharing relays its chunks in the poller's own
        dispatch (runtime/_mtpump.c's Table: no Python call per chunk), anything else through _readable."""
        if d.relay is not None and self.tap.sharing is None:
            self.poller.want_read(d.sfd, _readable, d, (d.xform, d.dfd, min(self.bufsize, _Turns.FLOOR), _relayed))
        else:
            self.poller.want_read(d.sfd, _readable, d)

    # -- reading -------------------------------------------------------------

    def _readable(self, d, most=1 << 30):
        if d.pr >= 0:
            return self._splice_in(d)
        want = min(self.bufsize, _turns.share, most)
        if d.xform is not None:
            return self._convert(d, want)
        try:
            data = d.src.recv(want)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self._finish(False)
        n = len(data)
        if not n:
            return self._eof(d)
        d.moved += n
        d.calm = n < want
        self.tap.moved(self.s, n, d.down)
        if self.tap.sharing is not None and not self._admitted(d, n):
            d.pending = data
            return
        self._send(d, data)
        if n == want and self.splice and d.pending is None and not self.closed:
            self._to_splice(d)

    def _convert(self, d, want):
        """A direction with a transform (MTProto's ciphers) reads into a buffer shared by all
        tunnels and hands it to the transform, which may answer in shared buffers of its own: a
        chunk allocates nothing (fresh 256 KiB objects per chunk cost more than the ciphers, in
        page faults). Only a tail the destination does not take at once is copied out."""
        if d.relay is not None and self.tap.sharing is None:
            return self._relay(d, want)
        global _rbuf
        buf = _rbuf
        if len(buf) < want:
            buf = _rbuf = memoryview(bytearray(want))
        try:
            n = d.src.recv_into(buf, want)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self._finish(False)
        if not n:
            return self._eof(d)
        d.moved += n
        d.calm = n < want
        tap = self.tap
        tap.moved(self.s, n, d.down)
        try:
            data = d.xform(buf[:n])
        except Exception as e:  # noqa: BLE001 -- the transform refused the bytes: the tap counts why
            tap.refused(e, d.down)
            return self._finish(False)
        if tap.sharing is not None and not self._admitted(d, n):
            d.pending = bytes(data)
            return
        self._send(d, data, True)

    def _relay(self, d, want):
        """_convert in one native call: read, transform and send (without fair sharing, which must admit
        the bytes between the read and the send). The same outcomes and accounting, but for a chunk the
        transform refuses: the tunnel ends without counting it."""
        try:
            n, tail = d.relay(d.sfd, d.dfd, want)
        except Exception as e:  # noqa: BLE001 -- the transform refused the bytes: the tap counts why
            self.tap.refused(e, d.down)
            return self._finish(False)
        self._relayed(d, n, tail, n < want)

    def _relayed(self, d, n, tail, calm=True):
        """What one way.relay() call left to do (here or in the poller's native dispatch)."""
        if n <= 0:
            if n == 0:
                return self._eof(d)
            if n == -2:  # the read failed
                self._finish(False)
            elif n == -3:  # the native dispatch's way refused the bytes: tail is the exception
                self.tap.refused(tail, d.down)
                self._finish(False)
            return  # -1: nothing to read after all
        d.moved += n
        d.calm = calm
        self.tap.moved(self.s, n, d.down)
        if tail is not None:
            if tail is True:  # the send failed
                return self._finish(False)
            d.pending = tail  # backpressure, as _send: read no more until dst drains
            self.poller.stop_read(d.sfd)
            self.poller.want_write(d.dfd, self._writable, d)

    def _admitted(self, d, n):
        """Fair sharing: may the n bytes just read go on now? False: the direction pauses until
        its turn (its _Resume is set), or the tunnel ended (a quota or budget refusal)."""
        try:
            waiter = self.tap.admit(self.s, n, d.down, _Resume(self, d))
        except Exception:  # a refusal (quota, budget): the tunnel ends here
            self._finish(False)
            return False
        if waiter is None:
            return True
        d.paused = True
        self.poller.stop_read(d.sfd)
        return False

    def _resume(self, d):
        if self.closed or not d.paused:
            return
        d.paused = False
        self.poller.want_read(d.sfd, _readable, d)
        if d.pr >= 0:
            self._splice_out(d)  # what waited in the pipe
            return
        data, d.pending = d.pending, None
        self._send(d, data)

    def _send(self, d, data, shared=False):
        """shared: data lives in a buffer the next chunk reuses, so a tail left over is copied."""
        try:
            sent = d.dst.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return self._finish(False)
        if sent < len(data):
            d.pending = bytes(data[sent:]) if shared else memoryview(data)[sent:]
            self.poller.stop_read(d.sfd)  # backpressure: read no more until dst drains
            self.poller.want_write(d.dfd, self._writable, d)

    def _writable(self, d):
        if d.pr >= 0:
            return self._splice_writable(d)
        data = d.pending
        try:
            sent = d.dst.send(data)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self._finish(False)
        if sent < len(data):
            d.pending = data[sent:]
            return
        d.pending = None
        self._drained(d)

    def _drained(self, d):
        """dst took all that waited: read again, or pass on the EOF that came meanwhile."""
        self.poller.stop_write(d.dfd)
        if d.eof:
            self._shut(d)
        else:
            self._want_read(d)

    # -- splice ----------------------------------------------------------------

    def _to_splice(self, d):
        if self.closed:
            return  # a pipe made now would outlive the tunnel
        try:
            d.pr, d.pw = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            self.splice = False  # out of descriptors: keep copying
            return
        try:
            import fcntl

            fcntl.fcntl(d.pw, _F_SETPIPE_SZ, _PIPE_SIZE)
        except OSError:
            pass

    def _splice_in(self, d):
        try:
            n = os.splice(d.sfd, d.pw, min(self.most, _turns.share), flags=_SPLICE_FLAGS)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self._finish(False)
        if not n:
            return self._eof(d)
        d.inpipe += n
        d.moved += n
        self.tap.moved(self.s, n, d.down)
        if self.tap.sharing is not None and not self._admitted(d, n):
            return  # paused with its bytes in the pipe
        self._splice_out(d)

    def _splice_out(self, d):
        while d.inpipe:
            try:
                m = os.splice(d.pr, d.dfd, d.inpipe, flags=_SPLICE_FLAGS)
            except (BlockingIOError, InterruptedError):
                self.poller.stop_read(d.sfd)
                self.poller.want_write(d.dfd, self._writable, d)
                return False
            except OSError:
                self._finish(False)
                return False
            d.inpipe -= m
        return True

    def _splice_writable(self, d):
        if self._splice_out(d):
            self._drained(d)

    # -- ends --------------------------------------------------------------------

    def _eof(self, d):
        d.eof = True
        self.poller.stop_read(d.sfd, False)
        if d.pending is None and not d.inpipe:
            self._shut(d)
        if not self.closed:
            self.poller.sync(d.sfd)  # the tunnel goes on the other way: stop watching this side's EOF
        # (a tunnel that ended here closed its sockets, which unregistered them: no epoll_ctl)

    def _shut(self, d):
        d.done = True
        other = self.dn if d is self.up else self.up
        if other.done or not self.half_close:
            # Both ways have read EOF and sent all: closing sends this FIN itself, no shutdown() needed.
            return self._finish(True)
        try:
            d.dst.shutdown(socket.SHUT_WR)  # pass the half-close on: the peer sees EOF, may still answer
        except OSError:
            pass

    def _finish(self, clean):
        if not self.closed:
            self.settle(self.up)  # what the native dispatch moved is counted before the tap hears the end
            self.settle(self.dn)
        self.close()
        cb, self.on_done = self.on_done, None
        if cb is not None:
            cb(self, clean)

    def settle(self, d):
        """Count what the native dispatch relayed for d since the last time (runtime/_mtpump.c's take())."""
        if d.relay is not None:
            n = d.xform.take()
            if n:
                d.moved += n
                self.tap.moved(self.s, n, d.down)

    def cancel(self):
        """Stop relaying now (the idle sweeper, shutdown)."""
        self._finish(False)

    def close(self):
        if self.closed:
            return
        self.closed = True
        _turns.pumps -= 1
        for d in (self.up, self.dn):
            # the sockets are closed right after (by on_done's owner), which unregisters them
            self.poller.drop(d.sfd)
            for fd in (d.pr, d.pw):
                if fd >= 0:
                    os.close(fd)
            d.pr = d.pw = -1
            d.pending = None


def _relayed(d, n, tail):
    """The poller's native dispatch relayed a chunk of d's and left something to do."""
    p = d.pump
    if not p.closed:
        p._relayed(d, n, tail)


def settle():
    """Count what native dispatch moved since the last call: the sweeper and every reader of the counters
    call this first, so a tunnel's activity and the byte counters are at most one call behind."""
    for each in pollers():
        for d in each.moved():
            p = d.pump
            if not p.closed:
                p.settle(d)


def start(client, upstream, tap, session, bufsize, splice, limit, on_done, xforms=(None, None), half_close=True):
    """Start relaying on loop callbacks; on_done(pump, clean) follows (pump.conns holds the two
    connections it was given). No task waits on it: cancel() stops it."""
    p = FastPump(poller(client.loop), client.sock, upstream.sock, tap, session, bufsize, splice, limit, xforms,
                 half_close)
    p.on_done = on_done
    p.conns = (client, upstream)
    return p
