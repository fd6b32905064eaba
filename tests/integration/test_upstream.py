"""Upstream relays with failover, chaining, and the uplink monitor: real relay processes on loopback."""

import socket
import time

from tests.integration.test_proxy import connect_req, curl, socks5_request


def fetch(relay, origin):
    r = curl("--socks5", f"127.0.0.1:{relay.socks}", f"http://127.0.0.1:{origin.port}/small", "--max-time", "10")
    return r.stdout == b"hello relay\n"


def wait_for(cond, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_failover_to_second_upstream_and_back(runtime, start_relay, origin):
    b1 = start_relay("cpython")
    b2 = start_relay("cpython")
    a = start_relay(runtime, {"upstream": {"proxies": [f"socks5://127.0.0.1:{b1.socks}", f"socks5://127.0.0.1:{b2.socks}"],
                                           "check_interval": 0.5}})
    assert fetch(a, origin)
    assert b1.status_json()["tunnels_total"] == 1 and b2.status_json()["tunnels_total"] == 0
    b1_port = b1.socks
    b1.stop()
    t0 = time.monotonic()
    assert fetch(a, origin)  # the very next tunnel goes through the second upstream
    failover = time.monotonic() - t0
    assert failover < 3, failover
    assert b2.status_json()["tunnels_total"] == 1
    # The first comes back: once its health check passes, traffic returns to it.
    b1 = start_relay("cpython", socks_port=b1_port)
    assert wait_for(lambda: a.status_json()["upstreams"][0]["healthy"], 10)
    assert fetch(a, origin)
    assert b1.status_json()["tunnels_total"] == 1
    assert a.alive()


def test_chain_of_three_relays_with_http_upstream(runtime, start_relay, origin):
    c = start_relay("cpython")
    b = start_relay("micropython" if runtime == "cpython" else "cpython",
                    {"upstream": {"proxies": [f"http://127.0.0.1:{c.http}"]}})
    a = start_relay(runtime, {"upstream": {"proxies": [f"socks5://127.0.0.1:{b.socks}"]}})
    assert fetch(a, origin)
    assert [x.status_json()["tunnels_total"] for x in (a, b, c)] == [1, 1, 1]


def test_upstream_refusal_is_passed_on_not_a_failover(start_relay, runtime):
    b = start_relay("cpython", {"guard": {"allow": []}})  # b refuses loopback destinations
    a = start_relay(runtime, {"upstream": {"proxies": [f"socks5://127.0.0.1:{b.socks}"]}})
    s, reply = socks5_request(a.socks, connect_req("127.0.0.1", 9))
    s.close()
    assert reply[:2] == b"\x05\x02"  # b's "not allowed" comes back as such
    assert a.status_json()["upstreams"][0]["healthy"]


def test_direct_rule_skips_upstreams(start_relay, runtime, origin):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    a = start_relay(runtime, {"upstream": {"proxies": [f"socks5://127.0.0.1:{dead_port}"], "direct": ["127.0.0.0/8"]}})
    assert fetch(a, origin)


class Target:
    """A probe target we can take away and bring back on the same port."""

    def __init__(self):
        self.sock = None
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.open()

    def open(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)

    def close(self):
        self.sock.close()


def test_uplink_down_refuses_at_once_and_recovers(runtime, start_relay, origin):
    target = Target()
    a = start_relay(runtime, {"uplink": {"monitor": True, "targets": [f"127.0.0.1:{target.port}"],
                                         "interval": 0.5, "timeout": 0.5, "down_after": 1}})
    try:
        assert fetch(a, origin)
        assert a.status_json()["uplink"]["up"] is True
        target.close()
        assert wait_for(lambda: a.status_json()["uplink"]["up"] is False, 10)
        t0 = time.monotonic()
        s, reply = socks5_request(a.socks, connect_req("127.0.0.1", origin.port))
        s.close()
        assert reply[:2] == b"\x05\x03" and time.monotonic() - t0 < 1
        r = curl("-x", f"http://127.0.0.1:{a.http}", f"http://127.0.0.1:{origin.port}/small", "-o", "/dev/null",
                 "-w", "%{http_code}")
        assert r.stdout == b"503"
        st = a.status_json()
        assert st["refused"]["uplink-down"] == 2 and st["uplink"]["since_s"] >= 0
        target.open()
        assert wait_for(lambda: a.status_json()["uplink"]["up"] is True, 10)
        assert fetch(a, origin)
        assert a.alive() and a.status_json()["uplink"]["changes"] == 2  # no restart: same process, state kept
    finally:
        target.close()
