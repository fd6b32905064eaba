"""The relay's path finder (relay/services/pathfind.py) with real relay processes as upstreams, on loopback.

Three upstream relays stand in for uplink engines: one answers SOCKS greetings but refuses every
destination (what a Shadowsocks client with a wrong password looks like from here: its local port
answers, nothing gets through), two work. The path finder must pick a working one, and when the
current path freezes (SIGSTOP: its port still accepts connections, nothing answers) move new
tunnels to the other and end the tunnel that was open on the frozen one.
"""

import os
import signal
import time

from tests.integration.test_proxy import connect_req, socks5_request
from tests.integration.test_upstream import fetch, wait_for


def test_path_finder_picks_a_working_path_and_moves_on(runtime, start_relay, origin, echo):
    bad = start_relay("cpython", {"guard": {"allow": []}})  # greets, then refuses loopback destinations
    one, two = start_relay("cpython"), start_relay("cpython")
    relays = {"bad": bad, "one": one, "two": two}
    a = start_relay(runtime, {
        "upstream": {"proxies": [f"socks5://127.0.0.1:{r.socks}" for r in relays.values()], "names": list(relays),
                     "probe": f"127.0.0.1:{origin.port}", "check_interval": 0.5,
                     # standbys as often as the current path here: a standby probe that timed out on a busy
                     # machine would otherwise wait the default 300 s (test_standby_paths_... tests that)
                     "standby_interval": 0.5},
        "uplink": {"timeout": 1}})

    def settled():  # both working paths probed and ahead of the bad one (a busy machine may need a second round)
        st = a.status_json()
        ups = st.get("upstreams") or []
        return ((st.get("path") or {}).get("path") in ("one", "two") and len(ups) == 3 and ups[-1]["name"] == "bad"
                and all(u["healthy"] and u["ms"] is not None for u in ups[:2]))

    assert wait_for(settled, 15), a.status_json()
    st = a.status_json()
    cur = st["path"]["path"]
    alt = "two" if cur == "one" else "one"
    ups = {u["name"]: u for u in st["upstreams"]}
    assert not ups["bad"]["healthy"] and "refused" in ups["bad"]["note"]
    assert ups[cur]["healthy"] and ups[cur]["ms"] is not None
    assert [u["name"] for u in st["upstreams"]][-1] == "bad"  # ordered: what works first

    # A tunnel held open through the current path.
    s, reply = socks5_request(a.socks, connect_req("127.0.0.1", echo.port))
    assert reply[:2] == b"\x05\x00"
    s.sendall(b"ping")
    assert s.recv(4) == b"ping"
    assert {u["name"]: u for u in a.status_json()["upstreams"]}[cur]["tunnels"] == 1  # probes are not counted

    os.kill(relays[cur].proc.pid, signal.SIGSTOP)  # the path dies: its port accepts, nothing answers
    try:
        t0 = time.monotonic()
        assert wait_for(lambda: a.status_json()["path"]["path"] == alt, 10), a.status_json()
        moved = time.monotonic() - t0
        # The tunnel on the dead path ends (a close the client sees), not a hang until the idle timeout.
        # MicroPython has no shutdown(): there it waits for the idle timeout (README: runtime differences).
        if runtime != "micropython":
            s.settimeout(5)
            try:
                end = s.recv(16)
            except ConnectionResetError:
                end = b""
            assert end == b""
        s.close()
        assert fetch(a, origin)  # new tunnels go through the other path
        st = a.status_json()
        assert {u["name"]: u for u in st["upstreams"]}[alt]["tunnels"] >= 1
        assert st["path"]["switches"] >= 2  # none -> cur -> alt
        assert moved < 8, moved  # one check interval (0.5 s) + one probe timeout (1 s), with room for a busy machine
    finally:
        os.kill(relays[cur].proc.pid, signal.SIGCONT)
    assert a.alive()


