"""relayctl install over a real OpenSSH server on 127.0.0.1 (throwaway keys) into a
temporary root, and offline into a directory with --root."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.flash.flashkit import relayctl

SSHD = "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(not (os.path.exists(SSHD) and shutil.which("ssh")),
                                reason="needs OpenSSH server and client (Debian openssh-server)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_sshd(d, config):
    """sshd on 127.0.0.1 with d's host key and authorized_keys, and config's lines -> (process, port). A port
    taken between free_port() and sshd's bind is given up for another, five times at most."""
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    for _attempt in range(5):
        port = free_port()
        (d / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nPidFile {d / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n" + config)
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        if proc.poll() is None:
            return proc, port
    pytest.fail("sshd did not start: " + proc.stderr.read().decode())


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    d = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "user")], check=True)
    shutil.copy(d / "user.pub", d / "authorized_keys")
    os.chmod(d / "authorized_keys", 0o600)
    proc, port = start_sshd(d, "PermitRootLogin prohibit-password\n")
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    yield {"port": port, "key": str(d / "user"), "known": str(d / "known_hosts"), "user": user}
    proc.terminate()
    proc.wait(5)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    from relayctl.images import build_board

    out = {}
    for board in ("rpi-4", "gl-mt300n-v2"):
        d = tmp_path_factory.mktemp(board)
        build_board(board, None, d, None)
        out[board] = d
    return out


def ssh_args(s):
    return ["--ssh-port", str(s["port"]), "--identity", s["key"], "--ssh-option", "StrictHostKeyChecking=accept-new",
            "--ssh-option", f"UserKnownHostsFile={s['known']}"]


def test_install_over_ssh_systemd(sshd, builds, tmp_path):
    root = tmp_path / "rootfs"
    r = relayctl("install", "rpi-4", "--host", f"{sshd['user']}@127.0.0.1", "--image", str(builds["rpi-4"]),
                 "--remote-root", str(root), *ssh_args(sshd))
    assert r.returncode == 0, r.stdout + r.stderr
    unit = root / "etc/systemd/system/relay.service"
    assert "ExecStart=/usr/bin/python3 -m relay --config /var/lib/relay/config.json" in unit.read_text()
    assert "/opt/relay/config.json /var/lib/relay/config.json" in unit.read_text()
    link = root / "etc/systemd/system/multi-user.target.wants/relay.service"
    assert os.readlink(link) == "/etc/systemd/system/relay.service"
    assert (root / "opt/relay/config.json").read_bytes() == (builds["rpi-4"] / "config.json").read_bytes()
    assert (root / "opt/relay/config.json").stat().st_mode & 0o077 == 0  # it holds the site's secrets
    # The installed tree is the relay: it loads and checks the installed config.json under this Python.
    h = subprocess.run([sys.executable, "-c", "import relay, relay.server, relay.config as c; "
                        "c.load(open(%r).read()); print(relay.__file__)" % str(root / "opt/relay/config.json")],
                       env={"PYTHONPATH": str(root / "opt/relay/firmware")}, capture_output=True, text=True,
                       cwd=str(root))
    assert h.returncode == 0, h.stderr
    assert h.stdout.startswith(str(root / "opt/relay/firmware/relay/"))
    assert not list(Path("/tmp").glob("relay-install-*/relay-rpi-4"))


def test_install_over_ssh_procd(sshd, builds, tmp_path):
    root = tmp_path / "rootfs"
    r = relayctl("install", "gl-mt300n-v2", "--host", f"{sshd['user']}@127.0.0.1", "--image",
                 str(builds["gl-mt300n-v2"]), "--remote-root", str(root), *ssh_args(sshd))
    assert r.returncode == 0, r.stdout + r.stderr
    init = root / "etc/init.d/relay"
    assert init.read_text().startswith("#!/bin/sh /etc/rc.common") and os.access(init, os.X_OK)
    assert os.readlink(root / "etc/rc.d/S95relay") == "../init.d/relay"
    assert os.readlink(root / "etc/rc.d/K10relay") == "../init.d/relay"
    assert (root / "usr/share/relay/firmware/relay/__main__.py").exists()


def test_wrong_key_says_what_to_do(sshd, builds, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    args = ssh_args(sshd)
    args[3] = str(tmp_path / "other")
    r = relayctl("install", "rpi-4", "--host", f"{sshd['user']}@127.0.0.1", "--image", str(builds["rpi-4"]),
                 "--remote-root", str(tmp_path / "r"), *args)
    assert r.returncode == 1
    assert "does not accept your key" in r.stderr and "ssh-copy-id" in r.stderr


def test_offline_root(builds, tmp_path):
    root = tmp_path / "sdcard"
    root.mkdir()
    r = relayctl("install", "rpi-4", "--root", str(root), "--image", str(builds["rpi-4"]))
    assert r.returncode == 0, r.stderr
    assert (root / "etc/systemd/system/multi-user.target.wants/relay.service").is_symlink()
    assert (root / "opt/relay/firmware/relay/server.py").exists()
    assert not (root / ".relay-install").exists()


def test_esp32_is_pointed_to_flash(esp32_build, tmp_path):
    r = relayctl("install", "esp32-generic", "--root", str(tmp_path), "--image", str(esp32_build))
    assert r.returncode == 1 and "relayctl flash" in r.stderr


def test_another_boards_build_is_refused_with_one_line(builds, tmp_path):
    root = tmp_path / "sdcard"
    root.mkdir()
    r = relayctl("install", "rpi-4", "--root", str(root), "--image", str(builds["gl-mt300n-v2"]))
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "is a build of gl-mt300n-v2, not rpi-4" in r.stderr and "nothing was written" in r.stderr
    assert not any(root.iterdir())  # no procd script in a Pi's root
