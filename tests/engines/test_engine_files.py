"""What `relayctl engine server-config` and `relayctl build` write for the engines, as files on disk: who can
read them, and whether the programs that read them (systemd, sh on OpenWrt) take the secrets whole.
No network: nothing here connects anywhere."""

import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RELAYCTL = [sys.executable, "-m", "relayctl.cli"]
ENV = dict(os.environ, PYTHONPATH=f"{ROOT / 'host_tools'}:{ROOT}")

# A password a person might type: a space, a quote, a dollar, a percent (systemd's specifier sign), a backslash.
AWKWARD = "it's a $HOME %n \\secret"


def relayctl(*argv, cwd):
    return subprocess.run(RELAYCTL + list(argv), capture_output=True, text=True, timeout=120, env=ENV, cwd=cwd)


def private(path):
    return stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0


def test_a_password_made_for_the_far_end_keeps_the_site_file_private(tmp_path):
    """The site file holds the Wi-Fi passphrase, proxy passwords and perhaps a SIM PIN: writing the new
    engine password back into it must not leave it readable by everyone (it was 0644 after the write)."""
    site = tmp_path / "site.toml"
    site.write_text('[wifi]\nsecurity = "wpa2"\npassphrase = "phones join this"  # kept\n\n'
                    '[[uplink.engine]]\nkind = "shadowsocks"\nserver = "127.0.0.1"\n')
    site.chmod(0o600)
    r = relayctl("engine", "server-config", "shadowsocks", "--site", str(site), "--out", "far", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert private(site), oct(site.stat().st_mode)
    text = site.read_text()
    assert "password = " in text and 'passphrase = "phones join this"  # kept' in text
    assert not list(tmp_path.glob("site.toml.*")), "a temporary file was left beside the site file"
    assert all(private(p) for p in (tmp_path / "far").iterdir())


def _iodine_site(tmp_path):
    site = tmp_path / "site.toml"
    pw = AWKWARD.replace("\\", "\\\\")
    site.write_text(f'[[uplink.engine]]\nkind = "iodine"\ndomain = "t.example.org"\npassword = "{pw}"\n')
    site.chmod(0o600)
    return site


def test_the_far_ends_iodined_gets_its_password_whole_from_a_private_file(tmp_path):
    """The unit must not carry the password (`systemctl show` prints Environment= to every local user,
    and systemd splits it at the space and expands %n); an EnvironmentFile of its own, mode 0600, does."""
    site = _iodine_site(tmp_path)
    r = relayctl("engine", "server-config", "iodine", "--site", str(site), "--out", "far", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    far = tmp_path / "far"
    unit = (far / "relay-iodined.service").read_text()
    assert "secret" not in unit and "IODINED_PASS=" not in unit, unit
    env_line = [ln for ln in unit.splitlines() if ln.startswith("EnvironmentFile=")]
    assert env_line, unit
    env_name = Path(env_line[0].split("=", 1)[1]).name
    assert private(far / env_name)
    assert _sourced(far / env_name, "IODINED_PASS") == AWKWARD
    if shutil.which("systemd-analyze"):
        v = subprocess.run(["systemd-analyze", "verify", "--man=no", str(far / "relay-iodined.service")],
                           capture_output=True, text=True, timeout=60)
        assert "Invalid environment" not in v.stderr, v.stderr


def _sourced(env_file, name):
    """The value a POSIX shell gets from `. FILE` (OpenWrt's procd script does this; systemd's EnvironmentFile
    parser follows the same quoting rules for single quotes)."""
    sh = shutil.which("busybox") and ["busybox", "sh"] or ["sh"]
    r = subprocess.run(sh + ["-c", f'. "$1"; printf %s "${name}"', "sh", str(env_file)], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("board", ["rpi-4", "gl-mt300n-v2"])
def test_the_boards_iodine_gets_its_password_whole(tmp_path, board):
    """The board's iodine.env is sourced by sh on OpenWrt (procd) and read by systemd on a Pi: an unquoted
    password with a space ran its second word as a command there."""
    site = _iodine_site(tmp_path)
    r = relayctl("build", board, "--site", str(site), "--out", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    bundle = next((tmp_path / "out").glob("relay-*.tar.gz"))
    with tarfile.open(bundle) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    eng = next((tmp_path / "x").glob("relay-*/engines"))
    assert _sourced(eng / "iodine.env", "IODINE_PASS") == AWKWARD
    init = eng / "relay-engine-iodine.init"
    if init.exists():  # procd: the value goes on as one word
        assert 'procd_set_param env "IODINE_PASS=$IODINE_PASS"' in init.read_text(), init.read_text()


def test_a_trojan_ca_is_found_beside_the_site_file_and_a_missing_one_is_one_line(tmp_path):
    """ca = "far-ca.pem" means the file beside the site file (as fleet.ca_file does), wherever relayctl runs;
    a missing one is a one-line error naming the key, not a FileNotFoundError traceback."""
    from tests.engines.censorlab import self_signed

    sitedir = tmp_path / "site"
    sitedir.mkdir()
    self_signed(sitedir / "far-ca.pem", sitedir / "far-key.pem", "far.example")
    site = sitedir / "site.toml"
    site.write_text('[[uplink.engine]]\nkind = "trojan"\nserver = "127.0.0.1"\npassword = "p"\nca = "far-ca.pem"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = relayctl("build", "rpi-4", "--site", str(site), "--out", "out", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    with tarfile.open(elsewhere / "out" / "relay-rpi-4.tar.gz") as tar:
        pem = tar.extractfile("relay-rpi-4/engines/trojan-ca.pem").read()
    assert pem == (sitedir / "far-ca.pem").read_bytes()

    (sitedir / "far-ca.pem").unlink()
    r = relayctl("build", "rpi-4", "--site", str(site), "--out", "out2", cwd=elsewhere)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "far-ca.pem" in r.stderr and "ca" in r.stderr, r.stderr
    assert not (elsewhere / "out2" / "relay-rpi-4.tar.gz").exists()
