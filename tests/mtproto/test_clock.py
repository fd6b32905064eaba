"""The clock fake-TLS needs: SNTP packets (relay.ntp), the modem's +CCLK time, the floor from
mtproto.clock_hint, and the relay learning the time from an SNTP server on loopback while
/api/status and the portal's status page say whether it knows it. Both runtimes.

The SNTP server here is written from RFC 4330 (48-byte packets, NTP era 0 from 1900), not
from relay code. It serves a time ten years ahead of this machine's, so the relay can only
know it by asking (this machine's clock is below the floor the test sets)."""

import calendar
import os
import socket
import struct
import threading
import time
import urllib.request

import pytest

from relay.proto import mtproto as M, ntp
from relay.runtime import api as runtime
from relay.proto import at
from tests.helpers.relayproc import RUNTIMES, RelayProcess, free_port
from tests.mtproto import peers

NTP_1970 = 2208988800
EE = os.urandom(16)
DOMAIN = "www.example.com"
FUTURE = int(time.time()) + 10 * 365 * 86400  # what the loopback SNTP server says it is


def sntp_reply(req, unix, stratum=2, li=0, mode=4, echo=True):
    """A server reply per RFC 4330 section 5: originate = the request's transmit timestamp."""
    ts = struct.pack(">II", (unix + NTP_1970) % (1 << 32), 0)
    first = (li << 6) | (4 << 3) | mode
    origin = req[40:48] if echo else os.urandom(8)
    return struct.pack(">BBbb", first, stratum, 6, -20) + bytes(8) + b"GPS\0" + ts + origin + ts + ts


# -- packets ----------------------------------------------------------------------------


def test_request_is_an_rfc4330_client_packet():
    req = ntp.request(b"\x01\x02\x03\x04\x05\x06\x07\x08")
    assert len(req) == 48
    assert req[0] >> 6 == 0 and (req[0] >> 3) & 7 == 4 and req[0] & 7 == 3  # LI 0, version 4, client
    assert req[1:40] == bytes(39) and req[40:48] == b"\x01\x02\x03\x04\x05\x06\x07\x08"


@pytest.mark.parametrize("unix", [1800000000, 2085978496 + 1000, FUTURE])  # era 0, era 1 (after 2036), ahead
def test_reply_time_read_back(unix):
    cookie = os.urandom(8)
    req = ntp.request(cookie)
    assert ntp.parse(sntp_reply(req, unix), cookie) == unix


@pytest.mark.parametrize(
    "kw,reason",
    [
        ({"stratum": 0}, "kiss"),
        ({"li": 3}, "not synchronised"),
        ({"stratum": 16}, "not synchronised"),
        ({"mode": 3}, "not a server"),
        ({"echo": False}, "another request"),
    ],
)
def test_bad_replies_refused(kw, reason):
    cookie = os.urandom(8)
    with pytest.raises(ntp.NTPError) as e:
        ntp.parse(sntp_reply(ntp.request(cookie), 1800000000, **kw), cookie)
    assert reason in e.value.reason
    with pytest.raises(ntp.NTPError):
        ntp.parse(sntp_reply(ntp.request(cookie), 1800000000)[:47], cookie)


@pytest.mark.parametrize(
    "text,when",
    [
        ('"24/05/01,12:34:56+20"', (2024, 5, 1, 7, 34, 56)),  # +20 quarter hours: UTC+5 (Almaty)
        ('"25/12/31,23:59:59-08"', (2026, 1, 1, 1, 59, 59)),
        ('"28/02/29,00:00:00+00"', (2028, 2, 29, 0, 0, 0)),
    ],
)
def test_cclk_network_time(text, when):
    assert at.cclk_unix(text) == calendar.timegm(when + (0, 0, 0))


@pytest.mark.parametrize("text", ['"80/01/06,00:01:02+00"', '"04/01/01,00:00:00+00"', "", "ERROR", '"24/13/01,00:00:00"'])
def test_cclk_unset_or_garbage_is_none(text):
    assert at.cclk_unix(text) is None


# -- the floor: unknown clock, wider window ----------------------------------------------


@pytest.mark.parametrize(
    "ts_from_floor,mode,ok",
    [
        (0, "accept", True),
        (86400 * 30, "accept", True),  # any time after the floor: the clock may be anywhere past it
        (-1100, "accept", True),  # within the window below the floor
        (-1300, "accept", False),  # older than the floor can be: a recorded hello
        (-86400 * 365, "accept", False),
        (0, "refuse", False),
    ],
)
def test_unknown_clock_accepts_from_the_floor_on(ts_from_floor, mode, ok):
    floor = 1800000000
    p = M.Proxy([M.parse_secret("ee" + EE.hex() + DOMAIN.encode().hex())], os.urandom, 1200, mode, 64, floor,
                aes_ctr=runtime.aes_ctr)
    ev = p.handshake(None).feed(peers.client_hello(EE, DOMAIN, ts=floor + ts_from_floor))[0]
    assert isinstance(ev, M.Send) if ok else (isinstance(ev, M.Refused) and ev.reason == "clock")


