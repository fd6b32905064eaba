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
        self.fds = {}  # fd -> [registered mask, on_read, read arg, on_write, write arg, batch registered in]
        self.batch = 0
        loop.add_reader(self.ep.fileno(), self._dispatch)

    def close(self):
        try:
            self.loop.remove_reader(self.ep.fileno())
        except Exception:  # noqa: BLE001 -- the loop may be closed already
            pass
        self.ep.close()

    # -- interest ---------------------------------------------------------------

    def want_read(self, fd, func, arg):
        """Call func(arg) while fd has bytes (or EOF, or an error) to read."""
        e = self.fds.get(fd)
        if e is None:
            self._add(fd, IN, func, arg, None, None)
        else:
            e[1] = func
            e[2] = arg
            self.sync(fd, e)

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

    def drop(self, fd):
        """Forget fd because it is about to be closed (closing unregisters it; no syscall here)."""
        self.fds.pop(fd, None)

    def release(self, fd):
        """Unregister fd that stays open (someone else watches it from now on)."""
        if self.fds.pop(fd, None) is not None:
            try:
                self.ep.unregister(fd)
            except OSError:
                pass

    def _add(self, fd, mask, rf, ra, wf, wa):
        self.ep.register(fd, mask)
        self.fds[fd] = [mask, rf, ra, wf, wa, self.batch]

    def report(self, exc):
        """A callback raised: tell the loop's exception handler (it logs), as a failing add_reader callback would."""
        self.loop.call_exception_handler({"message": "fast path callback failed", "exception": exc})

    # -- dispatch -----------------------------------------------------------------

    def _dispatch(self):
        self.batch += 1
        batch = self.batch
        fds = self.fds
        for fd, ev in self.ep.poll(0, _BATCH):
            e = fds.get(fd)
            if e is None:  # dropped but not closed: nobody wants it any more
                try:
                    self.ep.unregister(fd)
                except OSError:
                    pass
                continue
            if e[5] == batch:
                continue  # registered during this batch: the event may be a closed predecessor's
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
                old.ep.close()
                del _pollers[key]
        p = _pollers[id(loop)] = Poller(loop)
    return p


def forget(loop, fd):
    """fd is about to be closed: forget its callbacks, if this loop's set knows it (no set is made)."""
    p = _pollers.get(id(loop))
    if p is not None and p.loop is loop:
        p.fds.pop(fd, None)
