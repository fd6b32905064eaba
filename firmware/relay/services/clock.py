"""The wall clock the relay trusts, and the task that keeps it set.

Fake-TLS (ee secrets) checks a client's timestamp against ours. A board boots
with its clock at 2000-01-01, a Raspberry Pi without a battery at the time it
last shut down; neither may be believed. Sources, best first:
  - a time learned from the network: SNTP (ntp.servers, sans-I/O packets in
    ntp.py) or the cellular modem's network time (+CCLK, NITZ) that
    relay.platform reports;
  - the system clock, when it reads later than the floor;
  - nothing: the clock is "unknown" (mtproto.clock_unknown decides what ee
    clients get then), and /api/status and the portal's status page say so.
The floor is mtproto.clock_hint, the Unix time the host wrote into config.json
when it built or flashed the image: a clock reading before it was never set.
Clock.now() -> Unix seconds or None. Learned time runs on from the monotonic
clock and is folded forward often, so MicroPython's wrapping ticks never span
more than a few hours.
"""

from relay.proto import ntp
from relay.runtime import api as runtime

_FOLD_MS = 3600000  # re-anchor a learned time hourly: ticks_ms differences are valid for ~6 days
_TICK_MS = 10000  # the task looks at the platform's network time this often
_NTP_TIMEOUT_MS = 3000
_SANE = 1704067200  # 2024-01-01: below this nobody set the clock, whatever the hint says


class Clock:
    def __init__(self, floor=0):
        self.floor = floor if floor > _SANE else _SANE
        self.learned = None  # Unix seconds at learned_ms
        self.learned_ms = 0
        self.frac = 0  # milliseconds past learned at learned_ms
        self.source = None  # "ntp", "modem" while learned; "system" when the system clock is believed
        self.syncs = 0

    def now(self):
        if self.learned is not None:
            el = runtime.ms_since(self.learned_ms) + self.frac
            if el >= _FOLD_MS:  # re-anchor: keep the whole seconds, carry the rest
                self.learned += el // 1000
                self.frac = el % 1000
                self.learned_ms = runtime.now_ms()
                el = self.frac
            return self.learned + el // 1000
        t = runtime.wall_time()
        if t is None or t < self.floor:
            return None
        return t

    def learn(self, unix, source):
        """Take a network time; one before the floor is refused (False): that source is wrong."""
        if unix < self.floor:
            return False
        self.learned = unix
        self.learned_ms = runtime.now_ms()
        self.frac = 0
        self.source = source
        self.syncs += 1
        return True

    def as_dict(self):
        now = self.now()
        src = self.source if self.learned is not None else ("system" if now is not None else None)
        return {"known": now is not None, "source": src, "floor": self.floor, "syncs": self.syncs}


async def sntp_query(ip, port, timeout_ms):
    """One SNTP exchange with ip:port -> Unix seconds. Raises ntp.NTPError, OSError or runtime.TimeoutError."""
    sock, _ = runtime.udp_open(bytes(len(ip)), 0)
    try:
        cookie = runtime.random_bytes(8)
        runtime.udp_send(sock, ntp.request(cookie), ip, port)
        t0 = runtime.now_ms()
        while True:
            left = timeout_ms - runtime.ms_since(t0)
            if left <= 0:
                raise runtime.TimeoutError()
            data, src, sport = await runtime.wait_for_ms(runtime.udp_recv(sock), left)
            if bytes(src) != bytes(ip) or sport != port:
                continue  # someone else's datagram: keep waiting for the server's
            try:
                return ntp.parse(data, cookie)
            except ntp.NTPError as e:
                if e.reason != "reply to another request":
                    raise
    finally:
        runtime.udp_close(sock)


async def _ntp_once(relay, servers):
    for host, port in servers:
        try:
            ips = await relay.resolver.resolve(host) if type(host) is str else [host]
        except Exception:
            continue  # an unknown name or no resolver yet: the next server, or the next round
        for ip in ips or ():
            try:
                t = await sntp_query(ip, port, _NTP_TIMEOUT_MS)
            except (ntp.NTPError, OSError, runtime.TimeoutError):
                continue
            if relay.clock.learn(t, "ntp"):
                return True
    return False


async def keep(relay):
    """Background task: NTP with backoff, the modem's network time, and folding the learned time."""
    cfg = relay.cfg.ntp
    clock = relay.clock
    servers = cfg.servers
    interval_ms = int(cfg.interval * 1000)
    retry_ms = int(cfg.retry * 1000)
    backoff = retry_ms
    last = runtime.now_ms()
    due = 0  # ms after `last` when SNTP is asked next
    seen_modem = None
    while True:
        plat = relay.platform
        nt = plat.network_time() if plat is not None and hasattr(plat, "network_time") else None
        if nt is not None and nt is not seen_modem:  # (Unix seconds, now_ms when read): a new reading
            seen_modem = nt
            if clock.source != "ntp":  # SNTP is finer than a modem's NITZ time: keep it when we have it
                clock.learn(nt[0] + runtime.ms_since(nt[1]) // 1000, "modem")
        if servers and runtime.ms_since(last) >= due:
            ok = await _ntp_once(relay, servers)
            last = runtime.now_ms()
            if ok:
                backoff = retry_ms
                due = interval_ms
            else:
                due = backoff
                backoff = min(backoff * 2, interval_ms)
        clock.now()  # folds a learned time forward
        wait = _TICK_MS
        if servers:
            wait = max(100, min(wait, due - runtime.ms_since(last)))
        await runtime.sleep_ms(wait)
