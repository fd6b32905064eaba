"""A prober meets the mask site whatever the relay's limits say: a bare close would tell it apart.

The share budget spent (share.budget_total) or the client's tunnels all open (limits.tunnels_per_client)
refuse new MTProto tunnels, but a client that proves no secret is not one: it is handed to the mask site
like any other (its bytes counted and charged to the budget, never refused). Only a flood from one address
meets a close, the per-address limit's, by design.
"""

import json
import os
import time

import pytest

from tests.helpers.relayproc import RUNTIMES, RelayProcess
from tests.mtproto.probes import HTTP_400, probe
from tests.mtproto.test_public_relay import DDTunnel
from tests.mtproto.test_relay_mtproto import mt_config

DD = os.urandom(16)
PROBE = b"PUT / HTTP/1.0\r\n\r\n"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_probe_meets_the_mask_site_when_the_budget_is_spent(runtime, dc, mask, tmp_path):
    state = tmp_path / "share.json"
    state.write_text(json.dumps({"v": 2, "day": int(time.time()) // 86400, "day_used": 0, "total_used": 50_000}))
    cfg = mt_config(dc.port, secrets=["dd" + DD.hex()], mask=f"127.0.0.1:{mask.port}")
    cfg["share"] = {"budget_total": 50_000, "state_file": str(state)}
    relay = RelayProcess(runtime, tmp_path, cfg)
    try:
        assert relay.status_json()["share"]["stage"] == "exhausted"
        got = probe(cfg["mtproto"]["port"], PROBE, wait=4)
        assert (got.data, got.end) == (HTTP_400, "fin"), got
        st = relay.status_json()
        assert st["bytes_up"] >= len(PROBE) and st["bytes_down"] >= len(HTTP_400), st  # counted
    finally:
        relay.stop()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_probe_meets_the_mask_site_when_its_address_has_every_tunnel_open(runtime, dc, mask, tmp_path):
    cfg = mt_config(dc.port, secrets=["dd" + DD.hex()], mask=f"127.0.0.1:{mask.port}")
    cfg["limits"] = {"tunnels_per_client": 1}
    relay = RelayProcess(runtime, tmp_path, cfg)
    t = DDTunnel(cfg["mtproto"]["port"], DD)
    try:
        assert t.echo(b"ping") == b"ping"
        got = probe(cfg["mtproto"]["port"], PROBE, wait=4)
        assert (got.data, got.end) == (HTTP_400, "fin"), got
    finally:
        t.close()
        relay.stop()
