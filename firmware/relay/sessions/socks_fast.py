"""A SOCKS session on loop callbacks: the CPython fast path's handshake, with no task and no futures.

Connection churn (a phone opening many short connections) costs the relay
per connection, not per byte, and a task with its awaits was most of that
cost. Here the client socket's readiness callback feeds socks.py's
handshake, the connect to the destination is a callback too
(runtime.connect_start), and the tunnel goes to the fast pump
(Relay._detach). Only what must wait on something else becomes a task,
with the bytes read so far: HTTP, a DNS lookup, an upstream proxy, UDP.

Timeouts come from the relay's sweeper like everywhere else: the
handshake's deadline while the client talks, connect_timeout per address
while a connect runs (expire() then tries the next address), and no connect
past the handshake's deadline, as on the task path. A client that half-closes
right after its request is still connected and answered.
"""

from relay import runtime
from relay.proto import socks, stats as S
from relay.server import FIRST_READ
from relay.sessions.socks_session import connect_and_reply, reply4, reply5
from relay.proto.stats import Refusal

_EARLY_MAX = 65536  # client bytes held while the destination connects; more waits in the socket


async def _then(value):
    return value


class FastSocks:
    __slots__ = ("relay", "s", "hs", "reply", "req", "ips", "connecting", "last", "deadline", "handed")

    def __init__(self, relay, s):
        self.relay = relay
        self.s = s
        self.hs = None
        self.reply = None
        self.req = None
        self.ips = None
        self.connecting = None
        self.last = S.R_FAILED
        self.deadline = s.active + relay.handshake_ms  # connects too end by then, as on the task path
        self.handed = None  # a destination connection given to a task with the client's early bytes
        s.task = self  # the sweeper and Relay.close reach expire() and cancel()
        s.conn.watch(self._readable)

    # -- the client talks ----------------------------------------------------

    def _readable(self, _=None):
        conn = self.s.conn
        try:
            data = conn.recv_now(socks.HANDSHAKE_READ if self.hs is not None else FIRST_READ)
        except OSError:
            return self._close()
        if data is None:
            return
        if not data:
            if self.connecting is not None:
                # The client said all it will say (a half-close): stop watching, connect all the same;
                # the pump reads this EOF again and passes it on, as the task path does.
                conn.unwatch()
                return
            return self._close()  # gone before the tunnel could start
        if self.connecting is not None:  # payload ahead of our reply: it goes first once connected
            self.hs.rest += data
            if len(self.hs.rest) >= _EARLY_MAX:
                conn.unwatch()  # the fast pump watches again
            return
        relay = self.relay
        if self.hs is None:
            b = data[0]
            if b == 5:
                self.hs = socks.Socks5Handshake(relay.password_required)
                self.reply = reply5
            elif b == 4:
                self.hs = socks.Socks4Handshake()
                self.reply = reply4
            else:  # HTTP or garbage: the task path knows what to do with it
                return self._to_task(relay._serve(self.s, data))
        try:
            events = self.hs.feed(data)
            while events:
                ev = events.pop(0)
                t = type(ev)
                if t is socks.Send:
                    if not conn.send_now(ev.data):
                        return self._close()
                elif t is socks.Login:
                    ok = relay.login_ok(ev.user, ev.password)
                    if not conn.send_now(self.hs.login_reply(ok)) or not ok:
                        if not ok:
                            relay.stats.refuse(S.R_AUTH)
                        return self._close()
                    events = self.hs.feed(b"")  # the request may have come with the login
                else:
                    return self._request(ev)
        except socks.SocksError as e:
            relay.stats.refuse(e.reason)
            if e.reply:
                try:
                    conn.send_now(e.reply)
                except OSError:
                    pass
            self._close()
        except OSError:
            self._close()

    def _request(self, req):
        relay, s = self.relay, self.s
        if req.cmd == socks.CMD_UDP:
            from relay.sessions.udp_session import serve_udp

            return self._to_task(relay._serve(s, None, serve_udp(relay, s, req)))
        if self.reply is reply4 and relay.password_required:
            relay.stats.refuse(S.R_AUTH)  # SOCKS4 carries no password
            return self._refuse_now(S.R_AUTH)
        # The task path's order: the limits first, then where to (its refusals count the same way)
        try:
            relay.tunnel_open(s)
        except Refusal as r:
            relay.stats.refuse(r.reason)
            return self._refuse_now(r.reason)
        try:
            ips = relay.route(req.host, req.port)
        except Refusal as r:
            return self._refuse(r.reason)
        if ips is None:  # a lookup or an upstream proxy has to answer first: that waits in a task
            relay.tunnel_close(s)  # connect_and_reply counts the tunnel itself
            return self._to_task(relay._serve(s, None, connect_and_reply(relay, s, req, self.hs.rest, self.reply)))
        self.req = req
        self.ips = ips
        self._dial()

    # -- the destination -------------------------------------------------------

    def _dial(self):
        s = self.s
        while self.ips:
            ip = self.ips.pop(0)
            now = runtime.now_ms()
            left = self.deadline - now
            if left <= 0:
                self.last = S.R_TIMEOUT
                break
            # the sweeper calls expire() when this address takes too long, or the handshake's time is up
            s.timeout_ms = min(self.relay.connect_ms, left)
            s.active = now
            try:
                self.connecting = runtime.connect_start(ip, self.req.port, self._connected, s.conn)
                return
            except OSError as e:
                self.last = runtime.connect_error(e)
        self._refuse(self.last)

    def _connected(self, up, err):
        self.connecting = None
        if err is not None:
            self.last = runtime.connect_error(err)
            return self._dial()
        relay, s = self.relay, self.s
        relay.stats.tunnels_total += 1
        try:
            ok = s.conn.send_now(self.reply(None, up.local() or (None, 0)))
        except OSError:
            ok = False
        if not ok:
            up.close()
            return self._close()
        head = self.hs.rest
        if head:  # the client did not wait for our reply: the task path sends what it said first
            self.handed = up
            return self._to_task(relay._serve(s, None, _then((up, head))))
        s.task = None
        if not relay._detach(s, up):
            s.task = self
            self._to_task(relay._serve(s, None, _then((up, b""))))

    def expire(self):
        """The sweeper: this session's deadline passed."""
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
            self.last = S.R_TIMEOUT
            return self._dial()
        if not self.s.tunnel:
            self.relay.stats.refuse(S.R_HANDSHAKE_TIMEOUT)
        self._close()

    # -- ends --------------------------------------------------------------------

    def _refuse(self, reason):
        """No tunnel after all: count why, tell the client, close."""
        self.relay.tunnel_close(self.s)
        self.relay.stats.refuse(reason)
        self._refuse_now(reason)

    def _refuse_now(self, reason):
        try:
            self.s.conn.send_now(self.reply(reason, None))
        except OSError:
            pass
        self._close()

    def _to_task(self, coro):
        """Hand the session to a task (Relay._serve) from here on."""
        s = self.s
        s.conn.unwatch()
        s.active = runtime.now_ms()  # the task's own deadline starts now: no sweep cancels it unstarted
        s.timeout_ms = self.relay.handshake_ms
        t = s.task = runtime.create_task(coro)
        t.add_done_callback(self._task_done)

    def _task_done(self, t):
        """A task cancelled before it ran never reached _serve's cleanup: end the session here."""
        s = self.s
        if s.task is t and s in self.relay.sessions:
            if self.handed is not None:
                self.handed.close()
            self.relay._end(s)

    def cancel(self):
        """Stop now (the relay shuts down)."""
        self._close()

    def _close(self):
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
        s = self.s
        s.conn.unwatch()
        s.task = None
        self.relay._end(s)
