"""`relayctl wifi apply` against a real OpenSSH server on 127.0.0.1 (throwaway keys; the sshd fixture of
tests/flash/test_install.py), always with --remote-root: files land in a temporary root and the commands
that would change the live system are listed, not run, so nothing under this machine's /etc is touched."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.flash.test_install import SSHD, ssh_args, sshd  # noqa: F401  (the fixture, reused)

pytestmark = pytest.mark.skipif(not (os.path.exists(SSHD) and shutil.which("ssh")),
                                reason="needs OpenSSH server and client (Debian openssh-server)")


def relayctl(*args, cwd):
    return subprocess.run([str(Path(sys.executable).parent / "relayctl"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.fixture
def site(tmp_path):
    p = tmp_path / "site.toml"
    p.write_text('[wifi]\nssid = "relay-apply"\nsecurity = "wpa2"\npassphrase = "relay apply pass"\ncountry = "KZ"\n'
                 "channel = 1\n")
    return p


def test_apply_linux(sshd, site, tmp_path):  # noqa: F811
    root = tmp_path / "board"
    root.mkdir()
    (root / "etc/hostapd").mkdir(parents=True)
    (root / "etc/hostapd/hostapd.conf").write_text("interface=wlan9\n# the board's own\n")
    (root / "etc/nftables.conf").write_text("#!/usr/sbin/nft -f\nflush ruleset\n")
    rendered = tmp_path / "rendered"
    assert relayctl("wifi", "render", "rpi-4", "--site", str(site), "--out", str(rendered), cwd=tmp_path).returncode == 0
    for _ in range(2):  # applying twice changes nothing more
        r = relayctl("wifi", "apply", "rpi-4", "--site", str(site), "--host", f"{sshd['user']}@127.0.0.1",
                     "--remote-root", str(root), *ssh_args(sshd), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    assert "applied address-plan.txt, dnsmasq.conf, hostapd.conf, relay.nft" in r.stdout + r.stderr
    etc = root / "etc"
    assert (etc / "hostapd/hostapd.conf").read_text() == (rendered / "hostapd.conf").read_text()
    assert (etc / "hostapd/hostapd.conf.before-relay").read_text().startswith("interface=wlan9")
    assert (etc / "dnsmasq.d/relay.conf").read_text() == (rendered / "dnsmasq.conf").read_text()
    assert (etc / "nftables.d/relay.nft").read_text() == (rendered / "relay.nft").read_text()
    assert (etc / "relay/address-plan.txt").read_text() == (rendered / "address-plan.txt").read_text()
    assert (etc / "nftables.conf").read_text().count('include "/etc/nftables.d/relay.nft"') == 1
    cmds = (root / ".relay-wifi-commands").read_text().splitlines()
    assert cmds[:4] == ["nft -f /etc/nftables.d/relay.nft", "systemctl unmask hostapd",
                        "systemctl enable nftables hostapd dnsmasq", "systemctl restart hostapd dnsmasq"]
    assert not list(Path("/tmp").glob("relay-wifi-*/hostapd.conf"))  # the staging directory is gone


def test_apply_openwrt(sshd, site, tmp_path):  # noqa: F811
    root = tmp_path / "router"
    root.mkdir()
    r = relayctl("wifi", "apply", "gl-mt300n-v2", "--site", str(site), "--host", f"{sshd['user']}@127.0.0.1",
                 "--remote-root", str(root), *ssh_args(sshd), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    uci = (root / "etc/relay/relay.uci").read_text()
    assert "set wireless.relay.isolate='1'" in uci and "set firewall.relay_zero_tap_0=redirect" in uci
    cmds = (root / ".relay-wifi-commands").read_text().splitlines()
    assert cmds[0].startswith("uci -q delete wireless.relay;") and "$(uci -q show firewall" in cmds[0]
    assert cmds[1:] == ["uci batch < /etc/relay/relay.uci", "reload_config"]
    assert not (root / "etc/hostapd").exists()


def test_apply_wrong_key_says_what_to_do(sshd, site, tmp_path):  # noqa: F811
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    args = ssh_args(sshd)
    args[args.index("--identity") + 1] = str(tmp_path / "other")
    r = relayctl("wifi", "apply", "rpi-4", "--host", f"{sshd['user']}@127.0.0.1", "--remote-root",
                 str(tmp_path / "x"), *args, cwd=tmp_path)
    assert r.returncode == 1 and "does not accept your key" in r.stderr
    assert not (tmp_path / "x").exists()


def test_apply_refuses_a_micropython_board(tmp_path):
    r = relayctl("wifi", "apply", "esp32-generic", "--host", "root@127.0.0.1", cwd=tmp_path)
    assert r.returncode == 2 and "not a Linux board" in r.stderr
