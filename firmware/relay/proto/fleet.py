"""Fleet reporting, sans-I/O: the status document volunteers see, when to send it, MQTT framing,
signed commands and the reconnect backoff. fleet_mqtt.py moves the bytes.

Input: the relay's status snapshot (status.snapshot) and numbers the driver passes in (clocks,
random draws); output: JSON bytes to publish, topic names, decisions. No socket, no clock, no file.

Privacy: the document is built field by field from counters (an allow-list), so a key added to the
snapshot later cannot slip into the fleet. It never holds a client address, a destination, a phone's
identity or a hash of one: "people" is a count, refusals are counted by reason.
"""

import json

from relay.proto import crypto

SCHEMA = 1  # "v" in the document: bump when a field changes meaning
MIN_GAP_MS = 10000  # a change is published at most this often: a flapping count must not eat a SIM's budget
BOARD_SIGNAL_FRESH_S = 120  # a board's own modem reading older than this is reported as last_signal
MAX_PACKET = 1024  # largest MQTT packet taken from the broker (commands are ~200 bytes); more: protocol error
COMMANDS = ("restart", "report")
_CMD_CONTEXT = b"relay-fleet-command"


class ProtocolError(Exception):
    pass


def topics(prefix, name):
    """-> (availability topic: "online"/"offline", report topic: JSON, command topic)."""
    base = prefix + "/" + name + "/"
    return base + "status", base + "report", base + "command"


def packet_size(buf):
    """Bytes of the first complete MQTT packet at the start of buf; 0 while it is incomplete."""
    n = 0
    shift = 0
    for i in range(1, min(len(buf), 5)):
        b = buf[i]
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            size = 1 + i + n
            if size > MAX_PACKET:
                raise ProtocolError("packet of %d bytes from the broker (limit %d)" % (size, MAX_PACKET))
            return size if len(buf) >= size else 0
        shift += 7
    if len(buf) >= 5:
        raise ProtocolError("remaining length longer than 4 bytes")
    return 0


class Backoff:
    """Reconnect delays: doubling from base_ms up to cap_ms, each drawn from [d/2, d] (jitter), so
    twenty relays that lost one broker together do not all come back in the same second."""

    def __init__(self, base_ms, cap_ms):
        self.base = base_ms
        self.cap = cap_ms
        self.cur = base_ms

    def next(self, rand16):
        """rand16: a random number 0..65535 from the driver."""
        d = self.cur
        self.cur = min(self.cap, self.cur * 2)
        return d // 2 + (d // 2) * rand16 // 65535

    def reset(self):
        self.cur = self.base


class Today:
    """Bytes each way since the day began (UTC, once the relay's clock is known), else since start."""

    def __init__(self):
        self.day = None
        self.up = 0
        self.down = 0

    def counts(self, up, down, wall):
        day = wall // 86400 if wall is not None else None
        if day is not None and self.day is not None and day != self.day:
            self.up, self.down = up, down
        if day is not None:
            self.day = day
        return up - self.up, down - self.down


def _via(snap):
    """Which path or engine carries the uplink, where another part of the relay says so."""
    for key in ("path", "engine", "mesh"):  # issue 18's path finder and engines, issue 17's mesh
        v = snap.get(key)
        if type(v) is dict:
            for k in ("via", "engine", "name", "gateway"):
                if type(v.get(k)) is str:
                    return v[k][:40]
        elif type(v) is str:
            return v[:40]
    for u in snap.get("upstreams") or ():
        if u.get("healthy"):
            return u["name"]  # "upstream1": the label, never the proxy's address
    return None


def uplink(snap, wall=None):
    """{"kind", "up", "via", "signal"} from the platform's link, the uplink monitor and the upstreams.

    kind: the link the board brings up itself (MicroPython's platform), else the one the site set up
    for a Linux board (uplink.kind: NetworkManager, networkd or OpenWrt bring it up), else "mesh" when
    another relay of the mesh carries this one, "upstream" when upstreams do, "direct" otherwise.
    A Linux board's modem reading (snap["modem"], services/modem_status.py) adds its freshness."""
    plat = snap.get("platform") or {}
    link = plat.get("uplink") or {}
    mon = snap.get("uplink")
    ups = snap.get("upstreams") or []
    kind = link.get("kind") or snap.get("uplink_kind")
    if not kind or kind == "none":
        carrier = (snap.get("mesh") or {}).get("carrier")
        if type(carrier) is dict and not carrier.get("self"):
            kind = "mesh"
        else:
            kind = "upstream" if ups else "direct"
    if mon is not None:
        up = bool(mon.get("up"))
    elif link:
        up = link.get("state") == "up"
    elif ups:
        up = any(u.get("healthy") for u in ups)
    else:
        up = None  # nothing watches it: unknown, not down
    signal = link.get("signal_dbm")
    if signal is None:
        signal = link.get("rssi")
    out = {"kind": kind, "up": up, "via": _via(snap), "signal": signal}
    age = _num(link.get("signal_age_s"))
    if age is not None:  # a board's modem read when it registered: PPP holds the UART after that
        out["signal_age_s"] = age
        if age > BOARD_SIGNAL_FRESH_S:
            out["signal"], out["last_signal"] = None, signal
    m = snap.get("modem")
    if m is not None and not link:
        out.update(modem_reading(m, wall))
    return out


def _num(v):
    return v if type(v) in (int, float) else None


