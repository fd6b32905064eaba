"""relayctl for a public relay: `run --public`, `public check`, `public cards`, `mtproto rotate`, `build public`.

The mask site is a real TLS server with a throwaway certificate (tests/helpers/tlsmask.py); DNS is a
stub on loopback (tests/helpers/origin.py). Loopback only.
"""

import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from relayctl.images import build_board
from tests.helpers.origin import DNSServer, read_to_close
from tests.helpers.relayproc import free_port
from tests.helpers.tlsmask import PAGE, TLSSite
from tests.mtproto import peers
from tests.mtproto.test_relayctl_mtproto import relayctl

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "relay.example.org"


@pytest.fixture(scope="module")
def site():
    s = TLSSite(DOMAIN)
    yield s
    s.close()


class Relayctl:
    """`relayctl run ...` in the background, its output read line by line."""

    def __init__(self, *args):
        env = {"PYTHONPATH": str(ROOT / "host_tools"), "PATH": "/usr/bin:/bin", "NO_COLOR": "1",
               "HOME": os.environ.get("HOME", "/tmp")}
        self.proc = subprocess.Popen([sys.executable, "-m", "relayctl.cli", "run", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = []
        self.seen = 0
        self.buf = b""

    def wait_for(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            while self.seen < len(self.lines):
                line = self.lines[self.seen]
                self.seen += 1
                if text in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in: {''.join(self.lines)}")
            if select.select([self.proc.stdout], [], [], 0.2)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"relayctl ended without {text!r}: {''.join(self.lines)}")
                self.buf += chunk
                *done, self.buf = self.buf.split(b"\n")
                self.lines += [d.decode() + "\n" for d in done]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rest = self.proc.communicate(timeout=15)[0]
        self.lines.append((self.buf + rest).decode())
        return "".join(self.lines)


def run_public(site, state, port, status_port, *more):
    return Relayctl("--public", "--domain", DOMAIN, "--mask", f"127.0.0.1:{site.port}", "--server", "127.0.0.1",
                    "--port", str(port), "--listen", "127.0.0.1", "--state", str(state), "--status-port",
                    str(status_port), *more)


def status(port):
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=10) as r:
        return json.loads(r.read())


def test_run_public_serves_the_site_to_probers_and_telegram_with_its_secret(site, tmp_path):
    port, sp = free_port(), free_port()
    r = run_public(site, tmp_path / "state", port, sp, "--cards", str(tmp_path / "cards"))
    try:
        link = r.wait_for("tg://proxy").split()[-1]
        ready = r.wait_for("relay ready")
        assert f"mtproto=127.0.0.1:{port}" in ready and "socks=" not in ready and "http=" not in ready
        assert "portal=" not in ready and "dns=" not in ready
        q = parse_qs(urlsplit(link).query)
        secret = q["secret"][0]
        assert q["server"] == ["127.0.0.1"] and q["port"] == [str(port)]
        assert secret.startswith("ee") and bytes.fromhex(secret[34:]).decode() == DOMAIN
        # A browser (or a censor's scanner) that visits: the site's own certificate and page.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with site.client_context().wrap_socket(raw, server_hostname=DOMAIN) as t:
                t.sendall(f"GET / HTTP/1.1\r\nHost: {DOMAIN}\r\n\r\n".encode())
                body = read_to_close(t)
        assert body.endswith(PAGE)
        # Telegram with the link's secret: a ServerHello whose certificate record is the site's size.
        deadline = time.monotonic() + 10
        while not status(sp)["mtproto"]["mask_profile"]["learned"] and time.monotonic() < deadline:
            time.sleep(0.2)
        flight = status(sp)["mtproto"]["mask_profile"]["flight"]
        key = bytes.fromhex(secret[2:34])
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        hello = peers.client_hello(key, DOMAIN)
        s.sendall(hello)
        recs = peers.read_server_hello(s, key, hello[11:43])
        s.close()
        assert abs(len(recs[2]) - flight) <= flight * 32 // 1000
        # The cards carry the link.
        png = (tmp_path / "cards" / "card-1.png").read_bytes()
        got = subprocess.run(["zbarimg", "-q", "--raw", "-"], input=png, capture_output=True, timeout=20)
        assert got.stdout.decode().strip() == link
    finally:
        out = r.stop()
    assert "relay stopped" in out
    # A second run keeps the secret: the links people have go on working.
    r = run_public(site, tmp_path / "state", port, sp)
    try:
        assert r.wait_for("tg://proxy").split()[-1] == link
        r.wait_for("relay ready")
        # Rotation reaches the running relay through its status listener.
        res = relayctl("mtproto", "rotate", "--config", str(tmp_path / "state" / "config.json"), "--grace", "2h")
        assert res.returncode == 0 and "took the new secret" in res.stdout, res.stdout + res.stderr
        new = [ln.split()[-1] for ln in res.stdout.splitlines() if ln.startswith("link:")]
        assert len(new) == 1 and new[0] != link and "secret=ee" in new[0]
        r.wait_for("reloaded: 2 MTProto secrets (1 retiring)")
    finally:
        r.stop()


def check(site, tmp_path, dns_records, *more, mask=None):
    cfg = {"mtproto": {"enabled": True, "public": True, "secrets": ["ee" + os.urandom(16).hex() + DOMAIN.encode().hex()],
                       "mask": mask or f"127.0.0.1:{site.port}", "server": "127.0.0.1"}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    dns = DNSServer(dns_records)
    try:
        return relayctl("public", "check", "--config", str(path), "--dns", f"127.0.0.1:{dns.port}", "--timeout", "3",
                        *more)
    finally:
        dns.close()


def test_public_check_passes_for_a_plausible_site(site, tmp_path):
    r = check(site, tmp_path, {DOMAIN: ["127.0.0.1"]}, "--address", "127.0.0.1", "--ca", site.ca_file)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"ok    mask: 127.0.0.1:{site.port} answers TLS for {DOMAIN}" in r.stdout
    assert "bytes of certificate and handshake" in r.stdout
    assert f"ok    dns: {DOMAIN} resolves to 127.0.0.1: this machine" in r.stdout
    assert "ok    clock: within" in r.stdout


def test_public_check_names_each_tell(site, tmp_path):
    r = check(site, tmp_path, {DOMAIN: ["203.0.113.9"]}, "--address", "127.0.0.1", "--ca", site.ca_file)
    assert r.returncode == 1
    assert f"FAIL  dns: {DOMAIN} resolves to 203.0.113.9, but this machine is 127.0.0.1" in r.stdout
    r = check(site, tmp_path, {}, "--address", "127.0.0.1", "--ca", site.ca_file)
    assert f"FAIL  dns: {DOMAIN} does not resolve" in r.stdout
    r = check(site, tmp_path, {DOMAIN: ["127.0.0.1"]}, "--address", "127.0.0.1")  # the throwaway CA is not trusted
    assert "FAIL  mask:" in r.stdout and "certificate a client rejects" in r.stdout and DOMAIN in r.stdout
    r = check(site, tmp_path, {DOMAIN: ["127.0.0.1"]}, "--address", "127.0.0.1", mask=f"127.0.0.1:{free_port()}")
    assert "FAIL  mask:" in r.stdout and "does not answer TLS" in r.stdout
    wrong_clock = TLSSite(DOMAIN, date_offset=3600)
    try:
        r = check(wrong_clock, tmp_path, {DOMAIN: ["127.0.0.1"]}, "--address", "127.0.0.1", "--ca", wrong_clock.ca_file)
    finally:
        wrong_clock.close()
    assert r.returncode == 1 and re.search(r"FAIL  clock: this machine's clock is -3(599|600|601) s off the mask site's", r.stdout)


def test_secret_snippet_carries_the_listen_host():
    r = relayctl("mtproto", "secret", "--tls", DOMAIN, "--server", "relay.example.org", "--port", "443")
    snippet = json.loads(r.stdout.split("config.json: ", 1)[1])["mtproto"]
    assert snippet["host"] == "0.0.0.0" and snippet["server"] == "relay.example.org" and snippet["port"] == 443
    r = relayctl("mtproto", "secret", "--server", "192.168.4.1")
    assert json.loads(r.stdout.split("config.json: ", 1)[1])["mtproto"]["host"] == "192.168.4.1"


def test_build_public_bundle(tmp_path):
    site_file = tmp_path / "site.toml"
    site_file.write_text(f'[mtproto]\ndomain = "{DOMAIN}"\nmask = "127.0.0.1:8443"\nserver = "{DOMAIN}"\n')
    m = build_board("public", site_file, tmp_path / "out")
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    mt = cfg["mtproto"]
    assert mt["public"] and mt["port"] == 443 and mt["host"] == "0.0.0.0" and mt["mask"] == "127.0.0.1:8443"
    assert mt["secrets"][0].startswith("ee") and mt["secrets"][0].endswith(DOMAIN.encode().hex())
    assert mt["replay_cache"] == 1000000 and mt["replay_file"] == "/var/lib/relay/mtproto-replay"
    assert cfg["socks"]["enabled"] is False and cfg["http"]["enabled"] is False and not cfg.get("portal", {}).get("enabled")
    assert len(cfg["portal"]["admin_password"]) == 12 and m["admin"] == "http://127.0.0.1:8081/admin"  # ssh -L only
    assert cfg["limits"]["address_burst"] >= 24 and cfg["status"]["host"] == "127.0.0.1"
    with tarfile.open(tmp_path / "out" / m["bundle"]) as tar:
        unit = tar.extractfile("relay-public/relay.service").read().decode()
    for line in ("kill -HUP $MAINPID'", "StateDirectory=relay", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                 "LimitNOFILE=131072"):
        assert line in unit
    # An open proxy is refused before anything is built.
    site_file.write_text(site_file.read_text() + "[public]\nsocks = true\n")
    r = relayctl("build", "public", "--site", str(site_file), "--out", str(tmp_path / "out2"))
    assert r.returncode == 2 and "public.socks: an open proxy on the internet is abused within hours" in r.stderr


def test_context_is_real_tls(site):
    """The stand-in site is what it claims: a TLS server a verifying client accepts for DOMAIN."""
    with socket.create_connection(("127.0.0.1", site.port), timeout=5) as raw:
        with site.client_context().wrap_socket(raw, server_hostname=DOMAIN) as t:
            assert t.version() in ("TLSv1.3", "TLSv1.2")
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection(("127.0.0.1", site.port), timeout=5) as raw:
            ssl.create_default_context().wrap_socket(raw, server_hostname=DOMAIN)
