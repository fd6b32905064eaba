"""The volunteers' table: one row per relay, problems first. Pure: relays' messages and a clock in, rows out.

A relay is known from two retained topics: PREFIX/NAME/status ("online", or the broker's "offline" from
its last will) and PREFIX/NAME/report (fleet.py's JSON document).
"""

import time

RANKS = ("offline", "never seen", "uplink down", "not registered", "no modem reading", "budget", "stale",
         "refused commands", "ok")


class Relay:
    __slots__ = ("name", "status", "status_at", "report", "report_at")

    def __init__(self, name):
        self.name = name
        self.status = None  # "online" / "offline" / None (never said)
        self.status_at = None  # when this viewer saw the status change (None: retained from before)
        self.report = None
        self.report_at = None  # when this viewer got the report

    def take(self, kind, payload, live, now):
        if kind == "status":
            text = payload.decode(errors="replace").strip()
            if text != self.status:
                self.status = text
                self.status_at = now if live else None
        elif kind == "report":
            import json

            try:
                doc = json.loads(payload)
            except ValueError:
                return
            if isinstance(doc, dict):
                self.report = clean(doc)
                self.report_at = now


def _number(v):
    return v is None or isinstance(v, (int, float)) and not isinstance(v, bool)


def _text(v):
    return v is None or isinstance(v, str)


def _flag(v):
    return v is None or isinstance(v, bool)


# The report's fields this view reads, with their types (firmware/relay/fleet.py writes them); a nested dict
# is a table's own fields. A field of another type (another version's report, or a board whose login was
# taken) is left out: one odd relay must not break the table of all the others.
REPORT = {"time": _number, "interval_s": _number, "uptime_s": _number, "budget_left": _number, "people": _number,
          "tunnels": _number, "place": _text, "stage": _text,
          "uplink": {"kind": _text, "up": _flag, "via": _text, "signal": _number, "signal_age_s": _number,
                     "last_signal": _number, "registration": _text, "modem_error": _text},
          "today": {"up": _number, "down": _number}, "refused": {},
          "fleet": {"commands": {"last_seq": _number, "done": _number, "refused": {}}}}


def clean(doc, fields=REPORT):
    """doc without the fields of the wrong type; fields this view does not read are kept as sent (--json)."""
    out = {}
    for k, v in doc.items():
        want = fields.get(k)
        if isinstance(want, dict):
            if isinstance(v, dict):
                out[k] = clean(v, want)
        elif want is None or want(v):
            out[k] = v
    return out


def _last_seen(r):
    """Unix time of the relay's last report: its own clock when it has one, else when we got it live."""
    doc = r.report or {}
    return doc.get("time") or r.report_at


_UNREGISTERED = ("not registered", "searching", "denied", "unknown", "emergency only")  # modem/signal.py's words
_MODEM = ("signal_age_s", "last_signal", "registration", "modem_error")  # a Linux relay's modem reading


def _uplink_fields(up):
    out = {k: up.get(k) for k in ("kind", "up", "via", "signal")}
    out.update((k, up[k]) for k in _MODEM if k in up)  # only where the relay has a modem reading to give
    return out


def problems(r, now):
    """Reasons this relay needs a volunteer, most urgent first; empty when all is well."""
    out = []
    doc = r.report or {}
    if r.status == "offline":
        out.append("offline")
    if r.status is None and r.report is None:
        out.append("never seen")  # listed in fleet.relays, nothing on the broker: it never came up
    u = doc.get("uplink") or {}
    if u.get("up") is False:
        out.append("uplink down")
    if u.get("registration") in _UNREGISTERED:
        out.append("not registered")  # a SIM the network refuses (no credit, blocked) or no network in range
    if u.get("modem_error") or ("modem_error" in u and u.get("last_signal") is not None):
        # a Linux relay's watcher stopped or never ran: the signal is unknown now (a MicroPython board's
        # reading ages while PPP holds the modem's UART: that is shown with its age, not a problem)
        out.append("no modem reading")
    left = doc.get("budget_left")
    if (left is not None and left <= 0) or doc.get("stage") in ("slow", "small", "closed"):
        out.append("budget")
    seen = _last_seen(r)
    interval = doc.get("interval_s") or 60
    if r.status != "offline" and seen is not None and now - seen > 3 * interval + 30:
        out.append("stale")
    cmds = ((doc.get("fleet") or {}).get("commands") or {}).get("refused") or {}
    if cmds.get("signature") or cmds.get("malformed"):
        out.append("refused commands")
    return out