class ProbeTarget:
    """A web server abroad for upstream.probe: keeps each request head it gets and answers 200."""

    def __init__(self):
        from tests.helpers.origin import ThreadedTCP

        heads = self.heads = []

        class Server(ThreadedTCP):
            def serve(self, c):
                c.settimeout(5)
                try:
                    heads.append(c.recv(4096))
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                except OSError:
                    pass
                finally:
                    c.close()

        self.server = Server().start()
        self.port = self.server.port

    def close(self):
        self.server.close()


def test_path_probes_look_ordinary_and_count_against_the_budget(runtime, start_relay):
    target = ProbeTarget()
    try:
        one = start_relay("cpython")
        a = start_relay(runtime, {
            "upstream": {"proxies": [f"socks5://127.0.0.1:{one.socks}"], "probe": f"127.0.0.1:{target.port}",
                         "check_interval": 0.5},
            "uplink": {"timeout": 1}, "share": {"budget_day": 10000000}})
        assert wait_for(lambda: len(target.heads) >= 2, 10), target.heads
        head = target.heads[0]
        assert head.startswith(b"GET / HTTP/1.1\r\n") and b"Mozilla/5.0" in head and b"Accept-Language" in head
        assert b"relay" not in head.lower() and b"probe" not in head.lower(), head
        left = a.status_json()["share"]["budget_left_today"]
        assert left <= 10000000 - 2 * len(head), left  # each probe's request (and answer) was charged
    finally:
        target.close()


def test_standby_paths_are_probed_rarely_the_current_one_often(runtime, start_relay):
    """Every probe crosses the scarce uplink: only the current path is probed each check interval, a
    standby once per upstream.standby_interval (here 20 times rarer)."""
    target = ProbeTarget()
    try:
        one, two = start_relay("cpython"), start_relay("cpython")
        a = start_relay(runtime, {
            "upstream": {"proxies": [f"socks5://127.0.0.1:{r.socks}" for r in (one, two)], "names": ["one", "two"],
                         "probe": f"127.0.0.1:{target.port}", "check_interval": 0.2, "standby_interval": 4},
            "uplink": {"timeout": 1}})
        assert wait_for(lambda: (a.status_json().get("path") or {}).get("path") == "one", 10), a.status_json()
        first = {u["name"]: u["probes"] for u in a.status_json()["upstreams"]}
        assert wait_for(lambda: a.status_json()["upstreams"][0]["probes"] >= first["one"] + 8, 10), a.status_json()
        st = a.status_json()
        ups = {u["name"]: u for u in st["upstreams"]}
        # 8 probes of the current path took >= 1.2 s (each waits at least 3/4 of 0.2 s): the standby's
        # next probe is due 3-5 s after its last; at most one more may have slipped in on a busy machine.
        assert ups["two"]["probes"] <= first["two"] + 1, st
        assert st["path"]["probes"] == ups["one"]["probes"] + ups["two"]["probes"]
    finally:
        target.close()


def test_the_current_path_is_not_probed_while_its_tunnels_hear_from_the_far_end(runtime, start_relay, echo):
    target = ProbeTarget()
    try:
        one = start_relay("cpython")
        a = start_relay(runtime, {
            "upstream": {"proxies": [f"socks5://127.0.0.1:{one.socks}"], "names": ["one"],
                         "probe": f"127.0.0.1:{target.port}", "check_interval": 0.3},
            "uplink": {"timeout": 1}})
        assert wait_for(lambda: (a.status_json().get("path") or {}).get("path") == "one", 10), a.status_json()
        s, reply = socks5_request(a.socks, connect_req("127.0.0.1", echo.port))
        assert reply[:2] == b"\x05\x00"
        s.settimeout(5)
        before = a.status_json()["upstreams"][0]["probes"]
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2:  # a phone's chat: an answer every 50 ms, for 2 s (~6 check intervals)
            s.sendall(b"ping")
            assert s.recv(4) == b"ping"
            time.sleep(0.05)
        st = a.status_json()
        assert st["upstreams"][0]["probes"] <= before + 1, st  # one may have been under way already
        assert st["path"]["probes_skipped"] >= 1, st
        s.close()
        # Quiet again: the probes come back within a check interval or two.
        assert wait_for(lambda: a.status_json()["upstreams"][0]["probes"] >= before + 3, 10), a.status_json()
    finally:
        target.close()
