"""The path finder: which upstream carries new tunnels, decided by probing each one end to end.

On when upstream.probe names a web server abroad (HOST:PORT). Each health round
asks it for its first bytes (relay/pathcheck.py) through every upstream at once
and orders them: paths that answered first, fastest first, then the rest in
their configured order (answers within 50 ms of each other count as equally
fast: the configured order decides). The current path keeps first place while
it works unless another answered in under half its time, so paths do not flap.

A path that stops answering is marked down and the tunnels opened through it
are ended (their upstream sockets shut both ways, so each pump sees the close
it would see if the far end had hung up): a phone on a dead path reconnects at
once through the next one instead of waiting out the idle timeout. New tunnels
go only to paths that answered; with none, the relay refuses at once
(uplink-down) rather than sending every phone's request into a dead path.

Probes are bounded: one round per upstream.check_interval, each probe at most
uplink.timeout. Nothing here logs a destination or a client.
"""

from relay import httpproxy, pathcheck, runtime, socks
from relay.addr import parse_ip, split_host_port

_KEEP = 2  # the current path stays first unless another answers this many times faster
BUCKET_MS = pathcheck.BUCKET_MS


class PathFinder:
    def __init__(self, ups, probe, timeout_ms):
        host, port = split_host_port(probe, 80)
        ip = parse_ip(host)
        self.ups = ups
        self.host = ip if ip is not None else host  # a name goes to the upstream to resolve
        self.port = port
        self.request = pathcheck.request(host)
        self.timeout_ms = timeout_ms
        self.current = None
        self.switches = 0
        self.rounds = 0

    async def probe(self, u):
        """One end-to-end probe through u: sets u.ms (None: failed) and u.note."""
        t0 = runtime.now_ms()
        conn = None
        answer = b""
        try:
            conn = await runtime.wait_for_ms(self.ups._through(u, self.host, self.port), self.timeout_ms)
            await conn.send(self.request)
            while len(answer) < pathcheck.ENOUGH:
                left = self.timeout_ms - runtime.ms_since(t0)
                if left <= 0:
                    raise runtime.TimeoutError()
                data = await runtime.wait_for_ms(conn.recv(), left)
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
        u.ms = runtime.ms_since(t0) if works else None
        u.note = note

    async def round(self):
        """Probe every upstream at once, then order them and end tunnels on paths that failed."""
        tasks = [runtime.create_task(self.probe(u)) for u in self.ups.list]
        for t in tasks:
            await t
        self.rounds += 1
        for u in self.ups.list:
            was = u.healthy
            u.healthy = u.ms is not None
            if was and not u.healthy:
                self.end_tunnels(u)
        self.order()

    def order(self):
        ups = self.ups.list
        working = [u for u in ups if u.healthy]
        working.sort(key=lambda u: (u.ms // BUCKET_MS, u.index))
        cur = self.current
        if cur is not None and cur.healthy and working and working[0] is not cur and (
                working[0].ms * _KEEP > cur.ms or working[0].ms // BUCKET_MS == cur.ms // BUCKET_MS):
            working.remove(cur)
            working.insert(0, cur)
        self.ups.list = working + [u for u in ups if not u.healthy]
        first = working[0] if working else None
        if first is not cur:
            self.current = first
            self.switches += 1
            self.ups.relay.log.info("path: " + (first.label if first is not None else "none works"))

    def track(self, u, conn):
        """A tunnel through u opened: remember it (closed ones are dropped here, so the list stays short)."""
        u.conns = [c for c in u.conns if c.is_open()]
        u.conns.append(conn)

    def end_tunnels(self, u):
        for c in u.conns:
            c.abort()
        u.conns = []

    def state(self):
        return {"path": self.current.label if self.current is not None else None, "switches": self.switches,
                "rounds": self.rounds}
