"""What differs between modem families: one small table each, nothing else.

Everything 3GPP TS 27.007 defines (+CPIN, +CREG/+CGREG/+CEREG, +COPS, +CSQ, +CESQ,
+CGDCONT, +CCLK) is shared and lives in modem.py. A family table only says:
how to read the PIN tries left, how to restrict the radio technology, how to allow
roaming, how to set APN user/password, a vendor signal command with SINR, and
which line the modem prints when it boots.

Sources (checked against the manuals' command descriptions):
- Quectel EC25/EG25: EC25&EC21 AT Commands Manual V1.3 and the QCFG manual:
  AT+QPINC? -> +QPINC: "SC",<pin_left>,<puk_left>; AT+QCFG="nwscanmode",<0 auto|1 GSM|2 UMTS|3 LTE>,1;
  AT+QCFG="roamservice",<1 off|2 on|255 auto>,1; AT+QCSQ -> +QCSQ: "LTE",<rssi>,<rsrp>,<sinr>,<rsrq>
  (dBm values; sinr in 1/5 dB from -20 dB); AT+QICSGP=<cid>,1,"apn","user","pass",<auth>; boots with "RDY";
  AT+QCCID -> +QCCID: <iccid>.
- SIMCom SIM7600: SIM7500_SIM7600 Series AT Command Manual V2.00:
  AT+SPIC -> +SPIC: <pin1>,<puk1>,<pin2>,<puk2>; AT+CNMP=<2 auto|13 GSM|14 WCDMA|38 LTE>;
  AT+CGAUTH=<cid>,<type>,"<password>","<user>" (password first, unlike 27.007); boots with "RDY".
  No module-level roaming switch: roaming follows the SIM and the network. AT+CICCID -> +ICCID: <iccid>.
- Huawei sticks in AT (stick, not HiLink) mode: MU509/ME909 AT Command Interface Specification:
  AT^CPIN? -> ^CPIN: <code>,[<times>],<puk_times>,<pin_times>,<puk2_times>,<pin2_times>;
  AT^SYSCFGEX="<acqorder 00 auto|01 GSM|02 UMTS|03 LTE>",3FFFFFFF,<roam 0 off|1 on|2 keep>,4,7FFFFFFFFFFFFFFF,,
  (band 3FFFFFFF = all; srvdomain 4 = keep); AT^HCSQ? -> ^HCSQ: "LTE",<rssi>,<rsrp>,<sinr>,<rsrq> (0-based
  steps); a reset re-enumerates USB, so the port vanishes rather than printing a banner.
  AT^ICCID? -> ^ICCID: <iccid with each digit pair swapped, as stored on the SIM>.
- generic: AT+CPINR="SIM PIN" (27.007 8.65) for tries left; AT+CCID for the SIM's ICCID (not in 27.007,
  but most modules answer it); nothing vendor-specific.
"""

import re

from relayctl import paths
from relayctl.modem import signal as sig

_FW = paths.firmware_module("relay.proto.at")  # radio technology and roaming commands: the firmware's tables


def _ints(text):
    return [int(x) for x in re.findall(r"-?\d+", text)]


# ---- PIN tries left: (command, prefix, parser(payload) -> (pin_left, puk_left)) ----

def _qpinc(payloads):
    for p in payloads:
        if p.startswith('"SC"'):
            n = _ints(p)
            return n[0], n[1]
    return None


def _spic(payloads):
    n = _ints(payloads[0]) if payloads else []
    return (n[0], n[1]) if len(n) >= 2 else None


def _hcpin(payloads):
    # ^CPIN: SIM PIN,3,10,3,10,3  -> <times> may be empty: ^CPIN: READY,,10,3,10,3
    if not payloads:
        return None
    fields = payloads[0].split(",")
    if len(fields) >= 4:
        try:
            return int(fields[3]), int(fields[2])
        except ValueError:
            return None
    return None


