"""The path finder: which upstream carries new tunnels, decided by probing each one end to end.

On when upstream.probe names a web server abroad (HOST:PORT). Each upstream
asks it for its first bytes (proto/pathcheck.py), on a beat of its own, and
the upstreams are ordered: paths that answered first, fastest first, then the
rest in their configured order (answers within 50 ms of each other count as
equally fast: the configured order decides). The current path counts at half
its time, so another takes over only when clearly faster: paths do not flap.

A path that stops answering is marked down and the tunnels opened through it
are ended (their upstream sockets shut both ways, so each pump sees the close
it would see if the far end had hung up): a phone on a dead path reconnects at
once through the next one instead of waiting out the idle timeout. New tunnels
go only to paths that answered; with none, the relay refuses at once
(uplink-down) rather than sending every phone's request into a dead path.

Probes are bounded, and cost what failover needs, no more. A probe crosses the scarce uplink (a GET
and a redirect's answer: ~630 B of payload, plus TCP's and the engine's own overhead; over Tor or
iodine's DNS that is dear), so (figures: bench/probe_cost.py, uplink.md):
  - the current path is probed once per upstream.check_interval (counted from the end of its last
    probe), each probe at most uplink.timeout, so a path that dies is left within
    check_interval + timeout;
  - ... except while its tunnels hear from the far end: bytes coming back prove the path works, so
    its probe waits until half a check interval after the last of them (the last byte came at the
    latest when the path died: such a path is left within check_interval / 2 + timeout);
  - every other path (a standby) once per upstream.standby_interval: failover takes the next path
    on its last verdict, and when the current path fails every standby is probed at once, so the
    order is fresh within one timeout;
  - while no path works, every path once per check_interval (the relay is useless until one answers);
  - each wait is drawn anew: a check interval less up to a quarter of it (the bound above holds), a
    standby interval give or take a quarter. The probes are no fixed heartbeat to one site that a
    censor could key on.
Nothing here logs a destination or a client. A probe is a browser's GET (proto/pathcheck.py) and its
bytes are charged to share's budget (they cross the same uplink as the phones').
"""

from relay.proto import httpproxy, pathcheck, socks
from relay.runtime import api as runtime
from relay.proto.addr import parse_ip, split_host_port

_KEEP = 2  # the current path stays first unless another answers this many times faster
BUCKET_MS = pathcheck.BUCKET_MS


