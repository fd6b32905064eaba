"""POST /api/reload refuses a cross-site request: a web page the volunteer happens to visit cannot make the
relay reload (as the admin page's restart refuses one). relayctl and curl send no Origin and reload as before.

Each case is a real HTTP request to the running relay's status listener with the headers a browser sends
for a page of that origin; a refused one leaves the relay on its config (its digest in /api/status).
"""

import hashlib
import json
import os
import urllib.error
import urllib.request

import pytest

from tests.helpers.relayproc import RUNTIMES, RelayProcess
from tests.mtproto.test_relay_mtproto import mt_config


def post_reload(relay, headers):
    req = urllib.request.Request(f"http://127.0.0.1:{relay.status}/api/reload", data=b"", method="POST",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def new_secret(relay):
    cfg = json.loads(relay.config_path.read_text())
    cfg["mtproto"]["secrets"] = ["dd" + os.urandom(16).hex()]
    relay.config_path.write_text(json.dumps(cfg))
    return hashlib.sha256(relay.config_path.read_bytes()).hexdigest()[:12]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_cross_site_reload_is_refused(runtime, dc, tmp_path):
    relay = RelayProcess(runtime, tmp_path, mt_config(dc.port, secrets=["dd" + os.urandom(16).hex()]))
    own = f"127.0.0.1:{relay.status}"
    try:
        ran = relay.status_json()["config"]
        new_secret(relay)
        for headers in ({"Origin": "http://evil.example"},  # a script or form on another site
                        {"Origin": "null"},  # a sandboxed frame, a data: page
                        {"Referer": "http://evil.example/page"},  # an older browser: no Origin, a Referer
                        {"Host": f"evil.example:{relay.status}", "Origin": f"http://evil.example:{relay.status}"}):
            status, body = post_reload(relay, headers)  # the last: DNS rebinding, a name that is not the relay's
            assert status == 403 and "cross-site" in body, (headers, status, body)
        assert relay.status_json()["config"] == ran, "a refused reload was applied"
        for headers in ({}, {"Origin": f"http://{own}"}, {"Referer": f"http://{own}/admin"}):
            digest = new_secret(relay)  # relayctl and curl send no Origin; the relay's own page is its origin
            status, body = post_reload(relay, headers)
            assert (status, body) == (200, {"reloaded": True, "problems": []}), (headers, status, body)
            assert relay.status_json()["config"] == digest
    finally:
        relay.stop()
