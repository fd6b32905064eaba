"""Sharing a scarce uplink fairly, sans-I/O: a paced link per direction with
start-time fair queueing across clients, interactive traffic first, and the
accounts behind quotas and the uplink budget.

Link: try_take(key, n, interactive, now_ms) grants at once when nobody waits
and the link has tokens; otherwise the caller queues with push() and the
I/O side asks pop_ready(now_ms) which waiter goes next (or how long to
wait). Clients are keys (the I/O side uses the client's address); tags are
in bytes, so an idle client keeps no credit: max-min fairness among the
clients active right now, a lone client gets the whole link.

Accounts: bytes per client today, the budget used today and in total,
the degradation stage. Their saved forms are apart: totals() (the budget,
nothing per phone: what may go to flash) and phones() (per-phone counters,
for memory or a RAM disk only), each with a check that turns a damaged file
into a ValueError. No clock, no files: callers pass now and the day number.
"""

# Budget stages, in order of severity.
NORMAL = 0
SLOW_BULK = 1  # bulk paced down
SMALL_ONLY = 2  # only interactive (messaging-sized) flows pass
EXHAUSTED = 3  # new tunnels refused
STAGE_NAMES = ("normal", "slow-bulk", "small-only", "exhausted")


class Link:
    def __init__(self, rate, burst):
        self.rate = rate  # bytes per second
        self.burst = burst
        self.tokens = burst
        self.t = None
        self.vtime = 0
        self.finish = {}  # key -> finish tag of its last granted or queued bytes
        self.prio = []  # interactive waiters, first come first served
        self.bulk = []  # [start tag, seq, key, n, waiter]
        self.seq = 0
        self.factor = 1.0  # < 1 while the budget says "slow bulk"

    def _refill(self, now):
        if self.t is None:
            self.t = now
            return
        dt = now - self.t
        if dt > 0:
            self.t = now
            self.tokens = min(self.burst, self.tokens + self.rate * dt // 1000)

    def waiting(self):
        return len(self.prio) + len(self.bulk)

    def try_take(self, key, n, interactive, now):
        self._refill(now)
        if interactive:
            # A message goes ahead of bulk and may put the link into debt (down to -burst): bulk pays
            # it back by waiting. A message never waits behind a chunk of someone's video.
            if self.tokens <= -self.burst or self.prio:
                return False
        elif self.tokens <= 0 or self.prio or self.bulk:
            return False
        self._charge(key, n, interactive)
        return True

    def _charge(self, key, n, interactive):
        if interactive:
            self.tokens -= n
            return
        # Slow-bulk stage: bulk bytes cost more tokens, so bulk gets a fraction of the link.
        self.tokens -= n if self.factor >= 1 else int(n / self.factor)
        start = self.finish.get(key, 0)
        if start < self.vtime:
            start = self.vtime
        self.vtime = start
        self.finish[key] = start + n
        if len(self.finish) > 64:
            self._prune()

    def _prune(self):
        # Keys whose tags lie behind virtual time carry no credit: forget them.
        v = self.vtime
        queued = [w[2] for w in self.bulk]
        for k in list(self.finish):
            if self.finish[k] <= v and k not in queued:
                del self.finish[k]

    def push(self, key, n, interactive, waiter):
        if interactive:
            self.prio.append((key, n, waiter))
            return
        start = self.finish.get(key, 0)
        if start < self.vtime:
            start = self.vtime
        self.finish[key] = start + n
        self.seq += 1
        self.bulk.append([start, self.seq, key, n, waiter])

    def pop_ready(self, now):
        """(waiter, 0) for the next one allowed to go, or (None, ms to wait), or (None, -1) if none wait."""
        if not self.prio and not self.bulk:
            return None, -1
        self._refill(now)
        if self.prio and self.tokens > -self.burst:
            key, n, waiter = self.prio.pop(0)
            self.tokens -= n
            return waiter, 0
        if self.tokens <= 0:
            return None, (-self.tokens * 1000) // self.rate + 1
        best = 0
        for i in range(1, len(self.bulk)):
            b, c = self.bulk[i], self.bulk[best]
            if b[0] < c[0] or (b[0] == c[0] and b[1] < c[1]):
                best = i
        start, _, key, n, waiter = self.bulk.pop(best)
        self.vtime = start
        self.tokens -= n if self.factor >= 1 else int(n / self.factor)
        return waiter, 0

    def drop(self, waiter):
        """Forget a waiter whose tunnel ended."""
        self.prio = [w for w in self.prio if w[2] is not waiter]
        self.bulk = [w for w in self.bulk if w[4] is not waiter]


class Accounts:
    """Quotas and the budget. Keys are opaque (the I/O side passes salted hashes of addresses)."""

    def __init__(self, quota, budget_day, budget_total, slow_at, small_at):
        self.quota = quota  # bytes per client per day; 0 = none
        self.budget_day = budget_day  # 0 = none
        self.budget_total = budget_total
        self.slow_at = slow_at  # fractions of the budget
        self.small_at = small_at
        self.day = None
        self.used = {}  # key -> bytes today
        self.day_used = 0
        self.total_used = 0

    def new_day(self, day):
        """day: today's number, or None while the clock is unset: then nothing resets (a board that
        reboots before its clock is set keeps today's usage). The first known day keeps what was
        counted while the day was unknown."""
        if day is None or day == self.day:
            return
        if self.day is not None:
            self.used = {}
            self.day_used = 0
        self.day = day

    def charge(self, key, n):
        self.used[key] = self.used.get(key, 0) + n
        self.day_used += n
        self.total_used += n

    def charge_budget(self, n):
        """Bytes the relay moved for itself (path probes): the uplink's budget pays them, no phone does."""
        self.day_used += n
        self.total_used += n

    def over_quota(self, key):
        return self.quota > 0 and self.used.get(key, 0) >= self.quota

    def left(self, key):
        """Bytes this client may still use today, or None when there is no quota."""
        if not self.quota:
            return None
        return max(0, self.quota - self.used.get(key, 0))

    def budget_left(self):
        """(left today or None, left in total or None)."""
        day = max(0, self.budget_day - self.day_used) if self.budget_day else None
        total = max(0, self.budget_total - self.total_used) if self.budget_total else None
        return day, total

    def fraction_used(self):
        f = 0.0
        if self.budget_day:
            f = self.day_used / self.budget_day
        if self.budget_total:
            f = max(f, self.total_used / self.budget_total)
        return f

    def stage(self):
        f = self.fraction_used()
        if f >= 1:
            return EXHAUSTED
        if f >= self.small_at:
            return SMALL_ONLY
        if f >= self.slow_at:
            return SLOW_BULK
        return NORMAL

    def totals(self):
        """What may be kept on flash: the budget's counters, nothing per phone."""
        return {"v": 2, "day": self.day, "day_used": self.day_used, "total_used": self.total_used}

    def load_totals(self, d, today):
        """d: checked by check_totals. today None: the clock is unset, and the saved day goes on."""
        if today is None:
            today = d["day"]
        self.total_used = d["total_used"]
        if d["day"] == today:
            self.day = today
            self.day_used = d["day_used"]
        else:
            self.new_day(today)

    def phones(self):
        """Per-phone counters (keys are salted hashes): for a file on a RAM disk only."""
        return {"day": self.day, "used": self.used}

    def load_phones(self, d, today):
        """d: checked by check_phones. Counters of another day are dropped."""
        if today is None:
            today = d["day"]
        if d["day"] == today:
            self.used = d["used"]


_MAX_COUNT = 1 << 62


def _count(d, key):
    v = d.get(key, 0)
    if type(v) is not int or not 0 <= v < _MAX_COUNT:
        raise ValueError("%s: expected a count of bytes, got %s" % (key, _short(v)))
    return v


def _short(v):
    t = repr(v)
    return t if len(t) <= 24 else t[:21] + "..."


def _day(d):
    day = d.get("day")
    if day is not None and (type(day) is not int or day < 0):
        raise ValueError("day: expected a day number, got " + _short(day))
    return day


def check_totals(d):
    """A parsed state file -> {"day", "day_used", "total_used"}, or ValueError saying what is wrong."""
    if type(d) is not dict:
        raise ValueError("expected a JSON object, got " + _short(d))
    return {"day": _day(d), "day_used": _count(d, "day_used"), "total_used": _count(d, "total_used"),
            "phones": "used" in d or "salt" in d}  # per-phone counters an older version kept beside them


def check_phones(d):
    """A parsed per-phone file -> {"day", "used": {key: bytes}, "salt"}, or ValueError."""
    if type(d) is not dict:
        raise ValueError("expected a JSON object, got " + _short(d))
    used = d.get("used", {})
    if type(used) is not dict:
        raise ValueError("used: expected an object, got " + _short(used))
    for k in used:
        _count(used, k)
    salt = d.get("salt")
    if type(salt) is not str or len(salt) < 16:
        raise ValueError("salt: expected text, got " + _short(salt))
    return {"day": _day(d), "used": used, "salt": salt}
