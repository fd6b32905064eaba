"""The fast path's own epoll set: each socket registered once, its interest changed in place.

The event loop's add_reader/add_writer make (uvloop) or look up (asyncio)
a watcher object per descriptor and drop it when the last interest goes,
so a short tunnel paid about 18 epoll_ctl calls, half of them failing, and
the objects besides (measured with strace: 41 syscalls per connection on
uvloop, 26 with one registration per socket). Here the loop watches one
descriptor, this epoll set; its ready sockets are dispatched in Python,
level-triggered, the way add_reader would.

A socket is dropped from the set by closing it (the kernel forgets a
closed descriptor), so Poller.drop() only forgets the callbacks. An
event for a descriptor nobody here knows any more unregisters it, so a
socket dropped and then kept open cannot spin the loop. A descriptor
registered while a batch of events is dispatched skips the rest of that
batch: its number may be a closed socket's, whose events are in it.

Where the native MTProto pump is built, a read interest may be handed
to it (want_read's native=): its Table then waits on this set itself,
relays every chunk of such a socket in C and hands back only the events
it left (runtime/_mtpump.c), so a chat message or a media chunk costs no
Python call at all; the bytes it moved are counted later (moved()).

Linux only (select.epoll); runtime/cpython.py offers the fast path only
where it exists. Only runtime/ imports this module.
"""

import select

IN = select.EPOLLIN
OUT = select.EPOLLOUT
_BAD = select.EPOLLHUP | select.EPOLLERR
_READ_EVENTS = IN | _BAD
_WRITE_EVENTS = OUT | _BAD
_BATCH = 512  # events per dispatch; more wait for the next loop turn, so other work is not starved


