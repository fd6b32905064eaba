"""Sessions: one accepted client connection each, admitted, counted, timed and ended in one place.

Every listener (the proxy port, MTProto, transparent, mesh, the portal, status) admits through
Sessions.admit(conn) and starts its session with Sessions.run(s, handshake): one task that runs
the protocol's handshake, then its tunnel (core/tunnel.py), then Sessions.end(s). A session's
deadline is (active, timeout_ms): the handshake's while it talks, a connect's while one runs, the idle
timeout once a tunnel runs. One sweeper pass (sweep()) asks each session one question, expire(), when
its deadline passed; the data path carries no per-read timer.

Limits: limits.sessions at accept (closed at once: out of sockets, a fast close is the kindest answer),
limits.tunnels and limits.tunnels_per_client when a session opens its tunnel (tunnel_open), fair
sharing's quota and budget too. Counters only: nothing here records who went where.
"""

from relay.proto import stats as S
from relay.proto.stats import Refusal
from relay.runtime import api as runtime


class Session:
    # win_t/win_b (share.py's interactive window) are set only when fair sharing runs: on MicroPython
    # every attribute is a slot in the instance's map, and an idle tunnel should cost as few as possible.
    # heard: when the tunnel last got bytes from its far end (core/tunnel.py's Tap.moved), set on the first:
    # the path finder skips a probe of a path whose tunnels hear from the far end (services/pathfind.py).
    __slots__ = ("conn", "task", "peer_task", "active", "timeout_ms", "tunnel", "win_t", "win_b", "heard")
    counted = True  # in stats.sessions (the portal's and the status page's sessions are not)

    def __init__(self, conn, timeout_ms):
        self.conn = conn
        self.task = None  # what runs the session: its task, until a tunnel is handed to the fast pump
        self.peer_task = None  # the upstream->client direction once a tunnel runs (a task, or the fast pump)
        self.active = runtime.now_ms()
        self.timeout_ms = timeout_ms
        self.tunnel = False

    @property
    def client(self):
        return self.conn.peer[0]

    def expire(self, sessions):
        """The sweeper's one question, asked once the session's deadline passed: a handshake that never
        finished is counted as such; the session ends."""
        if not self.tunnel:
            sessions.stats.refuse(S.R_HANDSHAKE_TIMEOUT)
        self.cancel()

    def cancel(self):
        """End the session now (the sweeper, a dead path, the relay stopping): its task's cleanup ends it."""
        _cancel(self.peer_task)
        _cancel(self.task)


def _cancel(t):
    if t is not None:
        try:
            t.cancel()
        except RuntimeError:
            pass  # MicroPython: a task cannot cancel itself


class PageSession(Session):
    """A request to the portal or the status listener: not a proxy session, not in stats.sessions."""

    __slots__ = ()
    counted = False


class Sessions:
    def __init__(self, stats, limits, handshake_ms):
        self.stats = stats
        self.limits = limits
        self.handshake_ms = handshake_ms
        self.all = set()
        self.per_client = {}  # client -> open tunnels; gone when it drops to zero
        self.sharing = None  # services.share_service.Sharing when fair sharing runs: it may refuse a tunnel
        self.tunnels = None  # core.tunnel.Tunnels: what run() starts

    def __contains__(self, s):
        return s in self.all

    def admit(self, conn, make=Session, limited=True):
        """A new session for conn, or None (conn closed) when limits.sessions are open already.
        make(conn, timeout_ms) -> the session (a Session subclass); limited False: the status listener,
        which answers the operator even on a full relay."""
        if limited and len(self.all) >= self.limits.sessions:
            if make.counted:
                self.stats.refuse(S.R_FULL)
            conn.close()
            return None
        s = make(conn, self.handshake_ms)
        self.all.add(s)
        if s.counted:
            self.stats.sessions += 1
        return s

    def run(self, s, handshake=None, then=None):
        """Start session s's one task: handshake (a coroutine -> None when done, or what to tunnel: see
        Tunnels.serve), or then, a tunnel ready to go; the session ends with it."""
        t = s.task = runtime.create_task(self.tunnels.serve(s, handshake, then))
        return t

    def end(self, s):
        """s is over: its connection closed, its tunnel counted free. Idempotent."""
        _cancel(s.peer_task)
        s.conn.close()
        self.tunnel_close(s)
        if s in self.all:
            self.all.discard(s)
            if s.counted:
                self.stats.sessions -= 1

    def cancel_all(self):
        for s in list(self.all):
            s.cancel()

    def sweep(self):
        """One pass of the sweeper: every session past its deadline is asked to expire."""
        runtime.settle()  # tunnels whose chunks moved without a Python call look active from here
        now = runtime.now_ms()  # once per pass: a public relay sweeps 50,000 sessions a second
        diff = runtime.ms_diff
        for s in [s for s in self.all if diff(now, s.active) > s.timeout_ms]:  # the late ones, not a copy of all
            s.expire(self)

    # -- tunnels ---------------------------------------------------------------

    def tunnel_open(self, s, refuse=True):
        """Count a tunnel for session s, or raise Refusal when a limit is reached. refuse False: count it
        whatever the limits say (a prober handed to the mask site, which a refusal would tell apart)."""
        st = self.stats
        lim = self.limits
        n = self.per_client.get(s.client, 0)
        if refuse:
            if st.tunnels >= lim.tunnels:
                raise Refusal(S.R_FULL)
            if n >= lim.tunnels_per_client:
                raise Refusal(S.R_CLIENT_FULL)
            if self.sharing is not None:
                self.sharing.check_open(s)
        self.per_client[s.client] = n + 1
        st.tunnels += 1
        s.tunnel = True

    def tunnel_close(self, s):
        if not s.tunnel:
            return
        s.tunnel = False
        self.stats.tunnels -= 1
        n = self.per_client.get(s.client, 1) - 1
        if n > 0:
            self.per_client[s.client] = n
        else:
            self.per_client.pop(s.client, None)
