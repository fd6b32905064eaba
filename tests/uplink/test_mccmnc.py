"""The MCC-MNC table the host tools ship (relayctl/data/mccmnc.json, from the PyPI data set mcc-mnc-p1)."""

import json
from pathlib import Path

import pytest

from relayctl import mccmnc
from relayctl.mccmnc_update import OUT, table
from tests.uplink.uplinkkit import ROOT, relayctl


@pytest.mark.parametrize("plmn,country,operator", [
    ("23415", "United Kingdom", "Vodafone UK"),  # a foreign SIM is foreign, not "unknown"
    ("26201", "Germany", "Telekom"),
    ("40102", "Kazakhstan", "Kcell"),
    ("25001", "Russia", "MTS"),
    ("310260", "United States", "T-Mobile"),  # a 3-digit MNC
    ("65999", "South Sudan", "unknown"),  # a known country, an unlisted network
])
def test_lookup_covers_the_world(plmn, country, operator):
    got = mccmnc.lookup(plmn)
    assert (got["country"], got["operator"]) == (country, operator)


def test_imsi_home_network_two_and_three_digit_mncs():
    assert mccmnc.from_imsi("234150123456789")["operator"] == "Vodafone UK"
    assert mccmnc.from_imsi("310260123456789")["plmn"] == "310260"


def test_the_table_says_where_it_comes_from():
    d = json.loads(OUT.read_text())
    assert d["source"] == "mcc-mnc-p1" and d["version"] and d["date"]
    assert mccmnc.source() == f"mcc-mnc-p1 {d['version']} ({d['date']})"
    assert len(d["plmn"]) > 2000 and len(d["mcc"]) > 200
    assert OUT.stat().st_size < 200 * 1024  # host tools only; the firmware carries no copy
    assert not list((ROOT / "firmware").rglob("*mccmnc*"))


def test_a_uk_sim_is_named_in_probe(modem):
    m = modem("quectel", imsi="234159876543210", reg_delay=0)
    r = relayctl("probe", "--port", m.port)
    assert r.returncode == 0, r.stderr
    assert "home network 23415 Vodafone UK, United Kingdom" in r.stdout, r.stdout


def test_the_shipped_table_is_what_its_version_gives():
    """Regenerate from the recorded version of mcc-mnc-p1 and compare: the file is that data set, untouched."""
    d = json.loads(OUT.read_text())
    cache = ROOT / ".cache" / "mccmnc"
    wheel = cache / f"mcc_mnc_p1-{d['version']}-py3-none-any.whl"
    if not wheel.exists():
        pytest.skip(f"no {wheel.name} in {cache}: `make test` fetches it before the tests run")
    assert table(Path(wheel), d["date"]) == d
