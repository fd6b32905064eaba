"""Rebuild relayctl/data/mccmnc.json from the PyPI data set mcc-mnc-p1 (P1 Security's tables, made
from the ITU-T E.212 bulletins and Wikipedia's MCC-MNC lists): `make mccmnc`.

    python -m relayctl.mccmnc_update WHEEL [--date YYYY-MM-DD] [--out FILE]

Input: the package's wheel as pip downloads it (read as a zip: nothing is installed or imported,
so its lxml dependency is not needed). Output: a compact table the host tools ship and read
offline: {"source", "version", "date", "mcc": {MCC: country}, "plmn": {MCCMNC: name or [name,
country]}}. The name is the brand people know (else the operator's name); a country is written
per PLMN only where it differs from its MCC's. Same wheel and date, same bytes. The firmware
never carries this table.
"""

import argparse
import datetime
import json
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "mccmnc.json"
PACKAGE = "mcc-mnc-p1"


def _member(z, suffix):
    for name in z.namelist():
        if name.endswith(suffix):
            return json.loads(z.read(name))
    raise SystemExit(f"{PACKAGE} wheel has no {suffix}: a different layout; update relayctl.mccmnc_update")


def _version(z):
    for name in z.namelist():
        if name.endswith(".dist-info/METADATA"):
            for line in z.read(name).decode().splitlines():
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
    return "unknown"


def table(wheel, date):
    with zipfile.ZipFile(wheel) as z:
        version = _version(z)
        mnc = _member(z, "mcc_mnc_lut/p1_mnc.json")[1]
        mcc = _member(z, "mcc_mnc_lut/p1_mcc.json")[1]
        cc2 = _member(z, "mcc_mnc_lut/p1_cc2.json")[1]

    def country_of(code):
        if not code:
            return None
        entry = cc2.get(code)
        return entry.get("name") if isinstance(entry, dict) else None

    countries, main_cc2 = {}, {}
    for code, entries in mcc.items():
        entries = [e for e in (entries if isinstance(entries, list) else [entries]) if isinstance(e, dict)]
        if not entries:
            continue
        best = max(entries, key=lambda e: len(e.get("mncs") or ()))  # the MCC's main country (310: the US)
        name = country_of(best.get("cc2")) or ("test network" if code in ("001", "999") else None)
        if name:
            countries[code] = name
            main_cc2[code] = best.get("cc2")
    plmns = {}
    for plmn, entries in mnc.items():
        entries = [e for e in (entries if isinstance(entries, list) else [entries]) if isinstance(e, dict)]
        if not entries or not plmn.isdigit():
            continue
        here = next((e for e in entries if main_cc2.get(plmn[:3]) in (e.get("cc2s") or ())), entries[0])
        name = (here.get("brand") or here.get("operator") or "").strip()
        if not name:
            continue
        cc = (here.get("cc2s") or [None])[0]
        country = country_of(cc)
        if country and country != countries.get(plmn[:3]):
            plmns[plmn] = [name, country]
        else:
            plmns[plmn] = name
    return {"source": PACKAGE, "version": version, "date": date,
            "note": ("ITU-T E.212 and Wikipedia via the PyPI package mcc-mnc-p1 (AGPL-3.0; only its facts are taken: "
                     "codes, countries, operator names); date: when the table was taken; regenerate with `make mccmnc`"),
            "mcc": dict(sorted(countries.items())), "plmn": dict(sorted(plmns.items()))}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m relayctl.mccmnc_update", description=__doc__.split("\n\n")[0])
    p.add_argument("wheel", help=f"the {PACKAGE} wheel (pip download --no-deps {PACKAGE}==VERSION)")
    p.add_argument("--date", default=datetime.date.today().isoformat(), help="the date to record (default today)")
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    t = table(a.wheel, a.date)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(t, ensure_ascii=False, separators=(",", ":"), sort_keys=False) + "\n")
    print(f"{a.out}: {len(t['plmn'])} networks in {len(t['mcc'])} country codes from {PACKAGE} {t['version']}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