def modem_reading(m, wall):
    """A modem watcher's reading (relayctl uplink watch --status-file) as the report's uplink fields:
    signal (dBm, RSSI else RSRP) and registration only while the reading is fresh, i.e. no older than
    two of the watcher's own intervals and 2 s; an older one (or one whose age the relay cannot tell,
    with no clock) moves to last_signal, so a dead watcher's last -71 dBm never looks live.
    signal_age_s says how old the reading is; modem_error why there is none ("missing": no watcher)."""
    out = {"signal": None, "signal_age_s": None, "last_signal": None, "registration": None, "modem_error": None}
    if type(m) is not dict or m.get("error"):
        out["modem_error"] = str(m.get("error") if type(m) is dict else "unreadable")[:40]
        return out
    sig = m.get("signal") if type(m.get("signal")) is dict else {}
    dbm = _num(sig.get("rssi_dbm"))
    if dbm is None:
        dbm = _num(sig.get("rsrp_dbm"))
    t = _num(m.get("time"))
    every = _num(m.get("interval_s")) or 30
    age = int(wall - t) if t is not None and wall is not None else None
    out["signal_age_s"] = age
    if age is not None and -2 <= age <= 2 * every + 2:
        out["signal"] = dbm
        reg = m.get("registration")
        out["registration"] = reg[:24] if type(reg) is str else None
    else:
        out["last_signal"] = dbm
    return out


def document(snap, ident, uptime_s, wall, today, people, fleet_counts):
    """The retained report. ident: {"name", "place", "config", "boot", "interval_s"}; today: (up, down)."""
    share = snap.get("share") or {}
    return {
        "v": SCHEMA,
        "name": ident["name"],
        "place": ident["place"] or None,
        "version": snap.get("version"),
        "runtime": snap.get("runtime"),
        "config": ident["config"],
        "boot": ident["boot"],
        "uptime_s": uptime_s,
        "interval_s": ident["interval_s"],
        "time": wall,
        "uplink": uplink(snap, wall),
        "people": people,
        "tunnels": snap.get("tunnels_open", 0),
        "tunnels_total": snap.get("tunnels_total", 0),
        "today": {"up": today[0], "down": today[1]},
        "budget_left": share.get("budget_left_today"),
        "stage": share.get("stage"),
        "refused": dict(snap.get("refused") or {}),
        "mem": {"free": snap.get("mem_free"), "heap_used": snap.get("heap_used"), "rss_kib": snap.get("rss_kib")},
        "fleet": fleet_counts,
    }


def change_key(doc):
    """What counts as a change worth a message before the interval: state, not counters."""
    u = doc["uplink"]
    return (u["kind"], u["up"], u["via"], doc["people"], doc["stage"])


def encode(doc):
    return json.dumps(doc).encode()


class Schedule:
    """When to publish: every interval_ms, and on a change, at most every MIN_GAP_MS."""

    def __init__(self, interval_ms):
        self.interval = interval_ms
        self.sent_at = None
        self.key = None

    def due(self, since_sent_ms, key):
        if self.sent_at is None or since_sent_ms >= self.interval:
            return True
        return key != self.key and since_sent_ms >= MIN_GAP_MS

    def sent(self, now_ms, key):
        self.sent_at = now_ms
        self.key = key

    def wait_ms(self, since_sent_ms):
        """How long until the interval is up (a change may come sooner)."""
        if self.sent_at is None:
            return 0
        return max(0, self.interval - since_sent_ms)


# -- commands -----------------------------------------------------------------------------------

def command_key(fleet_key, name):
    """The key one relay checks its commands with, derived from the fleet's key (relayctl builds it in),
    so a seized relay can forge commands for itself only; the fleet key stays with the volunteers."""
    return crypto.hmac_sha256(fleet_key, [_CMD_CONTEXT, b"-key|", name.encode()])


def _signed(name, boot, seq, cmd):
    return ("%s|%s|%s|%d|%s" % (_CMD_CONTEXT.decode(), name, boot, seq, cmd)).encode()


def sign_command(key, name, boot, seq, cmd):
    """The command topic's payload for relay name in its boot boot (relayctl fleet command)."""
    sig = crypto.hmac_sha256(key, _signed(name, boot, seq, cmd))
    return json.dumps({"cmd": cmd, "boot": boot, "seq": seq, "sig": _hex(sig)}).encode()


def _hex(b):
    return "".join("%02x" % x for x in b)


class Commands:
    """Checks command payloads: signed with this relay's key, for this boot, newer than the last.

    A command names the boot it is meant for (the report's "boot"), so a retained "restart" is done
    once and then ignored by the relay it restarted; seq refuses a replay within one boot.
    check() -> the command to run, or None; refusals are counted by reason."""

    def __init__(self, key, name, boot):
        self.key = key
        self.name = name
        self.boot = boot
        self.last_seq = 0
        self.done = 0
        self.refused = {}

    def _refuse(self, reason):
        self.refused[reason] = self.refused.get(reason, 0) + 1
        return None

    def check(self, payload):
        if not payload:
            return None  # an empty retained message: the volunteers cleared the topic
        try:
            c = json.loads(payload)
            cmd, boot, seq, sig = c["cmd"], c["boot"], c["seq"], c["sig"]
            if type(cmd) is not str or type(boot) is not str or type(seq) is not int or type(sig) is not str:
                raise ValueError
            sig = bytes(int(sig[i:i + 2], 16) for i in range(0, len(sig), 2))
        except (ValueError, KeyError, TypeError, IndexError):
            return self._refuse("malformed")
        if not self.key or not crypto.equal(sig, crypto.hmac_sha256(self.key, _signed(self.name, boot, seq, cmd))):
            return self._refuse("signature")
        if boot != self.boot:
            return self._refuse("other-boot")  # e.g. the restart that made this boot, still retained
        if seq <= self.last_seq:
            return self._refuse("replay")
        if cmd not in COMMANDS:
            return self._refuse("unknown")
        self.last_seq = seq
        self.done += 1
        return cmd

    def as_dict(self):
        return {"done": self.done, "last_seq": self.last_seq, "refused": dict(self.refused)}
