"""A cellular modem on a pty, speaking AT commands the way the real families do.

    with PtyModem(ModemSim("quectel", pin="1234")) as m:
        run relayctl uplink probe --port m.port      # pyserial opens /dev/pts/N
        m.sim.pin_attempts                           # how many AT+CPIN=<pin> arrived

Families: quectel (EC25), simcom (SIM7600), huawei (E3372 in stick mode). Scenario knobs:
pin / pin_tries (a SIM that asks for a PIN), no_signal, roaming_denied (denied until the
modem's roaming switch is turned on), slow_scan (seconds AT+COPS=? takes), urcs (unsolicited
codes injected in the middle of answers), reset_on (command prefix that makes the modem
reboot instead of answering, once), echo (power-on echo state), reg_delay, ident_via (which identity
commands answer: "cg" = +CGMI/+CGMM/+CGMR, "g" = +GMI/+GMM/+GMR, "ati"), cops_numeric (False: AT+COPS=3,2
is refused and +COPS? keeps the long name), hide_pin_tries (the modem cannot say how many PIN tries are
left), iccid (the SIM's, answered to the family's ICCID command and AT+CCID).
Echo is per character, as typed; answers use verbose framing: \\r\\n<line>\\r\\n ... \\r\\nOK\\r\\n.
"""

import os
import re
import select
import threading
import time
import tty

ATI = {  # the families' ATI answers, as their manuals show them
    "quectel": ["Quectel", "EC25", "Revision: EC25EFAR06A06M4G"],
    "simcom": ["Manufacturer: SIMCOM INCORPORATED", "Model: SIMCOM_SIM7600G-H", "Revision: LE20B04SIM7600G22",
               "IMEI: 867698041234567", "+GCAP: +CGSM"],
    "huawei": ["Manufacturer: huawei", "Model: E3372", "Revision: 22.323.62.00.143", "IMEI: 867698041234567",
               "+GCAP: +CGSM,+DS,+ES"],
}
IDENT = {
    "quectel": ("Quectel", "EC25", "EC25EFAR06A06M4G"),
    "simcom": ("SIMCOM INCORPORATED", "SIMCOM_SIM7600G-H", "+CGMR: LE20B04SIM7600G22"),
    "huawei": ("huawei", "E3372", "22.323.62.00.143"),
}
BOOT = {"quectel": ["RDY"], "simcom": ["RDY"], "huawei": ["^SYSSTART"]}

NETWORKS = [  # (stat-if-not-current, long, short, plmn, act)
    ("MTS RUS", "MTS", "25001", 7),
    ("MegaFon", "MegaFon", "25002", 7),
    ("Beeline", "Beeline", "25099", 2),
]
FORBIDDEN = {"25099"}
URC_CYCLE = ["+CREG: 2", "RING", '+CMTI: "SM",3', "+CEREG: 2", "+CGREG: 2"]


