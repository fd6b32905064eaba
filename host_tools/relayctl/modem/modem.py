"""A cellular modem, as the uplink verbs see it: identify, SIM and PIN, registration,
operator, signal, network clock, operator scan, and the settings `uplink setup` writes.

Input: an ATEngine over a Transport. Output: plain dicts (JSON-ready) and CliErrors
whose messages say what failed, the likely cause and what to do.
Rule it never breaks: the PIN is sent only when the SIM asks for it (+CPIN: SIM PIN),
at most once per SIM start, and never again after the SIM rejected it.
"""

import re
import time

from relayctl import mccmnc
from relayctl.errors import CliError
from relayctl.modem import families
from relayctl.modem import signal as sig
from relayctl.modem.at import ATEngine, ATError, ATTimeout

_COPS_ENTRY = re.compile(r'\((\d+),"([^"]*)","([^"]*)","(\d+)"(?:,(\d+))?\)')
# +COPS: <mode>[,<format>,"<oper>"[,<AcT>]]; a long name may hold commas ("MTS, RUS")
_COPS_NOW = re.compile(r'\s*(\d+)(?:\s*,\s*(\d+)\s*,\s*"([^"]*)"(?:\s*,\s*(\d+))?)?')


def _short(sim):
    """A SIM as a person can match it with the card: the last digits of its ICCID."""
    kind, _, ident = sim.partition(":")
    return ("…" + ident[-6:]) if kind == "iccid" else "in modem IMEI " + ident


def parse_ati(lines):
    """ATI's answer -> {manufacturer, model, firmware, imei} as far as it says. Two shapes: "Key: value"
    lines (SIMCom, Huawei, most others), or Quectel's bare "Quectel" / "EC25" / "Revision: ..." lines."""
    got, bare = {}, []
    keys = {"manufacturer": "manufacturer", "model": "model", "revision": "firmware", "imei": "imei"}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("+GCAP"):
            continue
        key, sep, val = line.partition(":")
        if sep and key.strip().lower() in keys:
            got.setdefault(keys[key.strip().lower()], val.strip())
        elif not sep:
            bare.append(line)
    for key, val in zip(("manufacturer", "model"), bare):
        got.setdefault(key, val)
    return got


class PinError(CliError):
    def __init__(self, message, tries_left=None):
        super().__init__(message, 3)
        self.tries_left = tries_left


def _ints(text):
    return [int(x) for x in re.findall(r"\d+", text or "")]


