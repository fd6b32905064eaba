"""Fair sharing, quotas, the budget and policies, with real sockets on loopback, on both runtimes.

Clients are told apart by their address on the Wi-Fi; here each "phone" binds its own
loopback address (127.0.0.2, 127.0.0.3, ...) before connecting to the relay.
"""

import socket
import threading
import time

import pytest

from tests.helpers.origin import ThreadedTCP
from tests.integration.test_proxy import connect_req, curl


class Fountain(ThreadedTCP):
    """An origin that sends to every connection as fast as it is read, for at most `cap` seconds."""

    def __init__(self, cap=30):
        super().__init__()
        self.cap = cap
        self.start()

    def serve(self, c):
        chunk = b"\x5a" * 16384
        end = time.monotonic() + self.cap
        c.settimeout(5)
        try:
            while time.monotonic() < end:
                c.sendall(chunk)
        except OSError:
            pass
        c.close()



class Phone:
    """One client address pulling bytes through the relay's SOCKS port and counting them."""

    def __init__(self, relay_port, src, dest_port):
        self.s = socket.socket()
        self.s.bind((src, 0))
        self.s.settimeout(10)
        self.s.connect(("127.0.0.1", relay_port))
        self.s.sendall(b"\x05\x01\x00")
        assert self.s.recv(2) == b"\x05\x00"
        self.s.sendall(connect_req("127.0.0.1", dest_port))
        self.reply = self.s.recv(10)
        self.got = 0
        self.closed = False
        self.stop = False
        if self.reply[1] == 0:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while not self.stop:
                d = self.s.recv(65536)
                if not d:
                    break
                self.got += len(d)
        except OSError:
            pass
        self.closed = True

    def close(self):
        self.stop = True
        self.s.close()


def measure(phones, seconds):
    start = [p.got for p in phones]
    time.sleep(seconds)
    return [p.got - s for p, s in zip(phones, start)]


RATE = 1_000_000  # bytes/s of "uplink" to share


def test_fair_share_among_active_clients(runtime, start_relay):
    fountain = Fountain()
    relay = start_relay(runtime, {"share": {"rate_down": RATE, "rate_up": RATE},
                                  "limits": {"buffer": 65536}})
    phones = [Phone(relay.socks, f"127.0.0.{i}", fountain.port) for i in (2, 3, 4)]
    try:
        time.sleep(1)
        got = measure(phones, 3)
        total = sum(got)
        print(f"\n[{runtime}] 3 phones over 3 s: {got} (total {total / 3:.0f} B/s of {RATE})")
        assert 0.7 * RATE * 3 < total < 1.3 * RATE * 3
        for g in got:
            assert abs(g - total / 3) < 0.25 * total / 3, got
        phones[2].close()  # one phone goes idle: the other two share its part
        time.sleep(1)
        got = measure(phones[:2], 3)
        total = sum(got)
        print(f"[{runtime}] 2 phones over 3 s: {got}")
        assert 0.7 * RATE * 3 < total < 1.3 * RATE * 3
        for g in got:
            assert abs(g - total / 2) < 0.25 * total / 2, got
        # Two tunnels from one phone do not get it twice the share of a phone with one.
        extra = Phone(relay.socks, "127.0.0.2", fountain.port)
        time.sleep(1)
        a0, b0, e0 = phones[0].got, phones[1].got, extra.got
        time.sleep(3)
        phone2 = phones[0].got - a0 + extra.got - e0
        phone3 = phones[1].got - b0
        print(f"[{runtime}] two tunnels vs one: {phone2} vs {phone3}")
        assert abs(phone2 - phone3) < 0.3 * (phone2 + phone3) / 2
        extra.close()
    finally:
        for p in phones:
            p.close()
        fountain.close()


def test_client_quota_is_enforced_within_one_buffer(runtime, start_relay):
    fountain = Fountain()
    quota = 600_000
    relay = start_relay(runtime, {"share": {"client_quota": quota}, "limits": {"buffer": 16384}})
    try:
        p = Phone(relay.socks, "127.0.0.5", fountain.port)
        deadline = time.monotonic() + 10
        while not p.closed and time.monotonic() < deadline:
            time.sleep(0.1)
        assert p.closed
        assert quota <= p.got <= quota + 16384, p.got
        again = Phone(relay.socks, "127.0.0.5", fountain.port)
        assert again.reply[:2] == b"\x05\x02"  # refused: this phone's share for today is used
        other = Phone(relay.socks, "127.0.0.6", fountain.port)
        assert other.reply[1] == 0  # another phone is not affected
        other.close()
        st = relay.status_json()
        assert st["refused"]["quota"] >= 2
    finally:
        fountain.close()


