"""`relayctl mtproto rotate` on an installed relay: the systemd unit runs the relay on a copy of
/opt/relay/config.json in its state directory, so the new secret reaches it only through
`systemctl reload relay` (copy, then SIGHUP). Rotate must do that, and say the relay took the secret
only after seeing it did.

The unit is the one `relayctl build` renders (images/linux.py), its paths moved into tmp_path; systemd
is tests/sim/systemctl.py, which runs the unit's own ExecReload= line.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers.relayproc import RelayProcess, free_port
from tests.mtproto.probes import WebLikeMask
from tests.mtproto.test_public_relay import DDTunnel, public_config

ROOT = Path(__file__).resolve().parents[2]
OLD = os.urandom(16)


def installed(tmp_path, dc, mask, with_unit=True):
    """A relay running on state/config.json, a copy of opt/config.json; a systemctl that knows its unit."""
    from relayctl.images.linux import systemd_unit

    opt, state, bin_ = tmp_path / "opt", tmp_path / "state", tmp_path / "bin"
    for d in (opt, state, bin_):
        d.mkdir()
    cfg = public_config(dc, mask, ["dd" + OLD.hex()], port=free_port())
    r = RelayProcess("cpython", state, cfg)  # writes state/config-*.json: the copy the relay runs on
    shutil.copy(r.config_path, opt / "config.json")
    unit = systemd_unit({"linux.prefix": str(opt), "linux.python": sys.executable, "capacity.sockets": 1024})
    unit = unit.replace("/var/lib/relay/config.json", str(r.config_path)).replace("/var/lib/relay/", str(state) + "/")
    (tmp_path / "relay.service").write_text(unit)
    shutil.copy(ROOT / "tests" / "sim" / "systemctl.py", bin_ / "systemctl")
    (bin_ / "systemctl").chmod(0o755)
    units = {"relay.service": str(tmp_path / "relay.service")} if with_unit else {}
    (bin_ / "state.json").write_text(json.dumps({"units": units, "mainpid": {"relay.service": r.proc.pid}}))
    return r, opt / "config.json", bin_


def rotate(bin_, path, *more):
    env = {"PYTHONPATH": str(ROOT / "host_tools"), "PATH": f"{bin_}:/usr/bin:/bin", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "relayctl.cli", "mtproto", "rotate", "--config", str(path),
                           "--server", "127.0.0.1", *more], capture_output=True, text=True, env=env, timeout=60)


def test_rotate_reloads_an_installed_relay_through_systemd(dc, tmp_path):
    mask = WebLikeMask(idle_s=1.5)
    r, path, bin_ = installed(tmp_path, dc, mask)
    try:
        res = rotate(bin_, path, "--grace", "1h")
        assert res.returncode == 0 and "took the new secret" in res.stdout, res.stdout + res.stderr
        new = json.loads(path.read_text())["mtproto"]
        t = DDTunnel(new["port"], bytes.fromhex(new["secrets"][0][2:]))  # the printed link works now
        assert t.echo(b"new!") == b"new!"
        t.close()
        t = DDTunnel(new["port"], OLD)  # and the old one for its grace period
        assert t.echo(b"old!") == b"old!"
        t.close()
    finally:
        r.stop()
        mask.close()


def test_rotate_does_not_claim_a_relay_that_runs_another_copy(dc, tmp_path):
    """No unit to reload through: POST /api/reload makes the relay re-read its own (stale) copy. Rotate says
    so and fails instead of printing "took the new secret"."""
    mask = WebLikeMask(idle_s=1.5)
    r, path, bin_ = installed(tmp_path, dc, mask, with_unit=False)
    try:
        res = rotate(bin_, path, "--grace", "1h")
        assert res.returncode == 1, res.stdout + res.stderr
        assert "took the new secret" not in res.stdout
        assert "still runs its old secrets" in res.stderr and "systemctl reload relay" in res.stderr
        assert "secret=dd" in res.stdout or "written" in res.stdout  # the file is written and says so
    finally:
        r.stop()
        mask.close()


def _config(tmp_path, mask):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"mtproto": {"enabled": True, "public": True, "host": "127.0.0.1", "port": free_port(),
                                            "secrets": ["dd" + OLD.hex()], "tls_domain": "www.example.com",
                                            "mask": mask}}))
    return path


def test_rotate_onto_the_mask_sites_port_is_refused_before_writing(tmp_path):
    mask_port = free_port()
    path = _config(tmp_path, f"127.0.0.1:{mask_port}")
    before = path.read_bytes()
    res = rotate(tmp_path, path, "--port", str(mask_port), "--no-reload")
    assert res.returncode == 2 and "the mask site's port" in res.stderr, res.stdout + res.stderr
    assert path.read_bytes() == before


def test_rotate_onto_a_port_in_use_is_refused_before_writing(tmp_path):
    import socket

    path = _config(tmp_path, "127.0.0.1:8443")
    before = path.read_bytes()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        res = rotate(tmp_path, path, "--port", str(taken.getsockname()[1]), "--no-reload")
    assert res.returncode == 2 and "another program listens there" in res.stderr, res.stdout + res.stderr
    assert path.read_bytes() == before
