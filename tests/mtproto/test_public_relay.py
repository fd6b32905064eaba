"""A relay in public mode on every runtime: real clients through it, replays after a restart, limits that
let a NAT's phones in and hold a flood, secrets rotated under running tunnels.

Clients: Telethon's MTProxy connections (plain and dd) and a raw fake-TLS client (ee) to the stand-in
DC (peers.DCStub); probes meet the stand-in site (probes.WebLikeMask). Loopback only; client addresses
127.0.0.x are bound explicitly to play different phones and NATs.
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import time

import pytest
from telethon.network.connection import ConnectionTcpMTProxyIntermediate, ConnectionTcpMTProxyRandomizedIntermediate

from tests.helpers.relayproc import RUNTIMES, RelayProcess, free_port
from tests.mtproto import peers
from tests.mtproto.probes import ALERT, probe
from tests.mtproto.test_relay_mtproto import mt_config, telethon_exchange

PLAIN = peers.plain_key()  # not dd.. or ee..: see plain_key
DD = os.urandom(16)
EE = os.urandom(16)
DOMAIN = "www.example.com"
EE_SECRET = "ee" + EE.hex() + DOMAIN.encode().hex()


def public_config(dc, site, secrets, **mt):
    cfg = mt_config(dc.port, public=True, secrets=secrets, mask=f"127.0.0.1:{site.port}")
    cfg["mtproto"].update(mt)
    cfg.update({"socks": {"enabled": False}, "http": {"enabled": False},
                "limits": {"address_burst": 24, "address_rate": 4, "handshake_timeout": 3}})
    return cfg


@pytest.fixture(scope="module", params=RUNTIMES)
def relay(request, dc, mask, tmp_path_factory):
    cfg = public_config(dc, mask, [PLAIN.hex(), "dd" + DD.hex(), EE_SECRET])
    r = RelayProcess(request.param, tmp_path_factory.mktemp("public"), cfg)
    r.mt = cfg["mtproto"]["port"]
    assert f"mtproto=127.0.0.1:{r.mt}" in r.ready_line and "socks=" not in r.ready_line and "http=" not in r.ready_line
    yield r
    r.stop()


def connect_from(src, port):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class DDTunnel:
    """A raw dd client: header, then packets the stand-in DC echoes."""

    def __init__(self, port, key, src="127.0.0.1"):
        self.s = connect_from(src, port)
        head, self.enc, self.dec = peers.obfs2_client_header(key, peers.TAG_PADDED, 2)
        self.s.sendall(head)

    def echo(self, payload):
        assert len(payload) % 4 == 0  # MTProto packets are whole 4-byte words (the padded transport relies on it)
        self.s.sendall(self.enc.update(peers.frame(peers.TAG_PADDED, payload)))
        return peers.read_frame(lambda n: self.dec.update(peers.recv_exact(self.s, n)), peers.TAG_PADDED)

    def close(self):
        self.s.close()


def fake_tls_echo(port, key, payload, src="127.0.0.1"):
    """A raw fake-TLS client (ee): ClientHello, the ServerHello's HMAC checked, then one echoed packet."""
    s = connect_from(src, port)
    try:
        hello = peers.client_hello(key, DOMAIN)
        s.sendall(hello)
        recs = peers.read_server_hello(s, key, hello[11:43])
        tls = peers.TLSStream(s)
        head, enc, dec = peers.obfs2_client_header(key, peers.TAG_PADDED, 2)
        tls.send(head + enc.update(peers.frame(peers.TAG_PADDED, payload)), first=True)
        return recs, peers.read_frame(lambda n: dec.update(tls.read(n)), peers.TAG_PADDED)
    finally:
        s.close()


def test_clients_through_the_public_relay(relay, dc):
    for conn_cls, secret in ((ConnectionTcpMTProxyIntermediate, PLAIN.hex()),
                             (ConnectionTcpMTProxyRandomizedIntermediate, "dd" + DD.hex())):
        nonce, res, blobs, back = asyncio.run(telethon_exchange(conn_cls, relay.mt, secret, 2))
        assert res.nonce == nonce and back == blobs
    payload = os.urandom(3000)
    _, echoed = fake_tls_echo(relay.mt, EE, payload)
    assert echoed == payload
    assert [s["connects"] for s in relay.status_json()["mtproto"]["secrets"]] == [1, 1, 1]


def test_a_burst_of_24_from_one_address_passes(relay):
    """One NAT, three phones opening eight connections each at once: every one gets its tunnel."""
    tunnels = [DDTunnel(relay.mt, DD, src="127.0.0.24") for _ in range(24)]
    try:
        for i, t in enumerate(tunnels):
            assert t.echo(b"phone%03d" % i) == b"phone%03d" % i
    finally:
        for t in tunnels:
            t.close()
    assert not relay.status_json()["refused"].get("address-rate")


