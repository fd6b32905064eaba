"""`relayctl mesh status` when a relay of the mesh answers oddly (an older firmware with no mesh in its
status, an error page, something else on port 8081): that relay is listed as not answering, the others
are shown, no traceback. Stand-in relays: HTTP status listeners on 127.0.0.x, serving what a relay would."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers.relayproc import free_port
from tests.host.test_wifi_apply import relayctl


def serve(host, port, body):
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer((host, port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


FIRST = {"mesh": {"address": "127.0.0.1", "name": "roof", "service": "10.77.1.1", "phones": 2,
                  "relays": [{"address": "127.0.0.2"}, {"address": "127.0.0.3"}],
                  "neighbours": [{"address": "127.0.0.2", "cost": 96}, {"address": "127.0.0.3", "cost": 96}]},
         "uplink": {"up": True}}


@pytest.mark.parametrize("odd,answered", [
    ({"version": "1.0"}, False), ({"mesh": "yes"}, False), ([1, 2], False), (b"<html>not json</html>", False),
    ({"mesh": {"address": "127.0.0.2", "name": "stairs", "neighbours": "none", "carrier": 5}}, True),
])
def test_an_odd_answer_is_a_relay_not_answering(tmp_path, odd, answered):
    port = free_port()
    good = {"mesh": {"address": "127.0.0.3", "name": "hall", "phones": 1,
                     "relays": [], "neighbours": [{"address": "127.0.0.1", "cost": 96}],
                     "carrier": {"address": "10.77.1.1", "name": "roof"}}}
    servers = [serve("127.0.0.1", port, FIRST), serve("127.0.0.2", port, odd), serve("127.0.0.3", port, good)]
    try:
        r = relayctl("mesh", "status", "--host", f"127.0.0.1:{port}", "--timeout", "3", cwd=tmp_path)
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    lines = r.stdout.splitlines()
    assert any(ln.startswith("roof") for ln in lines) and any(ln.startswith("hall") for ln in lines), r.stdout
    if answered:  # a mesh relay's status with an odd field: shown, the field taken as empty
        assert any(ln.startswith("stairs") for ln in lines) and "3 relays (0 not answering)" in r.stdout, r.stdout
    else:
        assert any("127.0.0.2" in ln and "NO ANSWER" in ln for ln in lines), r.stdout
        assert "3 relays (1 not answering)" in r.stdout, r.stdout
