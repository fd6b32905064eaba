"""The rendered files that hold the Wi-Fi passphrase or the mesh key (hostapd.conf, wpa_supplicant-mesh.conf,
relay.uci, mesh.uci) are readable by their owner only: where `wifi render`/`mesh render` write them, and where
`wifi apply` puts them on the board (a real OpenSSH server on 127.0.0.1, --remote-root: this machine's /etc
is not touched), also over an older copy that was readable by all."""

import os
import stat

import pytest

from tests.flash.test_install import sshd, ssh_args  # noqa: F401  (the fixture, reused)
from tests.host.test_wifi_apply import relayctl
from tests.mesh.test_mesh_apply import needs_ssh
from tests.mesh.test_mesh_render import SITE

SECRET = "a long shared mesh secret"  # SITE's mesh key
PASSPHRASE = "phones join this"  # SITE's Wi-Fi passphrase


@pytest.fixture
def site(tmp_path):
    p = tmp_path / "site.toml"
    p.write_text(SITE)
    return p


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def holding_secrets(directory):
    return [p for p in directory.rglob("*") if p.is_file() and (SECRET in p.read_text() or PASSPHRASE in p.read_text())]


@pytest.mark.parametrize("verb,board,relay", [("wifi", "rpi-4", "roof"), ("mesh", "rpi-4", "roof"),
                                              ("wifi", "gl-mt300n-v2", "hall"), ("mesh", "gl-mt300n-v2", "hall")])
def test_render_writes_the_secrets_private(site, tmp_path, verb, board, relay):
    out = tmp_path / "out"
    r = relayctl(verb, "render", board, "--site", str(site), "--relay", relay, "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    found = holding_secrets(out)
    assert found, sorted(p.name for p in out.iterdir())
    assert {p.name: oct(mode(p)) for p in found if mode(p) & 0o077} == {}


@needs_ssh
@pytest.mark.parametrize("board,relay", [("rpi-4", "roof"), ("gl-mt300n-v2", "hall")])
def test_apply_puts_the_secrets_on_the_board_private(sshd, site, tmp_path, board, relay):  # noqa: F811
    root = tmp_path / "board"
    for d in ("etc/hostapd", "etc/relay"):
        (root / d).mkdir(parents=True)
    for old in ("etc/hostapd/hostapd.conf", "etc/relay/relay.uci", "etc/relay/wpa_supplicant-mesh.conf"):
        (root / old).write_text("# an older copy, readable by all\n")
        (root / old).chmod(0o644)
    r = relayctl("wifi", "apply", board, "--site", str(site), "--relay", relay, "--host",
                 f"{sshd['user']}@127.0.0.1", "--remote-root", str(root), *ssh_args(sshd), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    found = holding_secrets(root / "etc")
    assert found
    assert {str(p.relative_to(root)): oct(mode(p)) for p in found if mode(p) & 0o077} == {}
