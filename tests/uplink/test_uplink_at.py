"""The AT engine over a real pty against scripted byte streams, and the number conversions.

The peer here answers with exact bytes, to cover dialects the family simulator does not:
verbose errors, bare \\n line ends, answers slower than the per-character timeout,
a same-prefix URC inside a read answer, and silence.
"""

import os
import threading
import time
import tty

import pytest

from relayctl import mccmnc
from relayctl.modem import signal as sig
from relayctl.modem.at import ATEngine, ATError, ATTimeout, ModemReset
from relayctl.modem.transport import SerialTransport


class ScriptedPeer:
    """Reads one command line, then writes script[command] (bytes, or (delay, bytes))."""

    def __init__(self, script):
        self.script = script
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        buf = b""
        while not self.stop.is_set():
            try:
                buf += os.read(self.master, 256)
            except OSError:
                return
            while b"\r" in buf:
                line, buf = buf.split(b"\r", 1)
                reply = self.script.get(line.decode(), b"")
                delay, data = reply if isinstance(reply, tuple) else (0, reply)
                time.sleep(delay)
                os.write(self.master, data)

    def close(self):
        self.stop.set()
        os.close(self.slave)
        os.close(self.master)


@pytest.fixture
def engine():
    made = []

    def make(script, boot_urcs=("RDY",)):
        peer = ScriptedPeer(script)
        t = SerialTransport(peer.port)
        made.append((peer, t))
        return ATEngine(t, boot_urcs=boot_urcs)

    yield make
    for peer, t in made:
        t.close()
        peer.close()


def test_echo_urcs_and_answer(engine):
    e = engine({"AT+CSQ": b"AT+CSQ\r\r\nRING\r\n\r\n+CSQ: 21,99\r\n\r\n+CMTI: \"SM\",3\r\n\r\nOK\r\n"})
    r = e.command("AT+CSQ")
    assert r.lines == ["+CSQ: 21,99"]
    assert e.urcs == ["RING", '+CMTI: "SM",3']


def test_same_prefix_urc_inside_read_answer(engine):
    e = engine({"AT+CREG?": b"\r\n+CREG: 2\r\n\r\n+CREG: 0,5\r\n\r\nOK\r\n"})
    r = e.command("AT+CREG?")
    assert r.first("+CREG:") == "0,5"
    assert e.urcs == ["+CREG: 2"]


def test_bare_newlines(engine):
    e = engine({"AT+CGMI": b"\nhuawei\n\nOK\n"})
    assert e.command("AT+CGMI").lines == ["huawei"]


@pytest.mark.parametrize("reply,kind,code,sentence", [
    (b"\r\n+CME ERROR: 16\r\n", "CME", 16, "incorrect password (wrong PIN or PUK)"),
    (b"\r\n+CME ERROR: incorrect password\r\n", "CME", 16, "incorrect password (wrong PIN or PUK)"),
    (b"\r\n+CME ERROR: 111\r\n", "CME", 111, "PLMN not allowed (this network refuses the SIM)"),
    (b"\r\n+CME ERROR: 9999\r\n", "CME", 9999, "+CME ERROR 9999"),
    (b"\r\n+CMS ERROR: 310\r\n", "CMS", 310, "SIM not inserted"),
    (b"\r\nERROR\r\n", "ERROR", None, "the modem answered ERROR"),
])
def test_errors_become_sentences(engine, reply, kind, code, sentence):
    e = engine({"AT+X": reply})
    with pytest.raises(ATError) as ei:
        e.command("AT+X")
    assert (ei.value.kind, ei.value.code) == (kind, code)
    assert ei.value.sentence.startswith(sentence)


def test_slow_answer_beyond_char_timeout_is_waited_for(engine):
    e = engine({"AT+COPS=0": (1.5, b"\r\nOK\r\n")})
    t0 = time.monotonic()
    e.command("AT+COPS=0")
    assert time.monotonic() - t0 >= 1.4


def test_no_answer_times_out_with_progress_ticks(engine):
    e = engine({})
    ticks = []
    t0 = time.monotonic()
    with pytest.raises(ATTimeout):
        e.command("AT+COPS=?", timeout=2.5, tick=ticks.append)
    assert 2.4 <= time.monotonic() - t0 < 4
    assert len(ticks) == 2 and ticks[0] >= 0.9


def test_boot_banner_mid_command_is_a_reset(engine):
    e = engine({"AT+CGDCONT=1,\"IP\",\"x\"": b"\r\nRDY\r\n"})
    with pytest.raises(ModemReset):
        e.command('AT+CGDCONT=1,"IP","x"')
    assert e.reset_seen


def test_csq_and_cesq_conversions():
    assert sig.csq_dbm(0) == -113 and sig.csq_dbm(31) == -51 and sig.csq_dbm(99) is None
    assert sig.rsrp_dbm(0) == -140 and sig.rsrp_dbm(97) == -44 and sig.rsrp_dbm(255) is None
    assert sig.rsrq_db(0) == -19.5 and sig.rsrq_db(34) == -3 and sig.rsrq_db(255) is None
    assert sig.parse_cesq("99,99,255,255,20,45") == {"rsrp_dbm": -96, "rsrq_db": -10.0}
    assert sig.REG_STAT[5] == "roaming" and sig.REG_STAT[3] == "denied"


@pytest.mark.parametrize("imsi,plmn,country,operator", [
    ("401021234567890", "40102", "Kazakhstan", "Kcell"),
    ("250011234567890", "25001", "Russia", "MTS"),
    ("437091234567890", "43709", "Kyrgyzstan", "O!"),
    ("434051234567890", "43405", "Uzbekistan", "Ucell"),
    ("436011234567890", "43601", "Tajikistan", "Tcell"),
    ("438021234567890", "43802", "Turkmenistan", "TM-Cell"),
    ("460001234567890", "46000", "China", "China Mobile"),
    ("428991234567890", "42899", "Mongolia", "Mobicom"),
    ("310260123456789", "310260", "United States", "T-Mobile"),  # 3-digit MNC
    ("234159876543210", "23415", "United Kingdom", "Vodafone UK"),
])
def test_home_network_from_imsi(imsi, plmn, country, operator):
    got = mccmnc.from_imsi(imsi)
    assert (got["plmn"], got["country"], got["operator"]) == (plmn, country, operator)
