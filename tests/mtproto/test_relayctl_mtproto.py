"""`relayctl mtproto secret`: the secrets it prints work with the relay and with Telethon."""

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from telethon.network.connection import ConnectionTcpMTProxyRandomizedIntermediate
from telethon.network.connection.tcpmtproxy import TcpMTProxy

from tests.helpers.relayproc import RelayProcess
from tests.mtproto import peers
from tests.mtproto.test_relay_mtproto import mt_config, telethon_exchange

RELAYCTL = [sys.executable, "-m", "relayctl.cli"]
ROOT = Path(__file__).resolve().parents[2]


def relayctl(*args):
    env = {"PYTHONPATH": str(ROOT / "host_tools"), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    return subprocess.run(RELAYCTL + list(args), capture_output=True, text=True, env=env, timeout=30)


def test_secret_kinds_and_links():
    r = relayctl("mtproto", "secret", "--json", "--count", "3", "--server", "10.1.2.3", "--port", "4443")
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    assert len(made) == 3 and len({m["secret"] for m in made}) == 3
    for m in made:
        assert m["secret"].startswith("dd") and len(m["secret"]) == 34
        u = urlsplit(m["link"])
        assert (u.scheme, u.netloc) == ("tg", "proxy")
        assert parse_qs(u.query) == {"server": ["10.1.2.3"], "port": ["4443"], "secret": [m["secret"]]}
    ee = json.loads(relayctl("mtproto", "secret", "--json", "--tls", "WWW.Example.com").stdout)[0]["secret"]
    assert ee.startswith("ee") and bytes.fromhex(ee[34:]) == b"www.example.com"
    plain = json.loads(relayctl("mtproto", "secret", "--json", "--plain").stdout)[0]["secret"]
    assert len(plain) == 32
    text = relayctl("mtproto", "secret").stdout
    assert "tg://proxy?server=192.168.4.1&port=8443&secret=dd" in text and '"mtproto"' in text


def test_plain_secrets_never_look_like_dd_or_ee_to_telethon():
    """Telethon keys a secret by its prefix, not its length: a plain secret drawn as dd.. or ee..
    (2 in 256) would give it the wrong key and the phone would never connect."""
    made = json.loads(relayctl("mtproto", "secret", "--json", "--plain", "--count", "1000").stdout)
    assert len(made) == 1000
    for m in made:
        key = bytes.fromhex(m["secret"])
        assert len(key) == 16 and TcpMTProxy.normalize_secret(m["secret"]) == key, m["secret"]


def test_bad_arguments_explain_themselves():
    r = relayctl("mtproto", "secret", "--tls", "not a domain")
    assert r.returncode == 2 and "not a domain name" in r.stderr
    r = relayctl("mtproto", "secret", "--port", "70000")
    assert r.returncode == 2 and "1..65535" in r.stderr


def test_generated_secrets_work_with_the_relay(tmp_path):
    dd = json.loads(relayctl("mtproto", "secret", "--json").stdout)[0]["secret"]
    ee = json.loads(relayctl("mtproto", "secret", "--json", "--tls", "cdn.example.org").stdout)[0]["secret"]
    dc = peers.DCStub()
    try:
        cfg = mt_config(dc.port)
        cfg["mtproto"]["secrets"] = [dd, ee]
        r = RelayProcess("cpython", tmp_path, cfg)
        try:
            port = cfg["mtproto"]["port"]
            nonce, res, blobs, back = asyncio.run(
                telethon_exchange(ConnectionTcpMTProxyRandomizedIntermediate, port, dd, 2))
            assert res.nonce == nonce and back == blobs
            key = bytes.fromhex(ee[2:34])
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            hello = peers.client_hello(key, "cdn.example.org")
            s.sendall(hello)
            peers.read_server_hello(s, key, hello[11:43])
            s.close()
        finally:
            r.stop()
    finally:
        dc.close()
