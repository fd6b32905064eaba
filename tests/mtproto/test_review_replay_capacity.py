"""review-fw: mtproto.replay_cache remembers at least that many handshakes, fake-TLS ones too.

mtproto.Handshake adds two fingerprints to the replay filter for every fake-TLS (ee) client it accepts:
the ClientHello's digest in _hello, then the inner obfuscated2 header's in _header. The filter counts
fingerprints, not handshakes, so an ee relay remembers only about capacity / 2 handshakes: the
public profile's "1,000,000 handshakes in 5 MB" (issue 16) is 500,000. The inner header needs no
fingerprint of its own: it travels inside the session a fresh, HMAC-checked hello opened, which only
a holder of the secret can make, and that hello is already remembered.

Here replay_cache is 4: after four ee clients, the first one's hello replayed must still meet the
mask site; today the relay answers it with a ServerHello.
"""

import os
import socket

import pytest

from tests.helpers.relayproc import RUNTIMES, RelayProcess
from tests.mtproto import peers
from tests.mtproto.probes import ALERT, probe
from tests.mtproto.test_relay_mtproto import mt_config

EE = os.urandom(16)
DOMAIN = "www.example.com"


def ee_client(port):
    """One whole fake-TLS client: hello, the inner header, a packet echoed by the DC. -> its hello."""
    hello = peers.client_hello(EE, DOMAIN)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(hello)
        peers.read_server_hello(s, EE, hello[11:43])
        tls = peers.TLSStream(s)
        head, enc, dec = peers.obfs2_client_header(EE, peers.TAG_PADDED, 2)
        tls.send(head + enc.update(peers.frame(peers.TAG_PADDED, b"ping")), first=True)
        assert peers.read_frame(lambda n: dec.update(tls.read(n)), peers.TAG_PADDED) == b"ping"
    finally:
        s.close()
    return hello


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_last_capacity_ee_handshakes_are_remembered(runtime, dc, mask, tmp_path):
    cfg = mt_config(dc.port, secrets=["ee" + EE.hex() + DOMAIN.encode().hex()], mask=f"127.0.0.1:{mask.port}",
                    replay_cache=4)
    relay = RelayProcess(runtime, tmp_path, cfg)
    try:
        hellos = [ee_client(cfg["mtproto"]["port"]) for _ in range(4)]
        # The mask's alert ends the probe at once: a long wait costs nothing when the relay is right.
        got = probe(cfg["mtproto"]["port"], hellos[0], wait=8)
        assert got.data == ALERT, "the first of the last 4 handshakes was forgotten: its replay got %r" % got
    finally:
        relay.stop()
