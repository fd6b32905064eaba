"""AT commands as the firmware speaks them to a modem on a UART (sans-I/O).

Input: lines a modem printed. Output: final-result decisions, unsolicited codes
set aside, registration and signal values, and the per-family commands.
Its tables (final codes, URC prefixes, +CME ERROR sentences, the families'
radio-technology and roaming commands) are the host's too: relayctl/modem
imports them, and expected_prefix and is_urc too (the host's engine calls these
very functions); parse_final is the host's own (it also reads verbose +CME
sentences), tests/platform/test_at_shared.py checks that the two agree.
MicroPython subset: no `re`, no f-strings with `!r`. Never touches the UART itself.
"""

FINAL_OK = ("OK", "CONNECT")
FINAL_ERROR = ("ERROR", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE", "COMMAND NOT SUPPORT")
URC_PREFIXES = (
    "+CREG:", "+CGREG:", "+CEREG:", "+C5GREG:", "RING", "+CRING:", "+CLIP:", "+CMTI:", "+CMT:", "+CDS:",
    "+CBM:", "+CGEV:", "+CTZV:", "+CTZE:", "+CIEV:", "+CPIN:", "+CUSD:", "+QIND:", "+QUSIM:", "+QSTK",
    "+QNITZ:", "PB DONE", "SMS DONE", "RDY", "^BOOT:", "^RSSI:", "^HCSQ:", "^MODE:", "^SRVST:", "^SIMST:",
    "^STIN:", "^NWTIME:", "^SYSSTART", "^DSFLOWRPT:", "*ATREADY:", "+CNSMOD:", "+CPSI:", "+STIN:",
)

# 3GPP TS 27.007 9.2: the +CME ERROR codes a volunteer meets while bringing a SIM up.
CME = {
    3: "operation not allowed",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required (the SIM is locked after three wrong PINs)",
    13: "SIM failure",
    14: "SIM busy (still starting; try again in a few seconds)",
    16: "incorrect password (wrong PIN or PUK)",
    30: "no network service",
    32: "network not allowed, emergency calls only",
    111: "PLMN not allowed (this network refuses the SIM)",
    113: "roaming not allowed in this location area",
    133: "requested service option not subscribed (check the APN)",
    149: "PDP authentication failure (check user and password)",
}

# families.py, the parts the firmware needs: match text, radio technology, roaming switch.
QUECTEL = {
    "name": "quectel",
    "match": ("quectel",),
    "rat": {"auto": 'AT+QCFG="nwscanmode",0,1', "gsm": 'AT+QCFG="nwscanmode",1,1',
            "umts": 'AT+QCFG="nwscanmode",2,1', "lte": 'AT+QCFG="nwscanmode",3,1'},
    "roaming": {True: 'AT+QCFG="roamservice",2,1', False: 'AT+QCFG="roamservice",1,1'},
}
SIMCOM = {
    "name": "simcom",
    "match": ("simcom", "sim7600", "sim7500"),
    "rat": {"auto": "AT+CNMP=2", "gsm": "AT+CNMP=13", "umts": "AT+CNMP=14", "lte": "AT+CNMP=38"},
    "roaming": None,
}
HUAWEI = {
    "name": "huawei",
    "match": ("huawei",),
    "rat": {"auto": 'AT^SYSCFGEX="00",3FFFFFFF,2,4,7FFFFFFFFFFFFFFF,,',
            "gsm": 'AT^SYSCFGEX="01",3FFFFFFF,2,4,7FFFFFFFFFFFFFFF,,',
            "umts": 'AT^SYSCFGEX="02",3FFFFFFF,2,4,7FFFFFFFFFFFFFFF,,',
            "lte": 'AT^SYSCFGEX="03",3FFFFFFF,2,4,7FFFFFFFFFFFFFFF,,'},
    "roaming": {True: 'AT^SYSCFGEX="99",40000000,1,4,40000000,,', False: 'AT^SYSCFGEX="99",40000000,0,4,40000000,,'},
}
GENERIC = {"name": "generic", "match": (), "rat": None, "roaming": None}
FAMILIES = (QUECTEL, SIMCOM, HUAWEI)
RAT_ACT = {"gsm": 0, "umts": 2, "lte": 7}  # +COPS AcT for a manual operator choice

REG_NAMES = {0: "not registered", 1: "home", 2: "searching", 3: "denied", 4: "unknown", 5: "roaming"}


def detect(manufacturer, model):
    text = (manufacturer + " " + model).lower()
    for fam in FAMILIES:
        for word in fam["match"]:
            if word in text:
                return fam
    return GENERIC


def parse_final(line):
    """('ok'|'error'|'cme'|'cms', code or None) for a final result code, or None."""
    if line in FINAL_OK or line.startswith("CONNECT "):
        return ("ok", None)
    if line in FINAL_ERROR:
        return ("error", None)
    for kind, prefix in (("cme", "+CME ERROR:"), ("cms", "+CMS ERROR:")):
        if line.startswith(prefix):
            rest = line[len(prefix):].strip()
            return (kind, int(rest) if rest.isdigit() else None)
    return None


def expected_prefix(command):
    """'AT+CREG?' -> '+CREG:', 'AT^HCSQ?' -> '^HCSQ:', 'ATI' -> None."""
    up = command.upper()
    if len(up) < 4 or not up.startswith("AT") or up[2] not in "+^*$":
        return None
    end = 3
    while end < len(up) and _name_char(up[end]):
        end += 1
    return up[2:end] + ":" if end > 3 else None


def _name_char(c):
    # A result code's name is upper-case ASCII letters and digits (27.007 writes them so); explicit, because
    # str.isalpha() takes other letters on CPython and not on MicroPython.
    return "A" <= c <= "Z" or "0" <= c <= "9"


def _looks_prefixed(line):
    if len(line) < 3 or line[0] not in "+^*":
        return False
    colon = line.find(":")
    return colon > 1 and all(_name_char(c) for c in line[1:colon])


def is_urc(line, prefix):
    """Is this line an unsolicited code rather than part of the answer to a command
    whose answer lines start with prefix?"""
    if prefix and line.startswith(prefix):
        if prefix in ("+CREG:", "+CGREG:", "+CEREG:") and "," not in line:
            return True  # the URC form "+CREG: 2"; the read answer always has "<n>,<stat>"
        return False
    for p in URC_PREFIXES:
        if line.startswith(p):
            return True
    return bool(prefix) and _looks_prefixed(line)


def reg_stat(payload):
    """'0,5' (or '2,5,"1A2B",...') from +CREG?/+CGREG?/+CEREG? -> 5; None when unreadable."""
    f = payload.split(",")
    try:
        return int(f[1]) if len(f) > 1 else None
    except ValueError:
        return None


def csq_dbm(payload):
    """'21,99' from +CSQ -> -71 (dBm = -113 + 2 * rssi); None for 99 (unknown)."""
    try:
        rssi = int(payload.split(",")[0])
    except ValueError:
        return None
    return None if rssi == 99 or rssi > 31 else -113 + 2 * rssi


def cme_sentence(code):
    return CME.get(code, "+CME ERROR %s" % code) if code is not None else "the modem answered ERROR"


def _days(y, m, d):
    """Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's days_from_civil)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def cclk_unix(payload):
    """'"24/05/01,12:34:56+20"' from +CCLK? (27.007 8.15: local time, zone in quarter hours)
    -> Unix seconds; None when unreadable or plainly never set (a modem without network
    time counts from its firmware's epoch: 1980, 2000, 2004)."""
    t = payload.strip().strip('"')
    try:
        date, clock = t.split(",")
        yy, mo, dd = [int(x) for x in date.split("/")]
        sign = 1
        zone = 0
        for ch in "+-":
            if ch in clock:
                clock, z = clock.split(ch)
                zone = int(z)
                sign = 1 if ch == "+" else -1
        hh, mi, ss = [int(x) for x in clock.split(":")]
    except ValueError:
        return None
    if not 24 <= yy < 80 or not (1 <= mo <= 12 and 1 <= dd <= 31 and hh < 24 and mi < 60 and ss < 61):
        return None
    local = _days(2000 + yy, mo, dd) * 86400 + hh * 3600 + mi * 60 + ss
    return local - sign * zone * 900
