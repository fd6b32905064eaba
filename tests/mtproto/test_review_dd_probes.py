"""review-fw: short probes on a `dd` port must meet the mask site at once, as GET does.

mtproto.Handshake._plain decides a short obfuscated2 prefix early only for the four request
verbs in _RESERVED (GET, POST, HEAD, OPTIONS). Every other short probe is held silently for the
whole handshake timeout (10 s by default) before it is handed to the mask site, which a prober
tells apart from the site answering at once: PUT, DELETE, PATCH, the HTTP/2 preface, a 7-byte TLS
alert. A real client never sends a first segment shorter than its 64-byte header, and none of
these is the start of one a prober cannot send: a whole HTTP head (CRLF CRLF) or a whole TLS
record in fewer than 64 bytes decides "not MTProto".
"""

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers.relayproc import RUNTIMES, RelayProcess, free_port
from tests.mtproto.probes import probe

HANDSHAKE_S = 3.0
QUICK = 0.8

PROBES = [
    b"PUT / HTTP/1.0\r\n\r\n",
    b"DELETE / HTTP/1.0\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # the HTTP/2 connection preface, 24 bytes
    b"\x15\x03\x03\x00\x02\x02\x28",  # a TLS alert record, whole
    b"SSH-2.0-OpenSSH_9.6\r\n",  # a text line: SSH's banner
]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_short_probes_on_a_dd_port_are_handed_over_at_once(runtime, mask, tmp_path):
    port = free_port()
    cfg = {"mtproto": {"enabled": True, "host": "127.0.0.1", "port": port, "secrets": ["dd" + os.urandom(16).hex()],
                       "dcs": {str(i): ["127.0.0.1:9"] for i in range(1, 6)}, "mask": f"127.0.0.1:{mask.port}"},
           "limits": {"handshake_timeout": HANDSHAKE_S}}
    relay = RelayProcess(runtime, tmp_path, cfg)
    try:
        with ThreadPoolExecutor(2 * len(PROBES)) as ex:
            pairs = [(p, ex.submit(probe, mask.port, p, False, 6), ex.submit(probe, port, p, False, 6)) for p in PROBES]
            results = [(p, d.result(), r.result()) for p, d, r in pairs]
    finally:
        relay.stop()
    late = [f"{p[:12]!r}: relayed {r}, direct {d}" for p, d, r in results
            if (r.data, r.end) != (d.data, d.end) or r.seconds > d.seconds + QUICK]
    assert not late, f"{runtime}:\n" + "\n".join(late)
