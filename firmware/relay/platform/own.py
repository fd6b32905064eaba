"""The device's own addresses, kept current for the guard (Guard.set_learned).

A client must not reach a service on the relay itself through the relay, by any of the device's
addresses: the uplink's (a satellite terminal's or a modem's DHCP lease, a PPP address, public
or not), the Wi-Fi side's, every IPv6 address. They change while the relay runs, so they are
learned, not configured:
  - on Linux (CPython or the MicroPython unix port): a rtnetlink socket lists every address of
    every interface at start, then the kernel announces each one added or removed;
  - on a MicroPython board: the interfaces the platform brought up (access point, station,
    Ethernet, PPP) are read every few seconds, a local call.
start(relay) learns the first set before the relay serves anyone; the watching runs in a task
it returns (None when neither way exists here). Addresses are never logged.
"""

from relay.runtime import api as runtime
from relay.proto.addr import parse_ip
from relay.proto import netlink

_POLL_MS = 2000  # boards: how often the interfaces are read; a new lease shows within this
_FIRST_MS = 2000  # the first listing: the kernel answers in microseconds


async def start(relay):
    """Learn the addresses now; -> a coroutine that keeps them current, or None."""
    watches = []
    nl = runtime.netlink_route(netlink.GROUPS)
    if nl is not None:
        watcher = _Netlink(relay.guard, nl)
        try:
            await runtime.wait_for_ms(watcher.first(), _FIRST_MS)
        except (OSError, runtime.TimeoutError):
            pass  # the watch asks again: run() sees the listing never completed
        watches.append(watcher.run())
    plat = relay.platform
    if plat is not None and plat.name != "none":
        _from_platform(relay.guard, plat)
        watches.append(_poll(relay.guard, plat))
    if not watches:
        return None
    return watches[0] if len(watches) == 1 else _both(watches)


async def _both(watches):
    t = runtime.create_task(watches[1])
    try:
        await watches[0]
    finally:
        t.cancel()


class _Netlink:
    def __init__(self, guard, nl):
        self.guard = guard
        self.nl = nl
        self.table = {}  # (interface index, address) -> True
        self.fresh = None  # the table a listing in progress fills; it replaces table once complete
        self.seq = 0
        self.listed = False  # a listing completed at least once

    def _ask(self):
        self.seq += 1
        self.fresh = {}
        self.nl.send(netlink.dump_request(self.seq))

    def _apply(self, data):
        """-> True once a listing is complete."""
        done = False
        for event, index, ip in netlink.parse(data):
            if event == "done":
                if self.fresh is not None:
                    self.table, self.fresh = self.fresh, None
                done = self.listed = True
                continue
            for t in (self.table, self.fresh):
                if t is None:
                    continue
                if event == "add":
                    t[(index, ip)] = True
                elif event == "del":
                    t.pop((index, ip), None)
        ips = [key[1] for key in self.table]
        if self.fresh:  # while a listing runs, what was known stays guarded too
            ips += [key[1] for key in self.fresh]
        self.guard.set_learned(ips)
        return done

    async def first(self):
        self._ask()
        while not self._apply(await self.nl.recv()):
            pass

    async def run(self):
        try:
            if not self.listed:
                self._ask()
            while True:
                try:
                    self._apply(await self.nl.recv())
                except OSError:
                    # ENOBUFS: more changes at once than the socket held. Ask for the whole list again.
                    await runtime.sleep_ms(100)
                    self._ask()
        finally:
            self.nl.close()


def _from_platform(guard, plat):
    ips = []
    for text in plat.addresses():
        ip = parse_ip(text)
        if ip is not None and ip not in ips:
            ips.append(ip)
    guard.set_learned(ips, "platform")


async def _poll(guard, plat):
    while True:
        await runtime.sleep_ms(_POLL_MS)
        _from_platform(guard, plat)
