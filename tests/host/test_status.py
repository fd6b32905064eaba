"""`relayctl status` over HTTP and over a (pty) serial console; /metrics in Prometheus' format."""

import os
import pty
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.helpers.relayproc import free_port
from tests.integration.test_proxy import curl

RELAYCTL = str(Path(sys.executable).parent / "relayctl")


def test_status_over_http_and_metrics(runtime, start_relay, origin):
    relay = start_relay(runtime, {"share": {"budget_day": 10_000_000}})
    curl("--socks5", f"127.0.0.1:{relay.socks}", f"http://127.0.0.1:{origin.port}/small")
    curl("--socks5", f"127.0.0.1:{relay.socks}", "http://10.9.9.9/")
    r = subprocess.run([RELAYCTL, "status", "--host", f"127.0.0.1:{relay.status}", "--once"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert f"({relay.python})" in r.stdout
    assert "Connections open now: 0  (since start: 1)" in r.stdout
    assert "Budget left today: 10.0 MB" in r.stdout and "Refused: 1 (guard 1)" in r.stdout
    with urllib.request.urlopen(f"http://127.0.0.1:{relay.status}/metrics", timeout=10) as m:
        text = m.read().decode()
    assert "relay_tunnels_total 1" in text and 'relay_refused_total{reason="guard"} 1' in text
    assert "relay_budget_left_today_bytes" in text and "127.0.0.1" not in text


def test_status_unreachable_says_what_to_do():
    r = subprocess.run([RELAYCTL, "status", "--host", f"127.0.0.1:{free_port()}", "--once", "--timeout", "2"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "status.enabled" in r.stderr


def test_status_over_serial_console(start_relay, tmp_path):
    from relayctl.cmd_run import relay_command

    cfg = tmp_path / "c.json"
    cfg.write_text('{"socks": {"port": %d}, "http": {"enabled": false}, "status": {"console_interval": 1}}' % free_port())
    argv, env = relay_command("micropython", str(cfg), [])
    master, slave = pty.openpty()
    # The relay writes the board's side (the pty master); relayctl reads the serial device (the slave).
    proc = subprocess.Popen(argv, env=env, stdout=master, stderr=subprocess.DEVNULL)
    try:
        r = subprocess.run([RELAYCTL, "status", "--port", os.ttyname(slave), "--once", "--timeout", "10"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert "(micropython)" in r.stdout and "Memory (heap):" in r.stdout
    finally:
        proc.terminate()
        proc.wait(5)
        os.close(master)
        os.close(slave)
