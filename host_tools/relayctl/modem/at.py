"""AT command engine: send one command, collect its answer, set unsolicited codes aside.

Input: a Transport (transport.py). Output: Response(lines) or an exception:
ATError (ERROR, +CME ERROR, +CMS ERROR; .sentence says it in words), ATTimeout
(no final result code in time), ModemReset (the modem rebooted mid-command).
Handles echo on or off, URCs (+CREG, +CEREG, RING, +CMTI, ...) arriving between the
lines of an answer, slow commands (per-command timeouts below), and verbose or
numeric error reports. It never decides what a modem should do; modem.py does.
"""

import re
import time

from relayctl import paths
from relayctl.modem.transport import LineTimeout

_FW = paths.firmware_module("relay.proto.at")  # the firmware's AT tables: one copy for the board and the host

FINAL_OK = _FW.FINAL_OK
FINAL_ERROR = _FW.FINAL_ERROR
URC_PREFIXES = _FW.URC_PREFIXES  # unsolicited result codes: never part of an answer unless the command asked
expected_prefix = _FW.expected_prefix  # 'AT+CREG?' -> '+CREG:', 'ATI' -> None
is_urc = _FW.is_urc  # an unsolicited code, not a line of the answer to a command whose lines start with prefix

# Seconds a command may take before we give up (manuals' "maximum response time").
SLOW_COMMANDS = (
    ("AT+COPS=?", 200.0),  # a full scan of every band: 3 minutes on Quectel, longer on weak signal
    ("AT+COPS=", 200.0),  # manual selection waits for registration
    ("AT+CGACT", 150.0),
    ("AT+CGATT", 140.0),
    ("AT+CFUN", 20.0),
    ("AT+CPIN=", 10.0),
    ("AT^CPIN=", 10.0),
    ("AT+QCFG", 10.0),
    ("AT^SYSCFGEX", 10.0),
    ("AT+CNMP", 10.0),
)
DEFAULT_TIMEOUT = 5.0

# 3GPP TS 27.007 section 9.2: +CME ERROR codes, as a volunteer should read them: the firmware's (those met
# while bringing a SIM up) and the rest of the section.
CME_ERRORS = dict(_FW.CME)
CME_ERRORS.update({
    0: "phone failure",
    1: "no connection to phone",
    4: "operation not supported",
    5: "PH-SIM PIN required (the modem is locked to another SIM)",
    15: "SIM wrong",
    17: "SIM PIN2 required",
    18: "SIM PUK2 required",
    20: "memory full",
    21: "invalid index",
    22: "not found",
    23: "memory failure",
    24: "text string too long",
    25: "invalid characters in text string",
    31: "network timeout",
    40: "network personalisation PIN required (the modem is locked to an operator)",
    100: "unknown error",
    103: "illegal MS (the network rejected this SIM)",
    106: "illegal ME (the network rejected this modem)",
    107: "GPRS services not allowed for this SIM",
    112: "location area not allowed",
    132: "service option not supported",
    134: "service option temporarily out of order",
    148: "unspecified GPRS error",
    150: "invalid mobile class",
})

# 3GPP TS 27.005 section 3.2.5: +CMS ERROR codes (SMS commands).
CMS_ERRORS = {
    300: "ME failure",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    313: "SIM failure",
    314: "SIM busy",
    316: "SIM PUK required",
    320: "memory failure",
    321: "invalid memory index",
    322: "memory full",
    330: "SMSC address unknown",
    331: "no network service",
    332: "network timeout",
    500: "unknown error",
}

_VERBOSE_TO_CME = {v.split(" (")[0].lower(): k for k, v in CME_ERRORS.items()}


class ATError(Exception):
    """The modem answered ERROR / +CME ERROR / +CMS ERROR."""

    def __init__(self, command, final, kind="ERROR", code=None):
        self.command = command
        self.final = final
        self.kind = kind  # "ERROR", "CME" or "CMS"
        self.code = code  # int or None
        super().__init__(f"{command}: {self.sentence}")

    @property
    def sentence(self):
        if self.kind == "CME" and self.code is not None:
            return CME_ERRORS.get(self.code, f"+CME ERROR {self.code}")
        if self.kind == "CMS" and self.code is not None:
            return CMS_ERRORS.get(self.code, f"+CMS ERROR {self.code}")
        if self.kind in ("CME", "CMS"):
            return self.final.split(":", 1)[1].strip()
        return "the modem answered ERROR (command unknown to this modem, or not allowed now)"


class ATTimeout(Exception):
    def __init__(self, command, waited):
        self.command = command
        self.waited = waited
        super().__init__(f"{command}: no answer within {waited:.0f} s")


