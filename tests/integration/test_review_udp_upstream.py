"""review-fw: a relay that chains through an upstream (an engine, another relay, the mesh) must not send
its phones' UDP straight out of its own uplink.

udp_session.Association._up resolves and sends every datagram directly (relay.resolve, then
runtime.udp_send on the relay's own socket), whatever upstream.proxies says. On a relay whose uplink
is censored (issue 18: the engines exist because DPI sees plain traffic), a Telegram call then goes
to Telegram's servers in the clear from the relay's own address, the names are looked up through
the censor's resolver, and the censor learns what the relay is. The association must either carry
the datagram through the upstream or refuse UDP (REP_COMMAND) while tunnels go through one.
"""

import socket
import struct

from tests.helpers.origin import UDPEcho
from tests.integration.test_proxy import socks5_request


def test_udp_does_not_bypass_the_upstream(runtime, start_relay):
    echo = UDPEcho()
    try:
        far = start_relay("cpython")  # the upstream: an engine's SOCKS port, or another relay
        relay = start_relay(runtime, {"upstream": {"proxies": [f"socks5://127.0.0.1:{far.socks}"]}})
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        u.settimeout(2)
        ctl, reply = socks5_request(relay.socks, b"\x05\x03\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", u.getsockname()[1]))
        try:
            if reply[:2] != b"\x05\x00":
                # refused while tunnels go through an upstream: nothing leaves around it; counted, and the
                # client is told the command is not supported (it falls back to TCP)
                assert reply[:2] == b"\x05\x07", reply
                assert relay.status_json()["refused"].get("command") == 1
                return
            relay_udp = (socket.inet_ntoa(reply[4:8]), struct.unpack(">H", reply[8:10])[0])
            u.sendto(b"\x00\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", echo.port) + b"call", relay_udp)
            try:
                back = u.recvfrom(65535)[0]
            except socket.timeout:
                back = b""
            went_via_upstream = far.status_json()["udp_datagrams"] > 0
            assert not back or went_via_upstream, (
                "the datagram reached its destination from the relay itself, not through the upstream: %r" % back)
        finally:
            ctl.close()
            u.close()
    finally:
        echo.close()


def _send_and_wait(relay, u, port):
    """One datagram to 127.0.0.1:port through an accepted association -> what came back (b"" if nothing)."""
    ctl, reply = socks5_request(relay.socks, b"\x05\x03\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", u.getsockname()[1]))
    try:
        assert reply[:2] == b"\x05\x00", reply
        relay_udp = (socket.inet_ntoa(reply[4:8]), struct.unpack(">H", reply[8:10])[0])
        u.sendto(b"\x00\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", port) + b"call", relay_udp)
        try:
            return u.recvfrom(65535)[0]
        except socket.timeout:
            return b""
    finally:
        ctl.close()


def test_udp_only_to_upstream_direct_destinations(runtime, start_relay):
    """With upstream.direct entries the association is accepted, but only datagrams to those destinations
    leave from the relay itself; the rest are dropped and counted."""
    echo = UDPEcho()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.settimeout(1.5)
    try:
        far = start_relay("cpython")
        ups = {"proxies": [f"socks5://127.0.0.1:{far.socks}"]}
        relay = start_relay(runtime, {"upstream": dict(ups, direct=["192.0.2.0/24"])})
        assert _send_and_wait(relay, u, echo.port) == b""
        st = relay.status_json()
        assert st["udp_dropped"] >= 1 and st["udp_datagrams"] == 0
        relay2 = start_relay(runtime, {"upstream": dict(ups, direct=["127.0.0.0/8"])})
        assert _send_and_wait(relay2, u, echo.port).endswith(b"call")
    finally:
        u.close()
        echo.close()


def test_udp_is_refused_and_counted_on_a_mesh_relay_without_an_uplink(runtime, start_relay):
    """A mesh relay without an uplink of its own sends its tunnels to an uplink relay; it has no way out
    for a call's datagrams that would not go around the mesh. It refuses the association (REP_COMMAND,
    counted as "command"); the uplink relay, whose own uplink it is, accepts and relays calls."""
    from tests.helpers.relayproc import free_port
    from tests.mesh.test_mesh_loopback import far_relay, uplink_relay

    echo = UDPEcho()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.settimeout(2)
    try:
        port = free_port()
        up = uplink_relay(start_relay, "cpython", port)
        far = far_relay(start_relay, runtime, port)
        ctl, reply = socks5_request(far.socks, b"\x05\x03\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", u.getsockname()[1]))
        ctl.close()
        assert reply[:2] == b"\x05\x07", reply
        st = far.status_json()
        assert st["refused"].get("command") == 1 and st["udp_associations"] == 0 and st["udp_datagrams"] == 0, st
        assert _send_and_wait(up, u, echo.port).endswith(b"call")  # the uplink relay carries calls itself
    finally:
        u.close()
        echo.close()