class ModemSim:
    def __init__(self, family="quectel", *, pin=None, pin_tries=3, no_signal=False, roaming_denied=False,
                 slow_scan=0.0, urcs=False, reset_on=None, echo=True, reg_delay=0.3,
                 imsi="401021234567890", visited="25001", ident_via=("cg", "g", "ati"), cops_numeric=True,
                 hide_pin_tries=False, iccid="89701012345678901234"):
        self.family = family
        self.pin = pin
        self.pin_tries = pin_tries
        self.puk_tries = 10
        self.no_signal = no_signal
        self.roaming_denied = roaming_denied
        self.slow_scan = slow_scan
        self.urcs = urcs
        self.reset_on = reset_on
        self.echo = echo
        self.reg_delay = reg_delay
        self.imsi = imsi
        self.visited = visited
        self.roaming_switch = not roaming_denied
        self.ident_via = ident_via
        self.cops_numeric = cops_numeric
        self.hide_pin_tries = hide_pin_tries
        self.iccid = iccid
        self.commands = []  # every command line received, in order
        self.pin_attempts = 0
        self.resets = 0
        self.settings = {}
        self._urc_i = 0
        self._boot()

    # ---- state ----

    def _boot(self):
        self.sim_state = "SIM PIN" if self.pin else "READY"
        if self.pin_tries == 0:
            self.sim_state = "SIM PUK"
        self.cops_format = 0
        self.selected = None  # None: automatic
        self._searching_since = time.monotonic() if self.sim_state == "READY" else None

    def reg_stat(self):
        if self.sim_state != "READY" or self._searching_since is None:
            return 0
        if self.no_signal:
            return 2
        if time.monotonic() - self._searching_since < self.reg_delay:
            return 2
        home = self.imsi[:5] == self.current_plmn()
        if home:
            return 1
        return 5 if self.roaming_switch else 3

    def current_plmn(self):
        return self.selected or self.visited

    def _research(self):
        self._searching_since = time.monotonic()

    # ---- one command line -> list of answer lines (the last is the final result code) ----

    def handle(self, line):
        self.commands.append(line)
        up = line.upper()
        if self.reset_on and up.startswith(self.reset_on.upper()):
            self.reset_on = None
            return "RESET"
        try:
            return self._dispatch(line, up)
        except _Err as e:
            return [e.text]

    def _err(self, code):
        return _Err(f"+CME ERROR: {code}")

    def _dispatch(self, line, up):
        fam = self.family
        if up in ("AT", "ATZ", "AT+CMEE=1", "AT+CMEE=2", "AT+CREG=0", "AT+CGREG=0", "AT+CEREG=0"):
            return ["OK"]
        if up in ("ATE0", "ATE1"):
            self.echo = up == "ATE1"
            return ["OK"]
        for via, commands in (("cg", ("AT+CGMI", "AT+CGMM", "AT+CGMR")), ("g", ("AT+GMI", "AT+GMM", "AT+GMR"))):
            if up in commands:
                if via not in self.ident_via:
                    return ["ERROR"]
                return [IDENT[fam][commands.index(up)].replace("+CGMR:", "+GMR:" if via == "g" else "+CGMR:"), "OK"]
        if up == "ATI":
            return ATI[fam] + ["OK"] if "ati" in self.ident_via else ["ERROR"]
        if up == "AT+CGSN":
            return ["867698041234567", "OK"]
        iccid_cmds = {"quectel": ("AT+QCCID", "+QCCID: "), "simcom": ("AT+CICCID", "+ICCID: "),
                      "huawei": ("AT^ICCID?", "^ICCID: ")}
        if up == iccid_cmds[fam][0] or (up == "AT+CCID" and fam == "quectel"):
            if not self.iccid:
                raise self._err(10)
            digits = self.iccid
            if fam == "huawei":  # ^ICCID gives the digits as stored: each pair swapped
                digits = "".join(digits[i + 1:i + 2] + digits[i] for i in range(0, len(digits), 2))
            return [iccid_cmds[fam][1] + digits if up != "AT+CCID" else "+CCID: " + digits, "OK"]
        if self.hide_pin_tries and up in ("AT+QPINC?", "AT+SPIC", "AT^CPIN?", 'AT+CPINR="SIM PIN"'):
            return ["ERROR"]
        if up == "AT+CPIN?":
            return [f"+CPIN: {self.sim_state}", "OK"]
        m = re.fullmatch(r'AT\+CPIN="?(\d+)"?', up)
        if m:
            return self._enter_pin(m.group(1))
        if up == "AT+QPINC?" and fam == "quectel":
            return [f'+QPINC: "SC",{self.pin_tries},{self.puk_tries}', '+QPINC: "P2",3,10', "OK"]
        if up == "AT+SPIC" and fam == "simcom":
            return [f"+SPIC: {self.pin_tries},{self.puk_tries},3,10", "OK"]
        if up == "AT^CPIN?" and fam == "huawei":
            times = self.pin_tries if self.sim_state == "SIM PIN" else self.puk_tries if self.sim_state == "SIM PUK" else ""
            return [f"^CPIN: {self.sim_state},{times},{self.puk_tries},{self.pin_tries},10,3", "OK"]
        if self.sim_state != "READY" and up in ("AT+CIMI", "AT+COPS=?", "AT+CCLK?") or \
                self.sim_state != "READY" and up.startswith("AT+CGDCONT"):
            raise self._err(11 if self.sim_state == "SIM PIN" else 12)
        if up == "AT+CIMI":
            return [self.imsi, "OK"]
        if up == "AT+CSQ":
            return ["+CSQ: 99,99" if self.no_signal else "+CSQ: 21,99", "OK"]
        if up == "AT+CESQ":
            return ["+CESQ: 99,99,255,255,255,255" if self.no_signal else "+CESQ: 99,99,255,255,20,45", "OK"]
        if up == "AT+QCSQ" and fam == "quectel":
            return ['+QCSQ: "NOSERVICE"' if self.no_signal else '+QCSQ: "LTE",-71,-96,150,-10', "OK"]
        if up == "AT^HCSQ?" and fam == "huawei":
            return ['^HCSQ: "NOSERVICE"' if self.no_signal else '^HCSQ: "LTE",50,45,160,20', "OK"]
        m = re.fullmatch(r"AT\+C(E|G|)REG\?", up)
        if m:
            return [f"+C{m.group(1)}REG: 0,{self.reg_stat()}", "OK"]
        m = re.fullmatch(r"AT\+COPS=3,(\d)", up)
        if m:
            if m.group(1) == "2" and not self.cops_numeric:
                raise self._err(4)  # operation not supported
            self.cops_format = int(m.group(1))
            return ["OK"]
        if up == "AT+COPS?":
            mode = 1 if self.selected else 0
            if self.reg_stat() not in (1, 5):
                return [f"+COPS: {mode}", "OK"]
            plmn = self.current_plmn()
            name = next((n[0] for n in NETWORKS if n[2] == plmn), plmn)
            oper = plmn if self.cops_format == 2 else name
            act = next((n[3] for n in NETWORKS if n[2] == plmn), 7)
            return [f'+COPS: {mode},{self.cops_format},"{oper}",{act}', "OK"]
        if up == "AT+COPS=?":
            return self._scan()
        if up == "AT+COPS=0":
            self.selected = None
            self._research()
            return ["OK"]
        m = re.fullmatch(r'AT\+COPS=1,2,"(\d+)"(?:,(\d+))?', up)
        if m:
            plmn = m.group(1)
            if plmn in FORBIDDEN:
                raise self._err(111)
            if plmn not in [n[2] for n in NETWORKS]:
                raise self._err(30)
            self.selected = plmn
            self._research()
            return ["OK"]
        if up == "AT+CCLK?":
            return ['+CCLK: "24/05/01,12:34:56+20"', "OK"]
        m = re.fullmatch(r'AT\+CGDCONT=1,"(IP|IPV6|IPV4V6)","([^"]*)"', up)
        if m:
            self.settings["apn"] = line.split(",")[2].strip('"')
            return ["OK"]
        return self._vendor(line, up)

    def _vendor(self, line, up):
        fam = self.family
        if fam == "quectel":
            m = re.fullmatch(r'AT\+QCFG="ROAMSERVICE",(\d+),1', up)
            if m:
                self.settings["roamservice"] = int(m.group(1))
                if int(m.group(1)) in (2, 255):
                    self.roaming_switch = True
                    self._research()
                return ["OK"]
            m = re.fullmatch(r'AT\+QCFG="NWSCANMODE",(\d),1', up)
            if m:
                self.settings["nwscanmode"] = int(m.group(1))
                return ["OK"]
            if up.startswith("AT+QICSGP=1,1,"):
                self.settings["auth"] = line
                return ["OK"]
        if fam == "simcom":
            m = re.fullmatch(r"AT\+CNMP=(\d+)", up)
            if m:
                self.settings["cnmp"] = int(m.group(1))
                return ["OK"]
        if fam == "huawei":
            m = re.fullmatch(r'AT\^SYSCFGEX="(\d\d)",([0-9A-F]+),(\d),(\d),([0-9A-F]+),,', up)
            if m:
                if m.group(1) != "99":
                    self.settings["acqorder"] = m.group(1)
                if m.group(3) in ("0", "1"):
                    self.settings["roam"] = int(m.group(3))
                    self.roaming_switch = m.group(3) == "1"
                    self._research()
                return ["OK"]
        if fam in ("simcom", "huawei") and up.startswith("AT+CGAUTH=1,"):
            self.settings["auth"] = line
            return ["OK"]
        return ["ERROR"]

    def _enter_pin(self, pin):
        self.pin_attempts += 1
        if self.sim_state != "SIM PIN":
            raise self._err(3)  # operation not allowed: no PIN was asked for
        if pin == self.pin:
            self.pin_tries = 3  # a right PIN restores the SIM's tries, as on a real SIM
            self.sim_state = "READY"
            self._research()
            return ["OK", "+CPIN: READY", "SMS DONE", "PB DONE"] if self.family != "huawei" else ["OK", "^SIMST: 1"]
        self.pin_tries -= 1
        if self.pin_tries == 0:
            self.sim_state = "SIM PUK"
        raise self._err(16)

    def _scan(self):
        self.pending_delay = self.slow_scan
        entries = []
        for long_name, short, plmn, act in NETWORKS:
            stat = 3 if plmn in FORBIDDEN else 2 if plmn == self.current_plmn() and self.reg_stat() in (1, 5) else 1
            entries.append(f'({stat},"{long_name}","{short}","{plmn}",{act})')
        return ["+COPS: " + ",".join(entries) + ",,(0,1,2,3,4),(0,1,2)", "OK"]

    def next_urc(self):
        u = URC_CYCLE[self._urc_i % len(URC_CYCLE)]
        self._urc_i += 1
        return u


