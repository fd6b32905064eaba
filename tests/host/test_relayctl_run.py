"""`relayctl run`: the command behind `make run`, on both runtimes."""

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.relayproc import free_port

RELAYCTL = str(Path(sys.executable).parent / "relayctl")


@contextlib.contextmanager
def running(*args, **popen):
    """`relayctl run ARGS` in a process group of its own (where a terminal's Ctrl-C goes); killed on the way out
    when a test ends before it stopped."""
    proc = subprocess.Popen([RELAYCTL, "run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stop_with_ctrl_c(proc):
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole process group
    assert proc.wait(10) == 0


def read_until(proc, needle, timeout=20):
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and needle not in buf:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            d = os.read(proc.stdout.fileno(), 4096)
            if not d:
                break
            buf += d
    return buf.decode()


@pytest.mark.parametrize("rt", ["cpython", "micropython"])
def test_run_prints_links_serves_and_stops_on_ctrl_c(rt, origin):
    socks, http = free_port(), free_port()
    with running("--runtime", rt, "--socks", f"127.0.0.1:{socks}", "--http", f"127.0.0.1:{http}",
                 "--allow", "127.0.0.0/8") as proc:
        text = read_until(proc, b"Ctrl-C")
        assert f"socks=127.0.0.1:{socks}" in text and f"http=127.0.0.1:{http}" in text
        assert f"curl --socks5-hostname 127.0.0.1:{socks} " in text
        assert f"tg://socks?server=127.0.0.1&port={socks}" in text
        r = subprocess.run(["curl", "-sS", "--socks5-hostname", f"127.0.0.1:{socks}",
                            f"http://127.0.0.1:{origin.port}/small"], capture_output=True, timeout=30)
        assert r.stdout == b"hello relay\n"
        stop_with_ctrl_c(proc)
        assert "relay stopped" in read_until(proc, b"relay stopped", 5)  # a clean stop, also on MicroPython


@pytest.mark.parametrize("rt", ["cpython", "micropython"])
def test_bad_config_exits_2_with_one_line_per_problem(rt, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"socks": {"port": 70000}, "limits": {"idle_timeout": -1}}))
    r = subprocess.run([RELAYCTL, "run", "--runtime", rt, "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert f"{cfg}: socks.port: expected 1..65535, got 70000" in lines
    assert any(line.startswith(f"{cfg}: limits.idle_timeout: ") for line in lines)
    assert len(lines) == 2


@pytest.mark.parametrize("rt", ["cpython", "micropython"])
def test_sigterm_to_relayctl_stops_the_relay_too(rt, tmp_path):
    """A service manager (or a test) stops relayctl with SIGTERM: the relay it started must not live on, and
    it stops cleanly: counters saved, "relay stopped" printed (the MicroPython unix port, which cannot catch
    SIGTERM, is sent SIGINT)."""
    socks = free_port()
    state = tmp_path / "counters.json"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"share": {"budget_day": 10**9, "state_file": str(state), "persist_interval": 600}}))
    proc = subprocess.Popen([RELAYCTL, "run", "--runtime", rt, "--config", str(cfg), "--socks", f"127.0.0.1:{socks}",
                             "--http", "off", "--allow", "127.0.0.0/8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert "relay ready" in read_until(proc, b"relay ready")
        s = socket.create_connection(("127.0.0.1", socks), timeout=5)
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        s.sendall(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + socks.to_bytes(2, "big"))
        assert s.recv(10)[1] == 0  # a tunnel to the relay itself: what moves through it counts for the budget
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        s.close()
        children = [int(p) for p in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()]
        assert len(children) == 1
        proc.terminate()
        assert proc.wait(10) == 0
        assert "relay stopped" in read_until(proc, b"relay stopped", 5)
        assert json.loads(state.read_text())["day_used"] > 0
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{children[0]}") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{children[0]}") or "zombie" in open(f"/proc/{children[0]}/status").read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("rt", ["cpython", "micropython"])
def test_printed_links_encode_user_and_password(rt, origin, tmp_path):
    """The printed curl line works as pasted, and the tg://socks link carries the account percent-encoded."""
    from urllib.parse import parse_qs, urlsplit
    import shlex

    socks = free_port()
    user, password = "re lay", "p@ss:w/rd&x=1%"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"socks": {"host": "127.0.0.1", "port": socks, "auth": "password",
                                         "users": [{"user": user, "pass": password}]},
                               "http": {"enabled": False}}))
    proc = subprocess.Popen([RELAYCTL, "run", "--runtime", rt, "--config", str(cfg), "--allow", "127.0.0.0/8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        text = read_until(proc, b"Ctrl-C")
        curl = next(line.split("try it:", 1)[1].strip() for line in text.splitlines() if "try it:" in line)
        argv = shlex.split(curl)
        argv[-1] = f"http://127.0.0.1:{origin.port}/small"
        r = subprocess.run(argv[:1] + ["-sS"] + argv[1:], capture_output=True, timeout=30)
        assert r.stdout == b"hello relay\n", (curl, r.stderr)
        link = next(line.split("Telegram:", 1)[1].strip() for line in text.splitlines() if "Telegram:" in line)
        q = parse_qs(urlsplit(link).query, keep_blank_values=True)
        assert q["user"] == [user] and q["pass"] == [password] and q["port"] == [str(socks)]
        assert " " not in link and link.count("&") == 3
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(10)
