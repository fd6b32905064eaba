"""The mesh's relay side on loopback, every runtime: chaining with phone identities, refusals, failover.

No namespaces and no babeld here: uplink relays are given as fixed addresses (mesh.uplinks
entries that are single addresses, as a satellite's are), so this runs anywhere. The
babeld-routed topology is tests/mesh/test_mesh_netns.py.
"""

import socket


from tests.helpers.origin import read_at_least
from tests.helpers.relayproc import free_port
from tests.integration.test_proxy import connect_req

KEY = "a mesh key of the test, 32 chars"


def uplink_relay(start_relay, runtime, port, extra=None):
    cfg = {"mesh": {"enabled": True, "key": KEY, "service": "127.0.0.1", "port": port}}
    cfg.update(extra or {})
    return start_relay(runtime, cfg)


def far_relay(start_relay, runtime, port, uplinks=("127.0.0.1",), extra=None):
    cfg = {"mesh": {"enabled": True, "key": KEY, "uplinks": list(uplinks), "port": port, "check_interval": 0.5,
                    "hop_timeout": 1}}
    cfg.update(extra or {})
    return start_relay(runtime, cfg)


def open_tunnel(relay, port, src="127.0.0.1"):
    """A SOCKS5 CONNECT to 127.0.0.1:port through relay from source address src (a distinct 'phone' on
    loopback) -> (socket, reply code)."""
    c = socket.socket()
    c.bind((src, 0))
    c.settimeout(10)
    c.connect(("127.0.0.1", relay.socks))
    c.sendall(b"\x05\x01\x00")
    assert c.recv(2) == b"\x05\x00"
    c.sendall(connect_req("127.0.0.1", port))
    reply = read_at_least(c, 10)
    return c, reply[1] if len(reply) > 1 else None


def echoes(c):
    c.sendall(b"ping")
    return c.recv(4) == b"ping"


def test_phones_keep_their_identity_at_the_uplink(runtime, start_relay, echo):
    """At the uplink relay, limits count phones, not the relay they came through: with one tunnel per
    client allowed there, two phones behind one far relay each get a tunnel; a phone's second is refused."""
    port = free_port()
    up = uplink_relay(start_relay, "cpython", port, {"limits": {"tunnels_per_client": 1}})
    far = far_relay(start_relay, runtime, port)
    a, code_a = open_tunnel(far, echo.port, "127.0.0.2")
    b, code_b = open_tunnel(far, echo.port, "127.0.0.3")
    assert (code_a, code_b) == (0, 0)  # per relay, the second would be refused: it is one more phone
    assert echoes(a) and echoes(b)
    a2, code_a2 = open_tunnel(far, echo.port, "127.0.0.2")
    assert code_a2 not in (0, None)  # refused at the uplink relay: this phone has its one tunnel
    st = up.status_json()
    assert st["tunnels_open"] == 2 and st["refused"].get("client-full") == 1
    m = far.status_json()["mesh"]
    assert m["carrier"]["address"] == "127.0.0.1" and m["uplinks"][0]["healthy"] and m["uplinks"][0]["tunnels"] == 2
    from relayctl.cmd_status import render

    assert "Mesh: 0 other relays routed to; the uplink: 127.0.0.1 (127.0.0.1)" in render(far.status_json())
    assert "the uplink: this relay" in render(up.status_json())
    for c in (a, b, a2):
        c.close()


def test_wrong_key_is_refused(start_relay, runtime, echo):
    port = free_port()
    up = uplink_relay(start_relay, "cpython", port)
    bad = start_relay(runtime, {"mesh": {"enabled": True, "key": "another key, not the mesh's one", "uplinks": ["127.0.0.1"],
                                         "port": port}})
    c, code = open_tunnel(bad, echo.port)
    c.close()
    assert code != 0
    st = up.status_json()
    assert st["refused"].get("auth", 0) >= 1 and st["tunnels_total"] == 0


def test_a_phone_cannot_pass_an_identity(start_relay, origin):
    """The mesh port wants a proof made with the key: a phone guessing one gets RFC 1929's refusal."""
    port = free_port()
    up = uplink_relay(start_relay, "cpython", port)
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"\x05\x01\x00")
    assert c.recv(2) == b"\x05\xff"  # no login offered: no tunnel
    c.close()
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"\x05\x01\x02")
    assert c.recv(2) == b"\x05\x02"
    tok = b"0" * 24
    c.sendall(b"\x01" + bytes([len(tok)]) + tok + b"\x20" + b"f" * 32)
    assert c.recv(2) == b"\x01\x01"
    c.close()
    assert up.status_json()["tunnels_total"] == 0


def test_quotas_at_the_uplink_count_phones(runtime, start_relay, echo):
    """A daily quota at the uplink relay: one phone that used its share is refused there, another phone on
    the same far relay is not (per relay, both would be cut off together)."""
    port = free_port()
    up = uplink_relay(start_relay, "cpython", port, {"share": {"client_quota": 3000}})
    far = far_relay(start_relay, runtime, port)
    a, code = open_tunnel(far, echo.port, "127.0.0.2")
    assert code == 0
    a.sendall(b"x" * 2000)  # 2000 up + 2000 echoed down: over 3000
    read_at_least(a, 2000, 4096)
    a.close()
    a2, code_a2 = open_tunnel(far, echo.port, "127.0.0.2")
    b, code_b = open_tunnel(far, echo.port, "127.0.0.3")
    assert code_a2 not in (0, None) and code_b == 0
    assert echoes(b)
    assert up.status_json()["refused"].get("quota", 0) >= 1
    a2.close()
    b.close()


def test_an_uplink_relay_whose_uplink_is_down_is_passed_over(runtime, start_relay, echo):
    """Its monitor says down: it answers the mesh's greeting with 'no acceptable method', the far relay's
    check marks it unhealthy and new tunnels go to the other uplink relay; back up, it is used again."""
    from tests.integration.test_upstream import Target
    from tests.mesh.netkit import wait_for

    port = free_port()
    target = Target()
    first = start_relay("cpython", {"mesh": {"enabled": True, "key": KEY, "service": "127.0.0.2", "port": port},
                                    "uplink": {"monitor": True, "targets": [f"127.0.0.1:{target.port}"],
                                               "interval": 0.3, "timeout": 0.5, "down_after": 1}})
    second = start_relay("cpython", {"mesh": {"enabled": True, "key": KEY, "service": "127.0.0.3", "port": port}})
    far = far_relay(start_relay, runtime, port, uplinks=("127.0.0.2", "127.0.0.3"))
    try:
        c, code = open_tunnel(far, echo.port)
        assert code == 0 and echoes(c)
        c.close()
        assert first.status_json()["tunnels_total"] == 1
        target.close()
        assert wait_for(lambda: not far.status_json()["mesh"]["uplinks"][0]["healthy"], 10) is not None
        c, code = open_tunnel(far, echo.port)
        assert code == 0 and echoes(c)
        c.close()
        assert (first.status_json()["tunnels_total"], second.status_json()["tunnels_total"]) == (1, 1)
        assert first.status_json()["refused"].get("uplink-down", 0) >= 1
        assert far.status_json()["mesh"]["carrier"]["address"] == "127.0.0.3"
        target.open()
        assert wait_for(lambda: far.status_json()["mesh"]["carrier"]["address"] == "127.0.0.2", 10) is not None
    finally:
        target.close()
