"""review-fw: fleet reports take the path the relay's tunnels take, never straight out of a censored uplink.

fleet_mqtt.FleetLink._open dials the broker with asyncio.open_connection, directly. A relay that
chains through upstream.proxies (an engine, because the uplink is censored: issue 18) then sends
MQTT in the clear (fleet.tls is off by default) from its own address to a broker abroad: topic
"relay/NAME/report", the place label, "people": n. DPI reads that as plainly as a SOCKS greeting,
and where the censor blocks it the volunteers never see the relay at all. A relay without an
uplink of its own (mesh.service "", its tunnels go through the mesh) has no direct path to the
broker: its reports never arrive. The connection should go through relay.connect() (upstreams,
the mesh), as the path finder's probes do.
"""

import threading
import time

from tests.helpers.origin import ThreadedTCP


class FakeBroker(ThreadedTCP):
    """Accepts MQTT connections and answers CONNECT with a CONNACK (accepted); counts them."""

    def __init__(self):
        super().__init__()
        self.connects = 0
        self.lock = threading.Lock()
        self.start()

    def serve(self, c):
        c.settimeout(5)
        try:
            first = c.recv(4096)
            if first[:1] == b"\x10":
                with self.lock:
                    self.connects += 1
                c.sendall(b"\x20\x02\x00\x00")
            while c.recv(4096):
                pass
        except OSError:
            pass
        finally:
            c.close()


def test_fleet_reports_go_through_the_upstream(runtime, start_relay):
    broker = FakeBroker()
    try:
        far = start_relay("cpython")  # the upstream: an engine's SOCKS port, or another relay
        start_relay(runtime, {"upstream": {"proxies": [f"socks5://127.0.0.1:{far.socks}"]},
                              "fleet": {"enabled": True, "broker": "127.0.0.1", "port": broker.port, "name": "r1"}})
        deadline = time.monotonic() + 8
        while broker.connects == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert broker.connects, "the relay never reached the broker"
        assert far.status_json()["tunnels_total"] >= 1, "the relay reached the broker directly, not through its upstream"
    finally:
        broker.close()