class ModemReset(Exception):
    """The modem printed its boot banner: it restarted, and its settings are back to power-on."""


class Response:
    def __init__(self, command, lines):
        self.command = command
        self.lines = lines

    def with_prefix(self, prefix):
        """Payloads of the lines that start with prefix ('+CSQ:'), prefix stripped."""
        return [line[len(prefix):].strip() for line in self.lines if line.startswith(prefix)]

    def first(self, prefix):
        found = self.with_prefix(prefix)
        return found[0] if found else None

    def text(self):
        """Lines of a plain answer (ATI, AT+CGSN), vendor prefixes dropped."""
        out = []
        for line in self.lines:
            m = re.match(r"^[+^][A-Z]+:\s*(.*)$", line)
            out.append(m.group(1) if m else line)
        return out


def parse_final(line):
    """('ok'|'error'|'cme'|'cms', code or None) for a final result code, or None."""
    if line in FINAL_OK:
        return ("ok", None)
    if line in FINAL_ERROR:
        return ("error", None)
    for kind, prefix in (("cme", "+CME ERROR:"), ("cms", "+CMS ERROR:")):
        if line.startswith(prefix):
            rest = line[len(prefix):].strip()
            if rest.isdigit():
                return (kind, int(rest))
            return (kind, _VERBOSE_TO_CME.get(rest.lower()) if kind == "cme" else None)
    return None


class ATEngine:
    """One command at a time over a Transport. URCs go to self.urcs (and on_urc)."""

    def __init__(self, transport, boot_urcs=("RDY",), on_urc=None, log=None):
        self.t = transport
        self.boot_urcs = boot_urcs
        self.on_urc = on_urc
        self.log = log  # callable(direction, text) for --debug transcripts
        self.urcs = []
        self.reset_seen = False

    def _urc(self, line):
        self.urcs.append(line)
        if self.on_urc:
            self.on_urc(line)
        if any(line == b or line.startswith(b + ":") for b in self.boot_urcs):
            self.reset_seen = True
            return True
        return False

    def timeout_for(self, command):
        up = command.upper()
        for start, secs in SLOW_COMMANDS:
            if up.startswith(start):
                return secs
        return DEFAULT_TIMEOUT

    def command(self, command, timeout=None, tick=None):
        """Send command, return Response on OK; raise ATError, ATTimeout or ModemReset.
        tick(seconds_waited) is called about once a second while waiting (progress)."""
        timeout = self.timeout_for(command) if timeout is None else timeout
        prefix = expected_prefix(command)
        if self.log:
            self.log(">", command)
        self.t.write(command.encode() + b"\r")
        start = time.monotonic()
        deadline = start + timeout
        lines = []
        echo_pending = True
        next_tick = start + 1.0
        while True:
            wait_until = min(deadline, next_tick) if tick else deadline
            try:
                line = self.t.read_line(wait_until).strip()
            except LineTimeout:
                now = time.monotonic()
                if now >= deadline:
                    raise ATTimeout(command, timeout)
                if tick:
                    tick(now - start)
                    next_tick = now + 1.0
                continue
            if not line:
                continue
            if self.log:
                self.log("<", line)
            if echo_pending and line.upper() == command.upper():
                echo_pending = False  # echo is on: the modem repeats what we typed
                continue
            final = parse_final(line)
            if final is not None:
                kind, code = final
                if kind == "ok":
                    return Response(command, lines)
                raise ATError(command, line, {"error": "ERROR", "cme": "CME", "cms": "CMS"}[kind], code)
            if is_urc(line, prefix):
                if self._urc(line):
                    raise ModemReset(f"modem restarted while running {command}")
                continue
            lines.append(line)

    def poll_urcs(self, seconds=0.0):
        """Collect URCs that arrive while no command runs; raise ModemReset on a boot banner."""
        deadline = time.monotonic() + seconds
        reset = False
        while True:
            try:
                line = self.t.read_line(deadline).strip()
            except LineTimeout:
                break
            if line:
                if self.log:
                    self.log("<", line)
                reset = self._urc(line) or reset
        if reset:
            raise ModemReset("modem restarted")

    def sync(self, attempts=10, per_try=1.0):
        """Get the modem's attention: send AT until OK (clears a half-typed line, waits out a boot)."""
        last = None
        for _ in range(attempts):
            try:
                self.command("AT", timeout=per_try)
                return
            except (ATTimeout, ATError, ModemReset) as e:
                last = e
                self.t.drain()
        raise ATTimeout("AT", attempts * per_try) from last