class Poller:
    def __init__(self, loop):
        self.loop = loop
        self.ep = select.epoll()
        # fd -> [registered mask, on_read, read arg, on_write, write arg, batch registered in, native done or None]
        self.fds = {}
        self.batch = 0
        self.table = None  # runtime/_mtpump.c's Table, from the first native read interest on
        loop.add_reader(self.ep.fileno(), self._dispatch)

    def close(self):
        try:
            self.loop.remove_reader(self.ep.fileno())
        except Exception:  # noqa: BLE001 -- the loop may be closed already
            pass
        if self.table is not None:
            self.table.clear()
        self.ep.close()

    # -- interest ---------------------------------------------------------------

    def want_read(self, fd, func, arg, native=None):
        """Call func(arg) while fd has bytes (or EOF, or an error) to read. native: (way, dfd, want, done),
        a native pump's way that relays fd's chunks to dfd itself: func(arg) then runs only for events
        it leaves (a hang-up beside the bytes, a write interest too), and done(arg, n, tail) when a chunk
        it relayed left something to do (way.relay's outcome)."""
        e = self.fds.get(fd)
        if e is None:
            e = self._add(fd, IN, func, arg, None, None)
        else:
            e[1] = func
            e[2] = arg
            self.sync(fd, e)
        if native is not None:
            t = self.table
            if t is None:
                t = self._native()
            t.watch(fd, native[0], native[1], native[2], arg)
            e[6] = native[3]
        elif e[6] is not None:
            self._unwatch(fd, e)

    def want_write(self, fd, func, arg):
        """Call func(arg) while fd can take more bytes (or has failed)."""
        e = self.fds.get(fd)
        if e is None:
            self._add(fd, OUT, None, None, func, arg)
        else:
            e[3] = func
            e[4] = arg
            self.sync(fd, e)

    def stop_read(self, fd, sync=True):
        e = self.fds.get(fd)
        if e is not None:
            e[1] = e[2] = None
            if e[6] is not None:
                self._unwatch(fd, e)
            if sync:
                self.sync(fd, e)

    def stop_write(self, fd, sync=True):
        """sync=False: forget the callback now, change the registration at the next sync() (one
        epoll_ctl instead of two when a read interest follows at once, as after a connect)."""
        e = self.fds.get(fd)
        if e is not None:
            e[3] = e[4] = None
            if sync:
                self.sync(fd, e)

    def sync(self, fd, e=None):
        """Make fd's registration match its callbacks."""
        if e is None:
            e = self.fds.get(fd)
            if e is None:
                return
        mask = (IN if e[1] is not None else 0) | (OUT if e[3] is not None else 0)
        if mask == e[0]:
            return
        if mask:
            self.ep.modify(fd, mask)
            e[0] = mask
        else:
            del self.fds[fd]
            self.ep.unregister(fd)
            if e[6] is not None:
                self._unwatch(fd, e)

    def drop(self, fd):
        """Forget fd because it is about to be closed (closing unregisters it; no syscall here)."""
        e = self.fds.pop(fd, None)
        if e is not None and e[6] is not None:
            self._unwatch(fd, e)

    def release(self, fd):
        """Unregister fd that stays open (someone else watches it from now on)."""
        e = self.fds.pop(fd, None)
        if e is not None:
            if e[6] is not None:
                self._unwatch(fd, e)
            try:
                self.ep.unregister(fd)
            except OSError:
                pass

    def _add(self, fd, mask, rf, ra, wf, wa):
        self.ep.register(fd, mask)
        e = self.fds[fd] = [mask, rf, ra, wf, wa, self.batch, None]
        return e

    def _native(self):
        """From the first native read interest on, the loop calls the native table for this set's events
        (it relays what it can and hands the rest to _handle): a chunk then costs no Python frame."""
        from relay.runtime._mtpump import Table  # a native way exists, so the module is loaded

        t = self.table = Table()
        fd = self.ep.fileno()
        t.bind(fd, _BATCH, self._handle)
        self.loop.remove_reader(fd)
        self.loop.add_reader(fd, t)
        return t

    def _unwatch(self, fd, e):
        self.table.unwatch(fd)
        e[6] = None

    def moved(self):
        """The read args (owners) whose native ways moved bytes not taken yet (runtime/_mtpump.c)."""
        return self.table.moved() if self.table is not None else ()

    def report(self, exc):
        """A callback raised: tell the loop's exception handler (it logs), as a failing add_reader callback would."""
        self.loop.call_exception_handler({"message": "fast path callback failed", "exception": exc})

    # -- dispatch -----------------------------------------------------------------

    def _dispatch(self):
        self._handle(self.ep.poll(0, _BATCH))

    def _handle(self, events):
        """Dispatch a batch of events: (fd, mask), or (fd, mask, n, tail) after the native table relayed."""
        self.batch += 1
        batch = self.batch
        fds = self.fds
        for item in events:
            fd = item[0]
            ev = item[1]
            e = fds.get(fd)
            if e is None:  # dropped but not closed: nobody wants it any more
                try:
                    self.ep.unregister(fd)
                except OSError:
                    pass
                continue
            if e[5] == batch:
                continue  # registered during this batch: the event may be a closed predecessor's
            if len(item) > 2:  # the native way relayed a chunk and left something to do
                if e[6] is not None:  # (else fd's reads were handed back to Python meanwhile)
                    try:
                        e[6](e[2], item[2], item[3])
                    except Exception as exc:  # noqa: BLE001 -- as below
                        self.report(exc)
                continue
            try:
                if ev & _READ_EVENTS and e[1] is not None:
                    e[1](e[2])
                    if ev == IN:
                        continue  # the common case: nothing else to look at
                    if fds.get(fd) is not e:
                        continue  # closed or handed on by the read callback
                if ev & _WRITE_EVENTS and e[3] is not None:
                    e[3](e[4])
                    if fds.get(fd) is not e:
                        continue
            except Exception as exc:  # noqa: BLE001 -- one failing callback must not drop the rest of the batch
                self.report(exc)
                continue
            if (ev & IN and e[1] is None) or (ev & OUT and e[3] is None) or (e[1] is None and e[3] is None):
                self.sync(fd, e)  # registered for what nobody waits for any more (stop_write(sync=False))


_pollers = {}


def poller(loop):
    """The Poller of this event loop (one per loop; a closed loop's is closed)."""
    p = _pollers.get(id(loop))
    if p is None or p.loop is not loop:
        for key, old in list(_pollers.items()):
            if old.loop.is_closed():
                if old.table is not None:
                    old.table.clear()
                old.ep.close()
                del _pollers[key]
        p = _pollers[id(loop)] = Poller(loop)
    return p


def forget(loop, fd):
    """fd is about to be closed: forget its callbacks, if this loop's set knows it (no set is made)."""
    p = _pollers.get(id(loop))
    if p is not None and p.loop is loop:
        p.drop(fd)


def pollers():
    return list(_pollers.values())
