"""MCC-MNC -> country and operator, for naming a SIM's home network and the networks in range.

Input: an IMSI (AT+CIMI) or a 5-6 digit PLMN code (AT+COPS). Output: {mcc, mnc, plmn, country,
operator}, "unknown" where the table has nothing.

The table is data/mccmnc.json, made by `make mccmnc` (relayctl/mccmnc_update.py) from the maintained
PyPI data set mcc-mnc-p1 (ITU-T E.212 bulletins and Wikipedia's lists, every country); it ships inside
the package and is read offline. SOURCE says which version and when. Brands change (Tele2 Russia is
"t2" since 2024); the codes stay: refresh the table, do not edit it by hand. The firmware has no copy.
"""

import json
from pathlib import Path

_PATH = Path(__file__).resolve().parent / "data" / "mccmnc.json"
_data = None


def _table():
    global _data
    if _data is None:
        _data = json.loads(_PATH.read_text(encoding="utf-8"))
    return _data


def source():
    """'mcc-mnc-p1 1.1.0 (2026-12-06)': where the names come from."""
    d = _table()
    return f"{d['source']} {d['version']} ({d['date']})"


def lookup(plmn):
    """'40102' -> {'mcc': '401', 'mnc': '02', 'plmn': '40102', 'country': 'Kazakhstan', 'operator': 'Kcell'}."""
    plmn = "".join(ch for ch in str(plmn) if ch.isdigit())
    mcc, mnc = plmn[:3], plmn[3:]
    t = _table()
    country = t["mcc"].get(mcc, "unknown")
    entry = t["plmn"].get(plmn)
    if isinstance(entry, list):
        operator, country = entry
    else:
        operator = entry or "unknown"
    return {"mcc": mcc, "mnc": mnc, "plmn": plmn, "country": country, "operator": operator}


def from_imsi(imsi):
    """The home network of an IMSI. The MNC is 2 or 3 digits and the IMSI does not say which (the SIM's
    EF_AD does); try 3 digits, then 2, against the table, and fall back to 2."""
    digits = "".join(ch for ch in str(imsi) if ch.isdigit())
    if len(digits) < 6:
        return None
    plmns = _table()["plmn"]
    for n in (6, 5):
        if digits[:n] in plmns:
            return lookup(digits[:n])
    return lookup(digits[:5])
