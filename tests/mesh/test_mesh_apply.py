"""The mesh files travel with the relay: `relayctl wifi apply --relay` (against a real OpenSSH server on
127.0.0.1, always with --remote-root: nothing under this machine's /etc is touched) and the bundle
`relayctl build --relay` makes for `relayctl install`."""

import io
import os
import shutil
import subprocess
import tarfile

import pytest

from tests.flash.test_install import SSHD, ssh_args, sshd  # noqa: F401  (the fixture, reused)
from tests.host.test_wifi_apply import relayctl
from tests.mesh.test_mesh_render import SITE

needs_ssh = pytest.mark.skipif(not (os.path.exists(SSHD) and shutil.which("ssh")),
                               reason="needs OpenSSH server and client (Debian openssh-server)")


@pytest.fixture
def site(tmp_path):
    p = tmp_path / "site.toml"
    p.write_text(SITE)
    return p


@needs_ssh
def test_wifi_apply_carries_a_linux_relays_mesh_files(sshd, site, tmp_path):  # noqa: F811
    root = tmp_path / "board"
    (root / "etc").mkdir(parents=True)
    (root / "etc/nftables.conf").write_text("#!/usr/sbin/nft -f\nflush ruleset\n")
    rendered = tmp_path / "rendered"
    assert relayctl("mesh", "render", "rpi-4", "--site", str(site), "--relay", "stairs", "--out", str(rendered),
                    cwd=tmp_path).returncode == 0
    for _ in range(2):  # applying twice changes nothing more
        r = relayctl("wifi", "apply", "rpi-4", "--site", str(site), "--relay", "stairs", "--host",
                     f"{sshd['user']}@127.0.0.1", "--remote-root", str(root), *ssh_args(sshd), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    etc = root / "etc"
    assert (etc / "babeld.conf").read_text() == (rendered / "babeld.conf").read_text()
    for name in ("mesh-up.sh", "wpa_supplicant-mesh.conf", "mesh-plan.txt"):
        assert (etc / "relay" / name).read_text() == (rendered / name).read_text()
    assert (etc / "nftables.d/mesh.nft").read_text() == (rendered / "mesh.nft").read_text()
    assert (etc / "systemd/system/relay-mesh.service").read_text() == (rendered / "relay-mesh.service").read_text()
    assert (etc / "nftables.conf").read_text().count('include "/etc/nftables.d/mesh.nft"') == 1
    assert "1082" in (etc / "nftables.d/relay.nft").read_text()  # its satellite reaches the mesh port
    cmds = (root / ".relay-wifi-commands").read_text().splitlines()
    assert cmds[4:8] == ["systemctl daemon-reload", "systemctl enable relay-mesh babeld",
                         "systemctl restart relay-mesh babeld", "nft -f /etc/nftables.d/relay.nft"]


@needs_ssh
def test_wifi_apply_carries_an_openwrt_relays_mesh_files(sshd, site, tmp_path):  # noqa: F811
    root = tmp_path / "router"
    root.mkdir()
    r = relayctl("wifi", "apply", "gl-mt300n-v2", "--site", str(site), "--relay", "hall", "--host",
                 f"{sshd['user']}@127.0.0.1", "--remote-root", str(root), *ssh_args(sshd), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "set wireless.relaymesh.mode='mesh'" in (root / "etc/relay/mesh.uci").read_text()
    assert "redistribute local deny" in (root / "etc/babeld.conf").read_text()
    cmds = (root / ".relay-wifi-commands").read_text().splitlines()
    assert cmds[2].startswith("for s in $(uci -q show wireless")
    assert cmds[3:] == ["uci batch < /etc/relay/mesh.uci", "/etc/init.d/babeld enable; /etc/init.d/babeld restart",
                        "reload_config"]
    # Applying again first deletes what the last apply made: the section names are really extracted
    # (the wifi part's sed once printed a control character instead of the name).
    for cmd, show, want in ((cmds[0], "firewall.relay_dhcp=rule\nfirewall.relay=zone\nfirewall.lan=zone\n",
                             "relay_dhcp relay"),
                            (cmds[2], "wireless.relaymesh=wifi-iface\nwireless.relay=wifi-iface\n", "relaymesh")):
        sed = cmd.split("sed -n '", 1)[1].split("'", 1)[0]
        got = subprocess.run(["sed", "-n", sed], input=show, capture_output=True, text=True).stdout.split()
        assert " ".join(got) == want, (sed, got)


def test_the_bundle_carries_the_mesh_files(site, tmp_path):
    """`relayctl install` sends the bundle; its wifi/ holds the relay's mesh files for `wifi apply`."""
    r = relayctl("build", "rpi-4", "--site", str(site), "--relay", "roof", "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO((tmp_path / "b" / "relay-rpi-4.tar.gz").read_bytes())) as tar:
        names = tar.getnames()
        cfg = tar.extractfile("relay-rpi-4/config.json").read().decode()
    for name in ("babeld.conf", "mesh-up.sh", "mesh.nft", "wpa_supplicant-mesh.conf"):
        assert f"relay-rpi-4/wifi/{name}" in names
    assert '"service": "10.77.1.1"' in cfg
