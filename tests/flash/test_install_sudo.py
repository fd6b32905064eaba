"""`relayctl install` and `wifi apply` with a login that is not root, as on Raspberry Pi OS (its first user is a
sudoer): the script runs through `sudo -n`; a user whom sudo asks for a password gets one line saying what to do.

A real OpenSSH server on 127.0.0.1 and real sudo. The test makes two throwaway users (one with NOPASSWD, one
without) and their sudoers entries, and removes them at the end, also on failure. --remote-root keeps every
file under the test's own directory.
"""

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.flash.flashkit import relayctl
from tests.flash.test_install import SSHD, builds, start_sshd  # noqa: F401  (the fixture, reused)

pytestmark = pytest.mark.skipif(
    not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("sudo") and shutil.which("useradd")
         and os.geteuid() == 0),
    reason="needs OpenSSH, sudo (Debian sudo), useradd and root to make throwaway users")


@pytest.fixture(scope="module")
def logins():
    """{"sudoer": name, "asks": name} on a sshd that takes one throwaway key for both."""
    tag = f"{os.getpid() % 100000}{secrets.token_hex(2)}"
    users = {"sudoer": f"rly{tag}s", "asks": f"rly{tag}p"}
    d = Path(tempfile.mkdtemp(prefix="relay-sudo-sshd-"))  # under /tmp: the users must read the key list
    d.chmod(0o755)
    made, proc = [], None
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "user")], check=True)
        shutil.copy(d / "user.pub", d / "authorized_keys")
        (d / "authorized_keys").chmod(0o644)
        for kind, name in users.items():
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", "-p", "*", name], check=True)
            made.append(name)
            rule = f"{name} ALL=(ALL) NOPASSWD: ALL\n" if kind == "sudoer" else f"{name} ALL=(ALL) ALL\n"
            sudoers = Path(f"/etc/sudoers.d/{name}")
            sudoers.write_text(rule)
            sudoers.chmod(0o440)
        proc, port = start_sshd(d, f"AllowUsers {' '.join(users.values())}\n")
        key = d / "user-copy"  # ssh wants a private key only its reader can read: ours (root)
        shutil.copy(d / "user", key)
        key.chmod(0o600)
        yield {"port": port, "key": str(key), "known": str(d / "known_hosts"), **users}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(5)
        for name in made:
            Path(f"/etc/sudoers.d/{name}").unlink(missing_ok=True)
            subprocess.run(["userdel", "-r", name], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def ssh_args(s):
    return ["--ssh-port", str(s["port"]), "--identity", s["key"], "--ssh-option", "StrictHostKeyChecking=accept-new",
            "--ssh-option", f"UserKnownHostsFile={s['known']}"]


def test_install_as_a_sudoer_goes_through_sudo(logins, builds, tmp_path):  # noqa: F811
    root = tmp_path / "rootfs"
    r = relayctl("install", "rpi-4", "--host", f"{logins['sudoer']}@127.0.0.1", "--image", str(builds["rpi-4"]),
                 "--remote-root", str(root), *ssh_args(logins))
    assert r.returncode == 0, r.stdout + r.stderr
    cfg = root / "opt/relay/config.json"
    assert cfg.read_bytes() == (builds["rpi-4"] / "config.json").read_bytes()
    assert cfg.stat().st_uid == 0 and cfg.stat().st_mode & 0o077 == 0  # root's, as a root login leaves it
    assert (root / "etc/systemd/system/relay.service").stat().st_uid == 0


def test_a_user_whom_sudo_asks_for_a_password_is_told_what_to_do(logins, builds, tmp_path):  # noqa: F811
    name = logins["asks"]
    r = relayctl("install", "rpi-4", "--host", f"{name}@127.0.0.1", "--image", str(builds["rpi-4"]),
                 "--remote-root", str(tmp_path / "rootfs"), *ssh_args(logins))
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "sudo asks" in r.stderr and "NOPASSWD" in r.stderr and "root" in r.stderr
    assert not (tmp_path / "rootfs" / "opt").exists()
    assert not [p for p in Path("/tmp").glob("relay-install-*") if p.owner() == name]  # the staged secrets too


def test_wifi_apply_as_a_sudoer(logins, tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[wifi]\nssid = "relay-sudo"\nsecurity = "wpa2"\npassphrase = "a real passphrase 42"\n'
                    'country = "KZ"\nchannel = 1\n')
    root = tmp_path / "board"
    (root / "etc").mkdir(parents=True)
    r = relayctl("wifi", "apply", "rpi-4", "--site", str(site), "--host", f"{logins['sudoer']}@127.0.0.1",
                 "--remote-root", str(root), *ssh_args(logins))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (root / "etc/hostapd/hostapd.conf").stat().st_uid == 0