def test_a_flood_from_one_address_is_bounded_and_counted(relay):
    before = relay.status_json()["mtproto"]["address_limit"]["refused"]
    t0 = time.monotonic()
    socks = [connect_from("127.0.0.66", relay.mt) for _ in range(150)]
    time.sleep(0.5)  # the relay has accepted (and judged) them all by now
    st = relay.status_json()
    elapsed = time.monotonic() - t0
    refused = st["mtproto"]["address_limit"]["refused"] - before
    admitted = 150 - refused
    assert 24 <= admitted <= 24 + 4 * (elapsed + 1), (admitted, elapsed)  # the burst, then the rate
    assert st["refused"]["address-rate"] >= refused  # counted, never silent
    closed = 0
    for s in socks:  # what the flood sees: a close at once, or a connection held for its handshake
        s.setblocking(False)
        try:
            closed += s.recv(1) == b""
        except BlockingIOError:
            pass
        except ConnectionResetError:
            closed += 1
        s.close()
    assert closed == refused
    t = DDTunnel(relay.mt, DD, src="127.0.0.67")  # another address is served all the while
    assert t.echo(b"still here!!") == b"still here!!"
    t.close()


def test_mtproto_only_relay_starts(dc, tmp_path):
    cfg = {"mtproto": {"enabled": True, "host": "127.0.0.1", "port": free_port(), "secrets": ["dd" + DD.hex()],
                       "dcs": {"2": [f"127.0.0.1:{dc.port}"]}}}
    r = RelayProcess("cpython", tmp_path, cfg, extra_args=["--socks", "off", "--http", "off"])
    try:
        assert "mtproto=" in r.ready_line and "socks=" not in r.ready_line
        t = DDTunnel(cfg["mtproto"]["port"], DD)
        assert t.echo(b"ping") == b"ping"
        t.close()
    finally:
        r.stop()


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_public_mode_refuses_to_start_without_a_mask_or_with_an_open_proxy(runtime, dc, mask, tmp_path):
    from tests.helpers.relayproc import relay_command

    def start(cfg):
        path = tmp_path / "config.json"
        path.write_text(json.dumps(cfg))
        argv, env = relay_command(runtime, str(path), [])
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)

    r = start(public_config(dc, mask, [EE_SECRET], mask=""))
    assert r.returncode == 2 and "mtproto.mask: public mode needs a mask site" in r.stderr, r.stderr
    cfg = public_config(dc, mask, [EE_SECRET])
    cfg["socks"] = {"enabled": True}
    r = start(cfg)
    assert r.returncode == 2 and "socks.auth: public mode opens SOCKS or HTTP only with a password" in r.stderr


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_without_a_mask_a_private_relay_answers_as_a_tls_server_would(runtime, dc, tmp_path):
    """No mask (a board on its own Wi-Fi): a ClientHello gets the alert a server without that name sends,
    anything else a close at once, a silent one a close at the handshake timeout; no silent hold."""
    cfg = {"mtproto": {"enabled": True, "host": "127.0.0.1", "port": free_port(), "secrets": [EE_SECRET],
                       "dcs": {"2": [f"127.0.0.1:{dc.port}"]}}, "limits": {"handshake_timeout": 1}}
    r = RelayProcess(runtime, tmp_path, cfg)
    port = cfg["mtproto"]["port"]
    try:
        got = probe(port, peers.client_hello(os.urandom(16), DOMAIN))
        assert (got.data, got.end) == (b"\x15\x03\x03\x00\x02\x02\x70", "fin") and got.seconds < 0.5
        got = probe(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (got.data, got.end) == (b"", "fin") and got.seconds < 0.5
        got = probe(port, b"")
        assert (got.data, got.end) == (b"", "fin") and 0.8 < got.seconds < 3
    finally:
        r.stop()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_replay_after_restart_is_refused(runtime, dc, mask, tmp_path):
    """The replay filter lives in mtproto.replay_file: a hello and a dd header accepted before a restart are
    masked after it, whether the relay stopped cleanly or was killed after its journal was flushed."""
    cfg = public_config(dc, mask, ["dd" + DD.hex(), EE_SECRET], replay_file=str(tmp_path / "replay"))

    def start():
        return RelayProcess(runtime, tmp_path, cfg)

    r = start()
    port = cfg["mtproto"]["port"]
    hello = peers.client_hello(EE, DOMAIN)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(hello)
    peers.read_server_hello(s, EE, hello[11:43])
    s.close()
    t = DDTunnel(port, DD)
    assert t.echo(b"once") == b"once"
    t.close()
    if runtime == "micropython":
        time.sleep(2.5)  # the journal is flushed every 2 s; MicroPython has no SIGTERM handler, so this is its stop
    r.stop()  # CPython: a clean stop flushes it
    r = start()
    try:
        assert probe(port, hello).data == ALERT  # the site's answer: the relay does not know it any more
        assert r.status_json()["refused"].get("mtproto-replay") == 1
        # A new hello is accepted, then the relay is killed outright after a flush.
        hello2 = peers.client_hello(EE, DOMAIN)
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(hello2)
        peers.read_server_hello(s, EE, hello2[11:43])
        s.close()
        time.sleep(2.5)
        r.proc.send_signal(signal.SIGKILL)
        r.proc.wait()
        r.stop()
        r = start()
        assert probe(port, hello2).data == ALERT
    finally:
        r.stop()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_rotation_keeps_tunnels_and_the_old_secret_for_its_grace(runtime, dc, mask, tmp_path):
    """relayctl mtproto rotate writes the new secret; the running relay takes it (SIGHUP on CPython, POST
    /api/reload on MicroPython) without dropping a tunnel; the old secret works until its time, then not."""
    from tests.mtproto.test_relayctl_mtproto import relayctl

    old_port = free_port()
    cfg = public_config(dc, mask, ["dd" + DD.hex()], port=old_port)
    r = RelayProcess(runtime, tmp_path, cfg)
    try:
        path = str(r.config_path)
        open_tunnel = DDTunnel(old_port, DD)
        assert open_tunnel.echo(b"before!!") == b"before!!"
        new_port = free_port()
        cfg_now = json.loads(open(path).read())
        if runtime == "micropython":
            res = relayctl("mtproto", "rotate", "--config", path, "--port", str(new_port), "--grace", "1h",
                           "--server", "127.0.0.1")
            assert res.returncode == 0 and "took the new secret" in res.stdout, res.stdout + res.stderr
        else:  # the systemd way: write the file, then SIGHUP (systemctl reload)
            cfg_now["status"]["enabled"] = False
            open(path, "w").write(json.dumps(cfg_now))
            res = relayctl("mtproto", "rotate", "--config", path, "--port", str(new_port), "--grace", "1h",
                           "--server", "127.0.0.1")
            assert res.returncode == 0 and "systemctl reload relay" in res.stdout, res.stdout + res.stderr
            r.proc.send_signal(signal.SIGHUP)
        new = json.loads(open(path).read())["mtproto"]
        new_secret = new["secrets"][0]
        assert f"port={new_port}&secret={new_secret}" in res.stdout
        assert new["retired"][0]["secret"] == "dd" + DD.hex() and new["retired"][0]["port"] == old_port
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", new_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        assert open_tunnel.echo(b"after!!!") == b"after!!!"  # the tunnel opened before is still there
        t = DDTunnel(new_port, bytes.fromhex(new_secret[2:]))
        assert t.echo(b"new!") == b"new!"
        t.close()
        for port in (old_port, new_port):  # the old secret: on both ports, for its grace period
            t = DDTunnel(port, DD)
            assert t.echo(b"old!") == b"old!"
            t.close()
        # The grace period ends (as if an hour passed): the old secret is refused, its port closes,
        # and still the tunnel opened before it all stays.
        cfg_now = json.loads(open(path).read())
        cfg_now["mtproto"]["retired"][0]["until"] = int(time.time()) - 1
        cfg_now["status"]["enabled"] = True
        open(path, "w").write(json.dumps(cfg_now))
        if runtime == "micropython":
            import urllib.request

            req = urllib.request.Request(f"http://127.0.0.1:{r.status}/api/reload", data=b"", method="POST")
            assert json.loads(urllib.request.urlopen(req, timeout=10).read())["reloaded"]
        else:
            r.proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        head = peers.obfs2_client_header(DD, peers.TAG_PADDED, 2)[0]
        while head[0] == 0x16 or 0x41 <= head[0] <= 0x5A:
            head = peers.obfs2_client_header(DD, peers.TAG_PADDED, 2)[0]
        assert probe(new_port, head).end == "rst"  # masked: the stand-in site resets what it cannot read
        assert open_tunnel.echo(b"still!!!") == b"still!!!"
        open_tunnel.close()
        assert r.status_json()["mtproto"]["secrets"][0]["kind"] == "dd" and r.alive()
    finally:
        r.stop()