class PathFinder:
    def __init__(self, ups, probe, timeout_ms, standby_ms):
        host, port = split_host_port(probe, 80)
        ip = parse_ip(host)
        self.ups = ups
        self.host = ip if ip is not None else host  # a name goes to the upstream to resolve
        self.port = port
        self.request = pathcheck.request(host)
        self.timeout_ms = timeout_ms
        self.standby_ms = standby_ms
        self.current = None
        self.switches = 0
        self.probed = 0
        self.skipped = 0  # times the current path's due probe was put off: its tunnels heard from the far end
        self.failovers = 0  # the current path failed this many times: each brings the standbys' probes forward

    async def probe(self, u):
        """One end-to-end probe through u: sets u.ms (None: failed) and u.note."""
        t0 = runtime.now_ms()
        conn = None
        answer = b""
        try:
            conn = await runtime.wait_for_ms(self.ups.through(u, self.host, self.port), self.timeout_ms)
            await conn.send(self.request)
            self._charge(len(self.request))
            while len(answer) < pathcheck.ENOUGH:
                left = self.timeout_ms - runtime.ms_since(t0)
                if left <= 0:
                    raise runtime.TimeoutError()
                data = await runtime.recv_within(conn, left)
                if not data:
                    break
                answer += bytes(data)
            works, note = pathcheck.judge(answer)
        except runtime.TimeoutError:
            works, note = False, "no answer in time" if conn is not None else "no tunnel in time"
        except socks.SocksError as e:
            works, note = False, "refused: " + str(e)
        except httpproxy.HttpError as e:
            works, note = False, "refused: " + str(e)
        except OSError as e:
            works, note = False, runtime.connect_error(e)
        finally:
            if conn is not None:
                conn.close()
            self._charge(len(answer))
        u.ms = runtime.ms_since(t0) if works else None
        u.note = note

    def _charge(self, n):
        sharing = self.ups.relay.sharing
        if sharing is not None and n:
            sharing.charge_own(n)

    async def run(self):
        """Each upstream on its own beat (see the module's docstring), so a dead path is seen within
        check_interval + timeout however slow the other probes are."""
        tasks = [runtime.create_task(self._watch(u)) for u in self.ups.list]
        for t in tasks:
            await t

    async def _watch(self, u):
        while True:
            was = u.healthy
            try:
                await self.probe(u)
                self.probed += 1
                u.probes += 1
                u.healthy = u.ms is not None  # (a probe's own SOCKS handshake sets it too: decide here)
                if was and not u.healthy:
                    self.end_tunnels(u)
                    if u is self.current:
                        self.failovers += 1  # the standbys' verdicts are old: probe them now
                if self.probed >= len(self.ups.list):  # once each has answered or failed: order them
                    self.order()
            except Exception as e:  # a bug here must not silently stop this path's probes for good
                self.ups.relay.log.info("path probe failed: " + repr(e))
            await self._wait(u)

    def _interval(self, u):
        check = self.ups.check_ms
        if self.current is None or u is self.current:
            return check
        return max(self.standby_ms, check)

    async def _wait(self, u):
        """Until u's next probe is due. Reckoned again at least once per check interval: a standby that
        became the current path, or a failover elsewhere, brings it forward."""
        start = runtime.now_ms()
        r = runtime.random_bytes(1)[0]  # 0..255: the jitter
        after_bytes = False
        failovers = self.failovers
        while self.failovers == failovers:
            every = self._interval(u)
            if every != self.ups.check_ms:  # a standby: within a quarter either side
                left = every - every // 4 + every * r // 512
            elif after_bytes:
                left = every // 2
            else:  # up to a quarter less (never more: the failover bound holds)
                left = every - every * r // 1024
            left -= runtime.ms_since(start)
            if left <= 0:
                heard = self._heard(u) if u is self.current else None
                if heard is None or runtime.ms_since(heard) >= every // 2:
                    return
                # Its tunnels heard from the far end within half an interval: the path works. Due again
                # half an interval after the last byte: when the bytes stop (a path that died), it is
                # probed sooner than on its idle beat.
                self.skipped += 1
                start, after_bytes = heard, True
                continue
            await runtime.sleep_ms(min(left, self.ups.check_ms))

    def _heard(self, u):
        """When a tunnel open through u last got bytes from its far end (a now_ms reading), or None."""
        runtime.settle()  # chunks relayed without a Python call count as heard from here
        last = None
        for c, s in u.conns:
            t = getattr(s, "heard", None) if s is not None else None
            if t is not None and c.is_open() and (last is None or runtime.ms_diff(t, last) > 0):
                last = t
        return last

    def _key(self, u):
        ms = u.ms // _KEEP if u is self.current else u.ms  # the current path's edge: no flapping
        return ms // BUCKET_MS, u.index

    def order(self):
        ups = self.ups.list
        working = [u for u in ups if u.healthy and u.ms is not None]
        working.sort(key=self._key)
        self.ups.list = working + [u for u in ups if u not in working]
        first = working[0] if working else None
        if first is not self.current:
            self.current = first
            self.switches += 1
            self.ups.relay.log.info("path: " + (first.label if first is not None else "none works"))

    def track(self, u, conn, s=None):
        """A tunnel through u opened for session s: remember both (closed ones are dropped here, so the
        list stays short)."""
        u.conns = [cs for cs in u.conns if cs[0].is_open()]
        u.conns.append((conn, s))

    def end_tunnels(self, u):
        for c, _ in u.conns:
            c.hang_up()
        u.conns = []

    def state(self):
        return {"path": self.current.label if self.current is not None else None, "switches": self.switches,
                "probes": self.probed, "probes_skipped": self.skipped}
