"""What a client that is not ours gets: the mask site, byte for byte, as if the relay were that site.

hand_over(relay, session, head) opens a connection to mtproto.mask, sends it
every byte the client sent from its first (head), and splices both ways
until both are done, passing each side's close on as that side made it:
  - an end of data (FIN) as a half-close where the runtime has one; on
    MicroPython, which has none, a client that finished sending still gets
    everything the mask site says until the site closes, then the close;
  - a reset (RST) as a reset (SO_LINGER 0), so a prober sees the site's
    reset where the site resets, not a clean close of the relay's.
Without a mask (a relay on its own Wi-Fi, where the state's probers do not
reach, and whose scarce uplink a mask would cost per probe) reject() answers
as a TLS server that serves no such name: a ClientHello gets the fatal alert
unrecognized_name (nginx's `ssl_reject_handshake on`, a common default
server), anything else a close; never a silent hold.

learn_profile() asks the mask site for its first TLS flight (faketls.py) so
the relay's ServerHello carries the site's cipher and certificate size.
"""

import errno

from relay.core.dial import dial
from relay.core.tunnel import EOF, RESET, Tap, stop
from relay.proto import faketls as T
from relay.proto.addr import parse_ip
from relay.runtime import api as runtime

R_MASK_DOWN = "mtproto-mask-down"  # the mask site did not answer: the prober got a close
_LEARN_MS = 5000  # a site that has not sent its certificate flight by then is not answering
_QUIET_MS = 300  # after the first encrypted record, a pause this long ends the flight


async def connect(relay, mask):
    """A connection to the mask site (host, port): resolved by the relay's resolver, not through the guard
    (the operator chose it; it may well be a web server on this machine's loopback). Raises Refusal, or
    the resolver's ResolveError."""
    host, port = mask
    ip = parse_ip(host)
    ips = [ip] if ip is not None else await relay.resolver.resolve(host)
    return await dial(ips, port, relay.router.connect_ms)


async def hand_over(relay, s, head):
    """Splice session s to the mask site, head first; returns when both sides are done."""
    mask = relay.mtproto.mask
    if mask is None:
        await reject(relay, s, head)
        return
    # Counted like any tunnel, but never refused: a close where the site would answer tells a prober what
    # the port is. A flood from one address meets the per-address limit before its handshake.
    relay.sessions.tunnel_open(s, False)
    try:
        try:
            up = await connect(relay, mask)
        except Exception:  # a Refusal, a lookup that failed (ResolveError)
            relay.stats.refuse(R_MASK_DOWN)
            return
        try:
            await _Splice(relay, s, up).run(head)
        finally:
            up.close()
    finally:
        relay.sessions.tunnel_close(s)


class _ProbeTap(Tap):
    """A prober's bytes, both ways: the relay's counters and the budget (they cost the uplink as much),
    charged but never paced or refused."""

    __slots__ = ("account",)

    def __init__(self, relay):
        Tap.__init__(self, relay.stats)  # no sharing: the pumps neither pace nor refuse these bytes
        self.account = relay.sharing

    def moved(self, s, n, down):
        Tap.moved(self, s, n, down)
        if self.account is not None:
            self.account.charge(s, n)


class _Splice:
    """Both directions of one hand-over, with the pump's copy (core/tunnel.py), unpaced: each side's end is
    passed on as that side made it. A socket is closed (or reset) only after the task that waits on it was
    cancelled and has finished."""

    __slots__ = ("relay", "s", "up", "site_end", "tap")

    def __init__(self, relay, s, up):
        self.relay = relay
        self.s = s
        self.up = up
        self.site_end = None  # how the site's side ended, once it has
        self.tap = _ProbeTap(relay)

    async def run(self, head):
        s, up = self.s, self.up
        tunnels = self.relay.tunnels
        s.timeout_ms = self.relay.idle_ms  # the site's own timeouts end it now; the sweeper is the backstop
        s.active = runtime.now_ms()
        try:
            await up.send(head)
        except OSError as e:
            if _how(e) == RESET:
                s.conn.abort()  # the site reset while reading the probe: so does the relay
            return
        self.tap.moved(s, len(head), False)
        s.peer_task = runtime.create_task(self._down())
        try:
            how = await tunnels.copy(s, s.conn, up, False, self.tap)
        except runtime.CancelledError:
            if self.site_end == RESET:
                s.conn.abort()  # our read of the client is over: the reset can go now
            raise
        if how == EOF:
            up.shutdown_write()  # where the runtime can half-close; either way the site has its say
            t = s.peer_task
            if t is not None:
                await t  # the site answers, then closes (or the sweeper ends it)
            return
        t = s.peer_task
        s.peer_task = None
        await stop(t)
        if how == RESET:
            up.abort()

    async def _down(self):
        s = self.s
        tunnels = self.relay.tunnels
        try:
            how = await tunnels.copy(s, self.up, s.conn, True, self.tap)
        except runtime.CancelledError:
            return
        s.peer_task = None
        self.site_end = how
        if how == EOF and s.conn.shutdown_write():
            return  # the client sees the site's FIN and may still send (as to the site)
        s.cancel()  # no half-close here, or the site is gone: end the client's side too


def _how(e):
    return RESET if e.args and e.args[0] == errno.ECONNRESET else None


async def reject(relay, s, head):
    """No mask site: answer as a TLS server that serves no such name would, then close."""
    if head and head[0] == T.REC_HANDSHAKE and len(head) >= 6 and head[5] == 1:
        n = (head[3] << 8) | head[4]
        if len(head) >= 5 + n:  # a whole ClientHello: a real server answers it; a partial one it waits for
            await s.conn.send(T.alert_unrecognized_name())


async def learn_profile(relay, mask, domain):
    """The mask site's TLS profile for `domain` (faketls.MaskProfile). Raises Refusal (no connection),
    OSError, faketls.ProfileError, runtime.TimeoutError."""
    conn = await connect(relay, mask)
    try:
        await conn.send(T.probe_hello(domain, runtime.random_bytes))
        reader = T.ProfileReader()
        t0 = runtime.now_ms()
        while not reader.done:
            left = _LEARN_MS - runtime.ms_since(t0)
            if reader.records:
                left = min(left, _QUIET_MS)
            if left <= 0:
                break
            try:
                data = await runtime.recv_within(conn, left)
            except runtime.TimeoutError:
                break
            if not data:
                break
            reader.feed(data)
        return reader.profile()
    finally:
        conn.close()


async def keep_profile(relay, svc):
    """Background task: learn the mask site's profile at start, twice a day (certificates change), and at
    once when a reload names another site or domain (svc.relearn); until it answers, a random stand-in serves."""
    wait = 30000
    while True:
        svc.relearn.clear()
        domain = svc.domain
        if svc.mask is not None and domain:
            try:
                p = await learn_profile(relay, svc.mask, domain)
                if svc.relearn.is_set():
                    continue  # a reload named another site meanwhile: this profile is the old one's
                svc.proxy.profile = p
                relay.log.info("mtproto: mask site answers TLS for %s: cipher %04x, %d bytes of certificate flight"
                               % (domain, p.cipher, p.flight))
                wait = 12 * 3600 * 1000
            except Exception as e:  # OSError, ProfileError, a timeout, a name that does not resolve
                relay.log.warn("mtproto: cannot learn the mask site's TLS profile for %s (%s); using a random one"
                               % (domain, repr(e)))
                wait = min(wait * 2, 3600 * 1000)
        if svc.relearn.is_set():
            continue
        try:
            await runtime.wait_for_ms(svc.relearn.wait(), wait)
        except runtime.TimeoutError:
            pass
