"""A SOCKS session on loop callbacks: the CPython fast path's shell around the one SOCKS driver.

Connection churn (a phone opening many short connections) costs the relay per connection, not per
byte, and a task with its awaits was most of that cost. Here the client socket's readiness callback
feeds the driver (sessions/socks_session.py), the connect is the dial loop's callback shell
(core/dial.py), and the tunnel goes to the fast pump (Tunnels.detach). Where the CONNECT must wait on
something else (a lookup, an upstream proxy: Router.open), that wait is a task and the session goes
on here when it is done. A task takes the session from there on only for what is not a CONNECT on
callbacks: HTTP (the first byte said so), UDP, and a tunnel whose client sent bytes along with its
request (charged first, in the task).

Timeouts come from the relay's sweeper like everywhere else: the handshake's deadline while the
client talks, connect_timeout per address while a connect runs (expire() then tries the next
address), and no connect past the handshake's deadline. A client that half-closes right after its
request is still connected and answered.
"""

from relay.core.dial import CallbackDial, Dial
from relay.core.session import Session
from relay.proto import socks
from relay.proto.stats import Refusal
from relay.runtime import api as runtime
from relay.sessions.proxy_session import FIRST_READ, serve_proxy
from relay.sessions.socks_session import CLOSE, CONNECT, MORE, SocksDriver

_EARLY_MAX = 65536  # client bytes held while the destination connects; more waits in the socket


class FastSocks(Session):
    """The session itself: no task and no future until one is needed. Its one slot more than a Session
    (the driver, dropped once the fast pump has the tunnel) is all an idle tunnel pays for the shell."""

    __slots__ = ("drv",)

    def __init__(self, conn, timeout_ms):
        Session.__init__(self, conn, timeout_ms)
        self.drv = None

    def start(self, relay):
        self.drv = SocksDriver(relay, self)  # the first bytes name the version
        self.conn.watch(self._readable)

    # -- the client talks ----------------------------------------------------

    def _readable(self, _=None):
        conn = self.conn
        drv = self.drv
        try:
            data = conn.recv_now(socks.HANDSHAKE_READ if drv.hs is not None else FIRST_READ)
        except OSError:
            return self._close()
        if data is None:
            return
        if not data:
            if drv.connecting is not None:
                # The client said all it will say (a half-close): stop watching, connect all the same;
                # the pump reads this EOF again and passes it on, as the await shell does.
                conn.unwatch()
                return
            return self._close()  # gone before the tunnel could start
        if drv.connecting is not None:  # payload ahead of our reply: it goes first once connected
            drv.hs.rest += data
            if len(drv.hs.rest) >= _EARLY_MAX:
                conn.unwatch()  # the fast pump watches again
            return
        if drv.hs is None:
            v = socks.version(data[0])
            if v is None:  # HTTP or garbage: the proxy port's dispatch, in a task
                return self._to_task(serve_proxy(drv.relay, self, data))
            drv.begin(v)
        out, then = drv.feed(data)
        try:
            if out and not conn.send_now(out):
                return self._close()
        except OSError:
            return self._close()
        if then == MORE:
            return
        if then == CLOSE:
            return self._close()
        if then == CONNECT:
            return self._connect()
        from relay.sessions.udp_session import serve_udp

        self._to_task(serve_udp(drv.relay, self, drv.req))

    # -- the destination -------------------------------------------------------

    def _connect(self):
        drv = self.drv
        relay, req = drv.relay, drv.req
        if drv.ips is None:
            # A lookup or an upstream proxy answers first: a task waits for it, and the session goes on here.
            self.conn.unwatch()
            t = self.task = runtime.create_task(
                relay.router.open(req.host, req.port, None, self, self.active, relay.sessions.handshake_ms))
            t.add_done_callback(self._opened)
            return
        d = Dial(drv.ips, req.port, relay.router.connect_ms, self.active, relay.sessions.handshake_ms)
        drv.connecting = CallbackDial(d, self, self._dialed)
        drv.connecting.start()

    def _opened(self, t):
        if self.task is not t:
            return
        self.task = None
        if t.cancelled():
            return self._close()  # the sweeper (the handshake's time is up) or the relay stopping
        e = t.exception()
        if isinstance(e, Refusal):
            return self._refuse(e.reason)
        if e is not None:
            self._close()
            if not isinstance(e, OSError):
                raise e  # a bug: the loop's exception handler says so
            return
        self._connected(t.result())

    def _dialed(self, up, reason):
        drv = self.drv
        drv.connecting = None
        if up is None:
            return self._refuse(reason)
        drv.relay.stats.tunnels_total += 1  # (Router.open counts the ones it opens)
        self._connected(up)

    def _connected(self, up):
        drv = self.drv
        try:
            ok = self.conn.send_now(drv.connected(up))
        except OSError:
            ok = False
        if not ok:
            up.close()
            return self._close()
        head = drv.rest()
        if not head and drv.relay.tunnels.detach(self, up):
            self.drv = None  # the fast pump has the tunnel: an idle one keeps no driver
            return
        drv.handed = up  # the task closes it; if it is cancelled before it runs, _task_done does
        self._to_task(None, (up, head))

    # -- ends --------------------------------------------------------------------

    def expire(self, sessions):
        """The sweeper: this session's deadline passed."""
        drv = self.drv
        if drv is not None and drv.connecting is not None:
            return drv.connecting.expire()  # the next address, or the refusal
        Session.expire(self, sessions)

    def cancel(self):
        if self.task is None and self.peer_task is None:
            return self._close()  # still on callbacks: nothing else to stop
        Session.cancel(self)

    def _refuse(self, reason):
        """No tunnel after all: counted, the client told why, closed."""
        try:
            self.conn.send_now(self.drv.refused(reason))
        except OSError:
            pass
        self._close()

    def _to_task(self, handshake, then=None):
        """Hand the session to a task (Tunnels.serve) from here on."""
        sessions = self.drv.relay.sessions
        self.conn.unwatch()
        self.active = runtime.now_ms()  # the task's own deadline starts now: no sweep cancels it unstarted
        self.timeout_ms = sessions.handshake_ms
        sessions.run(self, handshake, then).add_done_callback(self._task_done)

    def _task_done(self, t):
        """A task cancelled before it ran never reached its cleanup: end the session here."""
        drv = self.drv
        if drv is not None and self.task is t and self in drv.relay.sessions:
            if drv.handed is not None:
                drv.handed.close()
            drv.relay.sessions.end(self)

    def _close(self):
        drv = self.drv
        if drv is None:
            return  # ended already
        if drv.connecting is not None:
            drv.connecting.cancel()
            drv.connecting = None
        self.conn.unwatch()
        drv.relay.sessions.end(self)
