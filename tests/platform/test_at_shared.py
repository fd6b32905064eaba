"""The firmware's AT subset (relay/platform/at.py) and the host tool's modem code (relayctl/modem/at.py,
families.py): one set of tables (the host imports the firmware's), and functions that agree wherever
both speak (the host's use `re`, the firmware's the MicroPython subset)."""

import pytest

from relay.proto import at as fw
from relayctl.modem import at as host
from relayctl.modem import families


def test_the_host_uses_the_firmwares_tables():
    """The same objects, not copies: an edit on one side cannot leave the other behind."""
    assert host.FINAL_OK is fw.FINAL_OK and host.FINAL_ERROR is fw.FINAL_ERROR
    assert host.URC_PREFIXES is fw.URC_PREFIXES
    assert families.RAT_ACT is fw.RAT_ACT
    for code, text in fw.CME.items():
        assert host.CME_ERRORS[code] is text


@pytest.mark.parametrize("fam", families.FAMILIES, ids=lambda f: f["name"])
def test_family_commands_are_the_firmwares(fam):
    mine = {f["name"]: f for f in fw.FAMILIES}[fam["name"]]
    assert fam["rat"] is mine["rat"] and fam["roaming"] is mine["roaming"]


@pytest.mark.parametrize("maker,model", [("Quectel", "EC25"), ("SIMCOM INCORPORATED", "SIMCOM_SIM7600G-H"),
                                         ("huawei", "E3372"), ("Telit", "LE910")])
def test_detect_agrees(maker, model):
    assert fw.detect(maker, model)["name"] == families.detect(maker, model)["name"]


@pytest.mark.parametrize("line", ["OK", "CONNECT", "ERROR", "NO CARRIER", "+CME ERROR: 16", "+CMS ERROR: 310",
                                  "+CSQ: 21,99", "RING"])
def test_parse_final_agrees(line):
    assert fw.parse_final(line) == host.parse_final(line)


@pytest.mark.parametrize("cmd", ["AT+CREG?", "AT^HCSQ?", "ATI", "AT+CPIN=\"1234\"", "AT", "AT+QCFG=\"x\""])
def test_expected_prefix_agrees(cmd):
    assert fw.expected_prefix(cmd) == host.expected_prefix(cmd)


@pytest.mark.parametrize("line,prefix", [("+CREG: 2", "+CREG:"), ("+CREG: 0,5", "+CREG:"), ("RING", "+CSQ:"),
                                          ("+CMTI: \"SM\",3", "+CSQ:"), ("EC25", None), ("+QIND: x", None)])
def test_is_urc_agrees(line, prefix):
    assert fw.is_urc(line, prefix) == host.is_urc(line, prefix)


def test_registration_and_signal():
    assert [fw.reg_stat(p) for p in ("0,5", "2,1,\"1A2B\",\"01C2D3\",7", "2", "x,y")] == [5, 1, None, None]
    assert [fw.csq_dbm(p) for p in ("21,99", "0,0", "31,0", "99,99")] == [-71, -113, -51, None]
