"""A reload (POST /api/reload, SIGHUP) leaves nothing of the old config behind that a new one changes.

- /api/status's "config" is the digest of the config the relay runs (the fleet report's too), the new
  file's after a reload: `relayctl mtproto rotate` compares it with the file it wrote;
- a new mask site and domain bring that site's TLS look at once, not at the next 12-hourly look;
- a retired secret's grace ends while no clock is known too: counted on the monotonic clock from when
  the relay took it, for at most until - mtproto.clock_hint seconds.
"""

import hashlib
import json
import os
import time
import urllib.request

import pytest

from tests.helpers.relayproc import RUNTIMES, RelayProcess
from tests.helpers.tlsmask import TLSSite
from tests.mtproto.probes import WebLikeMask
from tests.mtproto.test_public_relay import DDTunnel
from tests.mtproto.test_relay_mtproto import mt_config

# Names of very different lengths: the two sites' certificate flights differ by about a hundred bytes.
DOMAIN_A = "a.example.org"
DOMAIN_B = "second-mask-site-with-a-long-name.another-label.example.org"
GRACE = 5  # seconds
FAR = 4102000000  # a clock hint in 2099: no clock this relay can read is past it, so the clock is unknown


@pytest.fixture(scope="module")
def sites():
    a, b = TLSSite(DOMAIN_A), TLSSite(DOMAIN_B)
    yield a, b
    a.close()
    b.close()


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def reload(relay):
    req = urllib.request.Request(f"http://127.0.0.1:{relay.status}/api/reload", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def flight_of(port, domain):
    from relayctl.cmd_public import learn_profile  # the relay's own probe and reader, over a plain socket

    return learn_profile("127.0.0.1", port, domain, 5).flight


def wait_profile(relay, want, timeout=8):
    deadline = time.monotonic() + timeout
    while True:
        p = relay.status_json()["mtproto"]["mask_profile"]
        if p["learned"] and abs(p["flight"] - want) < 16 or time.monotonic() > deadline:
            return p
        time.sleep(0.2)


def ee(key, domain):
    return "ee" + key.hex() + domain.encode().hex()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_reload_brings_the_new_config_digest_and_mask_profile(runtime, dc, sites, tmp_path):
    a, b = sites
    fa, fb = flight_of(a.port, DOMAIN_A), flight_of(b.port, DOMAIN_B)
    assert abs(fa - fb) > 60, (fa, fb)
    key = os.urandom(16)
    cfg = mt_config(dc.port, secrets=[ee(key, DOMAIN_A)], mask=f"127.0.0.1:{a.port}")
    relay = RelayProcess(runtime, tmp_path, cfg)
    try:
        assert relay.status_json()["config"] == digest(relay.config_path)
        p = wait_profile(relay, fa)
        assert abs(p["flight"] - fa) < 16, (p, fa)
        new = json.loads(relay.config_path.read_text())
        new["mtproto"]["secrets"] = [ee(os.urandom(16), DOMAIN_B)]
        new["mtproto"]["mask"] = f"127.0.0.1:{b.port}"
        relay.config_path.write_text(json.dumps(new))
        assert reload(relay) == {"reloaded": True, "problems": []}
        st = relay.status_json()
        assert st["config"] == digest(relay.config_path), "the status reports the old config's digest"
        p = wait_profile(relay, fb)
        assert p["learned"] and abs(p["flight"] - fb) < 16, f"the old site's look ({fa}) stayed: {p}, want {fb}"
    finally:
        relay.stop()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_retired_secret_expires_while_the_clock_is_unknown(runtime, dc, tmp_path):
    mask = WebLikeMask(idle_s=1)
    new, old = os.urandom(16), os.urandom(16)
    cfg = mt_config(dc.port, secrets=["dd" + new.hex()], mask=f"127.0.0.1:{mask.port}", clock_hint=FAR,
                    retired=[{"secret": "dd" + old.hex(), "until": FAR + GRACE}])
    relay = RelayProcess(runtime, tmp_path, cfg)
    t0 = time.monotonic()  # the relay took the config a little before
    port = cfg["mtproto"]["port"]
    try:
        assert not relay.status_json()["mtproto"]["clock_known"]
        t = DDTunnel(port, old)
        assert t.echo(b"ping") == b"ping"  # within its grace
        t.close()
        time.sleep(max(0, t0 + GRACE + 0.5 - time.monotonic()))
        before = relay.status_json()["refused"].get("mtproto-secret", 0)
        t = DDTunnel(port, old)
        with pytest.raises((OSError, EOFError)):  # handed to the mask site, which resets or closes
            t.s.settimeout(3)
            t.echo(b"ping")
        t.close()
        assert relay.status_json()["refused"].get("mtproto-secret", 0) == before + 1
        t = DDTunnel(port, new)
        assert t.echo(b"ping") == b"ping"
        t.close()
    finally:
        relay.stop()
        mask.close()