class Modem:
    def __init__(self, transport, log=None, on_urc=None):
        self.t = transport
        self.at = ATEngine(transport, log=log, on_urc=on_urc)
        self.family = families.GENERIC
        self.ident = {}
        self.pin_sent = 0  # how many AT+CPIN=<pin> went out in this session
        self.pin_rejected = False

    # ---- basics ----

    def cmd(self, command, **kw):
        return self.at.command(command, **kw)

    def try_cmd(self, command, **kw):
        """The answer, or None when this modem does not know the command."""
        try:
            return self.at.command(command, **kw)
        except ATError:
            return None

    def start(self):
        """Attention, echo off, numeric errors, and who we talk to."""
        try:
            self.at.sync()
        except ATTimeout:
            raise CliError(f"no answer from {getattr(self.t, 'port', 'the port')}: not the AT port, wrong speed, "
                           "or the modem is still booting; try the other ttyUSB ports (the AT port is usually "
                           "ttyUSB2 on Quectel and SIMCom) and wait 20 s after plugging in", 4)
        self.cmd("ATE0")  # echo off; the engine copes either way, this just halves the traffic
        self.try_cmd("AT+CMEE=1")  # numeric +CME ERROR codes, mapped to sentences in at.py
        self.at.reset_seen = False
        return self.identify()

    def identify(self):
        """Manufacturer, model, firmware, IMEI. Modems that refuse the 27.007 +CG commands are asked the V.25ter
        ones (+GMI, +GMM, +GMR), then ATI, in ModemManager's order: a Quectel that answers only ATI is still
        known as a Quectel, with its family's PIN-tries and roaming commands."""
        def one(*commands):
            for command in commands:
                r = self.try_cmd(command)
                lines = [x.strip() for x in (r.text() if r else []) if x.strip()]
                if lines:
                    return lines[0]
            return ""

        self.ident = {
            "manufacturer": one("AT+CGMI", "AT+GMI"),
            "model": one("AT+CGMM", "AT+GMM"),
            "firmware": one("AT+CGMR", "AT+GMR"),
            "imei": one("AT+CGSN", "AT+GSN"),
        }
        if not (self.ident["manufacturer"] and self.ident["model"] and self.ident["firmware"]):
            r = self.try_cmd("ATI")
            for key, val in parse_ati(r.lines if r else []).items():
                if not self.ident.get(key):
                    self.ident[key] = val
        self.family = families.detect(self.ident["manufacturer"], self.ident["model"])
        self.at.boot_urcs = self.family["boot_urcs"]
        self.ident["family"] = self.family["name"]
        return self.ident

    # ---- SIM ----

    def sim_state(self):
        """'READY', 'SIM PIN', 'SIM PUK', ... or 'absent' / 'failure' / 'busy'."""
        for _ in range(10):
            try:
                r = self.cmd("AT+CPIN?")
            except ATError as e:
                if e.kind == "CME" and e.code == 10:
                    return "absent"
                if e.kind == "CME" and e.code == 14:
                    time.sleep(1)  # SIM busy: still reading its files after power-up
                    continue
                if e.kind == "CME" and e.code == 13:
                    return "failure"
                raise
            return (r.first("+CPIN:") or "").strip().strip('"')
        return "busy"

    def pin_retries(self):
        """(pin_tries_left, puk_tries_left); either may be None when the modem does not say."""
        command, prefix, parse = self.family["pin_retries"]
        r = self.try_cmd(command)
        got = parse(r.with_prefix(prefix)) if r else None
        if got is None and self.family is not families.GENERIC:
            command, prefix, parse = families.GENERIC["pin_retries"]
            r = self.try_cmd(command)
            got = parse(r.with_prefix(prefix)) if r else None
        return got or (None, None)

    def iccid(self):
        """The SIM's ICCID (readable before the PIN), or None: the family's command, then AT+CCID."""
        for command in dict.fromkeys((self.family["iccid"], families.GENERIC["iccid"])):
            r = self.try_cmd(command)
            for line in (r.text() if r else []):
                m = re.search(r"\b([0-9A-Fa-f]{18,22})\b", line)
                if m:
                    return m.group(1).upper()
        return None

    def sim_key(self):
        """What the PIN log files a SIM under: its ICCID, else (a modem that will not tell) the modem's IMEI."""
        iccid = self.iccid()
        if iccid:
            return "iccid:" + iccid
        return "sim-in-imei:" + (self.ident.get("imei") or "unknown")

    def unlock(self, pin, force=False, pin_log=None, retry_unknown=False):
        """Enter pin if, and only if, the SIM asks. Returns 'ready', 'pin-entered' or raises.
        pin_log (pinlog.PinLog): PINs this SIM rejected on earlier runs are never sent again, and after a
        rejection a PIN goes to a SIM whose tries left are unknown only with retry_unknown."""
        state = self.sim_state()
        if state == "READY":
            return "ready"
        if state == "absent":
            raise CliError("no SIM: the modem reports no SIM card inserted; power off, seat the SIM (contacts down, "
                           "notch as printed on the slot) and try again", 3)
        if state in ("failure", "busy"):
            raise CliError(f"SIM not usable: the modem reports SIM {state}; reseat the SIM or try it in a phone", 3)
        if state in ("SIM PUK", "SIM PUK2"):
            _, puk = self.pin_retries()
            left = f" ({puk} PUK tries left)" if puk is not None else ""
            raise PinError(f"SIM is locked behind its PUK{left}: three wrong PINs were entered; unlock it in a phone "
                           "with the PUK from the SIM's card, then run setup again", puk)
        if state != "SIM PIN":
            raise CliError(f"SIM asks for {state}: the modem or SIM is locked to another network; "
                           "this needs the code from whoever sold it", 3)
        pin_left, _ = self.pin_retries()
        if pin is None:
            left = f"; {pin_left} tries left" if pin_left is not None else ""
            raise PinError(f"SIM asks for its PIN: none given{left}; run again with --pin NNNN", pin_left)
        if self.pin_rejected:
            raise PinError("SIM asks for its PIN again: the PIN was already rejected once; not trying again", pin_left)
        if not re.fullmatch(r"\d{4,8}", pin):
            raise PinError("--pin must be 4 to 8 digits: nothing was sent to the SIM", pin_left)
        sim = self.sim_key() if pin_log is not None else None
        if sim is not None:
            when = pin_log.was_rejected(sim, pin)
            if when:
                raise PinError(f"SIM {_short(sim)} rejected this PIN on {when}: not sending it again (each wrong "
                               "PIN costs one of its three tries); nothing was sent; check the PIN on the SIM's "
                               f"card and run again with it (if the SIM's PIN was changed since, remove its entry "
                               f"from {pin_log.path})", pin_left)
            earlier = pin_log.rejections_since_accepted(sim)
            if pin_left is None and earlier and not retry_unknown:
                raise PinError(f"SIM {_short(sim)} rejected {earlier} PIN(s) on earlier runs and this modem does not "
                               "say how many tries are left: one more wrong PIN may lock it behind its PUK; nothing "
                               "was sent; check the PIN (or count the tries in a phone), then add "
                               "--pin-retry-unknown-tries to send it", None)
        if pin_left == 1 and not force:
            raise PinError("SIM has 1 PIN try left: a wrong PIN now locks it behind its PUK; check the PIN and "
                           "add --force to use the last try", 1)
        self.pin_sent += 1
        try:
            self.cmd(f'AT+CPIN="{pin}"')
        except ATError as e:
            self.pin_rejected = True
            if sim is not None and not (e.kind == "CME" and e.code in (3, 4, 10, 13, 14)):
                pin_log.record_rejected(sim, pin)  # at once: a crash or Ctrl-C after this must not forget it
            pin_left, _ = self.pin_retries()  # read after the failure: the count has gone down
            wrong = e.kind == "CME" and e.code in (12, 16)
            if pin_left == 0 or (e.kind == "CME" and e.code == 12):
                raise PinError("SIM rejected the PIN and is now locked behind its PUK: that was the last try; "
                               "unlock it in a phone with the PUK", 0)
            if wrong or pin_left is not None:
                left = f"{pin_left} tries left" if pin_left is not None else "tries left unknown"
                raise PinError(f"SIM rejected the PIN: wrong PIN ({left}; the third wrong PIN locks the SIM behind "
                               "its PUK); check the PIN and run again", pin_left)
            raise PinError(f"entering the PIN failed: {e.sentence}; not trying again", pin_left)
        self.wait_sim_ready()
        if sim is not None:
            pin_log.record_accepted(sim)
        return "pin-entered"

    def wait_sim_ready(self, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = self.sim_state()
            if state == "READY":
                return
            if state not in ("SIM PIN", "busy", ""):
                break
            time.sleep(0.3)
        raise CliError("SIM not ready after the PIN: the modem still reports it locked; wait a minute and run probe", 3)

    def imsi(self):
        r = self.try_cmd("AT+CIMI")
        if not r:
            return None
        for line in r.text():
            digits = line.strip().strip('"')
            if digits.isdigit() and len(digits) >= 6:
                return digits
        return None

    # ---- network ----

    def registration(self):
        out = {}
        for name, command in (("cs", "AT+CREG?"), ("ps", "AT+CGREG?"), ("eps", "AT+CEREG?")):
            r = self.try_cmd(command)
            payload = r.first(command[2:-1] + ":") if r else None
            n = _ints(payload)
            out[name] = n[1] if len(n) >= 2 else None
        stats = [out["eps"], out["ps"]]
        if any(s in sig.REGISTERED for s in stats):
            best = next(s for s in stats if s in sig.REGISTERED)
        elif 3 in stats + [out["cs"]]:
            best = 3
        elif 2 in stats + [out["cs"]]:
            best = 2
        elif out["cs"] in sig.REGISTERED:
            best = out["cs"]  # voice only: data is not there yet
        else:
            best = next((s for s in stats + [out["cs"]] if s is not None), 4)
        out["stat"] = best
        out["state"] = sig.REG_STAT.get(best, "unknown")
        out["data"] = any(s in sig.REGISTERED for s in stats)
        return out

    def operator(self):
        """{mode, plmn, operator, country, rat, name}. Asks for the MCCMNC digits (AT+COPS=3,2); a modem that
        refuses keeps answering with the network's name, which is kept (plmn None) with its radio technology."""
        self.try_cmd("AT+COPS=3,2")
        r = self.try_cmd("AT+COPS?")
        payload = r.first("+COPS:") if r else None
        if not payload:
            return None
        m = _COPS_NOW.match(payload)
        if not m:
            return None
        mode, fmt, oper, act = m.groups()
        mode = {"0": "auto", "1": "manual", "2": "deregistered", "4": "manual, auto fallback"}.get(mode, mode)
        if not oper:
            return {"mode": mode, "plmn": None}
        rat = sig.ACT.get(int(act)) if act else None
        if fmt == "2" or (fmt is None and oper.isdigit()):
            info = mccmnc.lookup(oper)
            return {"mode": mode, "plmn": info["plmn"], "operator": info["operator"], "country": info["country"],
                    "rat": rat, "name": info["operator"]}
        return {"mode": mode, "plmn": None, "operator": oper, "country": None, "rat": rat, "name": oper}

    def signal(self):
        out = {}
        r = self.try_cmd("AT+CSQ")
        if r and r.first("+CSQ:"):
            out.update(sig.parse_csq(r.first("+CSQ:")))
        r = self.try_cmd("AT+CESQ")
        if r and r.first("+CESQ:"):
            out.update(sig.parse_cesq(r.first("+CESQ:")))
        if self.family["signal"]:
            command, prefix, parse = self.family["signal"]
            r = self.try_cmd(command)
            if r and r.first(prefix):
                out.update(parse(r.first(prefix)))
        out["bars"] = sig.bars(out)
        return out

    def clock(self):
        """The network's time (+CCLK), ISO 8601, or None when the modem has not been told it."""
        r = self.try_cmd("AT+CCLK?")
        payload = (r.first("+CCLK:") if r else None) or ""
        m = re.match(r'"?(\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)([+-]\d+)?', payload)
        if not m:
            return None
        yy, mo, dd, hh, mi, ss, tz = m.groups()
        if int(yy) < 20 or int(yy) > 79:
            return None  # the module's power-on default (e.g. 80/01/06): no network time yet
        out = f"20{yy}-{mo}-{dd}T{hh}:{mi}:{ss}"
        if tz:
            q = int(tz)  # quarter hours
            sign = "-" if q < 0 else "+"
            out += f"{sign}{abs(q) // 4:02d}:{abs(q) % 4 * 15:02d}"
        return out

    def scan(self, tick=None):
        r = self.cmd("AT+COPS=?", tick=tick)
        found = []
        for line in r.with_prefix("+COPS:"):
            for stat, long_name, short_name, plmn, act in _COPS_ENTRY.findall(line):
                info = mccmnc.lookup(plmn)
                found.append({
                    "status": sig.COPS_STAT.get(int(stat), "unknown"),
                    "plmn": plmn,
                    "name": long_name or short_name or info["operator"],
                    "operator": info["operator"],
                    "country": info["country"],
                    "rat": sig.ACT.get(int(act)) if act else None,
                })
        return found

    # ---- settings ----

    def set_rat(self, rat):
        table = self.family["rat"]
        if not table:
            return False  # generic: only a manual +COPS with an AcT can restrict the radio
        self.cmd(table[rat])
        return True

    def set_roaming(self, allow):
        table = self.family["roaming"]
        if not table:
            return False
        self.cmd(table[bool(allow)])
        return True

    def set_apn(self, apn, user=None, password=None, iptype="IP"):
        if '"' in apn or "," in apn:
            raise CliError(f"APN {apn!r} has a quote or comma: APNs are plain names like internet.beeline.kz; check it")
        self.cmd(f'AT+CGDCONT=1,"{iptype}","{apn}"')
        if user or password:
            auth = 1  # PAP; most operators accept it, CHAP-only networks are rare
            self.cmd(self.family["auth"].format(apn=apn, user=user or "", password=password or "", auth=auth))

    def select_operator(self, plmn, rat=None):
        if plmn in (None, "auto"):
            self.cmd("AT+COPS=0")
            return
        act = families.RAT_ACT.get(rat)
        suffix = f",{act}" if act is not None else ""
        try:
            self.cmd(f'AT+COPS=1,2,"{plmn}"{suffix}')
        except ATError as e:
            name = mccmnc.lookup(plmn)
            raise CliError(f"cannot select operator {plmn} ({name['operator']}, {name['country']}): {e.sentence}; "
                           "run `relayctl uplink scan` to see which networks are in range and allowed", 5)
