"""The relay refuses mtproto.mask pointing at its own MTProto listener, at start and on a reload.

Every prober would be handed back to the relay, which hands it to itself again: a loop that ends only when
the limits refuse (a close no web site gives). relayctl refuses such a mask already (boards/checks.py's
masks_itself); a config written by hand, or by another tool, meets the firmware's own check.
"""

import json
import os
import urllib.request

import pytest

from relay.config import ConfigError, load
from tests.helpers.relayproc import RUNTIMES, RelayProcess
from tests.mtproto.test_relay_mtproto import mt_config

SECRET = "dd" + os.urandom(16).hex()


def mt(**kw):
    m = {"enabled": True, "host": "0.0.0.0", "port": 8443, "secrets": [SECRET]}
    m.update(kw)
    return json.dumps({"mtproto": m})


@pytest.mark.parametrize("mask, extra", [
    ("127.0.0.1:8443", {}),
    ("127.8.9.10:8443", {}),
    ("localhost:8443", {}),
    ("LOCALHOST.:8443", {}),
    ("[::1]:8443", {}),
    ("[::ffff:127.0.0.1]:8443", {}),
    ("0.0.0.0:8443", {}),
    ("[::]:8443", {}),
    ("10.0.0.5:8443", {"host": "10.0.0.5"}),
    ("relay.example.org:8443", {"server": "relay.example.org"}),
    ("127.0.0.1:443", {"retired": [{"secret": "dd" + os.urandom(16).hex(), "until": 2000000000, "port": 443}]}),
])
def test_a_mask_on_the_relays_own_listener_is_refused(mask, extra):
    with pytest.raises(ConfigError) as e:
        load(mt(mask=mask, **extra))
    assert any("mtproto.mask" in p and "own MTProto listener" in p for p in e.value.problems), e.value.problems


@pytest.mark.parametrize("mask, extra", [
    ("127.0.0.1:443", {}),  # a web server on this machine, another port: the usual public set-up
    ("www.example.com:8443", {"tls_domain": "www.example.com"}),  # the site whose look it borrows
    ("10.0.0.5:8443", {"host": "10.0.0.6"}),
])
def test_a_mask_elsewhere_is_taken(mask, extra):
    assert load(mt(mask=mask, **extra)).mtproto.mask == mask


def test_a_mask_on_its_own_listener_is_refused_by_the_firmware_on_micropython(tmp_path):
    """The check is the firmware's: MicroPython refuses to start on such a config too."""
    cfg = mt_config(9, secrets=[SECRET])
    cfg["mtproto"]["mask"] = "127.0.0.1:%d" % cfg["mtproto"]["port"]
    with pytest.raises(RuntimeError, match="own MTProto listener"):
        RelayProcess("micropython", tmp_path, cfg, ready_timeout=10)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_reload_onto_its_own_listener_is_refused(runtime, dc, tmp_path):
    cfg = mt_config(dc.port, secrets=[SECRET])
    relay = RelayProcess(runtime, tmp_path, cfg)
    try:
        new = json.loads(relay.config_path.read_text())
        new["mtproto"]["mask"] = "127.0.0.1:%d" % new["mtproto"]["port"]
        relay.config_path.write_text(json.dumps(new))
        req = urllib.request.Request(f"http://127.0.0.1:{relay.status}/api/reload", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            answer = json.loads(r.read())
        assert not answer["reloaded"] and "own MTProto listener" in " ".join(answer["problems"]), answer
        assert relay.status_json()["mtproto"]["ports"] == [new["mtproto"]["port"]]
    finally:
        relay.stop()