def _rank(r, now):
    p = problems(r, now)
    return (RANKS.index(p[0]) if p else len(RANKS) - 1, r.name)


def row(r, now):
    doc = r.report or {}
    up = doc.get("uplink") or {}
    today = doc.get("today") or {}
    seen = _last_seen(r)
    if r.status == "offline":
        since = r.status_at or seen
    elif doc.get("uptime_s") is not None and seen is not None:
        since = seen - doc["uptime_s"]
    else:
        since = None
    return {
        "name": r.name,
        "place": doc.get("place"),
        "online": r.status == "online",
        "state": r.status or ("never seen" if r.report is None else "unknown"),
        "since": since,
        "uplink": _uplink_fields(up),
        "people": doc.get("people"),
        "tunnels": doc.get("tunnels"),
        "today": {"up": today.get("up"), "down": today.get("down")},
        "budget_left": doc.get("budget_left"),
        "refused": doc.get("refused") or {},
        "last_seen": seen,
        "problems": problems(r, now),
        "report": doc or None,
    }


def rows(relays, now=None, expected=()):
    """expected: the relays the site lists (fleet.relays): one that never reported gets a "never seen" row."""
    now = time.time() if now is None else now
    relays = dict(relays)
    for name in expected:
        relays.setdefault(name, Relay(name))
    return [row(r, now) for r in sorted(relays.values(), key=lambda r: _rank(r, now))]


def _size(n):
    if n is None:
        return "-"
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def _ago(t, now):
    if t is None:
        return "?"
    s = max(0, int(now - t))
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def _uplink(u):
    if not u.get("kind"):
        return "-"
    state = {True: "up", False: "DOWN", None: "?"}[u.get("up")]
    text = f"{u['kind']} {state}"
    if u.get("via"):
        text += f" via {u['via']}"
    if u.get("signal") is not None:
        text += f" {u['signal']} dBm"
    elif u.get("last_signal") is not None:  # the modem's watcher stopped: its last reading, with its age
        age = u.get("signal_age_s")
        text += f" ({u['last_signal']} dBm, {_ago(0, age) if age is not None else '?'} old)"
    elif u.get("modem_error"):
        text += f" (no modem reading: {u['modem_error']})"
    return text


HEAD = ("relay", "place", "state", "uplink", "people", "data today (down/up)", "budget left", "last seen")


def table(rs, now=None):
    now = time.time() if now is None else now
    lines = []
    for x in rs:
        if x["state"] == "never seen":
            state = "NEVER SEEN"
        else:
            state = ("up " if x["online"] else x["state"].upper() + " ") + _ago(x["since"], now)
        today = f"{_size(x['today']['down'])} / {_size(x['today']['up'])}" if x["report"] else "-"
        budget = "no limit" if x["report"] and x["budget_left"] is None else _size(x["budget_left"])
        lines.append((x["name"], x["place"] or "-", state, _uplink(x["uplink"]),
                      "-" if x["people"] is None else str(x["people"]), today, budget,
                      _ago(x["last_seen"], now) + " ago" if x["last_seen"] else "?"))
    widths = [max(len(h), *(len(r[i]) for r in lines)) if lines else len(h) for i, h in enumerate(HEAD)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    out = [fmt.format(*HEAD)] + [fmt.format(*r) for r in lines]
    bad = sum(1 for x in rs if x["problems"])
    out.append(f"{len(rs)} relays, {bad} {'needs' if bad == 1 else 'need'} a look" if rs else "no relay has reported yet")
    return "\n".join(s.rstrip() for s in out)
