"""One link the board brings up itself (the uplink: Wi-Fi station, ethernet, cellular) and its keeper.

Link is one interface's state as the status page shows it; keep(link, driver, retry_ms, log) brings a
driver up, watches it and brings it back, with backoff, until a fatal error (LinkError(fatal=True):
retrying cannot help, a wrong SIM PIN). Every wait is an asyncio sleep between polls: the data path
never waits on a link. The drivers (wifi.py, lan.py, cellular.py) raise LinkError.
"""

from relay.runtime import api as runtime

_CHECK_MS = 2000  # how often an up link is looked at; a local call, cheap


class LinkError(Exception):
    """Bringing a link up failed; .fatal: retrying cannot help (a wrong SIM PIN)."""

    def __init__(self, detail, fatal=False):
        super().__init__(detail)
        self.detail = detail
        self.fatal = fatal


class Link:
    """One interface's state, as the status page shows it."""

    def __init__(self, kind):
        self.kind = kind
        self.state = "down"  # down, connecting, up, failed (stopped for good), off
        self.detail = ""
        self.changed = runtime.now_ms()
        self.changes = 0
        self.attempts = 0
        self.info = {}  # ip, rssi, signal_dbm, operator ... as the driver learns them
        self.time = None  # (Unix seconds, now_ms when read): the network's time, if the driver learns it
        self.signal_ms = None  # now_ms when info["signal_dbm"] was read: a reading ages, and the report says so

    def set(self, state, detail=""):
        if state != self.state:
            self.changed = runtime.now_ms()
            self.changes += 1
        self.state = state
        self.detail = detail

    def as_dict(self):
        d = {"kind": self.kind, "state": self.state, "detail": self.detail,
             "since_s": runtime.ms_since(self.changed) // 1000, "changes": self.changes, "attempts": self.attempts}
        for k in self.info:
            d[k] = self.info[k]
        if self.signal_ms is not None:
            d["signal_age_s"] = runtime.ms_since(self.signal_ms) // 1000
        return d


async def keep(link, driver, retry_ms, log):
    """Bring driver up, watch it, bring it back: forever, or until a fatal error.

    driver: async up() (raises LinkError), async alive() -> bool, async down().
    Failures back off from retry_ms, doubling up to 16x; a link that was up and
    dropped is tried again at once (the uplink coming back is the common case)."""
    backoff = retry_ms
    while True:
        link.attempts += 1
        link.set("connecting")
        try:
            await driver.up()
        except LinkError as e:
            await _tidy(driver)
            if e.fatal:
                link.set("failed", e.detail)
                log.warn("uplink %s: %s; not retried" % (link.kind, e.detail))
                return
            link.set("down", e.detail)
            log.warn("uplink %s: %s; again in %d s" % (link.kind, e.detail, backoff // 1000))
            await runtime.sleep_ms(backoff)
            backoff = min(backoff * 2, retry_ms * 16)
            continue
        except Exception as e:  # a driver's OSError/ValueError must not end the keeper
            await _tidy(driver)
            link.set("down", "driver error: %s" % e)
            log.warn("uplink %s: driver error: %s; again in %d s" % (link.kind, e, backoff // 1000))
            await runtime.sleep_ms(backoff)
            backoff = min(backoff * 2, retry_ms * 16)
            continue
        backoff = retry_ms
        link.set("up")
        log.info("uplink %s up %s" % (link.kind, " ".join("%s=%s" % (k, link.info[k]) for k in sorted(link.info))))
        while True:
            await runtime.sleep_ms(_CHECK_MS)
            try:
                if not await driver.alive():
                    break
            except Exception:
                break
        link.set("down", "link lost")
        log.warn("uplink %s: link lost; bringing it up again" % link.kind)
        await _tidy(driver)


async def _tidy(driver):
    try:
        await driver.down()
    except Exception:
        pass  # tidying a dead link may fail; the next up() starts from scratch anyway