def _drain(phone, upto, timeout=10):
    deadline = time.monotonic() + timeout
    while phone.got < upto and not phone.closed and time.monotonic() < deadline:
        time.sleep(0.05)


def test_budget_stages_and_counters_survive_a_restart(runtime, start_relay, tmp_path, echo):
    fountain = Fountain()
    state = tmp_path / "counters.json"
    cfg = {"share": {"budget_day": 2_000_000, "slow_at": 0.5, "small_at": 0.75, "slow_rate": 200_000,
                     "interactive_bytes": 4096, "state_file": str(state), "persist_interval": 0.3},
           "limits": {"buffer": 16384}}
    relay = start_relay(runtime, cfg)
    try:
        p = Phone(relay.socks, "127.0.0.7", fountain.port)
        _drain(p, 1_100_000)
        assert relay.status_json()["share"]["stage"] == "slow-bulk"
        _drain(p, 1_600_000)
        assert relay.status_json()["share"]["stage"] == "small-only"
        deadline = time.monotonic() + 5
        while not p.closed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert p.closed  # bulk no longer passes
        # A small message still goes through (an echo of 200 bytes).
        s = socket.create_connection(("127.0.0.1", relay.socks), timeout=5)
        s.sendall(b"\x05\x01\x00")
        s.recv(2)
        s.sendall(connect_req("127.0.0.1", echo.port))
        assert s.recv(10)[1] == 0
        s.sendall(b"m" * 200)
        got = b""
        while len(got) < 200:
            got += s.recv(200)
        s.close()
        left = relay.status_json()["share"]["budget_left_today"]
        time.sleep(1)  # past one persist interval
        relay.stop()
        again = start_relay(runtime, cfg)
        st = again.status_json()["share"]
        assert st["stage"] == "small-only"
        assert abs(st["budget_left_today"] - left) < 20000, (st, left)
        assert "127.0.0.7" not in state.read_text()  # counters are keyed by a salted hash, not the address
    finally:
        fountain.close()


def test_budget_exhausted_refuses_new_tunnels(runtime, start_relay):
    fountain = Fountain()
    relay = start_relay(runtime, {"share": {"budget_total": 300_000, "slow_at": 1, "small_at": 1},
                                  "limits": {"buffer": 16384}})
    try:
        p = Phone(relay.socks, "127.0.0.8", fountain.port)
        deadline = time.monotonic() + 10
        while not p.closed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert p.got <= 300_000 + 16384
        q = Phone(relay.socks, "127.0.0.9", fountain.port)
        assert q.reply[:2] == b"\x05\x02"
        r = curl("-x", f"http://127.0.0.1:{relay.http}", f"http://127.0.0.1:{fountain.port}/", "-o", "/dev/null",
                 "-w", "%{http_code}")
        assert r.stdout == b"403"
        assert relay.status_json()["share"]["stage"] == "exhausted"
    finally:
        fountain.close()


@pytest.mark.parametrize("preset,admitted,refused", [
    ("telegram", ["web.telegram.org", "t.me"], ["example.com", "signal.org", "127.0.0.1"]),
    ("messengers", ["web.telegram.org", "signal.org", "g.whatsapp.net"], ["example.com"]),
    ("open", ["example.com", "web.telegram.org", "127.0.0.1"], []),
])
def test_policy_presets_through_socks_and_http(runtime, start_relay, origin, preset, admitted, refused):
    names = ["web.telegram.org", "t.me", "example.com", "signal.org", "g.whatsapp.net"]
    relay = start_relay(runtime, {"policy": {"preset": preset}, "dns": {"hosts": {n: ["127.0.0.1"] for n in names}}})
    for host in admitted:
        r = curl("--socks5-hostname", f"127.0.0.1:{relay.socks}", f"http://{host}:{origin.port}/small")
        assert r.stdout == b"hello relay\n", (host, r.stderr)
        r = curl("-x", f"http://127.0.0.1:{relay.http}", f"http://{host}:{origin.port}/small")
        assert r.stdout == b"hello relay\n", host
    for host in refused:
        r = curl("--socks5-hostname", f"127.0.0.1:{relay.socks}", f"http://{host}:{origin.port}/small")
        assert r.returncode == 97, host  # curl: the proxy refused (SOCKS 0x02)
        r = curl("-x", f"http://127.0.0.1:{relay.http}", f"http://{host}:{origin.port}/small", "-o", "/dev/null",
                 "-w", "%{http_code}")
        assert r.stdout == b"403", host
    if refused:
        assert relay.status_json()["refused"]["policy"] == 2 * len(refused)


def test_policy_port_list(runtime, start_relay, origin):
    relay = start_relay(runtime, {"policy": {"ports": [443]}})
    r = curl("--socks5", f"127.0.0.1:{relay.socks}", f"http://127.0.0.1:{origin.port}/small")
    assert r.returncode == 97