class _Err(Exception):
    def __init__(self, text):
        super().__init__(text)
        self.text = text


class PtyModem:
    """Runs a ModemSim on the master side of a pty; .port is the slave's /dev/pts/N."""

    def __init__(self, sim):
        self.sim = sim
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.transcript = []  # (direction, bytes) for debugging failed tests

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def _send(self, data):
        self.transcript.append(("<", data))
        os.write(self.master, data)

    def _sleep(self, secs):
        end = time.monotonic() + secs
        while not self._stop.is_set() and time.monotonic() < end:
            time.sleep(0.05)

    def _loop(self):
        line = bytearray()
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 1024)
            except OSError:
                return
            self.transcript.append((">", data))
            for b in data:
                if self.sim.echo:
                    self._send(bytes([b]))  # echo as typed, like a terminal
                if b == 13:
                    text = line.decode(errors="replace").strip()
                    line.clear()
                    if text:
                        self._answer(text)
                elif b != 10:
                    line.append(b)

    def _answer(self, text):
        sim = self.sim
        sim.pending_delay = 0
        lines = sim.handle(text)
        if lines == "RESET":
            sim.resets += 1
            self._sleep(0.3)
            sim.echo = True
            sim._boot()
            for boot in BOOT[sim.family]:
                self._send(f"\r\n{boot}\r\n".encode())
            return
        if sim.pending_delay:
            self._sleep(sim.pending_delay)
        out = []
        for i, ln in enumerate(lines):
            if sim.urcs and i == len(lines) - 1:
                out.append(sim.next_urc())  # an unsolicited code just before the final result
            out.append(ln)
            if sim.urcs and i == 0 and len(lines) > 1:
                out.append(sim.next_urc())  # and one between the answer and its OK
        for ln in out:
            self._send(f"\r\n{ln}\r\n".encode())
