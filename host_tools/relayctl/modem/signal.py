"""Numbers a modem reports, turned into units and words (3GPP TS 27.007). Pure functions.

+CSQ rssi 0..31 -> -113 + 2*rssi dBm (0 means -113 or less, 31 means -51 or more), 99 unknown.
+CESQ rsrp 0..97 -> -140..-44 dBm (0 means below -140), rsrq 0..34 -> -19.5..-3 dB, 255 unknown;
rxlev 0..63 -> -110..-48 dBm, rscp 0..96 -> -120..-25 dBm.
+CREG/+CGREG/+CEREG <stat> and +COPS <AcT> as words.
"""

REG_STAT = {
    0: "not registered",
    1: "home",
    2: "searching",
    3: "denied",
    4: "unknown",
    5: "roaming",
    6: "home (SMS only)",
    7: "roaming (SMS only)",
    8: "emergency only",
    9: "home (CSFB not preferred)",
    10: "roaming (CSFB not preferred)",
}
REGISTERED = (1, 5, 9, 10)  # stats that carry data (6/7 are SMS only, 8 emergency only)

ACT = {
    0: "GSM", 1: "GSM compact", 2: "UMTS", 3: "EDGE", 4: "HSDPA", 5: "HSUPA", 6: "HSPA",
    7: "LTE", 8: "EC-GSM-IoT", 9: "NB-IoT", 10: "LTE (5GC)", 11: "NR (5GC)", 12: "NR", 13: "EN-DC",
}

COPS_STAT = {0: "unknown", 1: "available", 2: "current", 3: "forbidden"}


def csq_dbm(rssi):
    if rssi is None or rssi == 99 or not 0 <= rssi <= 31:
        return None
    return -113 + 2 * rssi


def rsrp_dbm(n):
    if n is None or n == 255 or not 0 <= n <= 97:
        return None
    return max(-140, -141 + n)


def rsrq_db(n):
    if n is None or n == 255 or not 0 <= n <= 34:
        return None
    return max(-19.5, -20 + n / 2)


def rxlev_dbm(n):
    if n is None or n == 99 or not 0 <= n <= 63:
        return None
    return max(-110, -111 + n)


def rscp_dbm(n):
    if n is None or n == 255 or not 0 <= n <= 96:
        return None
    return max(-120, -121 + n)


def parse_csq(payload):
    """'21,99' -> {'rssi_dbm': -71} (empty when unknown)."""
    try:
        rssi = int(payload.split(",")[0])
    except (ValueError, AttributeError):
        return {}
    dbm = csq_dbm(rssi)
    return {"rssi_dbm": dbm} if dbm is not None else {}


def parse_cesq(payload):
    """'99,99,255,255,20,45' -> {'rsrq_db': -10.0, 'rsrp_dbm': -96}."""
    try:
        rxlev, _ber, rscp, _ecno, rsrq, rsrp = (int(x) for x in payload.split(",")[:6])
    except (ValueError, AttributeError):
        return {}
    out = {}
    for key, val in (("rsrp_dbm", rsrp_dbm(rsrp)), ("rsrq_db", rsrq_db(rsrq)),
                     ("rscp_dbm", rscp_dbm(rscp)), ("rxlev_dbm", rxlev_dbm(rxlev))):
        if val is not None:
            out[key] = val
    return out


def bars(sig):
    """0..5 for a meter: RSRP where known (LTE), else RSSI."""
    if sig.get("rsrp_dbm") is not None:
        v, lo, hi = sig["rsrp_dbm"], -125, -80
    elif sig.get("rssi_dbm") is not None:
        v, lo, hi = sig["rssi_dbm"], -110, -60
    else:
        return 0
    return max(0, min(5, round((v - lo) * 5 / (hi - lo))))


def describe(sig):
    """'RSRP -96 dBm, RSRQ -10.0 dB, SINR 12.0 dB, RSSI -71 dBm' or 'no signal'."""
    parts = []
    for key, label, unit in (("rsrp_dbm", "RSRP", "dBm"), ("rsrq_db", "RSRQ", "dB"), ("sinr_db", "SINR", "dB"),
                             ("rssi_dbm", "RSSI", "dBm"), ("rscp_dbm", "RSCP", "dBm")):
        if sig.get(key) is not None:
            parts.append(f"{label} {sig[key]} {unit}")
    return ", ".join(parts) if parts else "no signal"
