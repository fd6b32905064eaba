"""The MTProto listener sends its traffic through the configured upstream: Telethon -> relay A
(MTProto, upstream.proxies = relay B) -> relay B (SOCKS5) -> the stand-in DC. Loopback only."""

import asyncio

import pytest
from telethon.network.connection import ConnectionTcpMTProxyRandomizedIntermediate

from tests.helpers.relayproc import RUNTIMES, RelayProcess, free_port
from tests.mtproto import peers
from tests.mtproto.test_relay_mtproto import SECRETS, dc_session_with, telethon_exchange


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_mtproto_through_an_upstream_relay(runtime, dc, tmp_path):
    b = RelayProcess("cpython", tmp_path)
    a = None
    try:
        mt = free_port()
        a = RelayProcess(runtime, tmp_path, {
            "mtproto": {"enabled": True, "host": "127.0.0.1", "port": mt, "secrets": SECRETS,
                        "dcs": {str(i): [f"127.0.0.1:{dc.port}"] for i in range(1, 6)}},
            "upstream": {"proxies": [f"socks5://127.0.0.1:{b.socks}"]},
        })
        nonce, res, blobs, back = asyncio.run(
            telethon_exchange(ConnectionTcpMTProxyRandomizedIntermediate, mt, SECRETS[1], 2))
        assert res.nonce == nonce and back == blobs
        rec, pkt = dc_session_with(dc, nonce.to_bytes(16, "little", signed=True))
        assert rec is not None and rec["tag"] == peers.TAG_PADDED and rec["dc"] == 2
        sa, sb = a.status_json(), b.status_json()
        assert sa["tunnels_total"] == 1 and sa["upstreams"][0]["healthy"]
        assert sb["tunnels_total"] == 1 and sb["bytes_up"] > sum(map(len, blobs))  # B carried it
        assert sa["mtproto"]["secrets"][1]["connects"] == 1
    finally:
        for r in (a, b):
            if r is not None:
                r.stop()
