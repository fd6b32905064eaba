"""`relayctl run` and the relay it starts: they end together (a reader that goes away, `| head -1`, stops
the relay rather than orphaning it on its port), and a relay that asks for a restart (exit 75: the admin
page's restart button, a fleet `restart` command) is started again, as systemd and procd do."""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from tests.helpers.admin_page import request
from tests.helpers.relayproc import free_port
from tests.host.test_relayctl_run import RELAYCTL, read_until, running, stop_with_ctrl_c

PW = "field pw"


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def listener_pid(port):
    """The process listening on 127.0.0.1:port (ss from iproute2), or None."""
    r = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    m = re.search(r"pid=(\d+)", r.stdout)
    return int(m.group(1)) if m else None


def test_a_reader_that_goes_away_stops_the_relay_too(tmp_path):
    socks = free_port()
    err = tmp_path / "stderr"
    try:
        with open(err, "w") as e:
            # The reader takes one line, then goes away 2 s later, when relayctl has long written everything and
            # waits on a relay that prints nothing more: relayctl must notice without writing.
            sh = subprocess.run(["sh", "-c", f"{RELAYCTL} run --socks 127.0.0.1:{socks} --http off | "
                                 "{ head -1; sleep 2; }"],
                                stdout=subprocess.PIPE, stderr=e, text=True, timeout=60)
        assert sh.stdout.startswith("relay ready"), sh.stdout
        assert "Traceback" not in err.read_text() and "BrokenPipeError" not in err.read_text(), err.read_text()
        deadline = time.monotonic() + 10  # relayctl has returned: its relay must be gone, and the port free
        while not port_free(socks) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert port_free(socks), "the relay still holds its port after relayctl ended"
    finally:
        pid = listener_pid(socks)  # an orphan of a failed run: the relay this test started, on its own port
        if pid is not None:
            os.kill(pid, signal.SIGKILL)


def test_a_restart_the_relay_asks_for_starts_it_again(tmp_path):
    status = free_port()
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"socks": {"host": "127.0.0.1", "port": free_port()}, "http": {"enabled": False},
                               "status": {"enabled": True, "host": "127.0.0.1", "port": status},
                               "portal": {"admin_password": PW}}))
    with running("--config", str(cfg)) as proc:
        assert "Ctrl-C" in read_until(proc, b"Ctrl-C")
        me = f"http://127.0.0.1:{status}"
        page = request(status, "/admin", pw=PW)[1]
        token = page.split(b"/admin/restart?token=", 1)[1].split(b'"', 1)[0].decode()
        assert request(status, "/admin/restart?token=" + token, "POST", PW, [("Origin", me)])[0] == 200
        text = read_until(proc, b"relay ready", 30)  # the next relay's ready line
        assert "asked for a restart" in text and "relay ready" in text, text
        assert proc.poll() is None
        assert request(status, "/admin", pw=PW)[0] == 200  # it serves again
        stop_with_ctrl_c(proc)


def test_run_a_board_with_mtproto_makes_a_secret_and_listens_here():
    """`relayctl run --board rpi-4`: the profile has MTProto on and no site file gives it a secret; the board's
    Wi-Fi address is not this computer's. Both are said in a line, and the relay starts."""
    ports = {k: free_port() for k in ("socks", "portal", "mtproto")}
    with running("--board", "rpi-4", "--socks", f"127.0.0.1:{ports['socks']}", "--http", "off",
                 "--portal", f"127.0.0.1:{ports['portal']}", "--dns-listen", "off",
                 "--mtproto", f"127.0.0.1:{ports['mtproto']}") as proc:
        text = read_until(proc, b"Ctrl-C", 30)
        assert "made a secret for this run only (dd" in text, text + proc.stderr.read1().decode()
        assert "which this computer does not have: listening on 127.0.0.1" in text
        assert f"mtproto=127.0.0.1:{ports['mtproto']}" in text
        stop_with_ctrl_c(proc)


def test_run_the_public_board_without_public_says_how():
    r = subprocess.run([RELAYCTL, "run", "--board", "public"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "relayctl run --public --domain" in r.stderr, r.stderr


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"  # a zombie waiting for init counts as gone
    except OSError:
        return True


@pytest.mark.parametrize("rt", ["cpython", "micropython"])
def test_a_killed_relayctl_takes_its_relay_with_it(rt):
    """SIGKILL (an OOM kill, `kill -9`) gives relayctl no time to stop the relay: the kernel does it
    (PR_SET_PDEATHSIG), so no orphaned relay keeps the ports and the uplink. Started as a script's background
    job would (SIGINT ignored), which a clean stop must not depend on either."""
    socks = free_port()
    relay = None
    try:
        with running("--runtime", rt, "--socks", f"127.0.0.1:{socks}", "--http", "off", "--allow", "127.0.0.0/8",
                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) as proc:
            text = read_until(proc, b"Ctrl-C", 30)
            assert f"socks=127.0.0.1:{socks}" in text, text + proc.stderr.read1().decode()
            kids = _children(proc.pid)
            assert len(kids) == 1, kids
            relay = kids[0]
            proc.kill()
            proc.wait()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not _gone(relay):
                time.sleep(0.1)
            assert _gone(relay), "the relay outlived relayctl"
            relay = None
    finally:
        if relay is not None and not _gone(relay):
            os.kill(relay, signal.SIGKILL)