def _cpinr(payloads):
    for p in payloads:
        if p.startswith("SIM PIN,") or p.startswith('"SIM PIN"'):
            n = _ints(p)
            return n[0], None
    return None


# ---- vendor signal: (command, prefix, parser(payload) -> dict) ----

def _qcsq(payload):
    f = payload.replace('"', "").split(",")
    if f[0] != "LTE" or len(f) < 5:
        return {}
    rssi, rsrp, sinr, rsrq = (int(x) for x in f[1:5])
    return {"rssi_dbm": rssi, "rsrp_dbm": rsrp, "sinr_db": round(sinr / 5 - 20, 1), "rsrq_db": rsrq}


def _hcsq(payload):
    f = payload.replace('"', "").split(",")
    if f[0] != "LTE" or len(f) < 5:
        return {}
    rssi, rsrp, sinr, rsrq = (int(x) for x in f[1:5])
    out = {}
    if rssi != 255:
        out["rssi_dbm"] = -121 + rssi if rssi else -120
    if rsrp != 255:
        out["rsrp_dbm"] = sig.rsrp_dbm(rsrp)
    if sinr != 255:
        out["sinr_db"] = round(-20 + 0.2 * sinr, 1)
    if rsrq != 255:
        out["rsrq_db"] = sig.rsrq_db(rsrq)
    return out


QUECTEL = {
    "name": "quectel",
    "label": "Quectel EC25/EG25",
    "match": r"quectel",
    "pin_retries": ("AT+QPINC?", "+QPINC:", _qpinc),
    "rat": _FW.QUECTEL["rat"],
    "roaming": _FW.QUECTEL["roaming"],
    "auth": 'AT+QICSGP=1,1,"{apn}","{user}","{password}",{auth}',
    "signal": ("AT+QCSQ", "+QCSQ:", _qcsq),
    "boot_urcs": ("RDY",),
    "iccid": "AT+QCCID",
}

SIMCOM = {
    "name": "simcom",
    "label": "SIMCom SIM7600",
    "match": r"simcom|sim7600|sim7500",
    "pin_retries": ("AT+SPIC", "+SPIC:", _spic),
    "rat": _FW.SIMCOM["rat"],
    "roaming": _FW.SIMCOM["roaming"],
    "auth": 'AT+CGAUTH=1,{auth},"{password}","{user}"',
    "signal": None,
    "boot_urcs": ("RDY",),
    "iccid": "AT+CICCID",
}

HUAWEI = {
    "name": "huawei",
    "label": "Huawei stick (AT mode)",
    "match": r"huawei",
    "pin_retries": ("AT^CPIN?", "^CPIN:", _hcpin),
    "rat": _FW.HUAWEI["rat"],
    "roaming": _FW.HUAWEI["roaming"],  # acqorder "99" and band 40000000: "no change", only the roaming flag moves
    "auth": 'AT+CGAUTH=1,{auth},"{user}","{password}"',
    "signal": ("AT^HCSQ?", "^HCSQ:", _hcsq),
    "boot_urcs": ("^SYSSTART",),
    "iccid": "AT^ICCID?",
}

GENERIC = {
    "name": "generic",
    "label": "generic 3GPP modem",
    "match": r"$^",
    "pin_retries": ('AT+CPINR="SIM PIN"', "+CPINR:", _cpinr),
    "rat": None,
    "roaming": None,
    "auth": 'AT+CGAUTH=1,{auth},"{user}","{password}"',
    "signal": None,
    "boot_urcs": ("RDY",),
    "iccid": "AT+CCID",
}

FAMILIES = (QUECTEL, SIMCOM, HUAWEI)

RAT_ACT = _FW.RAT_ACT  # +COPS AcT for a manual operator choice restricted to one technology


def detect(manufacturer, model):
    text = f"{manufacturer} {model}".lower()
    for fam in FAMILIES:
        if re.search(fam["match"], text):
            return fam
    return GENERIC
