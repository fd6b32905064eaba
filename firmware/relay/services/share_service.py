"""The I/O side of fair sharing: waits for share.Link, charges share.Accounts, persists them.

Sharing.admit(session, n, down) is called by the pumps after each read: None
means the n bytes may go on now, an Event means wait for it (Sharing.wait);
it raises Refusal("quota"/"budget") when the client or the relay has used
what it may.

What is kept where (nothing on flash ties a phone to what it used):
  - per-phone counters (quotas) live in memory, keyed by a salted hash of the
    address with a salt that never leaves memory: a restart starts every
    phone's day afresh. Only share.phones_file, and only on a RAM disk
    (tmpfs), keeps them across a restart of the relay; a reboot clears it.
  - the budget's totals (bytes today, in total) go to share.state_file every
    share.persist_interval seconds and at a stop (statefile.py: write, rename,
    one good copy kept back); a damaged file is reported and the copy before it used.
"""


from relay.runtime import api as runtime
from relay.proto import share, stats as S
from relay.services import statefile
from relay.proto.stats import Refusal

_WINDOW_MS = 1000


class Sharing:
    def __init__(self, relay, cfg):
        c = cfg.share
        self.relay = relay
        self.interactive_bytes = c.interactive_bytes
        self.slow_factor = c.slow_factor
        self.slow_rate = c.slow_rate
        self.base = (c.rate_down, c.rate_up)
        # Read at most ~4 ms of link time at once, so a waiting message is never stuck behind a big chunk.
        fastest = max(c.rate_down, c.rate_up, c.slow_rate)
        self.quantum = max(1460, min(cfg.limits.buffer, fastest // 250))
        self.links = [share.Link(c.rate_down or c.slow_rate, max(self.quantum * 4, 16384)),
                      share.Link(c.rate_up or c.slow_rate, max(self.quantum * 4, 16384))]
        self.kick = [runtime.Event(), runtime.Event()]
        self.accounts = share.Accounts(c.client_quota, c.budget_day, c.budget_total, c.slow_at, c.small_at)
        self.state_file = c.state_file
        self.phones_file = c.phones_file
        self.persist_ms = int(c.persist_interval * 1000)
        self.salt = None
        self.keys = {}
        self.dirty = False
        self.stage = share.NORMAL
        self._load()

    # -- keys and persistence ------------------------------------------------

    def _load(self):
        today = _today()
        acc = self.accounts
        acc.new_day(today)
        self.salt = "".join("%02x" % b for b in runtime.random_bytes(16))  # never on flash (see phones_file)
        self.keep_prev = True  # False while the file on disk is not a good copy worth keeping back
        self.scrub = False
        if self.state_file:
            d, problem, from_prev = statefile.load(self.state_file, share.check_totals)
            if d is not None:
                acc.load_totals(d, today)
                self.scrub = d["phones"]
            if problem:
                self.keep_prev = False  # the next write replaces the damaged file and leaves .prev as it is
                self.dirty = True  # that write comes now, not at the first byte moved
                kept = "; kept %d bytes used today, %d in total" % (acc.day_used, acc.total_used) if d else ""
                self.relay.log.warn("share.state_file: " + problem + kept)
            if self.scrub:
                # An older version kept per-phone counters here (with the salt of their keys beside them):
                # write the file anew at once and drop the copy before it.
                self.relay.log.warn("share.state_file: dropped the per-phone counters an older version kept "
                                    "there; they are kept in memory only now")
                self.keep_prev = False
                self.dirty = True
        if self.phones_file:
            if not statefile.on_ram_disk(self.phones_file):
                self.relay.log.warn("share.phones_file: %s is not on a RAM disk (tmpfs); per-phone counters stay "
                                    "in memory only: on flash they would tie phones to what they used" % self.phones_file)
                self.phones_file = ""
            else:
                d, problem, _ = statefile.load(self.phones_file, share.check_phones)
                if problem:
                    self.relay.log.warn("share.phones_file: " + problem)
                if d is not None:
                    self.salt = d["salt"]
                    acc.load_phones(d, today)
        self._restage()
        if self.dirty:
            try:
                self.save()
            except OSError as e:
                self.relay.log.warn("cannot save counters: %s" % e)

    def save(self):
        """Write the totals to share.state_file (and the per-phone counters to share.phones_file, a RAM disk)."""
        if not self.dirty:
            return
        if self.state_file:
            statefile.save(self.state_file, self.accounts.totals(), self.keep_prev)
            self.keep_prev = True
            if self.scrub:
                statefile.remove_prev(self.state_file)
                self.scrub = False
        if self.phones_file:
            d = self.accounts.phones()
            d["salt"] = self.salt
            statefile.save(self.phones_file, d, False)  # in RAM: a power cut takes it anyway
        self.dirty = False

    def key(self, ip):
        k = self.keys.get(ip)
        if k is None:
            k = runtime.sha256_hex(self.salt.encode() + ip)[:16]
            if len(self.keys) > 4096:
                self.keys.clear()
            self.keys[ip] = k
        return k

    # -- decisions -------------------------------------------------------------

    def _restage(self):
        st = self.accounts.stage()
        if st == self.stage:
            return
        self.stage = st
        for i in (0, 1):
            link = self.links[i]
            link.factor = self.slow_factor if st >= share.SLOW_BULK and self.base[i] else 1.0
        self.relay.log.info("budget stage: " + share.STAGE_NAMES[st])

    def check_open(self, s):
        """Before a new tunnel: refuse when the budget is gone or the client is over quota."""
        self.accounts.new_day(_today())
        if self.stage == share.EXHAUSTED:
            raise Refusal(S.R_BUDGET)
        if self.accounts.over_quota(self.key(s.client)):
            raise Refusal(S.R_QUOTA)

    def _interactive(self, s, n, now):
        """Interactive: at most interactive_bytes in this window, and not bulk in the last one
        (win_b = -1 marks a bulk window): a stream that filled its window stays bulk, instead of
        jumping the queue with a fresh allowance every second. A quiet window makes it interactive again."""
        b = getattr(s, "win_b", None)
        if b is None:
            s.win_t = now
            b = 0
        else:
            age = runtime.ms_since(s.win_t)
            if age > _WINDOW_MS:
                was_bulk = b < 0 or b > self.interactive_bytes
                s.win_t = now
                b = -1 if was_bulk and age <= 2 * _WINDOW_MS else 0
        if b < 0:
            s.win_b = -1
            return False
        s.win_b = b + n
        return s.win_b <= self.interactive_bytes

    def charge_own(self, n):
        """The relay's own bytes over the uplink (path probes): counted against the budget."""
        acc = self.accounts
        acc.charge_budget(n)
        self.dirty = True
        if acc.budget_day or acc.budget_total:
            self._restage()

    def admit(self, s, n, down, waiter=None):
        """None when the n bytes just read may go on now, else an Event to wait for.
        Raises Refusal when the client or the relay has used what it may."""
        acc = self.accounts
        key = self.key(s.client)
        if acc.over_quota(key):
            raise Refusal(S.R_QUOTA)
        now = runtime.now_ms()
        interactive = self._interactive(s, n, now)
        stage = self.stage
        if stage >= share.SMALL_ONLY and (stage == share.EXHAUSTED or not interactive):
            raise Refusal(S.R_BUDGET)
        acc.charge(key, n)
        self.dirty = True
        if acc.budget_day or acc.budget_total:
            self._restage()
        i = 0 if down else 1
        if not self.base[i] and (stage == share.NORMAL or interactive):
            return None  # no pacing configured and none needed
        link = self.links[i]
        if link.try_take(key, n, interactive, now):
            return None
        ev = waiter or runtime.Event()  # the fast path passes its own waiter with a set() method
        link.push(key, n, interactive, ev)
        self.kick[i].set()
        return ev

    def charge(self, s, n):
        """Count n bytes against session s's client and the budget without pacing or refusing them: what a
        handshake read before its tunnel opened, and a prober's bytes to the mask site (which must meet the
        site whatever the budget says: a close would tell)."""
        self.accounts.charge(self.key(s.client), n)
        self.dirty = True
        if self.accounts.budget_day or self.accounts.budget_total:
            self._restage()

    async def wait(self, ev, down):
        try:
            await ev.wait()
        except BaseException:
            self.links[0 if down else 1].drop(ev)
            raise

    # -- background tasks ------------------------------------------------------

    async def schedule(self, i):
        link = self.links[i]
        kick = self.kick[i]
        while True:
            waiter, delay = link.pop_ready(runtime.now_ms())
            if waiter is not None:
                waiter.set()
            elif delay < 0:
                kick.clear()
                await kick.wait()
            else:
                await runtime.sleep_ms(delay)

    async def persist(self):
        while True:
            await runtime.sleep_ms(self.persist_ms)
            self.accounts.new_day(_today())
            self._restage()
            try:
                self.save()
            except OSError as e:
                self.relay.log.warn("cannot save counters: %s" % e)

    def tasks(self):
        return [self.schedule(0), self.schedule(1), self.persist()]

    def status(self, ip=None):
        day, total = self.accounts.budget_left()
        d = {
            "stage": share.STAGE_NAMES[self.stage],
            "budget_left_today": day,
            "budget_left_total": total,
            "clients_today": len(self.accounts.used),
            "waiting": self.links[0].waiting() + self.links[1].waiting(),
        }
        if ip is not None:
            d["your_left_today"] = self.accounts.left(self.key(ip))
        return d


def _today():
    """Today as a Unix day number, or None while the clock is unset (a board after boot): the counters
    then go on with the day they have. runtime.wall_time() also knows the ESP32's 2000 epoch."""
    t = runtime.wall_time()
    return None if t is None else t // 86400
