"""The firmware's AT subset (relay/proto/at.py) and the host tool's modem code (relayctl/modem/at.py,
families.py): one set of tables and answer-sorting functions (the host imports the firmware's), and
the host's own parse_final that agrees wherever both speak."""

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


def test_the_host_uses_the_firmwares_answer_sorting():
    """The host's engine sorts answer lines from unsolicited codes with the firmware's own functions."""
    assert host.expected_prefix is fw.expected_prefix and host.is_urc is fw.is_urc


@pytest.mark.parametrize("cmd,prefix", [("AT+CREG?", "+CREG:"), ("AT^HCSQ?", "^HCSQ:"), ("ATI", None),
                                        ("AT+CPIN=\"1234\"", "+CPIN:"), ("AT", None), ("AT+QCFG=\"x\"", "+QCFG:"),
                                        ("at+csq", "+CSQ:"), ("AT+", None), ("AT$QCPDPP?", "$QCPDPP:"),
                                        ("AT+É", None)])
def test_expected_prefix(cmd, prefix):
    assert fw.expected_prefix(cmd) == prefix


@pytest.mark.parametrize("line,prefix,urc", [("+CREG: 2", "+CREG:", True), ("+CREG: 0,5", "+CREG:", False),
                                              ("RING", "+CSQ:", True), ("+CMTI: \"SM\",3", "+CSQ:", True),
                                              ("EC25", None, False), ("+QIND: x", None, True),
                                              ("+CSQ: 21,99", "+CSQ:", False), ("+XYZ: 1", "+CSQ:", True),
                                              ("+XYZ: 1", None, False), ("+xyz: 1", "+CSQ:", False),
                                              ("+X Y: 1", "+CSQ:", False), ("Revision: EC25", "+CGMR:", False)])
def test_is_urc(line, prefix, urc):
    """Upper-case names only, on every runtime: a host tool, a Pi and a Pico sort the same line the same way."""
    assert fw.is_urc(line, prefix) is urc


def test_registration_and_signal():
    assert [fw.reg_stat(p) for p in ("0,5", "2,1,\"1A2B\",\"01C2D3\",7", "2", "x,y")] == [5, 1, None, None]
    assert [fw.csq_dbm(p) for p in ("21,99", "0,0", "31,0", "99,99")] == [-71, -113, -51, None]
