"""A censor's probes get what the mask site gives them, on every runtime: the same bytes, the same
close (FIN or reset), at about the same time as when the site is probed directly.

Each case is sent twice, at once: straight to the stand-in site (probes.WebLikeMask) and to the
relay's MTProto port. The site must have received the probe's bytes exactly, both times; the
prober must have read the same answer and seen the same end. Only a probe that stops before the
relay can decide may come later, by at most the relay's handshake timeout (then the relay hands
it over with what it sent, and the site's own timeout closes it).
"""

import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers.relayproc import RUNTIMES, RelayProcess, free_port
from tests.mtproto import peers
from tests.mtproto.probes import ALERT, HTTP_400, probe

EE = os.urandom(16)
DD = os.urandom(16)
DOMAIN = "www.example.com"
HANDSHAKE_S = 2.0  # longer than QUICK: a probe held for the timeout would show
QUICK = 0.8  # seconds two answers may differ when the relay decides at once (a loaded CI machine)


def start_relay(runtime, tmp_path, mask, secret, dc_port=9):
    cfg = {
        "mtproto": {"enabled": True, "host": "127.0.0.1", "port": free_port(), "secrets": [secret],
                    "dcs": {str(i): [f"127.0.0.1:{dc_port}"] for i in range(1, 6)}, "mask": f"127.0.0.1:{mask.port}"},
        "limits": {"handshake_timeout": HANDSHAKE_S},
    }
    r = RelayProcess(runtime, tmp_path, cfg)
    r.mt = cfg["mtproto"]["port"]
    return r


@pytest.fixture(scope="module", params=RUNTIMES)
def relays(request, mask, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probes")
    ee = start_relay(request.param, tmp, mask, "ee" + EE.hex() + DOMAIN.encode().hex())
    dd = start_relay(request.param, tmp, mask, "dd" + DD.hex())
    yield request.param, ee, dd
    ee.stop()
    dd.stop()


def valid_hello_used(port):
    """A hello the relay accepts (it answers a ServerHello): replaying it later is a probe."""
    hello = peers.client_hello(EE, DOMAIN)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(hello)
    peers.read_server_hello(s, EE, hello[11:43])
    s.close()
    return hello


def valid_dd_header_used(port):
    while True:
        head, _, _ = peers.obfs2_client_header(DD, peers.TAG_PADDED, 2)
        if head[0] != 0x16 and not 0x41 <= head[0] <= 0x5A:
            break
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(head)
    time.sleep(0.3)
    s.close()
    return head


def wrong_dd_header(port):
    """A header for a secret the relay does not have, starting as neither TLS nor HTTP (the site resets it)."""
    while True:
        head = peers.obfs2_client_header(os.urandom(16), peers.TAG_PADDED, 2)[0]
        if head[0] != 0x16 and not 0x41 <= head[0] <= 0x5A:
            return head


# (name, which port, bytes or a function of the relay's port, half-close, decided at once, expected answer, end)
EE_CASES = [
    ("bad-secret", "ee", lambda p: peers.client_hello(os.urandom(16), DOMAIN), False, True, ALERT, "fin"),
    ("stale-clock", "ee", lambda p: peers.client_hello(EE, DOMAIN, ts=int(time.time()) - 86400), False, True, ALERT,
     "fin"),
    ("replay", "ee", valid_hello_used, False, True, ALERT, "fin"),
    ("http-get", "ee", b"GET / HTTP/1.0\r\n\r\n", False, True, HTTP_400, "fin"),
    ("http-half-close", "ee", b"GET / HTTP/1.0\r\n\r\n", True, True, HTTP_400, "fin"),
    ("hello-half-close", "ee", lambda p: peers.client_hello(os.urandom(16), DOMAIN), True, True, ALERT, "fin"),
    ("tls-alert-7-bytes", "ee", ALERT, False, True, b"", "rst"),
    ("one-byte-G", "ee", b"G", False, True, b"", "fin"),
    ("one-byte-0x16", "ee", b"\x16", False, False, b"", "fin"),
    ("half-a-hello", "ee", lambda p: peers.client_hello(os.urandom(16), DOMAIN)[:100], False, False, b"", "fin"),
    ("silent", "ee", b"", False, False, b"", "fin"),
    ("random-64", "ee", b"\x01" + os.urandom(63), False, True, b"", "rst"),
    ("dd-bad-secret", "dd", wrong_dd_header, False, True, b"", "rst"),
    ("dd-replay", "dd", valid_dd_header_used, False, True, b"", "rst"),
    ("dd-http-get", "dd", b"GET / HTTP/1.0\r\n\r\n", False, True, HTTP_400, "fin"),
    ("dd-one-byte", "dd", b"\x02", False, False, b"", "rst"),
]


def run_case(case, relays, mask):
    name, which, data, half, at_once, answer, end = case
    _, ee, dd = relays
    port = ee.mt if which == "ee" else dd.mt
    if callable(data):
        data = data(port)
    with ThreadPoolExecutor(2) as ex:
        direct = ex.submit(probe, mask.port, data, half)
        relayed = ex.submit(probe, port, data, half)
        return name, data, direct.result(), relayed.result()


def test_probes_meet_the_mask_site(relays, mask):
    runtime, ee, dd = relays
    before = len(mask.got)
    with ThreadPoolExecutor(len(EE_CASES)) as ex:
        results = list(ex.map(lambda c: run_case(c, relays, mask), EE_CASES))
    got = mask.got[before:]
    problems = []
    for case, (name, data, direct, relayed) in zip(EE_CASES, results, strict=True):
        _, _, _, half, at_once, answer, end = case
        if (direct.data, direct.end) != (answer, end):
            problems.append(f"{name}: the stand-in site itself answered {direct}, expected {answer!r} {end}")
        if (relayed.data, relayed.end) != (direct.data, direct.end):
            problems.append(f"{name}: relayed {relayed} != direct {direct}")
        # MicroPython has no half-close: a prober that half-closes before a whole request waits for the site's timeout
        slack = QUICK if at_once else HANDSHAKE_S + QUICK
        if not direct.seconds - QUICK <= relayed.seconds <= direct.seconds + slack:
            problems.append(f"{name}: relayed after {relayed.seconds:.2f} s, direct after {direct.seconds:.2f} s")
        if data and got.count(data) < 2:
            problems.append(f"{name}: the site got the probe's bytes {got.count(data)} times, not 2 (direct, relayed)")
    assert not problems, f"{runtime}:\n" + "\n".join(problems)
    refused = ee.status_json()["refused"]
    for reason in ("mtproto-secret", "mtproto-replay", "mtproto-clock", "mtproto-protocol", "mtproto-incomplete"):
        assert refused.get(reason), (reason, refused)
    assert dd.status_json()["refused"].get("mtproto-replay")


def test_big_probe_is_passed_whole(relays, mask):
    """200 KB that the site reads whole (an HTTP body it waits for): every byte arrives, in order."""
    _, ee, _ = relays
    body = os.urandom(200000).replace(b"\r\n\r\n", b"xxxx")
    data = b"POST / HTTP/1.1\r\nContent-Length: 200000\r\n" + body + b"\r\n\r\n"
    before = len(mask.got)
    relayed = probe(ee.mt, data)
    assert (relayed.data, relayed.end) == (HTTP_400, "fin")
    assert data in mask.got[before:]
