"""Uplink engines without a network: the site file's checks, the configs each engine's own program
accepts (trojan -t, tor --verify-config), a missing program named with its package, and the
supervisor's restarts with backoff. Everything runs on loopback or not at all."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relayctl import boards
from relayctl.engines import client, engines_of, server, which
from relayctl.engines.supervise import Supervisor
from tests.engines.censorlab import self_signed

ROOT = Path(__file__).resolve().parents[2]
RELAYCTL = [sys.executable, "-m", "relayctl.cli"]
ENV = dict(os.environ, PYTHONPATH=f"{ROOT / 'host_tools'}:{ROOT}")

SITE = """[uplink]
probe = "telegram.org:80"

[[uplink.engine]]
kind = "shadowsocks"
server = "203.0.113.10"
port = 8388
password = "a long shared secret"

[[uplink.engine]]
kind = "trojan"
server = "bakery.example"
password = "another secret"
ca = "%(ca)s"

[[uplink.engine]]
kind = "tor"
bridges = ["obfs4 203.0.113.7:443 2B280B23E1107BB62ABFC40DDCC8824814F80A72 cert=ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw iat-mode=0"]

[[uplink.engine]]
kind = "snowflake"

[[uplink.engine]]
kind = "iodine"
domain = "t.example.org"
password = "tunnel secret"
"""


def load(tmp_path, text):
    p = tmp_path / "site.toml"
    p.write_text(text)
    return boards.load("linux-host", str(p))


def test_site_engines_are_checked_with_defaults_filled_in(tmp_path):
    r = load(tmp_path, SITE % {"ca": ""})
    assert not r.errors, [str(p) for p in r.errors]
    es = {e.name: e for e in engines_of(r["uplink.engine"])}
    assert [e.kind for e in es.values()] == ["shadowsocks", "trojan", "tor", "snowflake", "iodine"]
    assert es["shadowsocks"].method == "chacha20-ietf-poly1305"  # AEAD by default
    assert es["trojan"].port == 443 and es["trojan"].sni == "bakery.example"
    assert [es[n].local_port for n in ("shadowsocks", "trojan", "tor", "snowflake")] == [1090, 1091, 1092, 1093]
    assert es["iodine"].upstream_url() == "socks5h://10.53.0.1:1080"  # the SOCKS server over the tunnel
    assert es["shadowsocks"].far_ports() == [("203.0.113.10", 8388, "tcp")]
    assert es["tor"].far_ports() == [("203.0.113.7", 443, "tcp")]


@pytest.mark.parametrize("entry,message", [
    ('kind = "shadowsock"\nserver = "x"', 'did you mean "shadowsocks"?'),
    ('kind = "shadowsocks"\nserver = "x"\npasword = "p"', 'pasword: unknown key (did you mean "password"?)'),
    ('kind = "shadowsocks"\nserver = "x"\nmethod = "aes-256-cfb"', "expected an AEAD cipher"),
    ('kind = "trojan"\nport = 443', "server: missing (the far end's address)"),
    ('kind = "tor"', "bridges: missing"),
    ('kind = "iodine"\ndomain = "t.example"\npassword = "' + "x" * 40 + '"', "at most 32 characters"),
    ('kind = "shadowsocks"\nserver = "x"\nport = "8388"', "expected a port"),
])
def test_a_broken_engine_entry_is_one_line_naming_file_line_and_field(tmp_path, entry, message):
    r = load(tmp_path, "[uplink]\n\n[[uplink.engine]]\n" + entry + "\n")
    errors = [str(p) for p in r.errors]
    assert len(errors) == 1 and message in errors[0], errors
    assert "site.toml:3: uplink.engine: engine 1" in errors[0], errors  # the [[uplink.engine]] line


def test_client_configs_are_accepted_by_the_engines_themselves(tmp_path):
    if not (which("trojan") and which("tor")):
        pytest.skip("trojan and tor are installed by make setup")
    self_signed(tmp_path / "cert.pem", tmp_path / "key.pem", "bakery.example")
    r = load(tmp_path, SITE % {"ca": tmp_path / "cert.pem"})
    for e in engines_of(r["uplink.engine"]):
        launch = client.launch(e, str(tmp_path), str(tmp_path / "state"))
        for name, text in launch.files.items():
            (tmp_path / name).write_text(text)
        if e.kind == "trojan":
            res = subprocess.run(["trojan", "-t", "-c", launch.argv[-1]], capture_output=True, text=True, timeout=20)
            assert res.returncode == 0 and "looks good" in res.stdout + res.stderr, res
            far = server.render(e, "127.0.0.1")
            (tmp_path / "srv.json").write_text(far["trojan-server.json"].replace(e.cert, str(tmp_path / "cert.pem"))
                                               .replace(e.key, str(tmp_path / "key.pem")))
            res = subprocess.run(["trojan", "-t", "-c", str(tmp_path / "srv.json")], capture_output=True, text=True,
                                 timeout=20)
            assert res.returncode == 0, res
        if e.kind in ("tor", "snowflake"):
            res = subprocess.run([which("tor"), "--verify-config", "-f", launch.argv[-1]], capture_output=True,
                                 text=True, timeout=30)
            assert res.returncode == 0 and "Configuration was valid" in res.stdout, res.stdout[-1000:]
            text = launch.files[f"{e.name}.torrc"]
            assert "SocksTimeout 60" in text and "Log notice stdout" in text
            if e.kind == "snowflake":
                assert "ClientTransportPlugin snowflake exec" in text and text.count("Bridge snowflake") == 2
            if e.name == "tor":
                far = server.render(e)["torrc"]
                (tmp_path / "bridge.torrc").write_text(far + f"DataDirectory {tmp_path / 'bridge'}\n")
                res = subprocess.run([which("tor"), "--verify-config", "-f", str(tmp_path / "bridge.torrc")],
                                     capture_output=True, text=True, timeout=30)
                assert res.returncode == 0, res.stdout[-1000:]
        if e.kind == "iodine":
            assert launch.env == {"IODINE_PASS": "tunnel secret"} and "tunnel secret" not in launch.argv


def test_a_missing_engine_program_is_one_line_naming_its_packages(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(SITE % {"ca": ""})
    env = dict(ENV, PATH="/nonexistent")  # no ss-local, trojan, ... on this PATH (tor and iodine live in sbin)
    r = subprocess.run(RELAYCTL + ["run", "--site", str(site)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert ("relayctl: shadowsocks: ss-local not found: install it (Debian: apt install shadowsocks-libev; "
            "OpenWrt: opkg install shadowsocks-libev-ss-local)") in lines, r.stderr
    assert any(line.startswith("trojan: trojan not found") for line in lines), r.stderr
    assert "Traceback" not in r.stderr


def test_an_engine_that_dies_is_restarted_with_backoff_and_counted(tmp_path):
    if not which("ss-local"):
        pytest.skip("ss-local is installed by make setup")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    r = load(tmp_path, f'[uplink]\n[[uplink.engine]]\nkind = "shadowsocks"\nserver = "127.0.0.1"\n'
                       f'password = "x"\nlocal_port = {port}\n')
    said = []
    sup = Supervisor(engines_of(r["uplink.engine"]), tmp_path, say=lambda text: said.append((time.monotonic(), text)))
    try:
        sup.start()
        deadline = time.monotonic() + 12
        while len(said) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sup.stop()
        taken.close()
    assert len(said) >= 3, said
    assert all(f"its local port {port} is taken" in text for _, text in said), said
    assert [text.split("restart ")[1].split(" in ")[0] for _, text in said[:3]] == ["1", "2", "3"]
    gaps = [b[0] - a[0] for a, b in zip(said, said[1:])]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # 1 s, then 2 s: never a tight loop
    assert sup.state()[0]["restarts"] >= 3
    assert (tmp_path / "conf" / "shadowsocks.json").stat().st_mode & 0o077 == 0  # the password file is private


def test_build_and_install_put_the_engines_on_the_board(tmp_path):
    """relayctl build bundles each engine's config (0600) and a unit that keeps it running 10 s after
    each exit; relayctl install --root puts them where systemd looks; config.json chains the relay."""
    import json
    import tarfile

    self_signed(tmp_path / "cert.pem", tmp_path / "key.pem", "bakery.example")
    site = tmp_path / "site.toml"
    site.write_text(SITE % {"ca": tmp_path / "cert.pem"})
    root = tmp_path / "root"
    root.mkdir()
    r = subprocess.run(RELAYCTL + ["install", "rpi-4", "--site", str(site), "--root", str(root), "--out",
                                   str(tmp_path / "out")], capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    with tarfile.open(tmp_path / "out" / "relay-rpi-4.tar.gz") as tar:
        cfg = json.load(tar.extractfile("relay-rpi-4/config.json"))
        modes = {m.name.split("/")[-1]: m.mode for m in tar.getmembers() if "/engines/" in m.name}
    assert cfg["upstream"]["names"] == ["shadowsocks", "trojan", "tor", "snowflake", "iodine"]
    assert cfg["upstream"]["proxies"][0] == "socks5h://127.0.0.1:1090" and cfg["upstream"]["probe"] == "telegram.org:80"
    assert modes["shadowsocks.json"] == modes["trojan-ca.pem"] == modes["iodine.env"] == 0o600
    units = root / "etc/systemd/system"
    for name in ("shadowsocks", "trojan", "tor", "snowflake", "iodine"):
        unit = (units / f"relay-engine-{name}.service").read_text()
        assert "Restart=always" in unit and "RestartSec=10" in unit
        assert (units / "multi-user.target.wants" / f"relay-engine-{name}.service").is_symlink()
    assert "LoadCredential=trojan-ca.pem:/opt/relay/engines/trojan-ca.pem" in (units / "relay-engine-trojan.service").read_text()
    assert (root / "opt/relay/engines/shadowsocks.json").stat().st_mode & 0o077 == 0
    assert "tunnel secret" not in (units / "relay-engine-iodine.service").read_text()  # in the 0600 env file


def test_every_far_end_is_rendered_with_what_it_refuses_and_installs_all_of_it(tmp_path):
    """The behaviour is shown in tests/engines/test_far_end_guard_netns.py; here, that nothing the
    README installs is missing and nothing rendered is left out of it."""
    from relayctl.engines import farguard

    for e in engines_of(load(tmp_path, SITE % {"ca": ""})["uplink.engine"]):
        if e.kind == "snowflake":
            continue
        files = server.render(e)
        if e.kind == "tor":
            assert "ExitPolicy reject *:*" in files["torrc"]  # a bridge, never an exit
            continue
        guards = [files[f"far-end-{e.kind}.nft"]] + ([files["ss-server.acl"]] if e.kind == "shadowsocks" else [])
        for text in guards:
            assert all(net in text for net in farguard.BLOCKED4 + farguard.BLOCKED6), e.kind
        readme = files["README.txt"]
        installed = set(re.findall(r"^install [^#\n]*?(\S+) /\S+", readme, re.M))
        assert installed == set(files) - {"README.txt"}, (e.kind, installed)
        assert farguard.useradd(farguard.USERS[e.kind]) in readme
    ss = server.render(engines_of(load(tmp_path, SITE % {"ca": ""})["uplink.engine"])[0], "0.0.0.0")
    assert "203.0.113.10" in ss["ss-server.acl"] and "203.0.113.10" in ss["far-end-shadowsocks.nft"]  # its own address