# -- the relay learns the time over SNTP ---------------------------------------------------


class SNTPServer:
    """UDP on 127.0.0.1: answers client requests with FUTURE once .answering is set."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answering = False
        self.requests = 0
        self.bad = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(512)
            except OSError:
                return
            self.requests += 1
            if len(data) != 48 or data[0] & 7 != 3 or (data[0] >> 3) & 7 not in (3, 4):
                self.bad.append(data)
                continue
            if self.answering:
                self.sock.sendto(sntp_reply(data, FUTURE), addr)

    def close(self):
        self.sock.close()


def wait_for(cond, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def status_page(port):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/status?lang=en", headers={"Host": "127.0.0.1"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


def hello_answered(port, ts):
    """True: the relay sent a ServerHello; False: the probe went to the mask site."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        hello = peers.client_hello(EE, DOMAIN, ts=ts)
        s.sendall(hello)
        head = peers.recv_exact(s, 5)
        return head[:3] == b"\x16\x03\x03"
    finally:
        s.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_relay_learns_the_time_over_sntp(runtime, tmp_path):
    sntp = SNTPServer()
    mask = peers.MaskSite()
    portal = free_port()
    cfg = {
        "mtproto": {"enabled": True, "host": "127.0.0.1", "port": free_port(), "mask": f"127.0.0.1:{mask.port}",
                    "secrets": ["ee" + EE.hex() + DOMAIN.encode().hex()], "clock_hint": FUTURE - 3600,
                    "dcs": {"2": ["127.0.0.1:9"]}},
        "ntp": {"servers": [f"127.0.0.1:{sntp.port}"], "retry": 0.3, "interval": 60},
        "portal": {"enabled": True, "host": "127.0.0.1", "port": portal, "address": "127.0.0.1"},
    }
    r = RelayProcess(runtime, tmp_path, cfg)
    mt = cfg["mtproto"]["port"]
    try:
        # This machine's clock is below the floor: unknown, and the relay says so.
        assert wait_for(lambda: sntp.requests >= 2)  # it asks, and asks again (the server is silent)
        st = r.status_json()["mtproto"]
        assert st["clock_known"] is False and st["clock"]["source"] is None
        page = status_page(portal)
        assert "id=clock>unknown<" in page and "id=clocknote" in page
        # Unknown clock, clock_unknown = accept: hellos from the floor on pass, older ones do not.
        assert hello_answered(mt, FUTURE - 3600)
        assert not hello_answered(mt, int(time.time()))
        # The server answers: the relay knows the time, from SNTP, and checks hellos against it.
        sntp.answering = True
        assert wait_for(lambda: r.status_json()["mtproto"]["clock_known"])
        st = r.status_json()["mtproto"]["clock"]
        assert st["source"] == "ntp" and st["syncs"] >= 1
        page = status_page(portal)
        assert "id=clock>set<" in page and "id=clocknote" not in page
        assert hello_answered(mt, FUTURE + 5)
        assert not hello_answered(mt, FUTURE - 3600)  # fine before, outside the window now
        assert r.status_json()["refused"]["mtproto-clock"] == 2
        assert not sntp.bad
        assert r.alive()
    finally:
        r.stop()
        sntp.close()
        mask.close()


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_unknown_clock_refuse_mode(runtime, tmp_path):
    mask = peers.MaskSite()
    cfg = {"mtproto": {"enabled": True, "host": "127.0.0.1", "port": free_port(), "mask": f"127.0.0.1:{mask.port}",
                       "secrets": ["ee" + EE.hex() + DOMAIN.encode().hex()], "clock_hint": FUTURE,
                       "clock_unknown": "refuse", "dcs": {"2": ["127.0.0.1:9"]}}}
    r = RelayProcess(runtime, tmp_path, cfg)
    try:
        assert not hello_answered(cfg["mtproto"]["port"], FUTURE)
        st = r.status_json()
        assert st["mtproto"]["clock_known"] is False and st["mtproto"]["clock_unknown"] == "refuse"
        assert st["refused"]["mtproto-clock"] == 1
    finally:
        r.stop()
        mask.close()
